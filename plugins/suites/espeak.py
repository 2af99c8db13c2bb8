"""A small ctypes driver for libespeak-ng, as shipped inside the ``espeakng-loader`` wheel.

Usage::

    from gensr_bench_plugins.suites.espeak import Voice, espeak_session

    with espeak_session(seed=7) as tts:
        samples = tts.synthesize("Hello there.", Voice("en-us+f2", rate=160, pitch=55))
    # float32 samples at ESPEAK_SAMPLE_RATE (22.05 kHz)

Why a *session* and not one engine per process: libespeak-ng keeps hidden static state between
calls (the pitch-flutter phase, the wave generator's gain and cycle counters) that neither
``espeak_Terminate`` nor ``espeak_ng_SetRandSeed`` resets, so the same text synthesised twice in
one process gives different samples (measured: even the lengths drift by a few hundred samples).
A suite must be reproducible per utterance, so each session loads the library afresh
(``dlopen``), initialises it, seeds its breath-noise generator and unloads it at the end
(``dlclose``): same session calls, same samples. Loading costs a few milliseconds.

The library is loaded from a private copy made once per process, so other users of
espeakng-loader in the same process (phonemisers, say) never share its global state or
its callback. Sessions are serialised by a process-wide lock: the library is not re-entrant.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import GensrError

#: The rate libespeak-ng synthesises at (checked against ``espeak_Initialize``'s answer).
ESPEAK_SAMPLE_RATE = 22050

# speak_lib.h constants (espeak-ng 1.52)
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # synthesis runs inside espeak_Synth, audio comes to the callback
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_EE_NOT_FOUND = 2
_CALLBACK_BUFFER_MS = 1000  # audio per callback; the 60 ms default costs many Python calls
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4
RATE_MIN, RATE_MAX = 80, 450

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(GensrError):
    """libespeak-ng is missing, failed to initialise, or was asked for an unknown voice."""


@dataclass(frozen=True)
class Voice:
    """What espeak speaks with.

    ``name`` is a language voice, optionally with a variant: ``en-us``, ``en-us+f2``,
    ``en-gb-scotland+m3``. ``rate`` is in words per minute (80-450, default 175); ``pitch``
    and ``pitch_range`` are espeak's 0-100 scales (default 50), relative to the voice.
    """

    name: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50

    def __post_init__(self) -> None:
        if not RATE_MIN <= self.rate <= RATE_MAX:
            raise EspeakError(f"rate {self.rate} is outside espeak's {RATE_MIN}-{RATE_MAX} wpm")
        for what in ("pitch", "pitch_range"):
            value = getattr(self, what)
            if not 0 <= value <= 100:
                raise EspeakError(f"{what} {value} is outside espeak's 0-100 scale")


def _loader() -> Any:
    try:
        import espeakng_loader
    except ImportError as exc:  # a declared dependency; this only fires on a broken install
        raise EspeakError(
            "the synthetic suites need libespeak-ng from the espeakng-loader wheel: "
            "`pip install espeakng-loader`"
        ) from exc
    return espeakng_loader


@cache
def data_path() -> Path:
    """The ``espeak-ng-data`` folder inside the espeakng-loader wheel."""
    return Path(_loader().get_data_path())


@cache
def variant_names() -> tuple[str, ...]:
    """Every voice variant the data folder provides (``f2``, ``m3``, ``Annie`` ...)."""
    folder = data_path() / "voices" / "!v"
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))


def split_voice_name(name: str) -> tuple[str, str | None]:
    """``"en-us+f2"`` -> ``("en-us", "f2")``; ``"en-us"`` -> ``("en-us", None)``."""
    language, plus, variant = name.partition("+")
    return language, (variant if plus else None)


# The process-wide lock and the private library copy. Re-created in a forked child: a lock
# held by another thread at fork time would otherwise never be released there.
_lock = threading.Lock()
_private_dir: Path | None = None


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _remove_private_dir() -> None:
    if _private_dir is not None:
        shutil.rmtree(_private_dir, ignore_errors=True)


def _private_library() -> Path:
    """A copy of libespeak-ng only this module loads (made once per process, under the lock)."""
    global _private_dir
    source = Path(_loader().get_library_path())
    if not source.is_file():
        raise EspeakError(
            f"libespeak-ng not found at {source}; reinstall it: "
            "`pip install --force-reinstall espeakng-loader`"
        )
    if _private_dir is None:
        _private_dir = Path(tempfile.mkdtemp(prefix="gensr-bench-espeak-"))
        atexit.register(_remove_private_dir)
    target = _private_dir / source.name
    if not target.is_file():  # first use, or a parent process removed it after a fork
        _private_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
    return target


def _bind(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = ctypes.c_int


class EspeakSession:
    """A freshly loaded, initialised and seeded libespeak-ng; see :func:`espeak_session`."""

    sample_rate = ESPEAK_SAMPLE_RATE

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._chunks: list[npt.NDArray[np.int16]] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SynthCallback(self._collect)

    def _collect(self, wav: Any, n_samples: int, _events: Any) -> int:
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0: go on synthesising

    def _start(self, seed: int) -> None:
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            _CALLBACK_BUFFER_MS,
            str(data_path()).encode(),
            _INITIALIZE_DONT_EXIT,
        )
        if rate != ESPEAK_SAMPLE_RATE:
            raise EspeakError(
                f"espeak_Initialize answered {rate} (expected the sample rate "
                f"{ESPEAK_SAMPLE_RATE}); is the data folder {data_path()} complete? "
                "Reinstall espeakng-loader"
            )
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_ng_SetRandSeed(seed % (2**31 - 1))

    def synthesize(self, text: str, voice: Voice) -> npt.NDArray[np.float32]:
        """Speak ``text`` with ``voice``: float32 samples in [-1, 1] at 22.05 kHz."""
        language, variant = split_voice_name(voice.name)
        # espeak silently falls back to the plain language voice for an unknown variant.
        if variant is not None and variant not in variant_names():
            raise EspeakError(
                f"unknown espeak voice variant {variant!r} in {voice.name!r}; "
                f"available variants: {', '.join(variant_names())}"
            )
        status = self._lib.espeak_SetVoiceByName(voice.name.encode())
        if status != _EE_OK:
            raise EspeakError(
                f"espeak has no voice {language!r} (espeak_SetVoiceByName({voice.name!r}) "
                f"answered {status}); use a language voice such as en, en-us, en-gb-scotland"
            )
        for parameter, value in (
            (_PARAM_RATE, voice.rate),
            (_PARAM_PITCH, voice.pitch),
            (_PARAM_RANGE, voice.pitch_range),
        ):
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        payload = text.encode("utf-8") + b"\0"
        self._chunks = []
        status = self._lib.espeak_Synth(
            payload, len(payload), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self._lib.espeak_Synchronize()
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status} for {text!r}")
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        samples = np.concatenate(self._chunks).astype(np.float32)
        self._chunks = []
        return samples / np.float32(32768.0)


@contextmanager
def espeak_session(seed: int = 0) -> Iterator[EspeakSession]:
    """A fresh libespeak-ng for a block of synthesis calls, deterministic for ``seed``.

    The same sequence of ``synthesize`` calls in a session with the same seed gives the same
    samples, in any process. Sessions are serialised process-wide; keep them short.
    """
    import _ctypes

    with _lock:
        lib = ctypes.CDLL(str(_private_library()))
        try:
            _bind(lib)
            session = EspeakSession(lib)
            session._start(seed)
            try:
                yield session
            finally:
                lib.espeak_Terminate()
        finally:
            # Unload so the next session starts from the library's initial static state.
            _ctypes.dlclose(lib._handle)


def synthesize(text: str, voice: Voice, seed: int = 0) -> npt.NDArray[np.float32]:
    """One-shot: ``text`` spoken by ``voice`` at 22.05 kHz, deterministic for ``seed``."""
    with espeak_session(seed) as session:
        return session.synthesize(text, voice)


def check_voice(name: str) -> None:
    """Raise EspeakError unless ``name`` (``language[+variant]``) is a voice espeak has."""
    with espeak_session(0) as session:
        session.synthesize("", Voice(name))
