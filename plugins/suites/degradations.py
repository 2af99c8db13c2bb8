"""Degradations for the synthetic suites: pure functions, numpy in, numpy out.

Every function that draws random numbers takes a ``numpy.random.Generator``; none keeps state.
Parameters are explicit (drawing them is the suites' job, see ``synth.py``), so a degradation
can be replayed exactly from an utterance's ``meta``. Outputs are float64 arrays.

Contents: noise sources (white, pink, brown, mains hum, HVAC-like rumble, babble), mixing at a
given SNR, a synthetic room impulse response with a target RT60 and its Schroeder estimate,
reverberation, clipping, band limitation and level helpers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt


def _scipy_signal() -> Any:
    """scipy.signal, imported on first use: it takes seconds to import, and listing or
    reading cached suites must not pay for it."""
    from scipy import signal

    return signal


def _scipy_fft() -> Any:
    from scipy import fft

    return fft


Signal = npt.NDArray[np.float64]

NOISE_TYPES = ("white", "pink", "brown", "babble", "hum", "hvac")
FILTER_TYPES = ("butter", "cheby1", "ellip", "bessel")
FilterType = Literal["butter", "cheby1", "ellip", "bessel"]

#: Passband ripple (Chebyshev-I, elliptic) and stopband attenuation (elliptic) of band limiters.
PASSBAND_RIPPLE_DB = 1.0
STOPBAND_ATTENUATION_DB = 60.0

_EPS = 1e-12


def _as_signal(x: npt.ArrayLike) -> Signal:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a one-dimensional signal, got shape {array.shape}")
    return array


def _unit_rms(x: Signal) -> Signal:
    x = x - x.mean()
    rms = math.sqrt(float(np.mean(x**2)))
    if rms < _EPS:
        raise ValueError("cannot normalise a silent signal")
    return x / rms


def power(x: npt.ArrayLike) -> float:
    """Mean square of a signal."""
    return float(np.mean(_as_signal(x) ** 2))


def rms_dbfs(x: npt.ArrayLike) -> float:
    """RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    return 10.0 * math.log10(power(x) + _EPS)


# ----------------------------------------------------------------------------- noise sources


