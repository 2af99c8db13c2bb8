"""Throughput of every registered metric (seconds of audio scored per second, one thread).

The WavLM-based metrics (speechbertscore, speaker-sim-wavlm) have no weights offline: they run
on randomly initialised models of their published architectures (WavLM-Large; WavLM-Base-Plus
with the x-vector head), which cost what the real ones cost. NISQA reads its weights from
GENSR_BENCH_WEIGHTS_DIR or ``../shared/weights/nisqa`` and is skipped without them (failed
under CI=true).
"""

from __future__ import annotations

import pytest
from _bench import record_throughput

from gensr_bench.testing import as_restorations, require_weights
from gensr_bench.weights import WEIGHTS_ENV

METRICS = [
    "dnsmos",
    "pesq",
    "stoi",
    "estoi",
    "si-sdr",
    "lsd",
    "speaker-sim",
    "nisqa",
    "distillmos",
    "cer",
    "whisper",
    "speechbertscore",
    "speaker-sim-wavlm",
]


@pytest.fixture(scope="module")
def random_wavlm(tmp_path_factory):
    from metric_speed import random_wavlm_dir

    root = tmp_path_factory.mktemp("wavlm")
    return {
        "speechbertscore": {"model": str(random_wavlm_dir(root / "l", large=True, xvector=False))},
        "speaker-sim-wavlm": {
            "model": str(random_wavlm_dir(root / "s", large=False, xvector=True))
        },
    }


@pytest.mark.parametrize("name", METRICS)
def test_metric_throughput(benchmark, registries, speech, random_wavlm, monkeypatch, name):
    from metric_speed import forget_transcriptions

    if name == "nisqa":
        from gensr_bench_plugins.metrics.nisqa import WEIGHTS

        monkeypatch.setenv(WEIGHTS_ENV, str(require_weights(WEIGHTS, __file__, "nisqa").parent))
    utterances, seconds = speech
    metric = registries.metrics.create(name, **random_wavlm.get(name, {}))
    metric.setup()
    restorations = as_restorations(utterances)

    def score_all():
        return [metric.score_batch([r], [u]) for r, u in zip(restorations, utterances, strict=True)]

    def fresh_round():
        # cer / wer / whisper keep recent transcriptions by audio content: empty that memory
        # so every round decodes (otherwise round 2 would time dictionary look-ups).
        forget_transcriptions(metric)

    metric.score_batch(restorations[:1], utterances[:1])  # warm-up outside the timing
    scores = benchmark.pedantic(score_all, setup=fresh_round, rounds=2, iterations=1)
    assert len(scores) == len(utterances)
    assert all(set(s[0]) == set(metric.outputs) for s in scores)
    record_throughput(benchmark, seconds)
    if name in random_wavlm:
        benchmark.extra_info["note"] = "random weights: compute cost only"
