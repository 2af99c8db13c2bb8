"""Recorded noise for the neural-voice suites: a folder of the user's noise recordings.

The built-in noises are synthesised (coloured noise, hum, HVAC rumble) or made of speech
(babble). With the suite option ``noise_dir=DIR`` a ``piper-*`` suite also mixes in recorded
noise, for example the noise files of DEMAND, MUSAN or the DNS Challenge: every ``.wav`` and
``.flac`` file directly in ``DIR`` (sorted by name), mono or the first channel, at 16 kHz, at
least 1 s long and not silent. A file that breaks a rule is refused before any utterance is made,
with its name and the fix; nothing is resampled silently, so the noise a suite holds is the
noise in the files.

A recorded noise is drawn for half of the noisy utterances (the others keep the built-in
types): ``noise_type`` is ``recorded`` and ``noise_file`` names the file. It is read from a
random offset and repeated when shorter than the speech. The files' names and sha256 enter the
suite's fingerprint, so results on another folder are another suite.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import ConfigError

SAMPLE_RATE = 16000
SUFFIXES = (".wav", ".flac")
MIN_SECONDS = 1.0


class NoiseFileError(ConfigError):
    """A noise folder or file is missing, unreadable, of the wrong rate, too short or silent."""


@dataclass(frozen=True)
class NoiseFile:
    """One checked recording: its path and content hash (the samples are read when used)."""

    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def load_noise(path: Path, sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """The samples of a noise recording (first channel), refused unless usable as noise."""
    return _read_checked(path, sample_rate)[0]


def _read_checked(
    path: Path, sample_rate: int = SAMPLE_RATE
) -> tuple[npt.NDArray[np.float64], str]:
    """The checked samples of a noise recording and the sha256 of its file, read once."""
    import soundfile as sf

    if not path.is_file():
        raise NoiseFileError(f"noise file {path} does not exist; check the noise_dir option")
    data = path.read_bytes()
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise NoiseFileError(
            f"cannot read noise file {path}: {exc}; give WAV or FLAC files that soundfile opens"
        ) from None
    if rate != sample_rate:
        raise NoiseFileError(
            f"noise file {path} is at {rate} Hz, expected {sample_rate} Hz; resample it first "
            f"(e.g. `sox in.wav -r {sample_rate} out.wav`)"
        )
    noise = samples[:, 0]
    if len(noise) < MIN_SECONDS * sample_rate:
        raise NoiseFileError(
            f"noise file {path} lasts {len(noise) / sample_rate:.2f} s; give at least "
            f"{MIN_SECONDS:.0f} s of noise"
        )
    if float(np.std(noise)) < 1e-6:
        raise NoiseFileError(f"noise file {path} is silent (or a constant); remove it")
    return noise, hashlib.sha256(data).hexdigest()


def noise_folder(folder: Path) -> tuple[NoiseFile, ...]:
    """Every noise file of ``folder`` (``.wav``/``.flac``, sorted), each checked and hashed."""
    if not folder.is_dir():
        raise NoiseFileError(
            f"noise folder {folder} does not exist or is not a folder; give noise_dir=DIR with "
            "a folder of 16-kHz WAV or FLAC noise recordings"
        )
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not paths:
        raise NoiseFileError(
            f"noise folder {folder} holds no .wav or .flac file; put 16-kHz noise recordings in it"
        )
    return tuple(NoiseFile(path, _read_checked(path)[1]) for path in paths)


def noise_excerpt(
    file: NoiseFile, n_samples: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``n_samples`` of ``file`` from a random offset, the recording repeated as needed."""
    noise = _recording(file)
    offset = int(rng.integers(len(noise)))
    return noise[(offset + np.arange(n_samples)) % len(noise)]


@lru_cache(maxsize=8)
def _recording(file: NoiseFile) -> npt.NDArray[np.float64]:
    """A recording's samples, decoded once per process for the utterances that use it."""
    return load_noise(file.path)
