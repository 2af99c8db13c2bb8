"""Alignment tests run on tiny tensors: one torch thread each (see ``one_torch_thread``)."""

from __future__ import annotations

import pytest

from gensr_bench.testing.fixtures import one_torch_thread  # noqa: F401 (a fixture, used below)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread: None) -> None:  # noqa: F811 (requests the fixture)
    """Every module here runs with one torch thread."""
