"""Slaney mel scale and its triangular filterbank (librosa's ``htk=False, norm="slaney"``).

Used by the NISQA metric (its reference front end) and the ``log-mel`` feature.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["hz_to_slaney_mel", "mel_filterbank", "slaney_mel_to_hz"]


def hz_to_slaney_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (Auditory Toolbox): linear to 1 kHz, logarithmic above."""
    f = np.asarray(hz, dtype=np.float64)
    linear = f * 3.0 / 200.0
    log_step = math.log(6.4) / 27.0
    above = 15.0 + np.log(np.maximum(f, 1000.0) / 1000.0) / log_step
    return np.where(f >= 1000.0, above, linear)


def slaney_mel_to_hz(mel: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Inverse of ``hz_to_slaney_mel``."""
    m = np.asarray(mel, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    linear = m * 200.0 / 3.0
    above = 1000.0 * np.exp(log_step * (np.maximum(m, 15.0) - 15.0))
    return np.where(m >= 15.0, above, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> npt.NDArray[np.float64]:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, area-normalised.

    Filter ``m`` rises from edge ``m`` to ``m + 1`` and falls to ``m + 2`` of ``n_mels + 2``
    edges equally spaced in mel between ``fmin`` and ``fmax``, scaled by ``2 / bandwidth``
    (librosa's ``norm="slaney"``). Filters beyond the Nyquist frequency are zero.
    """
    bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = slaney_mel_to_hz(
        np.linspace(hz_to_slaney_mel(fmin), hz_to_slaney_mel(fmax), n_mels + 2)
    )
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return triangles * (2.0 / (upper - lower))
