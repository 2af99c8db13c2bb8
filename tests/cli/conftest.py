"""Fixtures shared by the command tests."""

from __future__ import annotations

import pytest


@pytest.fixture()
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))
