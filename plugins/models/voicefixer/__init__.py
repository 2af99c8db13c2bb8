"""VoiceFixer: the discriminative baseline of the GenSR-Pref paper (Table 1, "DISC.").

H. Liu, Q. Kong, Q. Tian, Y. Zhao, D. Wang, C. Huang, Y. Wang, "VoiceFixer: Toward General
Speech Restoration with Neural Vocoder" (arXiv:2109.13731, 2021). The networks come from the
``voicefixer`` package (MIT, PyPI 0.1.3, installed ``--no-deps`` with ``torchlibrosa`` by
install.sh); this plugin loads its checkpoints from our weights folder and runs the package's
inference (``VoiceFixer.restore_inmem``, mode 0) on audio in memory:

1. the input, at 44.1 kHz, is cut into 30-s segments, each restored on its own;
2. magnitude STFT -> 128-band mel -> the analysis module (BN-GRU mask + ResUNet) gives a
   restored log10 mel, turned back to linear (``10 ** min(mel, 5)``);
3. the 44.1-kHz TFGAN vocoder turns it into a waveform; a segment louder than full scale is
   scaled down to peak 1, then cut to the segment's length around its centre;
4. the segments are joined: the output has exactly the input's length, at 44.1 kHz.

Differences from the package, all on purpose: nothing is downloaded (the package fetches its
checkpoints from Zenodo into ``~/.cache/voicefixer`` on import; see ``networks``); the
networks run in float64 by default (option ``precision``), rounded to float32 once at the end,
so outputs do not depend on the CPU's vector unit (as for the project's generative models,
benchmarks/reproducibility/RESULTS.md); a segment shorter than 1025 samples (23 ms), which the
package's STFT cannot pad, is zero-padded to that length and cut back afterwards. Mode 0 has no
randomness: the seed is ignored and outputs are deterministic. With ``precision=float32`` the
outputs equal the package's ``restore_inmem`` sample for sample (tested on random weights,
tests/plugins/models/test_voicefixer.py); float64 differed from them by at most 1.2e-7 there.

Weights (``gensr-bench weights list``): ``voicefixer/vf.ckpt`` (analysis module) and
``voicefixer/model.ckpt-1490000_trimed.pt`` (44.1-kHz vocoder) under a weights folder
(``--weights-dir``, ``GENSR_BENCH_WEIGHTS_DIR`` or the cache folder), from the Zenodo URLs the
package's source downloads them from. The package and its README publish no hash; Zenodo's
record pages list MD5 checksums, which cannot be read offline and which the weights machinery
(sha256 only) does not check. Their **sha256 is therefore not verified** (``sha256=None``); the
hash of the files used is recorded with every run (``checkpoint_hash``). Without the files,
creating the model raises ``WeightsError`` naming them, the folders searched, the URLs and
``gensr-bench weights fetch voicefixer``: ``run`` stops with exit code 1 before it starts (a
failing ``setup`` would only mark every output failed).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gensr_bench import RestorationModel, hookimpl
from gensr_bench.audio import validate
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.weights import WEIGHTS_ENV, WeightFile, WeightsError, find, search_dirs

from . import networks

if TYPE_CHECKING:
    import torch

#: Not verified: neither the package nor its documentation publishes a hash (module docstring).
RESTORER_WEIGHTS = WeightFile(
    "voicefixer/vf.ckpt",
    sha256=None,
    url="https://zenodo.org/record/5600188/files/vf.ckpt?download=1",
    license="VoiceFixer checkpoint, Zenodo record 5600188 (see the record's licence)",
    description="VoiceFixer analysis module (44.1 kHz mel restoration); sha256 not verified",
)
VOCODER_WEIGHTS = WeightFile(
    "voicefixer/model.ckpt-1490000_trimed.pt",
    sha256=None,
    url="https://zenodo.org/record/5469951/files/model.ckpt-1490000_trimed.pt?download=1",
    license="VoiceFixer checkpoint, Zenodo record 5469951 (see the record's licence)",
    description="VoiceFixer 44.1-kHz TFGAN vocoder; sha256 not verified",
)
PRECISIONS = ("float64", "float32")


def missing_weights_message(missing: Sequence[WeightFile]) -> str:
    """What ``setup`` says when checkpoints are missing: which files, where it looked, where
    to get them and how to put them in place."""
    files = "; ".join(f"{weight.filename} (from {weight.url})" for weight in missing)
    places = ", ".join(str(folder) for folder in search_dirs())
    return (
        f"model 'voicefixer' needs {len(missing)} checkpoint file(s) that were not found: "
        f"{files}. Looked in: {places}. Run `gensr-bench weights fetch voicefixer` while online, "
        "or download them by hand into a folder `voicefixer/` inside a weights folder, then "
        f"pass that weights folder with --weights-dir or {WEIGHTS_ENV} (it must hold "
        f"{RESTORER_WEIGHTS.filename} and {VOCODER_WEIGHTS.filename}). Their sha256 is not "
        "published, so it is not checked."
    )


def _as_bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ConfigError(f"voicefixer option {key}={raw!r} must be true or false")


@contextlib.contextmanager
def _deterministic_cudnn(device: torch.device) -> Iterator[None]:
    """cuDNN's deterministic algorithms for the call on a GPU (restored afterwards)."""
    import torch

    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


