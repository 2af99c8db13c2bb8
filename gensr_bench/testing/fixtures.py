"""pytest fixtures shared by several test folders (need pytest, so import them from here).

Expose a fixture in a folder by importing it into that folder's ``conftest.py``::

    from gensr_bench.testing.fixtures import one_torch_thread  # noqa: F401 (a fixture)

then request it by name, or for a whole module with
``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gensr_bench.testing.nets import torch_threads


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """The tests of a module run with one torch intra-op thread (see ``torch_threads``): on
    tiny tensors a second thread saves nothing, and spin-waiting slows them down. Needs torch.
    """
    with torch_threads(1):
        yield
