"""Alignment tests run on tiny tensors: one torch thread each (see ``torch_threads``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gensr_bench.testing import torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    with torch_threads(1):
        yield
