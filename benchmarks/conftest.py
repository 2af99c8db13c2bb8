"""Shared set-up of the pytest-benchmark benchmarks (``python -m pytest benchmarks``).

Every benchmark reads real audio: the first utterances of ``synth-gsr`` (espeak speech under
noise, reverb, clipping and band limits, 3-8 s each). Throughputs are recorded in each
benchmark's ``extra_info`` as seconds of audio per second of wall clock, so the JSON that
``--benchmark-json`` writes holds them (``benchmarks/RESULTS.md`` quotes them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The benchmarks import their helpers (_bench.py, metric_speed.py) from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def registries():
    from gensr_bench.plugins import get_plugin_manager
    from gensr_bench.registry import Registries

    return Registries.from_plugins(get_plugin_manager())


@pytest.fixture(scope="session")
def speech(registries):
    """The first 4 utterances of synth-gsr, with the seconds of audio they hold."""
    utterances = list(registries.suites.create("synth-gsr", limit=4))
    seconds = sum(u.degraded.duration for u in utterances)
    return utterances, seconds


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Benchmarks run on one thread, as each runner worker does."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)
