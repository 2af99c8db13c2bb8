"""Audio reading, writing, resampling, mix-down and validation, and which files are audio.

Resampling uses soxr (VHQ) when installed, else scipy's polyphase filter.
``decode_audio_cell`` decodes the undecoded ``datasets.Audio(decode=False)`` cells of Hugging
Face datasets. Every function names the file or the audio it complains about, and says how to
fix it. Suites that read folders use ``audio_suffixes`` and ``unread_files`` so that every file
they skip is listed with why.
"""

from __future__ import annotations

import io
import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import (
    AudioDecodeError,
    AudioError,
    AudioValidationError,
    disk_full_as_error,
)
from gensr_bench.records import Audio, Utterance

#: File suffixes read as audio, each with the libsndfile format that decodes it.
AUDIO_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
#: The libsndfile release that first decodes MP3 (through mpg123).
MP3_LIBSNDFILE = "1.1"

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
        kinds = "/".join(AUDIO_FORMATS[suffix] for suffix in audio_suffixes())
        raise AudioDecodeError(
            f"cannot decode {path} as audio ({exc}); expected a {kinds} file readable by "
            "libsndfile: convert it, e.g. with `ffmpeg -i IN -ar 16000 OUT.wav`"
        ) from exc
    audio = Audio(to_mono(data), int(rate))
    return resample(audio, sample_rate) if sample_rate else audio


#: How to fix audio bytes libsndfile cannot read (``decode_audio_cell``'s default ``fix``).
REENCODE_HINT = "re-encode the column, e.g. with `ffmpeg -i IN -ar 16000 OUT.wav`"


def decode_audio_cell(
    cell: Mapping[str, Any] | None,
    what: str = "audio cell",
    base_dir: str | Path | None = None,
    *,
    fix: str = REENCODE_HINT,
) -> Audio:
    """Decode one undecoded ``datasets.Audio`` cell ``{"bytes": ..., "path": ...}`` to mono
    float32 at its native rate, with soundfile (``datasets``' own decoder needs torchcodec).

    The bytes are decoded when present (non-empty); otherwise the file at ``path`` is read (a
    relative path is looked up in ``base_dir`` when it is not found as given). ``what`` names
    the cell in error messages and ``fix`` says how to repair bytes that are not audio.

    Raises:
        AudioDecodeError: the cell is empty or not a cell, or its bytes or file are not audio.
    """
    import soundfile

    if cell is None:
        raise AudioDecodeError(f"{what} is empty: the row holds no audio")
    if not isinstance(cell, Mapping):
        raise AudioDecodeError(
            f"{what} is not an audio cell (got {type(cell).__name__}); expected a dict "
            "{'bytes': ..., 'path': ...} from a datasets.Audio(decode=False) column"
        )
    data = cell.get("bytes")
    if data:
        try:
            samples, rate = soundfile.read(io.BytesIO(bytes(data)), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError, ValueError, TypeError) as exc:
            raise AudioDecodeError(
                f"cannot decode the bytes of {what} as audio ({exc}); expected WAV/FLAC/OGG "
                f"bytes readable by libsndfile: {fix}"
            ) from exc
        return Audio(to_mono(samples), int(rate))
    path = cell.get("path")
    if not path:
        raise AudioDecodeError(f"{what} has neither bytes nor a path")
    file = Path(path)
    if not file.is_absolute() and base_dir is not None and not file.is_file():
        file = Path(base_dir) / file
    try:
        return read_audio(file)
    except AudioDecodeError as exc:
        raise AudioDecodeError(f"{what}: {exc}") from exc


def write_audio(path: str | Path, audio: Audio, subtype: str = "FLOAT") -> None:
    """Write ``audio`` to ``path`` (format from the suffix; float32 WAV by default).

    Raises DiskFullError naming the folder when the disk is full (no partial file is left).
    """
    import soundfile

    path = Path(path)
    fmt = path.suffix[1:].upper()
    if fmt not in soundfile.available_formats():
        raise AudioError(
            f"cannot write {path}: libsndfile writes no {path.suffix!r} files; use .wav or .flac"
        )
    fmt_subtype = subtype if fmt == "WAV" else None
    # Encoded in memory, then written by Python: libsndfile reports a full disk only as
    # "System error.", while Python's OSError carries ENOSPC (the bytes are the same).
    encoded = io.BytesIO()
    soundfile.write(encoded, audio.samples, audio.sample_rate, subtype=fmt_subtype, format=fmt)
    with disk_full_as_error(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(encoded.getvalue())
        except BaseException:
            path.unlink(missing_ok=True)
            raise


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


def audio_suffixes() -> tuple[str, ...]:
    """The suffixes of ``AUDIO_FORMATS`` the installed libsndfile decodes (MP3 needs 1.1+)."""
    import soundfile

    readable = soundfile.available_formats()
    return tuple(suffix for suffix, fmt in AUDIO_FORMATS.items() if fmt in readable)


def skip_reason(path: Path, suffixes: Collection[str]) -> str | None:
    """Why a suite reading files with ``suffixes`` skips ``path``; None when it reads it.

    Hidden files are skipped (e.g. macOS ``._name.wav`` resource forks, which are not audio).
    """
    suffix = path.suffix.lower()
    if path.name.startswith("."):
        return "hidden file"
    if suffix in suffixes:
        return None
    if suffix in AUDIO_FORMATS and suffix not in audio_suffixes():
        import soundfile

        return (
            f"{AUDIO_FORMATS[suffix]}, which the installed libsndfile "
            f"{soundfile.__libsndfile_version__} cannot decode ({AUDIO_FORMATS[suffix]} needs "
            f"libsndfile {MP3_LIBSNDFILE} or later)"
        )
    return f"not an audio file this suite reads ({', '.join(suffixes)})"


def unread_files(
    folders: Iterable[Path],
    read: Collection[Path],
    root: Path,
    suffixes: Collection[str],
    elsewhere: str = "audio outside the folders the suite's layout pairs",
) -> list[tuple[str, str]]:
    """Every file under ``folders`` that is not in ``read``, with why: ``(path, reason)``.

    Paths are relative to ``root`` (POSIX). The reason is ``skip_reason``'s, else
    ``elsewhere`` (an audio file the suite's layout does not cover). A hidden folder is listed
    once, as ``name/``, unless a file in ``read`` lies inside it; so is a linked folder (not
    followed, as ``Path.rglob`` does not follow it).
    """
    read_paths = {Path(p) for p in read}
    read_parents = {parent for p in read_paths for parent in p.parents}
    listed: dict[str, str] = {}

    def name(path: Path) -> str:
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    for folder in folders:
        for current, dirs, files in os.walk(folder):
            here = Path(current)
            for child in sorted(dirs):
                if (here / child).is_symlink():
                    # os.walk, like Path.rglob, does not descend into linked folders.
                    listed[name(here / child) + "/"] = "link to a folder, not followed"
                    dirs.remove(child)
                elif child.startswith(".") and here / child not in read_parents:
                    listed[name(here / child) + "/"] = "hidden folder"
                    dirs.remove(child)
            dirs.sort()
            for file_name in sorted(files):
                path = here / file_name
                if path in read_paths:
                    continue
                if not path.is_file():
                    listed[name(path)] = "not a regular file (a broken link?)"
                else:
                    listed[name(path)] = skip_reason(path, suffixes) or elsewhere
    return sorted(listed.items())
