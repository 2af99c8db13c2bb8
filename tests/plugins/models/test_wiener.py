"""wiener: contract, exact reconstruction, noise tracking, and that it really removes noise."""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import numpy as np
import numpy.typing as npt
import pytest
import speechmos.dnsmos

from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.registry import Registry
from gensr_bench.testing import noisy_utterance, tiny_utterances, voiced_signal
from gensr_bench_plugins.models import reference, wiener
from gensr_bench_plugins.models.reference import Identity
from gensr_bench_plugins.models.wiener import (
    N_FFT,
    Wiener,
    WienerSettings,
    enhance,
    initial_noise_psd,
    istft,
    stft,
    track_noise_psd,
)

RATE = 16000


def si_sdr(estimate: npt.ArrayLike, target: npt.ArrayLike) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019)."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(target, dtype=np.float64)
    projection = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10(np.sum(projection**2) / np.sum((est - projection) ** 2)))


def snr(estimate: npt.ArrayLike, target: npt.ArrayLike) -> float:
    """Plain SNR in dB: target power over the power of the difference."""
    ref = np.asarray(target, dtype=np.float64)
    error = np.asarray(estimate, dtype=np.float64) - ref
    return float(10 * np.log10(np.sum(ref**2) / np.sum(error**2)))


def pink_noise_with_step(n: int, seed: int, step_db: float = 10.0) -> npt.NDArray[np.float64]:
    """1/f noise whose level jumps by ``step_db`` halfway through: colored and non-stationary."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise * np.where(np.arange(n) < n // 2, 1.0, 10 ** (step_db / 20))


def restore_one(utt: Utterance, **options: object) -> Restoration:
    return Wiener(**options).restore([utt], seed=0)[0]


# --------------------------------------------------------------------------- contract


def test_hook_and_registry() -> None:
    assert wiener.gensr_register_models() == [Wiener]
    pm = get_plugin_manager(plugins_dirs=[], disabled=[], entry_points=False)
    pm.register(wiener, name="models.wiener")
    pm.register(reference, name="models.reference")
    models = Registry.from_plugins(pm, "models")
    assert models.get("wiener") is Wiener
    points = {ep.name: ep.value for ep in entry_points(group="gensr_bench")}
    assert points["models.wiener"] == "gensr_bench_plugins.models.wiener"


def test_class_contract() -> None:
    assert Wiener.name == "wiener"
    assert Wiener.paradigm == "dsp"
    assert Wiener.sample_rate == RATE
    assert "Classical denoiser" in Wiener.description()
    config = Wiener(gain_floor_db="-18").config()
    assert config["options"] == {"gain_floor_db": "-18"}
    assert config["settings"]["gain_floor_db"] == -18.0
    assert config["settings"]["gain_rule"] == "logmmse"


@pytest.mark.parametrize("seconds", [0.0001, 0.01, 0.5, 1.2345])
def test_output_has_the_input_length_dtype_and_ids(seconds: float) -> None:
    utt = noisy_utterance("len", seconds=seconds, snr_db=5.0)
    out = restore_one(utt)
    assert utt.degraded is not None
    assert out.utterance_id == "len"
    assert out.model == "wiener"
    assert out.audio.sample_rate == RATE
    assert out.audio.samples.dtype == np.float32
    assert out.audio.samples.shape == utt.degraded.samples.shape
    assert np.isfinite(out.audio.samples).all()


def test_batch_keeps_order_and_matches_single_calls() -> None:
    batch = tiny_utterances(3)
    model = Wiener()
    out = model.restore(batch, seed=1)
    assert [r.utterance_id for r in out] == [u.id for u in batch]
    for restoration, utt in zip(out, batch, strict=True):
        single = model.restore([utt], seed=1)[0]
        np.testing.assert_array_equal(restoration.audio.samples, single.audio.samples)


def test_deterministic_and_seed_independent() -> None:
    utt = noisy_utterance(snr_db=0.0)
    model = Wiener()
    first = model.restore([utt], seed=0)[0].audio.samples
    np.testing.assert_array_equal(first, model.restore([utt], seed=0)[0].audio.samples)
    np.testing.assert_array_equal(first, model.restore([utt], seed=123)[0].audio.samples)


def test_digital_silence_stays_silent() -> None:
    silent = Utterance("silence", Audio(np.zeros(RATE, dtype=np.float32), RATE))
    out = restore_one(silent).audio.samples
    assert np.isfinite(out).all()
    assert np.max(np.abs(out)) == 0.0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN/Inf"),
    ],
)
def test_unusable_input_raises(samples: npt.NDArray[np.float32], match: str) -> None:
    utt = Utterance("bad", Audio(samples, RATE))
    with pytest.raises(AudioValidationError, match=f"'bad'.*{match}"):
        restore_one(utt)


def test_wrong_sample_rate_raises() -> None:
    utt = noisy_utterance("rate", sample_rate=8000)
    with pytest.raises(AudioValidationError, match=r"8000 Hz.*16000 Hz.*[Rr]esample"):
        restore_one(utt)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"gain_flor_db": -10}, "unknown option.*'gain_flor_db'.*did you mean 'gain_floor_db'"),
        ({"gain_floor_db": 3}, "gain_floor_db=3.0 is out of range"),
        ({"alpha_dd": 1.0}, "alpha_dd=1.0 is out of range"),
        ({"alpha_dd": "high"}, "alpha_dd='high' must be a number"),
        ({"overlap": 0.6}, "overlap=0.6 is out of range; expected 0.5 or 0.75"),
        ({"gain_rule": "spectral"}, "gain_rule='spectral'.*wiener, logmmse"),
        ({"xi_min_db": float("nan")}, "must be a finite number"),
    ],
)
def test_bad_options_raise_config_errors(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Wiener(**options)


def test_options_from_strings_are_parsed() -> None:
    settings = WienerSettings.from_options({"alpha_dd": "0.95", "gain_rule": "Wiener"})
    assert settings.alpha_dd == 0.95
    assert settings.gain_rule == "wiener"


# --------------------------------------------------------------------------- DSP pieces


@pytest.mark.parametrize("hop", [N_FFT // 2, N_FFT // 4])
@pytest.mark.parametrize("n", [1, 300, 16000, 16123])
def test_stft_istft_reconstructs_exactly(hop: int, n: int) -> None:
    x = np.random.default_rng(n).standard_normal(n)
    np.testing.assert_allclose(istft(stft(x, N_FFT, hop), N_FFT, hop, n), x, atol=1e-12)


def test_clean_input_passes_nearly_unchanged() -> None:
    clean = voiced_signal(2.0, seed=0)
    out = restore_one(Utterance("clean", clean)).audio.samples
    assert si_sdr(out, clean.samples) > 25.0


def test_noise_tracker_follows_a_10_db_step_within_a_second() -> None:
    hop = N_FFT // 4
    n = 4 * RATE
    rng = np.random.default_rng(0)
    noise = 0.01 * rng.standard_normal(n) * np.where(np.arange(n) < n // 2, 1.0, math.sqrt(10))
    power = np.abs(stft(noise, N_FFT, hop)) ** 2
    estimate = track_noise_psd(power, initial_noise_psd(power), smoothing=0.8**0.5)
    level_db = 10 * np.log10(estimate[:, 1:-1].mean(axis=1))
    before = level_db[(n // 2 - RATE // 2) // hop]  # 0.5 s before the step
    after = level_db[(n // 2 + RATE) // hop]  # 1 s after it
    assert after - before == pytest.approx(10.0, abs=2.0)


# --------------------------------------------------------------------------- it removes noise


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0])
def test_improves_snr_and_si_sdr_on_white_noise(snr_db: float) -> None:
    utt = noisy_utterance("white", seconds=2.0, snr_db=snr_db, seed=3)
    assert utt.degraded is not None and utt.reference is not None
    out = restore_one(utt).audio.samples
    clean, noisy = utt.reference.samples, utt.degraded.samples
    assert snr(out, clean) > snr(noisy, clean) + 3.0
    assert si_sdr(out, clean) > si_sdr(noisy, clean) + 3.0


def test_zero_padding_does_not_stall_the_noise_tracker() -> None:
    utt = noisy_utterance("padded", seconds=2.0, snr_db=5.0, seed=4)
    assert utt.degraded is not None and utt.reference is not None
    pad = np.zeros(RATE // 2)
    plain = enhance(utt.degraded.samples)
    padded = enhance(np.concatenate([pad, utt.degraded.samples, pad]))[len(pad) : -len(pad)]
    clean = utt.reference.samples
    assert snr(padded, clean) == pytest.approx(snr(plain, clean), abs=0.5)


@pytest.mark.parametrize("gain_rule", ["logmmse", "wiener"])
def test_improves_snr_and_si_sdr_on_pink_nonstationary_noise(gain_rule: str) -> None:
    clean = voiced_signal(3.0, seed=1)
    noise = pink_noise_with_step(len(clean.samples), seed=2)
    # 5 dB SNR overall; 10 dB louder noise in the second half than in the first.
    noise *= math.sqrt(np.mean(clean.samples.astype(np.float64) ** 2) / 10**0.5 / np.mean(noise**2))
    noisy = Audio((clean.samples + noise).astype(np.float32), RATE)
    out = restore_one(Utterance("pink", noisy), gain_rule=gain_rule).audio.samples
    assert snr(out, clean.samples) > snr(noisy.samples, clean.samples) + 2.0
    assert si_sdr(out, clean.samples) > si_sdr(noisy.samples, clean.samples) + 2.0


def test_noise_tracking_beats_a_fixed_noise_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = voiced_signal(3.0, seed=1)
    noise = pink_noise_with_step(len(clean.samples), seed=2)
    noise *= math.sqrt(np.mean(clean.samples.astype(np.float64) ** 2) / 10**0.5 / np.mean(noise**2))
    noisy = clean.samples + noise
    tracked = enhance(noisy)

    def fixed(
        power: npt.NDArray[np.float64], initial: npt.NDArray[np.float64], **_: object
    ) -> npt.NDArray[np.float64]:
        return np.broadcast_to(initial, power.shape).copy()

    monkeypatch.setattr(wiener, "track_noise_psd", fixed)
    frozen = enhance(noisy)
    assert snr(tracked, clean.samples) > snr(frozen, clean.samples) + 0.5


def test_beats_identity_on_dnsmos_bak() -> None:
    # DNSMOS repeats a short clip until it is >= 9.01 s and scores every 1-s hop: 2.3 s becomes
    # 9.2 s, one window per clip (a 2-s clip would become 16 s, seven windows).
    batch = [
        noisy_utterance(f"bak-{snr_db:g}", seconds=2.3, snr_db=snr_db, seed=seed)
        for seed, snr_db in enumerate([0.0, 5.0, 10.0])
    ]
    gains = []
    for noisy, enhanced in zip(
        Identity().restore(batch, seed=0), Wiener().restore(batch, seed=0), strict=True
    ):
        # DNSMOS refuses audio beyond full scale; these inputs and outputs stay inside it.
        assert np.max(np.abs(noisy.audio.samples)) <= 1.0
        assert np.max(np.abs(enhanced.audio.samples)) <= 1.0
        bak_noisy = speechmos.dnsmos.run(noisy.audio.samples, RATE)["bak_mos"]
        bak_enhanced = speechmos.dnsmos.run(enhanced.audio.samples, RATE)["bak_mos"]
        gains.append(bak_enhanced - bak_noisy)
    assert min(gains) > 0.5, gains
