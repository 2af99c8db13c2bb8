"""SI-SDR: closed forms, scale invariance, zero-mean option, unbounded cases, conformance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError, ConfigError, MetricError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
    voiced_signal,
)
from gensr_bench_plugins.metrics import si_sdr as si_sdr_module
from gensr_bench_plugins.metrics.si_sdr import SiSdr, si_sdr


def _orthogonal_error(reference: np.ndarray, energy: float, seed: int) -> np.ndarray:
    """A random vector orthogonal to ``reference`` with the given energy (float64)."""
    error = np.random.default_rng(seed).standard_normal(reference.shape)
    error -= (error @ reference) / (reference @ reference) * reference
    return error * np.sqrt(energy / (error @ error))


def test_hook_registers_the_class() -> None:
    assert si_sdr_module.gensr_register_metrics() == [SiSdr]


def test_conformance() -> None:
    check_metric_conformance(SiSdr)


@pytest.mark.parametrize("target_db", [-10.0, 0.0, 7.5, 30.0])
@pytest.mark.parametrize("gain", [1.0, 0.3, -2.0])
def test_closed_form_with_orthogonal_error(target_db: float, gain: float) -> None:
    # est = g * ref + e with e orthogonal to ref: the projection recovers g * ref exactly, so
    # SI-SDR = 10 log10(g^2 ||ref||^2 / ||e||^2); choosing ||e||^2 fixes it to target_db.
    clean = noisy_utterance(seconds=1.0).reference
    assert clean is not None
    reference = clean.samples.astype(np.float64)
    energy = gain**2 * (reference @ reference) / 10 ** (target_db / 10)
    estimate = gain * reference + _orthogonal_error(reference, energy, seed=1)
    # eps=0: the textbook definition, exact to rounding.
    assert si_sdr(estimate, reference, eps=0.0) == pytest.approx(target_db, abs=1e-9)


def test_scale_invariance() -> None:
    utt = noisy_utterance(seconds=1.0, snr_db=3.0)
    assert utt.reference is not None and utt.degraded is not None
    ref = utt.reference.samples.astype(np.float64)  # float64: scaling then rounds nothing away
    deg = utt.degraded.samples.astype(np.float64)
    base = si_sdr(deg, ref, eps=0.0)
    for scale in (0.01, 0.5, 7.0, -3.0):
        assert si_sdr(deg * scale, ref, eps=0.0) == pytest.approx(base, abs=1e-9)
        assert si_sdr(deg, ref * scale, eps=0.0) == pytest.approx(base, abs=1e-9)


def test_white_noise_at_known_snr_scores_close_to_it() -> None:
    for snr in (0.0, 10.0, 20.0):
        utt = noisy_utterance(seconds=2.0, snr_db=snr, seed=4)
        assert utt.reference is not None and utt.degraded is not None
        assert si_sdr(utt.degraded.samples, utt.reference.samples) == pytest.approx(snr, abs=0.2)


def test_zero_mean_option_removes_offsets() -> None:
    utt = noisy_utterance(seconds=1.0, snr_db=5.0)
    assert utt.reference is not None and utt.degraded is not None
    ref = utt.reference.samples.astype(np.float64)
    deg = utt.degraded.samples.astype(np.float64)
    centred = si_sdr(deg - deg.mean(), ref - ref.mean())
    assert si_sdr(deg + 0.3, ref, zero_mean=True) == pytest.approx(centred, abs=1e-9)
    assert si_sdr(deg + 0.3, ref) < centred - 1.0  # without it an offset is distortion
    restorations = [Restoration(utt.id, Audio((deg + 0.3).astype(np.float32), 16000), "t")]
    scored = SiSdr(zero_mean=True).score_batch(restorations, [utt])[0]["si_sdr"]
    assert scored == pytest.approx(centred, abs=1e-5)


def test_less_noise_scores_higher() -> None:
    assert SiSdr.direction("si_sdr") is True
    quiet = noisy_utterance("u", seconds=1.0, snr_db=20.0, seed=2)
    loud = noisy_utterance("u", seconds=1.0, snr_db=0.0, seed=2)  # same clean reference
    better = SiSdr().score_batch(as_restorations([quiet]), [loud])[0]["si_sdr"]
    worse = SiSdr().score_batch(as_restorations([loud]), [loud])[0]["si_sdr"]
    assert better > worse + 15.0


def test_degenerate_cases_follow_the_epsilon_convention() -> None:
    clean = noisy_utterance(seconds=0.5).reference
    assert clean is not None
    ref = clean.samples.astype(np.float64)
    eps = float(np.finfo(np.float32).eps)
    energy = float(np.dot(ref, ref))
    # An exact (scaled) copy: the residual is eps-level, the value large and finite.
    assert si_sdr(ref, ref) == pytest.approx(10 * np.log10((energy + eps) / eps), abs=1e-6)
    assert si_sdr(ref * 0.5, ref) > 80.0
    # A silent output is -inf: an error, not the 0 dB the eps convention would give.
    with pytest.raises(MetricError, match="silent"):
        si_sdr(np.zeros_like(ref), ref)
    with pytest.raises(AudioValidationError, match="silent"):
        si_sdr(ref, np.zeros_like(ref))
    with pytest.raises(AudioValidationError, match="same length"):
        si_sdr(ref[:-1], ref)


def test_scores_at_the_reference_rate() -> None:
    assert SiSdr.sample_rate is None
    utt = noisy_utterance(seconds=1.0, sample_rate=44100, snr_db=10.0)
    value = SiSdr().score_batch(as_restorations([utt]), [utt])[0]["si_sdr"]
    assert value == pytest.approx(10.0, abs=0.5)
    assert utt.degraded is not None
    wrong_rate = Restoration(utt.id, Audio(utt.degraded.samples, 16000), "t")
    with pytest.raises(AudioValidationError, match="44100 Hz"):
        SiSdr().score_batch([wrong_rate], [utt])


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="zero_mean"):
        SiSdr(zero_mena=True)


def test_reference_is_required() -> None:
    utt = noisy_utterance(seconds=0.5)
    no_ref = Utterance(utt.id, utt.degraded)
    with pytest.raises(AudioValidationError, match="needs a clean reference"):
        SiSdr().score_batch(as_restorations([no_ref]), [no_ref])


@pytest.mark.parametrize("zero_mean", [False, True])
def test_matches_torchmetrics(zero_mean: bool) -> None:
    import torch
    from torchmetrics.functional import audio as functional

    utts = tiny_utterances(4, seconds=1.0)
    for utt in utts:
        assert utt.reference is not None and utt.degraded is not None
        est, ref = utt.degraded.samples, utt.reference.samples
        expected = functional.scale_invariant_signal_distortion_ratio(
            torch.from_numpy(est.astype(np.float64)),
            torch.from_numpy(ref.astype(np.float64)),
            zero_mean=zero_mean,
        ).item()
        ours = si_sdr(est, ref, zero_mean=zero_mean, eps=float(np.finfo(np.float64).eps))
        assert ours == pytest.approx(expected, abs=1e-9)
    exact = si_sdr(ref, ref)
    expected_exact = functional.scale_invariant_signal_distortion_ratio(
        torch.from_numpy(ref.copy()), torch.from_numpy(ref.copy())
    ).item()
    assert exact == pytest.approx(expected_exact, abs=0.5)


def test_a_constant_is_defined_but_refused_with_zero_mean() -> None:
    ref = voiced_signal(1.0).samples
    constant = np.full_like(ref, 0.5)
    assert math.isfinite(si_sdr(constant, ref)) and si_sdr(constant, ref) < -20
    with pytest.raises(MetricError, match=r"silent or constant \(all-zero once its mean"):
        si_sdr(constant, ref, zero_mean=True)
    with pytest.raises(AudioValidationError, match=r"constant .* reference"):
        si_sdr(ref, constant, zero_mean=True)
