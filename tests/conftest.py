"""Session-wide isolation: generated suites and the score cache go to a temporary folder."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Keep tests from reading or filling the user's cache (and from passing because of it)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path_factory.mktemp("gensr-cache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _restore_cli_globals(monkeypatch: pytest.MonkeyPatch):
    """`--data-dir` and `--weights-dir` set module state and environment variables (so worker
    processes inherit them); restore both after every test so no test sees another's folders."""
    from gensr_bench import data, weights

    for var in ("GENSR_BENCH_DATA", "GENSR_BENCH_WEIGHTS_DIR"):
        # setenv records the value before (or its absence), so teardown restores exactly that;
        # delenv of an absent variable would record nothing.
        monkeypatch.setenv(var, os.environ.get(var, ""))
        if not os.environ[var]:
            monkeypatch.delenv(var)
    monkeypatch.setattr(data, "_explicit_root", data._explicit_root)
    monkeypatch.setattr(weights, "_explicit_dir", weights._explicit_dir)
    yield
