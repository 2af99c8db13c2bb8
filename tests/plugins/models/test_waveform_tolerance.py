"""Every built-in model declares how far its outputs may differ between two x86 CPUs."""

from __future__ import annotations

import math

import pytest

from gensr_bench.interfaces import RestorationModel
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registry

ALL_BUILT_IN = [
    entry.cls
    for entry in Registry.from_plugins(get_plugin_manager(), "models")
    if entry.cls.__module__.startswith("gensr_bench_plugins.")
]
#: Models whose outputs another program makes (``command`` runs the user's script): how far
#: those differ between CPUs is that program's business, so they declare nothing.
EXTERNAL = {"command"}
#: Not measured across CPUs yet (benchmarks/anyenhance/STATUS.md): declared once measured.
UNMEASURED = {"anyenhance", "anyenhance-dpo"}
BUILT_IN = [cls for cls in ALL_BUILT_IN if cls.name not in EXTERNAL | UNMEASURED]


def test_the_built_in_models_are_all_here() -> None:
    names = {cls.name for cls in BUILT_IN}
    assert {"identity", "oracle", "wiener", "fm-small", "ar-small", "mgm-small"} <= names
    assert {"fm-small-dpo", "ar-small-dpo", "mgm-small-dpo"} <= names


@pytest.mark.parametrize("cls", BUILT_IN, ids=[cls.name for cls in BUILT_IN])
def test_every_built_in_model_declares_a_waveform_tolerance(
    cls: type[RestorationModel],
) -> None:
    tolerance = cls.waveform_tolerance
    assert isinstance(tolerance, float) and math.isfinite(tolerance)
    # Tight enough to mean something: under a 16-bit PCM step (3e-5), as measured
    # (benchmarks/reproducibility/RESULTS.md).
    assert 0.0 <= tolerance < 2**-15


def test_a_model_that_declares_nothing_says_so() -> None:
    assert RestorationModel.waveform_tolerance is None
    undeclared = [cls for cls in ALL_BUILT_IN if cls.name in EXTERNAL | UNMEASURED]
    assert sorted(cls.name for cls in undeclared) == sorted(EXTERNAL | UNMEASURED)
    assert all(cls.waveform_tolerance is None for cls in undeclared)
