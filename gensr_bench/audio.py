"""Audio reading, writing, resampling, mix-down and validation.

Resampling uses soxr (VHQ) when installed, else scipy's polyphase filter. Every function names
the file or the audio it complains about, and says how to fix it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import AudioDecodeError, AudioValidationError
from gensr_bench.records import Audio, Utterance

#: The peak above which the runner rescales a restoration before scoring (see ``limit_peak``).
PEAK_LIMIT = 1.0


def to_mono(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Average the channels of a (frames, channels) array; 1-D input is returned as float32."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        return np.ascontiguousarray(array.mean(axis=1, dtype=np.float32))
    raise AudioValidationError(
        f"expected audio of shape (frames,) or (frames, channels), got {array.shape}"
    )


def read_audio(path: str | Path, sample_rate: int | None = None) -> Audio:
    """Decode ``path`` to mono float32, resampled to ``sample_rate`` when given.

    Raises AudioDecodeError naming the file when it is missing or not audio.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"audio file not found: {path}")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise AudioDecodeError(
            f"cannot decode {path} as audio ({exc}); expected a WAV/FLAC/OGG file readable by "
            "libsndfile: convert it, e.g. with `ffmpeg -i IN -ar 16000 OUT.wav`"
        ) from exc
    audio = Audio(to_mono(data), int(rate))
    return resample(audio, sample_rate) if sample_rate else audio


def write_audio(path: str | Path, audio: Audio, subtype: str = "FLOAT") -> None:
    """Write ``audio`` to ``path`` (format from the suffix; float32 WAV by default)."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt_subtype = subtype if path.suffix.lower() == ".wav" else None
    soundfile.write(str(path), audio.samples, audio.sample_rate, subtype=fmt_subtype)


def resample(audio: Audio, sample_rate: int) -> Audio:
    """Resample to ``sample_rate`` (soxr VHQ, else scipy polyphase); a no-op at the same rate."""
    if audio.sample_rate == sample_rate:
        return audio
    if len(audio.samples) == 0:
        return Audio(audio.samples, sample_rate)
    try:
        import soxr
    except ImportError:  # soxr is a dependency; scipy keeps a broken install working
        from math import gcd

        from scipy.signal import resample_poly

        divisor = gcd(audio.sample_rate, sample_rate)
        out = resample_poly(
            audio.samples.astype(np.float64), sample_rate // divisor, audio.sample_rate // divisor
        )
    else:
        out = soxr.resample(audio.samples, audio.sample_rate, sample_rate, quality="VHQ")
    return Audio(np.asarray(out, dtype=np.float32), sample_rate)


def validate(audio: Audio | None, what: str, min_duration: float = 0.0) -> Audio:
    """Return ``audio`` if it can be scored, else raise AudioValidationError naming ``what``."""
    if audio is None:
        raise AudioValidationError(f"{what} is missing")
    n = len(audio.samples)
    if n == 0:
        raise AudioValidationError(f"{what} is empty (0 samples); supply non-empty audio")
    finite = np.isfinite(audio.samples)
    if not finite.all():
        bad = int((~finite).sum())
        raise AudioValidationError(
            f"{what} contains {bad} NaN/Inf sample(s) of {n}; fix the file or the model output"
        )
    if audio.duration < min_duration:
        raise AudioValidationError(
            f"{what} is {audio.duration:.3f} s long, shorter than the {min_duration:.3f} s "
            "this metric needs to score honestly"
        )
    return audio


def peak(audio: Audio) -> float:
    """Largest absolute sample value (0.0 for empty audio)."""
    return float(np.max(np.abs(audio.samples))) if len(audio.samples) else 0.0


def limit_peak(audio: Audio) -> tuple[Audio, float]:
    """The runner's policy for outputs beyond full scale.

    A restoration whose peak exceeds ``PEAK_LIMIT`` (1.0) is scaled down so its peak is exactly
    1.0 before any metric sees it (DNSMOS refuses such audio and PESQ/STOI would score a clipped
    signal otherwise). Returns the audio and the gain applied (1.0 when untouched); the runner
    records a gain below 1 in the output's ``flags`` as ``peak_normalised_gain``.
    """
    top = peak(audio)
    if top <= PEAK_LIMIT or not np.isfinite(top):
        return audio, 1.0
    gain = PEAK_LIMIT / top
    # Divide by the float32 peak rather than multiply by the gain: x / x is exactly 1 in IEEE
    # arithmetic, while x * (1 / x) can round to 1.0000001, which is still beyond full scale.
    scaled = (audio.samples / np.float32(top)) * np.float32(PEAK_LIMIT)
    return Audio(scaled, audio.sample_rate), gain


def match_lengths(first: Audio, second: Audio) -> tuple[Audio, Audio, int]:
    """Trim both to the shorter length; returns them and the number of samples dropped."""
    n = min(len(first.samples), len(second.samples))
    dropped = abs(len(first.samples) - len(second.samples))
    if dropped == 0:
        return first, second, 0
    return (
        Audio(first.samples[:n], first.sample_rate),
        Audio(second.samples[:n], second.sample_rate),
        dropped,
    )


def load_utterance(
    uid: str,
    degraded_path: str | Path,
    reference_path: str | Path | None = None,
    transcript: str | None = None,
    meta: dict[str, object] | None = None,
) -> Utterance:
    """An Utterance read from files. An unreadable file does not raise: the utterance then
    carries ``error`` (naming the file), so the runner reports it and the run goes on."""
    try:
        degraded = read_audio(degraded_path)
        reference = read_audio(reference_path) if reference_path is not None else None
    except AudioDecodeError as exc:
        return Utterance(uid, None, None, transcript, dict(meta or {}), error=str(exc))
    return Utterance(uid, degraded, reference, transcript, dict(meta or {}))
