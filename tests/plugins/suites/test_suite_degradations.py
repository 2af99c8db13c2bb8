"""The pure degradation functions of the synthetic suites."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from gensr_bench_plugins.suites import degradations as dg

RATE = 16000


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def band_energy(x: np.ndarray, low_hz: float, high_hz: float) -> float:
    freqs, psd = signal.welch(x, fs=RATE, nperseg=1024)
    band = (freqs >= low_hz) & (freqs < high_hz)
    return float(np.sum(psd[band]))


def spectral_slope_db_per_octave(x: np.ndarray) -> float:
    freqs, psd = signal.welch(x, fs=RATE, nperseg=4096)
    band = (freqs >= 100) & (freqs <= 4000)
    slope, _ = np.polyfit(np.log2(freqs[band]), 10 * np.log10(psd[band]), 1)
    return float(slope)


@pytest.mark.parametrize(
    ("make", "slope"),
    [(dg.white_noise, 0.0), (dg.pink_noise, -3.0), (dg.brown_noise, -6.0)],
)
def test_colored_noise_has_unit_rms_and_the_right_slope(make, slope: float) -> None:
    noise = make(4 * RATE + 7, RATE, rng())
    assert len(noise) == 4 * RATE + 7
    assert math.isclose(np.sqrt(np.mean(noise**2)), 1.0, rel_tol=1e-9)
    assert spectral_slope_db_per_octave(noise) == pytest.approx(slope, abs=0.6)


def test_noise_is_deterministic_for_a_generator_seed() -> None:
    np.testing.assert_array_equal(
        dg.pink_noise(RATE, RATE, rng(5)), dg.pink_noise(RATE, RATE, rng(5))
    )
    assert not np.array_equal(dg.pink_noise(RATE, RATE, rng(5)), dg.pink_noise(RATE, RATE, rng(6)))


def test_mains_hum_sits_on_the_mains_harmonics() -> None:
    hum = dg.mains_hum(2 * RATE, RATE, rng(), fundamental_hz=60.0, n_harmonics=6)
    spectrum = np.abs(np.fft.rfft(hum))
    freqs = np.fft.rfftfreq(len(hum), 1 / RATE)
    top = freqs[np.argsort(spectrum)[-6:]]
    assert all(math.isclose(f / 60.0, round(f / 60.0), abs_tol=1e-6) for f in top)
    assert math.isclose(np.sqrt(np.mean(hum**2)), 1.0, rel_tol=1e-9)


def test_hvac_noise_is_low_frequency_and_slowly_modulated() -> None:
    noise = dg.hvac_noise(
        8 * RATE, RATE, rng(), cutoff_hz=300, modulation_hz=0.5, modulation_depth=0.5
    )
    assert band_energy(noise, 0, 600) > 20 * band_energy(noise, 600, 8000)
    frames = noise[: 8 * RATE].reshape(32, -1)  # quarter-second frames
    levels = np.sqrt(np.mean(frames**2, axis=1))
    assert levels.max() / levels.min() > 1.8  # 1 +- 0.5 swings by 3x


def test_babble_mixes_talkers_to_unit_rms() -> None:
    talkers = [dg.pink_noise(RATE // 2, RATE, rng(k)) for k in range(3)]
    mixture = dg.babble(talkers, 2 * RATE, rng())
    assert len(mixture) == 2 * RATE
    assert math.isclose(np.sqrt(np.mean(mixture**2)), 1.0, rel_tol=1e-9)
    with pytest.raises(ValueError, match="at least one talker"):
        dg.babble([], RATE, rng())


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0])
def test_mix_at_snr_hits_the_snr(snr_db: float) -> None:
    speech = dg.pink_noise(RATE, RATE, rng(1)) * 0.1
    noise = dg.white_noise(RATE, RATE, rng(2)) * 3.0
    mixture, scaled = dg.mix_at_snr(speech, noise, snr_db)
    np.testing.assert_allclose(mixture - speech, scaled)
    assert dg.measure_snr_db(speech, mixture) == pytest.approx(snr_db, abs=1e-6)
    with pytest.raises(ValueError, match="samples"):
        dg.mix_at_snr(speech, noise[:-1], snr_db)


def test_schroeder_rt60_recovers_an_exact_exponential_decay() -> None:
    t = np.arange(RATE) / RATE
    decay = rng().standard_normal(RATE) * 10 ** (-3 * t / 0.5)  # energy -60 dB at 0.5 s
    assert dg.schroeder_rt60(decay, RATE) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("rt60", [0.1, 0.3, 0.6, 1.0])
@pytest.mark.parametrize("drr_db", [-4.0, 8.0])
def test_synthetic_rir_has_its_rt60_and_drr(rt60: float, drr_db: float) -> None:
    rir = dg.synthetic_rir(rt60, RATE, rng(int(rt60 * 10)), drr_db=drr_db)
    assert rir[0] == 1.0  # direct path first: reverberant speech stays aligned with dry speech
    assert dg.schroeder_rt60(rir, RATE) == pytest.approx(rt60, rel=0.2)
    direct_to_reverberant = 10 * np.log10(1.0 / np.sum(rir[1:] ** 2))
    assert direct_to_reverberant == pytest.approx(drr_db, abs=1e-6)


def test_reverberate_keeps_length_and_smears_energy_in_time() -> None:
    burst = np.zeros(RATE)
    burst[1000:1100] = 1.0
    wet = dg.reverberate(burst, dg.synthetic_rir(0.5, RATE, rng(), drr_db=0.0))
    assert len(wet) == len(burst)
    assert np.sum(wet[2000:] ** 2) > 0.03 * np.sum(wet**2)  # dry burst ended at 1100


@pytest.mark.parametrize("threshold", [0.06, 0.3, 0.9])
def test_clip_caps_the_peak(threshold: float) -> None:
    x = dg.pink_noise(RATE, RATE, rng()) * 0.2
    clipped = dg.clip(x, threshold)
    peak = np.max(np.abs(x))
    assert np.max(np.abs(clipped)) == pytest.approx(threshold * peak)
    quiet = np.abs(x) <= threshold * peak
    np.testing.assert_array_equal(clipped[quiet], x[quiet])
    with pytest.raises(ValueError, match="threshold"):
        dg.clip(x, 1.5)


@pytest.mark.parametrize("filter_type", ["butter", "cheby1", "ellip", "bessel"])
@pytest.mark.parametrize("zero_phase", [True, False])
def test_band_limit_removes_energy_above_the_cutoff(filter_type: str, zero_phase: bool) -> None:
    cutoff = 2000.0
    x = dg.white_noise(4 * RATE, RATE, rng())
    y = dg.band_limit(x, RATE, cutoff, filter_type, order=8, zero_phase=zero_phase)
    assert len(y) == len(x)
    removed_db = 10 * np.log10(band_energy(x, 2 * cutoff, 8000) / band_energy(y, 2 * cutoff, 8000))
    kept_db = 10 * np.log10(band_energy(x, 50, cutoff / 2) / band_energy(y, 50, cutoff / 2))
    assert removed_db > 20.0
    assert abs(kept_db) < 1.5


def test_band_limit_rejects_bad_filters() -> None:
    x = np.zeros(100)
    with pytest.raises(ValueError, match="unknown filter type"):
        dg.band_limit(x, RATE, 2000, "chebyshev")
    with pytest.raises(ValueError, match="cutoff"):
        dg.band_limit(x, RATE, 9000)


def test_degradations_do_not_modify_their_input() -> None:
    x = dg.pink_noise(RATE, RATE, rng())
    before = x.copy()
    dg.clip(x, 0.5)
    dg.band_limit(x, RATE, 3000)
    dg.reverberate(x, dg.synthetic_rir(0.3, RATE, rng()))
    dg.mix_at_snr(x, dg.white_noise(RATE, RATE, rng()), 5.0)
    np.testing.assert_array_equal(x, before)


def test_rms_dbfs() -> None:
    assert dg.rms_dbfs(np.full(100, 0.1)) == pytest.approx(-20.0)
