"""PESQ: identical to pesq.pesq, conformance, direction, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
)
from gensr_bench_plugins.metrics import pesq as pesq_module
from gensr_bench_plugins.metrics.pesq import Pesq


def test_hook_registers_the_class() -> None:
    assert pesq_module.gensr_register_metrics() == [Pesq]


def test_conformance() -> None:
    check_metric_conformance(Pesq)


def test_equals_the_pesq_package_exactly() -> None:
    from pesq import pesq

    utts = tiny_utterances(3, 1.5)
    scores = Pesq().score_batch(as_restorations(utts), utts)
    for utt, item in zip(utts, scores, strict=True):
        assert utt.reference is not None and utt.degraded is not None
        ref, deg = utt.reference.samples, utt.degraded.samples
        assert item["pesq_wb"] == pesq(16000, ref, deg, "wb")
        assert item["pesq_nb"] == pesq(16000, ref, deg, "nb")


def test_clean_scores_better_than_noisy() -> None:
    utts = [noisy_utterance(f"u{i}", seconds=1.5, snr_db=5.0, seed=3 * i) for i in range(2)]
    clean = Pesq().score_batch(as_restorations(utts, "reference"), utts)
    noisy = Pesq().score_batch(as_restorations(utts, "degraded"), utts)
    for good, bad in zip(clean, noisy, strict=True):
        for output in Pesq.outputs:
            assert Pesq.direction(output) is True
            assert good[output] > bad[output] + 0.5, output


def _pair(reference: np.ndarray, restoration: np.ndarray) -> tuple[Restoration, Utterance]:
    utt = Utterance("u", Audio(restoration, 16000), Audio(reference, 16000))
    return Restoration("u", Audio(restoration, 16000), "test"), utt


def test_shorter_than_a_quarter_second_raises_with_the_reason() -> None:
    assert Pesq.min_duration == 0.25
    utt = noisy_utterance(seconds=0.2)
    with pytest.raises(AudioValidationError, match="1/4 of a second"):
        Pesq().score_batch(as_restorations([utt]), [utt])


def test_silent_restoration_raises() -> None:
    clean = noisy_utterance(seconds=1.0).reference
    assert clean is not None
    restoration, utt = _pair(clean.samples, np.zeros(16000, np.float32))
    with pytest.raises(AudioValidationError, match="restoration of 'u' is digital silence"):
        Pesq().score_batch([restoration], [utt])


def test_silent_reference_raises() -> None:
    noisy = noisy_utterance(seconds=1.0).degraded
    assert noisy is not None
    restoration, utt = _pair(np.zeros(16000, np.float32), noisy.samples)
    with pytest.raises(AudioValidationError, match="reference of 'u' is digital silence"):
        Pesq().score_batch([restoration], [utt])


def test_library_value_error_on_near_silence_becomes_a_clear_error() -> None:
    clean = noisy_utterance(seconds=1.0).reference
    assert clean is not None
    near_silent = np.zeros(16000, np.float32)
    near_silent[100] = 1e-30  # the P.862 C code computes a NaN level and numpy refuses it
    # The functional core: the metric refuses such a click before the C code runs.
    with pytest.raises(AudioValidationError, match=r"\(near-\)silent"):
        pesq_module.pesq(near_silent, clean.samples)
    restoration, utt = _pair(clean.samples, near_silent)
    with pytest.raises(AudioValidationError, match=r"only 0\.020 s of sound"):
        Pesq().score_batch([restoration], [utt])


def test_mismatched_lengths_and_missing_reference_raise() -> None:
    utt = noisy_utterance(seconds=1.0)
    assert utt.degraded is not None
    short = Restoration(utt.id, Audio(utt.degraded.samples[:8000], 16000), "test")
    with pytest.raises(AudioValidationError, match="same length"):
        Pesq().score_batch([short], [utt])
    no_ref = Utterance("u", utt.degraded)
    with pytest.raises(AudioValidationError, match="needs a clean reference"):
        Pesq().score_batch(as_restorations([no_ref]), [no_ref])