class VoiceFixer(RestorationModel):
    """VoiceFixer (Liu et al. 2021): mel restoration + neural vocoder, 44.1 kHz in and out.

    The paper's discriminative baseline. Needs the checkpoints ``voicefixer/vf.ckpt`` and
    ``voicefixer/model.ckpt-1490000_trimed.pt`` in a weights folder (``--weights-dir``); see
    ``gensr-bench weights list``. Deterministic (mode 0; the seed is ignored); the output has
    the input's length.

    Runs where ``--device`` places it (``cpu`` by default, ``cuda`` on a GPU).

    Options:
        device: ``cpu``, ``cuda`` or ``cuda:N``; when given it wins over ``--device`` (as
            the ``whisper`` metric's option does).
        precision: ``float64`` (default: outputs identical across x86 CPUs up to
            ``waveform_tolerance``) or ``float32`` (the package's own precision, about twice
            as fast; outputs may then differ between CPUs by more than that).
        unsafe_load: load checkpoints holding Python objects other than tensors (full
            unpickling, which can run code: only for files from the official records;
            default false).
    """

    name = "voicefixer"
    version = "1"
    paradigm = "discriminative"
    sample_rate = networks.SAMPLE_RATE
    #: float64 from the input STFT to the waveform, rounded to float32 once: one float32
    #: rounding step of a sample below magnitude 4 (the output peaks at 1 or less), as for the
    #: generative models (benchmarks/reproducibility/RESULTS.md). Measured on this AMD EPYC
    #: with random weights (0.7 s input, peak 0.19), vector units switched off as there
    #: (ATEN_CPU_CAPABILITY=default, all-AVX2, MKL_CBWR=COMPATIBLE, 1 thread): at most 1.5e-8
    #: from native; ``precision=float32`` moved by up to 2.7e-7. Not covered: float32, GPUs.
    waveform_tolerance = 2.5e-7
    weight_files: ClassVar[tuple[WeightFile, ...]] = (RESTORER_WEIGHTS, VOCODER_WEIGHTS)
    accepted_options = ("device", "precision", "unsafe_load")
    supports_device = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._device_name = str(options.get("device", "cpu")).strip().lower()
        if "device" in options:
            self._torch_device()  # a bad or absent device fails here, before a run starts
        self.precision = str(options.get("precision", "float64")).strip().lower()
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"voicefixer option precision={options['precision']!r} is not supported; "
                f"expected one of {', '.join(PRECISIONS)}"
            )
        self.unsafe_load = _as_bool("unsafe_load", options.get("unsafe_load", False))
        #: torch modules (``Any``: their submodules are attributes set at build time).
        self._restorer: Any = None
        self._vocoder: Any = None
        self._mel_weight: torch.Tensor | None = None
        self._device: torch.device | None = None
        self._sha256: str | None = None
        # Fail before a run starts, not as a setup error on every output: the runner records
        # a model whose setup fails as failed outputs and still exits 0.
        self._weight_paths()

    @property
    def device(self) -> str:
        """The ``device`` option when given, else where the runner placed it (``--device``)."""
        return self._device_name

    @device.setter
    def device(self, value: str) -> None:
        if "device" not in self.options:  # an explicit option wins over --device
            self._device_name = value

    def config(self) -> dict[str, Any]:
        # The device is provenance (recorded by the runner), not configuration.
        return {**super().config(), "settings": {"precision": self.precision, "mode": 0}}

    # -- weights ----------------------------------------------------------------------------
    def _weight_paths(self) -> tuple[Path, Path]:
        paths = [find(weight) for weight in self.weight_files]
        missing = [w for w, p in zip(self.weight_files, paths, strict=True) if p is None]
        if missing:
            raise WeightsError(missing_weights_message(missing))
        restorer, vocoder = paths
        assert restorer is not None and vocoder is not None
        return restorer, vocoder

    def _torch_device(self) -> torch.device:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self._device_name):
            raise ConfigError(
                f"voicefixer: device {self._device_name!r} is not one of cpu, cuda, cuda:N"
            )
        import torch

        device = torch.device(self._device_name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"voicefixer: device {self._device_name!r}, but torch sees no CUDA device here "
                "(torch.cuda.is_available() is False); use device cpu"
            )
        return device

    def setup(self) -> None:
        if self._restorer is not None:
            return
        import torch

        device = self._torch_device()
        restorer_path, vocoder_path = self._weight_paths()
        dtype = getattr(torch, self.precision)
        restorer = networks.load_restorer(restorer_path, self.unsafe_load)
        vocoder = networks.load_vocoder(vocoder_path, self.unsafe_load)
        self._restorer = restorer.to(device=device, dtype=dtype)
        self._vocoder = vocoder.to(device=device, dtype=dtype)
        self._mel_weight = networks.mel_weight().to(device=device, dtype=dtype)
        self._device = device

    def checkpoint_hash(self) -> str | None:
        """sha256 over the two checkpoints' own sha256 digests (``name:digest`` lines)."""
        if self._sha256 is None:
            paths = [find(weight) for weight in self.weight_files]
            if any(path is None for path in paths):
                return None
            from gensr_bench.weights import sha256_of

            lines = "".join(
                f"{weight.filename}:{sha256_of(path)}\n"
                for weight, path in zip(self.weight_files, paths, strict=True)
                if path is not None
            )
            self._sha256 = hashlib.sha256(lines.encode()).hexdigest()
        return self._sha256

    # -- restoration --------------------------------------------------------------------------
    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        self.setup()
        out = []
        for utt in batch:
            audio = validate(utt.degraded, f"degraded audio of utterance {utt.id!r}")
            if audio.sample_rate != self.sample_rate:
                raise AudioValidationError(
                    f"degraded audio of utterance {utt.id!r} is at {audio.sample_rate} Hz; "
                    f"model {self.name!r} runs at {self.sample_rate} Hz. Resample it first "
                    "(gensr_bench.audio.resample); the runner does this for suites."
                )
            samples = self.restore_samples(audio.samples)
            out.append(Restoration(utt.id, Audio(samples, self.sample_rate), self.name, seed))
        return out

    def restore_samples(self, samples: np.ndarray) -> np.ndarray:
        """Restore a mono 44.1-kHz signal; float32 output of the input's length."""
        import torch

        self.setup()
        assert self._device is not None
        x = np.asarray(samples, dtype=np.float64)
        pieces = []
        with torch.inference_mode(), _deterministic_cudnn(self._device):
            for start in range(0, len(x), networks.SEGMENT_SAMPLES):
                pieces.append(self._restore_segment(x[start : start + networks.SEGMENT_SAMPLES]))
        return np.concatenate(pieces).astype(np.float32)

    def _restore_segment(self, segment: np.ndarray) -> np.ndarray:
        import torch

        assert self._restorer is not None and self._vocoder is not None
        assert self._mel_weight is not None
        length = len(segment)
        if length < networks.MIN_SAMPLES:
            segment = np.pad(segment, (0, networks.MIN_SAMPLES - length))
        wave = torch.from_numpy(segment).to(device=self._device, dtype=self._mel_weight.dtype)
        # FDomainHelper.wav_to_spectrogram_phase, magnitude only (it also casts to float32).
        real, imag = self._restorer.f_helper.stft(wave[None, :])
        spectrum = torch.clamp(real**2 + imag**2, 1e-8, np.inf) ** 0.5  # (1, 1, T, 1025)
        mel = self._restorer.mel(spectrum.permute(0, 1, 3, 2)).permute(0, 1, 3, 2)
        log_mel = self._restorer.generator(spectrum, mel)["mel"]
        restored = 10 ** torch.clip(log_mel, max=5.0)  # the package's from_log
        condition = networks.vocoder_condition(restored, self._mel_weight)
        out = self._vocoder(condition)[0, 0]
        peak = out.abs().max()
        if peak > 1.0:  # the package's "unify energy"
            out = out / peak
        excess = out.shape[-1] - len(segment)
        if excess < 0:
            raise ConfigError(
                f"voicefixer: the vocoder gave {out.shape[-1]} samples for a segment of "
                f"{len(segment)}; the checkpoint does not match the 44.1-kHz vocoder"
            )
        start = excess // 2  # the package's _trim_center
        return out[start : start + length].double().cpu().numpy()


@hookimpl
def gensr_register_models() -> list[type[RestorationModel]]:
    return [VoiceFixer]
