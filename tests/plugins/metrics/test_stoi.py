"""STOI / ESTOI: identical to pystoi, conformance, direction, pystoi's 1e-5 sentinel raises."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
    voiced_signal,
)
from gensr_bench_plugins.metrics import stoi as stoi_module
from gensr_bench_plugins.metrics.stoi import Estoi, Stoi

BOTH = [(Stoi, False), (Estoi, True)]


def test_hook_registers_both_classes() -> None:
    assert stoi_module.gensr_register_metrics() == [Stoi, Estoi]


@pytest.mark.parametrize("metric_cls", [Stoi, Estoi])
def test_conformance(metric_cls: type[Stoi]) -> None:
    check_metric_conformance(metric_cls)


@pytest.mark.parametrize(("metric_cls", "extended"), BOTH)
def test_equals_pystoi_exactly(metric_cls: type[Stoi], extended: bool) -> None:
    from pystoi import stoi

    utts = tiny_utterances(3, 1.5)
    scores = metric_cls().score_batch(as_restorations(utts), utts)
    (output,) = metric_cls.outputs
    for utt, item in zip(utts, scores, strict=True):
        assert utt.reference is not None and utt.degraded is not None
        np.random.seed(0)  # pystoi's ESTOI dithers with the global generator; STOI ignores it
        expected = stoi(utt.reference.samples, utt.degraded.samples, 16000, extended=extended)
        assert item[output] == expected
        # unseeded, pystoi's ESTOI wanders in the 16th digit
        unseeded = stoi(utt.reference.samples, utt.degraded.samples, 16000, extended=extended)
        assert item[output] == pytest.approx(unseeded, abs=1e-12)


def test_estoi_leaves_the_global_random_state_alone() -> None:
    utt = noisy_utterance(seconds=1.0)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    Estoi().score_batch(as_restorations([utt]), [utt])
    assert np.random.random() == expected_next


@pytest.mark.parametrize("metric_cls", [Stoi, Estoi])
def test_clean_scores_better_than_noisy(metric_cls: type[Stoi]) -> None:
    utts = [noisy_utterance(f"u{i}", seconds=1.5, snr_db=0.0, seed=3 * i) for i in range(2)]
    (output,) = metric_cls.outputs
    clean = metric_cls().score_batch(as_restorations(utts, "reference"), utts)
    noisy = metric_cls().score_batch(as_restorations(utts, "degraded"), utts)
    assert metric_cls.direction(output) is True
    for good, bad in zip(clean, noisy, strict=True):
        assert good[output] == pytest.approx(1.0)
        assert good[output] > bad[output]


def _pair(reference: np.ndarray, restoration: np.ndarray) -> tuple[Restoration, Utterance]:
    utt = Utterance("u", Audio(restoration, 16000), Audio(reference, 16000))
    return Restoration("u", Audio(restoration, 16000), "test"), utt


@pytest.mark.parametrize("metric_cls", [Stoi, Estoi])
def test_too_few_frames_raises_instead_of_the_sentinel(metric_cls: type[Stoi]) -> None:
    """pystoi returns 1e-5 with a warning here; the metric must raise and warn nothing."""
    from pystoi import stoi

    clean = voiced_signal(2.0, seed=1).samples.copy()
    clean[4000:] = 0.0  # 0.25 s of speech, then silence that pystoi drops
    noisy = clean + np.float32(0.01) * np.random.default_rng(0).standard_normal(32000).astype(
        np.float32
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert stoi(clean, noisy, 16000, extended=metric_cls.extended) == 1e-5
    restoration, utt = _pair(clean, noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaked RuntimeWarning would fail the test
        with pytest.raises(AudioValidationError, match="too short or mostly silent"):
            metric_cls().score_batch([restoration], [utt])


def test_min_duration_is_enough_for_speech_without_pauses() -> None:
    n = int(np.ceil(Stoi.min_duration * 16000))
    rng = np.random.default_rng(0)
    clean = (0.1 * rng.standard_normal(n)).astype(np.float32)  # no silent frame to drop
    noisy = clean + (0.05 * rng.standard_normal(n)).astype(np.float32)
    restoration, utt = _pair(clean, noisy)
    assert 0.0 < Stoi().score_batch([restoration], [utt])[0]["stoi"] < 1.0
    short_restoration, short_utt = _pair(clean[: n - 400], noisy[: n - 400])
    with pytest.raises(AudioValidationError, match="fewer than 30 frames"):
        Stoi().score_batch([short_restoration], [short_utt])


def test_silent_reference_raises() -> None:
    noisy = noisy_utterance(seconds=1.0).degraded
    assert noisy is not None
    restoration, utt = _pair(np.zeros(16000, np.float32), noisy.samples)
    with pytest.raises(AudioValidationError, match="reference of 'u' is digital silence"):
        Estoi().score_batch([restoration], [utt])
