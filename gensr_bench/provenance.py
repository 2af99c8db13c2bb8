"""Provenance: what determines a run's scores (its config) and everything a result records to
be reproduced and compared (versions, git commit, components, machine and CPU)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gensr_bench.interfaces import Metric, RestorationModel, Suite

if TYPE_CHECKING:
    from gensr_bench.plugins import GensrPluginManager


def run_config(
    model: RestorationModel,
    suite: Suite,
    metrics: Sequence[Metric],
    seed: int,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """What determines a run's scores; a resumed run must match it exactly.

    A shard's config is the whole run's plus ``"shard": [i, N]``.
    """
    config = {
        "model": model.config(),
        "suite": {**suite.config(), "limit": suite.limit, "fingerprint": suite.fingerprint()},
        "metrics": [metric.config() for metric in metrics],
        "seed": seed,
    }
    if shard is not None:
        config["shard"] = list(shard)
    return config


def git_commit() -> dict[str, Any] | None:
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


#: The x86 instruction-set flags (of /proc/cpuinfo) that decide which numeric kernels MKL,
#: oneDNN and torch run, and so how float results round: provenance records the ones present.
NUMERIC_CPU_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512dq",
    "avx512cd",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
)


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU model, its numeric instruction-set flags (sorted; ``NUMERIC_CPU_FLAGS`` and
    every ``amx_*``; empty where ``/proc/cpuinfo`` cannot be read) and the vector code path
    torch chose (``None`` when torch is not loaded: it is not imported just for this).

    ``cpuinfo``: the text of ``/proc/cpuinfo`` (read from there by default).
    """
    import platform
    import sys

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor speaks for all
            fields[key.strip()] = value.strip()
    present = set(fields.get("flags", "").split())
    flags = sorted(f for f in present if f in NUMERIC_CPU_FLAGS or f.startswith("amx_"))
    torch = sys.modules.get("torch")
    capability = None
    if torch is not None:
        try:
            capability = str(torch.backends.cpu.get_cpu_capability())
        except (AttributeError, RuntimeError):  # a torch without it, or one half-imported
            capability = None
    return {
        "model": fields.get("model name") or platform.processor() or None,
        "flags": flags,
        "torch_capability": capability,
    }


def collect_provenance(
    pm: GensrPluginManager | None,
    model: RestorationModel,
    suite: Suite,
    metrics: Sequence[Metric],
    seed: int,
) -> dict[str, Any]:
    """Everything a result must record to be reproduced and compared (DESIGN section 4)."""
    import platform
    import socket
    from dataclasses import asdict

    import gensr_bench
    from gensr_bench.plugins import plugin_infos

    return {
        "gensr_bench_version": gensr_bench.__version__,
        "git": git_commit(),
        "plugins": [asdict(info) for info in plugin_infos(pm)] if pm is not None else [],
        "components": {
            "model": {
                "name": model.name,
                "version": model.version,
                "paradigm": model.paradigm,
                "class": f"{type(model).__module__}.{type(model).__qualname__}",
                "waveform_tolerance": model.waveform_tolerance,
            },
            "suite": {
                "name": suite.name,
                "version": suite.version,
                "class": f"{type(suite).__module__}.{type(suite).__qualname__}",
            },
            "metrics": [
                {
                    "name": m.name,
                    "version": m.version,
                    "class": f"{type(m).__module__}.{type(m).__qualname__}",
                }
                for m in metrics
            ],
        },
        "metric_weights_sha256": {m.name: m.weights_sha256() for m in metrics},
        "model_checkpoint_sha256": model.checkpoint_hash(),
        "suite_fingerprint": suite.fingerprint(),
        "seed": seed,
        "machine": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpu": cpu_info(),
        },
    }
