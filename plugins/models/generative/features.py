"""Spectral features shared by the generative models, and waveform synthesis without a vocoder.

Every model works on frames of the log-magnitude STFT (``N_FFT`` 512, hop 128, Hann window:
257 bins, 125 frames a second at 16 kHz), normalised per bin with statistics fitted on clean
training speech. The input is first scaled to a fixed RMS (``TARGET_DBFS``), and the output is
scaled back, so the models never have to learn the level of a recording.

No pretrained vocoder exists offline, so waveforms are synthesised from a predicted magnitude
with the *degraded input's phase* as the start of a few Griffin-Lim iterations: measured on
espeak speech, clean magnitude + degraded phase + 10 iterations keeps DNSMOS OVRL and ESTOI
at the clean level (issue 5 of the tracker).

Restoration computes every step in float64 (``SAMPLING_DTYPE``): the float32 kernels of MKL,
oneDNN and torch round differently on different x86 CPUs (AVX2 or AVX-512 code paths), and
Griffin-Lim amplifies those differences a hundredfold, so float32 outputs of one checkpoint,
input and seed differed by ~1e-5 between CPUs (issue 19; benchmarks/reproducibility). Training
keeps float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 128
N_BINS = N_FFT // 2 + 1
FLOOR = 1e-5
TARGET_DBFS = -25.0
GL_ITERATIONS = 10
#: Frames of the Hann-weighted moving average over time applied to generated log-magnitude
#: frames before synthesis (1: none). Frame-wise sampling leaves frame-to-frame jitter that
#: overlap-add renders as musical noise; see :func:`smooth_time`.
SMOOTH_FRAMES = 9
#: The precision of restoration (features, network, synthesis); see the module docstring.
SAMPLING_DTYPE = torch.float64


def _window(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.hann_window(N_FFT, dtype=dtype)


def stft(wave: torch.Tensor) -> torch.Tensor:
    """Complex STFT ``[..., frames, bins]`` of ``wave [..., samples]`` (in its precision)."""
    window = _window(wave.dtype)
    spec = torch.stft(
        wave, N_FFT, HOP, window=window, center=True, return_complex=True, pad_mode="reflect"
    )
    return spec.transpose(-1, -2)


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`."""
    window = _window(spec.real.dtype)
    return torch.istft(spec.transpose(-1, -2), N_FFT, HOP, window=window, length=length)


def log_magnitude(spec: torch.Tensor) -> torch.Tensor:
    return torch.log(spec.abs().clamp_min(FLOOR))


def n_frames(n_samples: int) -> int:
    return n_samples // HOP + 1


@dataclass
class Prepared:
    """A waveform scaled to ``TARGET_DBFS`` with its STFT; ``gain`` undoes the scaling."""

    wave: torch.Tensor  # [samples]
    spec: torch.Tensor  # [frames, bins] complex
    gain: float

    @property
    def logmag(self) -> torch.Tensor:
        return log_magnitude(self.spec)


def level_gain(samples: npt.NDArray[np.floating], target_dbfs: float = TARGET_DBFS) -> float:
    """The gain that brings ``samples`` to ``target_dbfs`` RMS (1.0 for digital silence)."""
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0
    if rms < 1e-7:
        return 1.0
    return 10 ** (target_dbfs / 20) / rms


def prepare(samples: npt.NDArray[np.floating], dtype: torch.dtype = torch.float32) -> Prepared:
    """Scale ``samples`` (16 kHz mono) to the working level and take its STFT in ``dtype``
    (float32 for training, ``SAMPLING_DTYPE`` for restoration)."""
    gain = level_gain(samples)
    if dtype == torch.float32:
        wave = torch.from_numpy(np.asarray(samples, dtype=np.float32) * gain)
    else:
        wave = torch.from_numpy(np.asarray(samples, dtype=np.float64) * gain).to(dtype)
    return Prepared(wave, stft(wave), gain)


def griffin_lim(
    magnitude: torch.Tensor, phase_from: torch.Tensor, length: int, iterations: int = GL_ITERATIONS
) -> torch.Tensor:
    """A waveform whose STFT magnitude approaches ``magnitude`` ``[frames, bins]``.

    The iterations start from the phase of the complex STFT ``phase_from`` (the degraded input).
    """
    phase = torch.exp(1j * torch.angle(phase_from))
    wave = istft(magnitude * phase, length)
    for _ in range(iterations):
        rebuilt = stft(wave)
        phase = rebuilt / rebuilt.abs().clamp_min(1e-8)
        wave = istft(magnitude * phase, length)
    return wave


def smooth_time(logmag: torch.Tensor, width: int) -> torch.Tensor:
    """Hann-weighted moving average of ``logmag [frames, bins]`` over ``width`` frames.

    ``width`` is odd (1 returns the input); the edges repeat the first and last frame, so the
    output has as many frames as the input. Measured on 12 ``synth-gsr`` utterances (issue 5),
    9 frames (72 ms, Hann-weighted) raised DNSMOS OVRL of the sampled outputs of ``fm-small``
    from 1.35 to 2.09 and of ``ar-small`` from 1.72 to 2.08, while it costs clean magnitudes
    little.
    """
    if width < 1 or width % 2 == 0:
        raise ValueError(f"smoothing width must be an odd number of frames >= 1, got {width}")
    if width == 1 or logmag.shape[0] == 0:
        return logmag
    weights = torch.hann_window(width + 2, periodic=False, dtype=logmag.dtype)[1:-1]
    weights = (weights / weights.sum()).view(1, 1, -1)
    by_bin = logmag.T[:, None]  # [bins, 1, frames]
    padded = torch.nn.functional.pad(by_bin, (width // 2, width // 2), mode="replicate")
    return torch.nn.functional.conv1d(padded, weights)[:, 0].T


def synthesise(
    logmag: torch.Tensor,
    prepared: Prepared,
    iterations: int = GL_ITERATIONS,
    smooth: int = 1,
) -> npt.NDArray[np.float32]:
    """Waveform (float32) at the input's original level from predicted log-magnitude frames.

    ``smooth`` frames of :func:`smooth_time` are applied first (1: none). Synthesis runs in
    the precision of ``prepared`` and rounds to float32 only at the end.
    """
    frames = min(logmag.shape[0], prepared.spec.shape[0])
    dtype = prepared.wave.dtype
    magnitude = torch.exp(smooth_time(logmag[:frames].to(dtype), smooth))
    wave = griffin_lim(magnitude, prepared.spec[:frames], len(prepared.wave), iterations)
    if dtype == torch.float32:
        out = wave.numpy().astype(np.float32) / prepared.gain
    else:
        out = wave.numpy() / prepared.gain
    return np.asarray(out, dtype=np.float32)
