"""End to end on the built-in synth-gsr suite: the bounds and the classical enhancer.

The upper bound (`oracle`) must beat the lower bound (`identity`) on every metric family, and
the `wiener` enhancer must beat `identity` on DNSMOS BAK. Twelve utterances keep it quick; the
full 150-utterance figures are in the README's commands.
"""

from __future__ import annotations

import pytest

from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registries
from gensr_bench.runner import RunOptions, run_suite

LIMIT = 12


@pytest.fixture(scope="module")
def means(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    reg = Registries.from_plugins(get_plugin_manager())
    metrics = [reg.metrics.create(n) for n in ("dnsmos", "pesq", "estoi", "si-sdr", "speaker-sim")]
    out: dict[str, dict[str, float]] = {}
    for model in ("identity", "oracle", "wiener"):
        chosen = metrics if model != "wiener" else metrics[:1]
        result = run_suite(
            reg.models.create(model),
            reg.suites.create("synth-gsr", limit=LIMIT),
            chosen,
            tmp_path_factory.mktemp(model),
            RunOptions(workers=1, use_cache=False),
        )
        assert result.n_utterances == LIMIT
        out[model] = {}
        for s in result.summaries:
            assert s.n_scored == LIMIT, f"{model}: {s.output} scored {s.n_scored}/{LIMIT}"
            assert s.mean is not None
            out[model][s.output] = s.mean
    return out


@pytest.mark.parametrize(
    "output", ["dnsmos_ovrl", "dnsmos_bak", "pesq_wb", "estoi", "si_sdr", "speaker_sim"]
)
def test_oracle_beats_identity(means: dict[str, dict[str, float]], output: str) -> None:
    assert means["oracle"][output] > means["identity"][output]


def test_wiener_beats_identity_on_dnsmos_bak(means: dict[str, dict[str, float]]) -> None:
    assert means["wiener"]["dnsmos_bak"] > means["identity"]["dnsmos_bak"]
