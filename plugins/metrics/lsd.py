"""Log-spectral distance (LSD), the usual bandwidth-extension measure (lower is better).

With power spectrograms ``P_ref`` and ``P_est`` (``t`` frames, ``f`` frequency bins)::

    LSD = mean_t sqrt( mean_f ( log10(P_ref[t, f] + eps) - log10(P_est[t, f] + eps) )^2 )

as in Kuleshov et al. 2017, NU-Wave and AudioSR (log10 of *power*, no factor 10 or 20, so a
constant gain ``g`` on the restoration gives exactly ``|2 log10 g| = |20 log10 g| / 10`` when
``eps`` is negligible). STFT settings (options, recorded in the run config):

* ``n_fft=2048`` samples, periodic Hann window of the same length, ``hop_length=512``;
* frames centred on ``t * hop_length`` with ``n_fft // 2`` zeros padded on both ends (librosa's
  ``center=True, pad_mode="constant"``), so there are ``1 + len // hop_length`` frames;
* all ``n_fft // 2 + 1`` bins from DC to Nyquist, unnormalised ``|rfft|^2``;
* ``eps=1e-10`` added to the power before the log: far below 16-bit quantisation noise
  (about 2e-7 per bin with this window) so it only matters for stretches of digital silence,
  where it bounds the log instead of giving -inf.

A restoration or reference without sound (digital silence, a constant, an isolated click: see
``require_sound``) is refused: its log spectrum is -inf almost everywhere, so eps alone would
set the value.

The metric scores at the reference's native rate (``sample_rate = None``): the runner resamples
the restoration to the reference, so a band-limited output is judged against the full band.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.records import Utterance

from ._util import PairwiseMetric, check_same_shape

N_FFT = 2048
HOP_LENGTH = 512
EPS = 1e-10
#: Frames transformed at once: bounds memory on long audio, does not change the result.
FRAMES_PER_CHUNK = 512


def _log_power(
    signal: npt.NDArray[np.float64],
    first: int,
    count: int,
    window: npt.NDArray[np.float64],
    hop_length: int,
    eps: float,
) -> npt.NDArray[np.float64]:
    """log10(|rfft|^2 + eps) of frames ``first .. first+count-1`` of the centred STFT."""
    n_fft = len(window)
    # Frame k covers signal[k * hop - n_fft // 2 : ... + n_fft], zeros outside the signal.
    start = first * hop_length - n_fft // 2
    stop = start + (count - 1) * hop_length + n_fft
    piece = signal[max(start, 0) : max(min(stop, signal.size), 0)]
    piece = np.pad(piece, (max(-start, 0), max(stop - signal.size, 0)))
    frames = np.lib.stride_tricks.sliding_window_view(piece, n_fft)[::hop_length]
    return np.log10(np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2 + eps)


def lsd(
    estimate: npt.ArrayLike,
    reference: npt.ArrayLike,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    eps: float = EPS,
) -> float:
    """Log-spectral distance between ``estimate`` and ``reference`` (same rate and length)."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    check_same_shape(est, ref, "LSD")
    padded_length = est.size + 2 * (n_fft // 2)
    if padded_length < n_fft:
        raise AudioValidationError(
            f"LSD needs at least {n_fft - 2 * (n_fft // 2)} samples for one STFT frame "
            f"(n_fft={n_fft}), got {est.size}"
        )
    n_frames = 1 + (padded_length - n_fft) // hop_length
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    per_frame = np.empty(n_frames)
    for first in range(0, n_frames, FRAMES_PER_CHUNK):
        count = min(FRAMES_PER_CHUNK, n_frames - first)
        diff = _log_power(ref, first, count, window, hop_length, eps) - _log_power(
            est, first, count, window, hop_length, eps
        )
        per_frame[first : first + count] = np.sqrt(np.mean(diff**2, axis=-1))
    return float(np.mean(per_frame))


class Lsd(PairwiseMetric):
    """Log-spectral distance of log10 power spectra at the reference's rate (lower is better)."""

    name = "lsd"
    version = "1"
    higher_is_better = False
    sample_rate = None
    outputs = ("lsd",)
    min_duration = 0.1
    #: The log power spectrum of silence is -inf, and so is that of a constant outside DC and
    #: that of a click outside its frame: eps, not the audio, would set the value.
    needs_sound = True
    accepted_options = ("n_fft", "hop_length", "eps")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.n_fft = int(options.get("n_fft", N_FFT))
        self.hop_length = int(options.get("hop_length", HOP_LENGTH))
        self.eps = float(options.get("eps", EPS))
        if self.n_fft < 2 or not 0 < self.hop_length <= self.n_fft or not self.eps > 0:
            raise ConfigError(
                f"lsd needs n_fft >= 2, 0 < hop_length <= n_fft and eps > 0; got "
                f"n_fft={self.n_fft}, hop_length={self.hop_length}, eps={self.eps}"
            )

    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        return {"lsd": lsd(estimate, reference, self.n_fft, self.hop_length, self.eps)}


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Lsd]
