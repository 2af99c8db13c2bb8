"""DNSMOS: identical to speechmos.dnsmos.run, conformance, direction, errors, weight hashes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
)
from gensr_bench_plugins.metrics import dnsmos as dnsmos_module
from gensr_bench_plugins.metrics.dnsmos import Dnsmos, model_files, window_plan

#: our output -> key of speechmos.dnsmos.run's answer
SPEECHMOS_KEYS = {
    "dnsmos_sig": "sig_mos",
    "dnsmos_bak": "bak_mos",
    "dnsmos_ovrl": "ovrl_mos",
    "dnsmos_p808": "p808_mos",
}


@pytest.fixture(scope="module")
def metric() -> Dnsmos:
    instance = Dnsmos()
    instance.setup()
    return instance


def test_hook_registers_the_class() -> None:
    assert dnsmos_module.gensr_register_metrics() == [Dnsmos]


def test_conformance() -> None:
    # 1-s clips: each loops to 16 s but holds one distinct window, which keeps this quick.
    scores = check_metric_conformance(Dnsmos, tiny_utterances(2, 1.0))
    for item in scores:
        assert 1.0 <= item["dnsmos_ovrl"] <= 5.0


@pytest.mark.parametrize(
    "seconds",
    [
        2.3,  # doubled twice to 9.2 s: a single window
        4.6,  # doubled once to 9.2 s: a single window
        11.5,  # longer than the window: 2 hops, no looping
    ],
)
def test_equals_speechmos_reference(metric: Dnsmos, seconds: float) -> None:
    from speechmos import dnsmos as speechmos_dnsmos

    utt = noisy_utterance(f"clip-{seconds}", seconds=seconds, snr_db=10.0, seed=3)
    ours = metric.score_batch(as_restorations([utt]), [utt])[0]
    assert utt.degraded is not None
    theirs = speechmos_dnsmos.run(utt.degraded.samples, 16000)
    for output, key in SPEECHMOS_KEYS.items():
        assert ours[output] == pytest.approx(float(theirs[key]), abs=1e-6), output


class FakeSession:
    """Stands in for an ONNX session: a cheap output that depends on every input value."""

    def __init__(self, outputs: int) -> None:
        self.outputs = outputs
        self.calls = 0

    def run(self, _names: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        x = feeds["input_1"].reshape(len(feeds["input_1"]), -1).astype(np.float64)
        weights = np.linspace(0.5, 1.5, x.shape[1])
        base = 3.0 + (x * weights).sum(axis=1) / x.shape[1] + 2 * np.abs(x).mean(axis=1)
        values = np.stack([base + 0.1 * k for k in range(self.outputs)], axis=1)
        return [values.astype(np.float32)]


@pytest.mark.parametrize("seconds", [1.07, 1.1, 2.0, 3.3, 20.3])
def test_procedure_matches_speechmos_with_stand_in_models(seconds: float) -> None:
    """Looping, hops, skipped one-sample-short windows, reuse and averaging, model-free.

    Both implementations run with the same stand-in sessions, so any difference comes from the
    procedure; 1.07 s, 1.1 s and 20.3 s hit windows the reference skips.
    """
    from speechmos import dnsmos as speechmos_dnsmos

    utt = noisy_utterance("clip", seconds=seconds, snr_db=10.0, seed=5)
    assert utt.degraded is not None
    samples = utt.degraded.samples
    reference = object.__new__(speechmos_dnsmos.DNSMOS)  # skip loading the real sessions
    reference.onnx_sess = FakeSession(3)
    reference.p808_onnx_sess = FakeSession(1)
    theirs = reference(samples, 16000, False)
    ours_primary, ours_p808 = FakeSession(3), FakeSession(1)
    ours = dnsmos_module.dnsmos(samples, dnsmos_module.DnsmosModels(ours_primary, ours_p808))
    for output, key in SPEECHMOS_KEYS.items():
        assert ours[output] == pytest.approx(float(theirs[key]), abs=1e-12), output
    _, starts = window_plan(len(samples))
    assert reference.onnx_sess.calls == len(starts)
    assert ours_primary.calls == len({start % len(samples) for start in starts})


def test_window_plan_loops_short_clips_and_skips_short_windows() -> None:
    length, starts = window_plan(17_600)  # 1.1 s -> 2.2 -> 4.4 -> 8.8 -> 17.6 s
    assert length == 281_600
    assert starts == [i * 16_000 for i in range(7)]  # hops 7 and 8 end one sample short
    assert window_plan(184_000) == (184_000, [0, 16_000])


def test_clean_scores_better_than_noisy(metric: Dnsmos) -> None:
    # OVRL, BAK and P.808 must prefer the clean signal. SIG is not asserted: the synthetic
    # harmonic test signal is not speech, and DNSMOS SIG rates it lower than with noise added.
    utts = [noisy_utterance(f"u{i}", seconds=1.0, snr_db=5.0, seed=7 * i) for i in range(2)]
    clean = metric.score_batch(as_restorations(utts, "reference"), utts)
    noisy = metric.score_batch(as_restorations(utts, "degraded"), utts)
    for good, bad in zip(clean, noisy, strict=True):
        for output in ("dnsmos_ovrl", "dnsmos_bak", "dnsmos_p808"):
            assert Dnsmos.direction(output) is True
            assert good[output] > bad[output], output


def test_audio_beyond_full_scale_raises(metric: Dnsmos) -> None:
    utt = noisy_utterance(seconds=1.0)
    loud = Restoration(utt.id, Audio(np.full(16_000, 1.5, np.float32), 16_000), "test")
    with pytest.raises(AudioValidationError, match=r"\[-1, 1\]"):
        metric.score_batch([loud], [utt])


def test_wrong_sample_rate_raises(metric: Dnsmos) -> None:
    utt = noisy_utterance(seconds=1.0, sample_rate=8000)
    with pytest.raises(AudioValidationError, match="8000 Hz"):
        metric.score_batch(as_restorations([utt]), [utt])


def test_declares_attributes_and_weight_hashes() -> None:
    assert Dnsmos.sample_rate == 16000 and not Dnsmos.requires_reference
    hashes = Dnsmos().weights_sha256()
    files = model_files()
    assert sorted(path.name for path in files) == ["model_v8.onnx", "sig_bak_ovr.onnx"]
    for path in files:
        expected = hashlib.sha256(path.read_bytes()).hexdigest()
        assert hashes[f"speechmos/dnsmos_models/{path.name}"] == expected
