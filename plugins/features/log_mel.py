"""``log-mel``: the time-averaged log-mel spectrum of a signal (no weights, fast).

Frames of 512 samples every 10 ms at 16 kHz, each with a 25-ms periodic Hann window centred in
it (librosa's ``stft(center=False)`` framing; a signal shorter than a frame is zero-padded);
``n_mels`` triangular filters on the Slaney mel scale from 0 to 8 kHz (NISQA's filterbank);
power in dB with a floor of -100 dB. The vector is the mean over frames (with
``with_std=true``, the standard deviation over frames appended). Differences of these vectors
between a preferred and a rejected output show which bands the preference raises or lowers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gensr_bench import FeatureExtractor, hookimpl
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench_plugins.common.mel import mel_filterbank

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
FLOOR_DB = -100.0


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"log-mel option {name} must be true or false, got {value!r}")


def log_mel_frames(samples: np.ndarray, n_mels: int) -> np.ndarray:
    """(frames, n_mels) mel power in dB of 16-kHz ``samples``; at least one frame."""
    signal = np.asarray(samples, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise AudioValidationError(
            f"log-mel: expected mono samples, got an array of shape {signal.shape}"
        )
    if signal.size < N_FFT:
        signal = np.pad(signal, (0, N_FFT - signal.size))
    # Frames of N_FFT samples every HOP, the periodic Hann window of WINDOW samples centred in
    # each (librosa's stft(center=False, win_length=WINDOW) convention).
    frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP]
    window = np.zeros(N_FFT)
    offset = (N_FFT - WINDOW) // 2
    window[offset : offset + WINDOW] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = power @ mel_filterbank(SAMPLE_RATE, N_FFT, n_mels, 0.0, SAMPLE_RATE / 2).T
    return np.maximum(10.0 * np.log10(np.maximum(mel, 1e-30)), FLOOR_DB)


class LogMel(FeatureExtractor):
    """Time-averaged log-mel spectrum (dB), optionally with its standard deviation."""

    name = "log-mel"
    version = "1"
    sample_rate = SAMPLE_RATE
    accepted_options = ("n_mels", "with_std")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        try:
            self.n_mels = int(options.get("n_mels", 64))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"log-mel option n_mels must be an integer: {exc}") from exc
        if not 1 <= self.n_mels <= 256:
            raise ConfigError(f"log-mel option n_mels must be 1-256, got {self.n_mels}")
        self.with_std = _flag(options.get("with_std", False), "with_std")

    def extract(self, samples: np.ndarray) -> np.ndarray:
        db = log_mel_frames(samples, self.n_mels)
        if self.with_std:
            return np.concatenate([db.mean(axis=0), db.std(axis=0)])
        return db.mean(axis=0)


@hookimpl
def gensr_register_features() -> list[type[FeatureExtractor]]:
    return [LogMel]
