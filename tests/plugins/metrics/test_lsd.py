"""LSD: an independent librosa computation, the constant-gain closed form, native rates."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
)
from gensr_bench_plugins.metrics import lsd as lsd_module
from gensr_bench_plugins.metrics.lsd import Lsd, lsd


def librosa_lsd(
    estimate: np.ndarray, reference: np.ndarray, n_fft: int = 2048, hop: int = 512
) -> float:
    """The textbook LSD on librosa's STFT (centred, zero-padded, periodic Hann)."""
    import librosa

    def log_power(x: np.ndarray) -> np.ndarray:
        spec = librosa.stft(
            np.asarray(x, np.float64),
            n_fft=n_fft,
            hop_length=hop,
            window="hann",
            center=True,
            pad_mode="constant",
        )
        return np.log10(np.abs(spec) ** 2 + 1e-10)  # (bins, frames)

    diff = log_power(reference) - log_power(estimate)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def test_hook_registers_the_class() -> None:
    assert lsd_module.gensr_register_metrics() == [Lsd]


def test_conformance() -> None:
    check_metric_conformance(Lsd)


def test_equals_an_independent_librosa_computation() -> None:
    utts = tiny_utterances(3, 1.3)
    scores = Lsd().score_batch(as_restorations(utts), utts)
    for utt, item in zip(utts, scores, strict=True):
        assert utt.reference is not None and utt.degraded is not None
        expected = librosa_lsd(utt.degraded.samples, utt.reference.samples)
        assert item["lsd"] == pytest.approx(expected, rel=1e-9)


def test_chunked_long_audio_and_other_stft_settings_match_librosa() -> None:
    rng = np.random.default_rng(3)
    reference = rng.standard_normal(600_000) * 0.1  # 1172 frames: three chunks
    estimate = reference + rng.standard_normal(600_000) * 0.05
    assert lsd(estimate, reference) == pytest.approx(librosa_lsd(estimate, reference), rel=1e-9)
    short_ref, short_est = reference[:5000], estimate[:5000]
    assert lsd(short_est, short_ref, n_fft=512, hop_length=128) == pytest.approx(
        librosa_lsd(short_est, short_ref, n_fft=512, hop=128), rel=1e-9
    )


@pytest.mark.parametrize("gain", [0.5, 2.0, 10.0, 0.01])
def test_constant_gain_closed_form(gain: float) -> None:
    # log10(g^2 P) - log10(P) = 2 log10 g in every bin, so every frame's RMS is |2 log10 g|:
    # LSD = |20 log10 g| / 10 (eps = 1e-10 is negligible next to white-noise power ~ 800).
    reference = np.random.default_rng(0).standard_normal(16000)
    expected = abs(20 * np.log10(gain)) / 10
    assert lsd(gain * reference, reference) == pytest.approx(expected, abs=1e-6)


def test_identical_is_zero_and_noise_moves_it_up() -> None:
    assert Lsd.direction("lsd") is False
    utts = [noisy_utterance(f"u{i}", seconds=1.0, snr_db=5.0, seed=i) for i in range(2)]
    clean = Lsd().score_batch(as_restorations(utts, "reference"), utts)
    noisy = Lsd().score_batch(as_restorations(utts, "degraded"), utts)
    for good, bad in zip(clean, noisy, strict=True):
        assert good["lsd"] == 0.0
        assert bad["lsd"] > 0.5


def test_narrower_band_scores_worse_at_the_native_rate() -> None:
    from scipy.signal import butter, sosfiltfilt

    assert Lsd.sample_rate is None
    broadband = noisy_utterance(seconds=1.0, sample_rate=48000, snr_db=10.0).degraded
    assert broadband is not None
    utt = Utterance("u", broadband, reference=broadband)

    def low_passed(cutoff_hz: float) -> Restoration:
        sos = butter(8, cutoff_hz, fs=48000, output="sos")
        samples = sosfiltfilt(sos, broadband.samples).astype(np.float32)
        return Restoration("u", Audio(samples, 48000), "t")

    wide, narrow = Lsd().score_batch([low_passed(16000), low_passed(4000)], [utt, utt])
    assert 0.0 < wide["lsd"] < narrow["lsd"]
    wrong_rate = Restoration("u", Audio(broadband.samples, 16000), "t")
    with pytest.raises(AudioValidationError, match="48000 Hz"):
        Lsd().score_batch([wrong_rate], [utt])


def test_bad_options_and_inputs_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"no option nfft.*did you mean n_fft"):
        Lsd(nfft=1024)
    with pytest.raises(ConfigError, match="hop_length"):
        Lsd(n_fft=256, hop_length=512)
    with pytest.raises(AudioValidationError, match="same length"):
        lsd(np.zeros(100), np.zeros(101))
