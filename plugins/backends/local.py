"""The ``local`` backend: this machine, the calling process or ``--workers`` processes.

The class lives in the core (:class:`gensr_bench.runner.LocalBackend`, the runner's default when
no backend is named); this module registers it through the same entry point as any backend.
"""

from __future__ import annotations

from gensr_bench import Backend, hookimpl
from gensr_bench.runner import LocalBackend


@hookimpl
def gensr_register_backends() -> list[type[Backend]]:
    return [LocalBackend]
