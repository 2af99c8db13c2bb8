"""Tests of gensr_bench.records: validation and derived properties of the frozen records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gensr_bench.records import Audio, Utterance
from gensr_bench.testing import noisy_utterance, voiced_signal


def test_audio_coerces_samples_to_float32_contiguous() -> None:
    strided = np.arange(20, dtype=np.float64)[::2]
    assert not strided.flags.c_contiguous

    audio = Audio(strided, 8000)

    assert audio.samples.dtype == np.float32
    assert audio.samples.flags.c_contiguous
    np.testing.assert_array_equal(audio.samples, np.arange(0, 20, 2, dtype=np.float32))


def test_audio_accepts_lists_and_keeps_float32_arrays_as_is() -> None:
    samples = np.zeros(4, dtype=np.float32)
    assert Audio(samples, 16000).samples is samples
    assert Audio([0.0, 0.5], 16000).samples.dtype == np.float32


def test_audio_coerces_sample_rate_to_int() -> None:
    audio = Audio(np.zeros(3), np.int64(22050))
    assert audio.sample_rate == 22050
    assert type(audio.sample_rate) is int


@pytest.mark.parametrize("shape", [(10, 2), (2, 10), (1, 1, 5), ()])
def test_audio_rejects_non_mono_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="one-dimensional") as info:
        Audio(np.zeros(shape), 16000)
    assert "to_mono" in str(info.value)  # says how to fix it


@pytest.mark.parametrize("rate", [0, -16000])
def test_audio_rejects_non_positive_sample_rate(rate: int) -> None:
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        Audio(np.zeros(10), rate)


def test_audio_is_frozen() -> None:
    audio = Audio(np.zeros(10), 16000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        audio.sample_rate = 8000  # type: ignore[misc]


def test_audio_duration() -> None:
    assert Audio(np.zeros(24000), 16000).duration == pytest.approx(1.5)
    assert Audio(np.zeros(0), 16000).duration == 0.0


def test_content_hash_is_equal_for_equal_audio() -> None:
    first = voiced_signal(0.5, seed=3)
    second = Audio(first.samples.copy(), first.sample_rate)
    # float64 input that converts to the same float32 samples is the same audio
    third = Audio(first.samples.astype(np.float64), first.sample_rate)

    assert first.content_hash() == second.content_hash() == third.content_hash()
    assert len(first.content_hash()) == 64


def test_content_hash_differs_for_different_samples_or_rate() -> None:
    base = voiced_signal(0.5, seed=3)
    nudged = base.samples.copy()
    nudged[100] += np.float32(1e-4)

    hashes = {
        base.content_hash(),
        Audio(nudged, base.sample_rate).content_hash(),
        voiced_signal(0.5, seed=4).content_hash(),
        Audio(base.samples, 8000).content_hash(),
        Audio(base.samples[:-1], base.sample_rate).content_hash(),
    }
    assert len(hashes) == 5


def test_audio_equality_compares_rate_and_content() -> None:
    base = voiced_signal(0.25)
    same = Audio(base.samples.copy(), base.sample_rate)

    assert base == same
    assert hash(base) == hash(same)
    assert base != Audio(base.samples, 8000)
    assert base != Audio(base.samples[:-1], base.sample_rate)
    assert base != Audio(base.samples * np.float32(0.5), base.sample_rate)


def test_utterances_with_equal_fields_are_equal() -> None:
    assert noisy_utterance(seconds=0.25) == noisy_utterance(seconds=0.25)
    assert noisy_utterance(seconds=0.25) != noisy_utterance(seconds=0.25, seed=1)


def test_utterance_requires_degraded_audio_or_an_error() -> None:
    with pytest.raises(ValueError, match=r"'broken'.*neither degraded audio nor an error"):
        Utterance("broken", None)


def test_utterance_may_carry_only_an_error() -> None:
    utt = Utterance("broken", None, error="cannot decode x.wav")
    assert utt.degraded is None
    assert utt.error == "cannot decode x.wav"
    assert utt.meta == {}


def test_utterance_meta_defaults_are_not_shared() -> None:
    first = Utterance("a", voiced_signal(0.1))
    second = Utterance("b", voiced_signal(0.1))
    assert first.meta is not second.meta
