"""Shared metric helpers: PairwiseMetric's batch loop and checks, check_same_shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    tiny_utterances,
    voiced_signal,
)
from gensr_bench_plugins.metrics._util import (
    PairwiseMetric,
    active_seconds,
    check_same_shape,
    require_sound,
)


class _Recorder(PairwiseMetric):
    """Test metric: the restoration's sample count, recording what score_pair received."""

    name = "recorder"
    sample_rate = None
    outputs = ("count",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[tuple[np.ndarray, np.ndarray, Utterance]] = []

    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        self.seen.append((estimate, reference, utterance))
        return {"count": float(estimate.size)}


class _At16k(_Recorder):
    """Test metric that scores at 16 kHz."""

    name = "recorder-16k"
    sample_rate = 16000


def test_pairwise_metric_is_abstract_and_intrusive() -> None:
    assert PairwiseMetric.requires_reference is True
    with pytest.raises(TypeError):
        PairwiseMetric()  # type: ignore[abstract]


def test_score_batch_passes_each_pair_in_order() -> None:
    check_metric_conformance(_Recorder)
    utts = tiny_utterances(3, 0.5, 24000)
    restorations = as_restorations(utts)
    metric = _Recorder()
    assert metric.score_batch(restorations, utts) == [{"count": 12000.0}] * 3
    for (est, ref, utt), restoration in zip(metric.seen, restorations, strict=True):
        assert utt.reference is not None
        assert est is restoration.audio.samples and ref is utt.reference.samples


def test_score_batch_checks_before_score_pair() -> None:
    utts = tiny_utterances(2, 0.5)
    metric = _At16k()
    with pytest.raises(ValueError, match="one restoration per utterance"):
        metric.score_batch(as_restorations(utts[:1]), utts)
    no_reference = Utterance("u", utts[0].degraded, None)
    with pytest.raises(AudioValidationError, match="needs a clean reference"):
        metric.score_batch(as_restorations(utts[:1]), [no_reference])
    wrong_rate = tiny_utterances(1, 0.5, 8000)
    with pytest.raises(AudioValidationError, match="scores at 16000 Hz"):
        metric.score_batch(as_restorations(wrong_rate), wrong_rate)
    assert utts[0].reference is not None
    short = Restoration("utt-0", Audio(utts[0].reference.samples[:-1], 16000), "t")
    with pytest.raises(AudioValidationError, match="trim both to the same length"):
        metric.score_batch([short], utts[:1])
    assert metric.seen == []


def test_native_rate_needs_the_restoration_at_the_reference_rate() -> None:
    utt = tiny_utterances(1, 0.5, 24000)[0]
    assert utt.reference is not None
    resampled = Restoration(utt.id, Audio(np.zeros(8000, np.float32), 16000), "t")
    with pytest.raises(AudioValidationError, match="at 16000 Hz but this metric scores at 24000"):
        _Recorder().score_batch([resampled], [utt])


def test_check_same_shape() -> None:
    check_same_shape(np.zeros(4), np.ones(4), "X")
    with pytest.raises(AudioValidationError, match=r"X needs two 1-D signals .* \(4,\) and \(3,\)"):
        check_same_shape(np.zeros(4), np.zeros(3), "X")
    with pytest.raises(AudioValidationError, match="match_lengths"):
        check_same_shape(np.zeros((2, 4)), np.zeros((2, 4)), "X")


def test_active_seconds_counts_the_frames_that_carry_sound() -> None:
    speech = voiced_signal(2.0, 16000, seed=1).samples
    assert 1.5 < active_seconds(speech, 16000) <= 2.0
    assert active_seconds(speech + np.float32(0.3), 16000) == active_seconds(speech, 16000)
    assert active_seconds(np.zeros(32000), 16000) == 0.0
    assert active_seconds(np.full(32000, -0.25), 16000) == 0.0
    click = np.zeros(32000)
    click[1000] = 1.0
    assert active_seconds(click, 16000) == 0.02  # the one 20-ms frame holding it
    burst = np.zeros(32000)
    burst[:4000] = speech[:4000]  # a quarter second of sound, then silence
    assert 0.2 <= active_seconds(burst, 16000) <= 0.26  # 13 frames hold some of it
    assert active_seconds(speech[:330], 16000) == 330 / 16000  # a partial frame counts whole
    assert active_seconds(np.array([]), 16000) == 0.0


def test_require_sound_refuses_silence_a_constant_and_a_click() -> None:
    require_sound(voiced_signal(1.0).samples, 16000, "the output", "m")
    with pytest.raises(AudioValidationError, match=r"m: the output is digital silence"):
        require_sound(np.zeros(16000), 16000, "the output", "m")
    with pytest.raises(AudioValidationError, match=r"constant \(DC\) signal .* -0\.25\)"):
        require_sound(np.full(16000, -0.25), 16000, "the output", "m")
    click = np.zeros(16000)
    click[8000] = 0.5
    with pytest.raises(AudioValidationError, match=r"only 0\.020 s of sound"):
        require_sound(click, 16000, "the output", "m")
    with pytest.raises(AudioValidationError, match=r"less than the 0\.5 s"):
        require_sound(voiced_signal(1.0).samples[:4000], 16000, "the output", "m", minimum=0.5)


class _NeedsSound(_Recorder):
    """Test metric that refuses signals without sound."""

    name = "recorder-sound"
    needs_sound = True


def test_needs_sound_checks_both_signals_before_score_pair() -> None:
    utt = tiny_utterances(1, 0.5)[0]
    assert utt.reference is not None
    metric = _NeedsSound()
    silent = Restoration(utt.id, Audio(np.zeros(8000, np.float32), 16000), "t")
    with pytest.raises(AudioValidationError, match="the restoration of 'utt-0' is digital"):
        metric.score_batch([silent], [utt])
    silent_reference = Utterance(utt.id, utt.degraded, Audio(np.zeros(8000, np.float32), 16000))
    with pytest.raises(AudioValidationError, match="the reference of 'utt-0' is digital"):
        metric.score_batch(as_restorations([utt]), [silent_reference])
    assert metric.seen == []
    assert _Recorder().score_batch([silent], [utt]) == [{"count": 8000.0}]  # off by default
