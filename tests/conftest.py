"""Session-wide isolation: generated suites and the score cache go to a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Keep tests from reading or filling the user's cache (and from passing because of it)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path_factory.mktemp("gensr-cache")))
    yield
    patch.undo()
