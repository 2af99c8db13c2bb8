"""DistillMOS: a non-intrusive MOS estimate from a small CNN-transformer (``distillmos``).

Runs ``distillmos.ConvTransformerSQAModel`` (Stahl & Gamper, "Distillation and Pruning for
Scalable Self-Supervised Representation-Based Speech Quality Assessment", ICASSP 2025: a
4.1M-parameter model distilled from an XLS-R-based quality predictor) with the weights shipped in
the ``distillmos`` wheel, on 16-kHz audio, and returns its prediction unchanged, in [1, 5]. The
model's own procedure applies: the waveform is cut into 7.68-s windows (122 880 samples; a
shorter clip is zero-padded to one window, a longer one is covered by windows at most 1 s
apart), each window is divided by its peak (so the level of the audio does not matter), and
the window scores are averaged.

Three things to know when reading its numbers:

* on espeak speech it does not tell clean from degraded. On the first 20 ``synth-gsr``
  utterances (5.5-7.7 s) the clean references averaged 2.18 and the degraded inputs 2.32, and
  the reference scored higher in only 9 of 20 (12 of 20 when short clips are looped instead of
  zero-padded, so the padding is not the cause); DNSMOS separates the same kind of audio
  clearly. Do not use it as a preference metric on the synthetic suites;
* short clips are padded with digital silence, which moves the score: on 2-3 s espeak clips
  clean speech scored *below* the same speech with white noise at 5-20 dB SNR, while on 10-s
  passages it scored above every noisy version;
* digital silence has no defined score (the peak division is 0/0) and is refused (``None`` with
  an error) rather than given the number the model happens to return for it (about 1.97).

The model runs with one torch thread, restoring the caller's setting afterwards (as
speaker-sim: on the small CPU machines the runner parallelises across worker processes), and
loading it leaves the global torch random state untouched.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError, GensrError
from gensr_bench.records import Restoration, Utterance
from gensr_bench.weights import sha256_of

from ._util import check_batch, require_signal, samples_at, torch_threads

SAMPLE_RATE = 16000
#: The weight file inside the wheel, relative to the package folder.
WEIGHTS_FILE = Path("weights") / "distill_mos_v7.pt"
INSTALL_HINT = "`pip install --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0`"


def package_dir() -> Path:
    """The folder of the installed ``distillmos`` package (found without importing it)."""
    spec = importlib.util.find_spec("distillmos")
    if spec is None or not spec.submodule_search_locations:
        raise GensrError(
            f"the distillmos metric needs the 'distillmos' package (its weights); install it "
            f"with {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def weights_path() -> Path:
    """The DistillMOS checkpoint shipped in the wheel, checked to exist."""
    path = package_dir() / WEIGHTS_FILE
    if not path.is_file():
        raise GensrError(
            f"DistillMOS weights {path} are missing; reinstall the package "
            "(`pip install --force-reinstall --no-deps distillmos`)"
        )
    return path


def _torchaudio_importable() -> bool:
    if importlib.util.find_spec("torchaudio") is None:
        return False
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):  # e.g. a CUDA-built wheel next to the CPU torch
        return False
    return True


def import_distillmos() -> ModuleType:
    """Import and return the ``distillmos`` package, with or without a working torchaudio.

    ``distillmos.sqa`` imports torchaudio at the top, but uses it only in its command-line
    tool (to read files and resample). torchaudio's PyPI wheels are CUDA builds that fail to
    load next to the CPU torch this project pins, so it is not installed; while distillmos is
    imported, an empty placeholder module stands in for it, and is removed right after so that
    nothing else ever sees it. distillmos's file-reading helpers are never called here.
    """
    if "distillmos.sqa" in sys.modules:
        return sys.modules["distillmos"]
    package_dir()  # a clear error when the package is missing
    if _torchaudio_importable():
        import distillmos

        return distillmos
    placeholder = types.ModuleType("torchaudio", "stand-in: distillmos's CLI is not used")
    sys.modules["torchaudio"] = placeholder
    try:
        import distillmos
    except ImportError as exc:
        raise GensrError(
            f"cannot import distillmos ({exc}); it needs torch and the xls-r-sqa package: "
            f"{INSTALL_HINT}"
        ) from exc
    finally:
        if sys.modules.get("torchaudio") is placeholder:
            del sys.modules["torchaudio"]
    return distillmos


def load_model(device: str = "cpu") -> Any:
    """``ConvTransformerSQAModel`` with the wheel's weights, in eval mode on ``device``.

    Built without weights and then loaded from the checkpoint (``weights_only``), which is what
    the package's default constructor does minus its print to stdout; building it inside
    ``fork_rng`` keeps the random initialisation from moving the caller's torch random state.
    """
    import torch

    distillmos = import_distillmos()
    with torch.random.fork_rng(devices=[]):
        model = distillmos.ConvTransformerSQAModel(load_weights=False)
    checkpoint = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    return model.eval().to(device)


def distillmos_score(samples: npt.ArrayLike, model: Any, what: str = "the audio") -> float:
    """DistillMOS of a 16-kHz mono clip: the model's prediction in [1, 5].

    ``what`` names the clip in error messages.
    """
    import torch

    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioValidationError(
            f"DistillMOS needs non-empty mono audio, got an array of shape {audio.shape}"
        )
    require_signal(audio, what, "distillmos")
    with torch.inference_mode(), torch_threads():
        device = next(model.parameters()).device  # the model's (cpu or cuda)
        prediction = model(torch.from_numpy(audio.copy())[None].to(device))
    return float(prediction.reshape(-1)[0])


class DistillMos(Metric):
    """DistillMOS: non-intrusive MOS from a distilled CNN-transformer (distillmos wheel weights).

    One output, ``distillmos`` in [1, 5], higher is better, at 16 kHz. On espeak speech it does
    not rank clean above degraded audio (see the module docstring): do not use it as a
    preference metric on the synthetic suites.
    """

    name = "distillmos"
    version = "1"
    higher_is_better = True
    requires_reference = False
    sample_rate = SAMPLE_RATE
    outputs = ("distillmos",)
    #: Below 1 s the 7.68-s window is more than 85 % zero padding.
    min_duration = 1.0
    #: Off by default: measured on synth-gsr it does not rank clean espeak speech above the
    #: degraded input (see the module docstring); ask for it with --metrics distillmos.
    default = False
    supports_device = True

    # Silence is refused (``distillmos_score``: the model divides by the peak, 0/0), but a
    # constant or a click is rated: the model's own low rating (about 1.6), nothing undefined.

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._model: Any = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_model(self.device)

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()
        # One clip per forward pass: clips of other lengths cannot share a padded batch, and
        # the model's windowing would mix them.
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            what = f"the restoration of {utterance.id!r}"
            samples = samples_at(restoration.audio, SAMPLE_RATE, what, self.name)
            scores.append({"distillmos": distillmos_score(samples, self._model, what)})
        return scores

    def weights_sha256(self) -> dict[str, str]:
        return {f"distillmos/{WEIGHTS_FILE.as_posix()}": sha256_of(weights_path())}


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [DistillMos]