def colored_noise(
    n: int,
    sample_rate: int,
    exponent: float,
    rng: np.random.Generator,
    low_cut_hz: float = 20.0,
) -> Signal:
    """Gaussian noise with a ``1 / f**exponent`` power spectrum, unit RMS.

    ``exponent`` 0 is white, 1 pink, 2 brown (red). Bins below ``low_cut_hz`` are zeroed so
    brown noise is a rumble rather than a drifting DC offset.
    """
    size = _scipy_fft().next_fast_len(n, real=True)  # shaped at a fast FFT length, then cropped
    spectrum = rng.standard_normal(size // 2 + 1) + 1j * rng.standard_normal(size // 2 + 1)
    freqs = _scipy_fft().rfftfreq(size, 1.0 / sample_rate)
    shape = np.zeros_like(freqs)
    audible = freqs >= max(low_cut_hz, sample_rate / size)
    shape[audible] = freqs[audible] ** (-exponent / 2.0)
    return _unit_rms(_scipy_fft().irfft(spectrum * shape, size)[:n])


def white_noise(n: int, sample_rate: int, rng: np.random.Generator) -> Signal:
    """White Gaussian noise, unit RMS."""
    return colored_noise(n, sample_rate, 0.0, rng, low_cut_hz=0.0)


def pink_noise(n: int, sample_rate: int, rng: np.random.Generator) -> Signal:
    """Pink (1/f) noise, unit RMS."""
    return colored_noise(n, sample_rate, 1.0, rng)


def brown_noise(n: int, sample_rate: int, rng: np.random.Generator) -> Signal:
    """Brown (1/f^2) noise above 20 Hz, unit RMS."""
    return colored_noise(n, sample_rate, 2.0, rng)


def mains_hum(
    n: int,
    sample_rate: int,
    rng: np.random.Generator,
    fundamental_hz: float = 50.0,
    n_harmonics: int = 8,
    floor_db: float = -30.0,
) -> Signal:
    """Mains hum: a fundamental with decaying harmonics, random phases and amplitudes.

    Odd harmonics are emphasised (the buzz of a saturated transformer); a white floor
    ``floor_db`` below the hum keeps it from being purely tonal. Unit RMS.
    """
    t = np.arange(n) / sample_rate
    hum = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        freq = k * fundamental_hz
        if freq >= sample_rate / 2:
            break
        amplitude = rng.uniform(0.4, 1.0) / k ** rng.uniform(0.5, 1.2)
        if k % 2 == 1:
            amplitude *= 1.5
        hum += amplitude * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    hum = _unit_rms(hum)
    floor = white_noise(n, sample_rate, rng) * 10 ** (floor_db / 20)
    return _unit_rms(hum + floor)


def hvac_noise(
    n: int,
    sample_rate: int,
    rng: np.random.Generator,
    cutoff_hz: float = 400.0,
    modulation_hz: float = 0.2,
    modulation_depth: float = 0.3,
) -> Signal:
    """Air-conditioning-like noise: low-pass filtered pink noise with a slow level modulation.

    Pink noise through a 4th-order Butterworth low-pass at ``cutoff_hz``, plus a weak broadband
    hiss 25 dB down, multiplied by ``1 + depth * sin(2 pi f t + phase)``. Unit RMS.
    """
    rumble = pink_noise(n, sample_rate, rng)
    sos = _scipy_signal().butter(4, cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
    rumble = _unit_rms(_scipy_signal().sosfilt(sos, rumble))
    hiss = pink_noise(n, sample_rate, rng) * 10 ** (-25 / 20)
    t = np.arange(n) / sample_rate
    phase = rng.uniform(0, 2 * math.pi)
    envelope = 1.0 + modulation_depth * np.sin(2 * math.pi * modulation_hz * t + phase)
    return _unit_rms((rumble + hiss) * envelope)


def babble(talkers: Sequence[npt.ArrayLike], n: int, rng: np.random.Generator) -> Signal:
    """Babble: the sum of several talkers' speech, each at a random offset and level (+-3 dB).

    Each talker is tiled to at least ``n`` samples, rotated by a random offset, cropped to
    ``n`` and normalised before its gain is applied. Unit RMS.
    """
    if not talkers:
        raise ValueError("babble needs at least one talker")
    mixture = np.zeros(n)
    for talker in talkers:
        speech = _as_signal(talker)
        if power(speech) < _EPS:
            raise ValueError("a babble talker is silent")
        repeats = -(-n // len(speech))
        track = np.roll(np.tile(speech, repeats), -int(rng.integers(len(speech))))[:n]
        gain_db = rng.uniform(-3.0, 3.0)
        mixture += _unit_rms(track) * 10 ** (gain_db / 20)
    return _unit_rms(mixture)


# ----------------------------------------------------------------------------- additive noise


def mix_at_snr(speech: npt.ArrayLike, noise: npt.ArrayLike, snr_db: float) -> tuple[Signal, Signal]:
    """``speech + g * noise`` with ``g`` set so the speech-to-noise power ratio is ``snr_db``.

    Powers are taken over the whole signals (pauses included), as in the DNS challenge
    synthesis scripts. Returns the mixture and the scaled noise.
    """
    clean = _as_signal(speech)
    interference = _as_signal(noise)
    if len(clean) != len(interference):
        raise ValueError(f"speech has {len(clean)} samples but noise has {len(interference)}")
    noise_power = power(interference)
    if noise_power < _EPS:
        raise ValueError("cannot mix silent noise at a finite SNR")
    gain = math.sqrt(power(clean) / (noise_power * 10 ** (snr_db / 10)))
    scaled = interference * gain
    return clean + scaled, scaled


def measure_snr_db(reference: npt.ArrayLike, degraded: npt.ArrayLike) -> float:
    """SNR of ``degraded`` against ``reference``: reference power over residual power, in dB."""
    ref = _as_signal(reference)
    residual = _as_signal(degraded) - ref
    return 10 * math.log10(power(ref) / (power(residual) + _EPS))


# ----------------------------------------------------------------------------- reverberation


def synthetic_rir(
    rt60: float,
    sample_rate: int,
    rng: np.random.Generator,
    drr_db: float = 3.0,
    absorption_cutoff_hz: float = 5000.0,
) -> Signal:
    """A room impulse response with reverberation time ``rt60`` (seconds), direct path at 0.

    Construction (a stochastic model, cheaper than the image method and exact in its decay):

    - a unit direct path at sample 0, so reverberant speech stays aligned with the dry speech;
    - early reflections: 6-12 signed taps between 2 ms and min(40 ms, 0.4 rt60), under the
      decay envelope;
    - a late tail of Gaussian noise whose energy falls by 60 dB every ``rt60`` seconds, faded
      in over the first 2-6 % of ``rt60`` and low-pass filtered at ``absorption_cutoff_hz``
      (walls absorb high frequencies).

    Early and late parts are scaled together so the direct-to-reverberant energy ratio is
    ``drr_db``. The response is long enough for a 72 dB decay. Its Schroeder RT60 estimate
    (``schroeder_rt60``) lands within about 15 % of ``rt60`` (the spread of a noise tail).
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    n = math.ceil(1.2 * rt60 * sample_rate) + 1
    t = np.arange(n) / sample_rate
    envelope = 10.0 ** (-3.0 * t / rt60)  # amplitude; energy falls 60 dB per rt60
    tail = rng.standard_normal(n) * envelope
    onset = rng.uniform(0.02, 0.06) * rt60  # build-up of the diffuse field
    tail *= np.clip(t / onset, 0.0, 1.0) ** 2
    sos = _scipy_signal().butter(
        2, absorption_cutoff_hz, btype="lowpass", fs=sample_rate, output="sos"
    )
    tail = _scipy_signal().sosfilt(sos, tail)
    early = np.zeros(n)
    n_early = int(rng.integers(6, 13))
    delays = rng.uniform(0.002, min(0.040, 0.4 * rt60), size=n_early)  # small rooms: sooner
    for delay in delays:
        index = min(int(delay * sample_rate), n - 1)
        early[index] += rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.9) * envelope[index]
    reverberant = early + tail
    reverberant[0] = 0.0
    energy = float(np.sum(reverberant**2))
    gain = math.sqrt(1.0 / (energy * 10 ** (drr_db / 10)))
    rir = reverberant * gain
    rir[0] = 1.0
    return rir


def schroeder_rt60(
    rir: npt.ArrayLike,
    sample_rate: int,
    decay_range_db: tuple[float, float] = (-5.0, -25.0),
) -> float:
    """RT60 estimated by Schroeder backward integration of ``rir``.

    Fits a line to the energy decay curve between the two levels of ``decay_range_db``
    (default -5 to -25 dB, i.e. T20) and extrapolates it to a 60 dB decay.
    """
    h = _as_signal(rir)
    edc = np.cumsum((h**2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + _EPS)
    upper, lower = decay_range_db
    in_range = np.nonzero((edc_db <= upper) & (edc_db >= lower))[0]
    if len(in_range) < 2:
        raise ValueError(f"the impulse response does not decay from {upper} to {lower} dB")
    slope, _intercept = np.polyfit(in_range / sample_rate, edc_db[in_range], 1)
    if slope >= 0:
        raise ValueError("the energy decay curve does not decay")
    return float(-60.0 / slope)


def reverberate(speech: npt.ArrayLike, rir: npt.ArrayLike) -> Signal:
    """``speech`` convolved with ``rir``, cut to the length of ``speech``."""
    dry = _as_signal(speech)
    return _scipy_signal().fftconvolve(dry, _as_signal(rir), mode="full")[: len(dry)]


# ----------------------------------------------------------------------------- clipping, bandwidth


def clip(x: npt.ArrayLike, threshold: float) -> Signal:
    """Hard clipping at ``threshold`` times the signal's peak (0 < threshold <= 1)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"clip threshold must be in (0, 1] of the peak, got {threshold}")
    array = _as_signal(x)
    limit = threshold * float(np.max(np.abs(array))) if len(array) else 0.0
    return np.clip(array, -limit, limit)


def lowpass_sos(
    cutoff_hz: float, sample_rate: int, filter_type: str, order: int
) -> npt.NDArray[np.float64]:
    """Second-order sections of a low-pass IIR: Butterworth, Chebyshev-I, elliptic or Bessel.

    ``cutoff_hz`` is the -3 dB point for Butterworth and Bessel (magnitude-normalised) and the
    passband edge for Chebyshev-I and elliptic (``PASSBAND_RIPPLE_DB`` ripple,
    ``STOPBAND_ATTENUATION_DB`` stopband).
    """
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie between 0 and {sample_rate / 2} Hz")
    if order < 1:
        raise ValueError(f"filter order must be at least 1, got {order}")
    if filter_type == "butter":
        sos = _scipy_signal().butter(order, cutoff_hz, fs=sample_rate, output="sos")
    elif filter_type == "cheby1":
        sos = _scipy_signal().cheby1(
            order, PASSBAND_RIPPLE_DB, cutoff_hz, fs=sample_rate, output="sos"
        )
    elif filter_type == "ellip":
        sos = _scipy_signal().ellip(
            order,
            PASSBAND_RIPPLE_DB,
            STOPBAND_ATTENUATION_DB,
            cutoff_hz,
            fs=sample_rate,
            output="sos",
        )
    elif filter_type == "bessel":
        sos = _scipy_signal().bessel(order, cutoff_hz, norm="mag", fs=sample_rate, output="sos")
    else:
        raise ValueError(f"unknown filter type {filter_type!r}; expected one of {FILTER_TYPES}")
    return np.asarray(sos, dtype=np.float64)


def band_limit(
    x: npt.ArrayLike,
    sample_rate: int,
    cutoff_hz: float,
    filter_type: str = "butter",
    order: int = 8,
    zero_phase: bool = True,
) -> Signal:
    """Low-pass ``x`` at ``cutoff_hz`` (see :func:`lowpass_sos`).

    ``zero_phase`` filters forwards and backwards (``sosfiltfilt``: no delay, squared
    magnitude response); otherwise the filter is causal (``sosfilt``), as a real device is.
    """
    sos = lowpass_sos(cutoff_hz, sample_rate, filter_type, order)
    array = _as_signal(x)
    if zero_phase:
        return np.asarray(_scipy_signal().sosfiltfilt(sos, array), dtype=np.float64)
    return np.asarray(_scipy_signal().sosfilt(sos, array), dtype=np.float64)
