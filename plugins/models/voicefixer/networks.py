"""VoiceFixer's two networks, built from the ``voicefixer`` package (MIT, PyPI 0.1.3) and
loaded from our weights folder, never from the package's own cache.

What the package does (``voicefixer/base.py``, ``restorer/model.py``, ``vocoder/base.py``):

* the **analysis module** (restorer): a 44.1-kHz magnitude STFT (torchlibrosa, 2048-point Hann
  window, hop 441, centred with reflect padding), a 128-band HTK mel filterbank, then
  ``Generator(n_mel=128, hidden=1025, channels=2)``: a BN-GRU mask on the mel spectrogram
  (the "denoiser") and a ResUNet (``UNetResComplex_100Mb``) on ``[log10 mel, log10 masked
  mel]`` whose output is added to the masked log mel. Its checkpoint ``vf.ckpt`` is a flat
  state dict of the package's ``restorer.model.VoiceFixer`` module (keys ``generator.*``,
  ``f_helper.*``, ``mel.*``, ``vocoder.*``); the package loads the keys its module has and
  ignores the rest;
* the **synthesis module** (vocoder): the TFGAN generator of ``vocoder/model/generator.py``
  at 44.1 kHz (``Config.refresh(44100)``), conditioned on the restored mel divided by the
  package's mel weighting, in dB - 20, normalised to [-4, 4], with 4 or 5 frames of -4 padded
  at the end. Its checkpoint ``model.ckpt-1490000_trimed.pt`` is ``{"generator": state}``.

The package downloads both files from Zenodo into ``~/.cache/voicefixer`` the first time its
packages ``voicefixer``, ``voicefixer.restorer`` or ``voicefixer.vocoder`` are imported
(module-level code in their ``__init__.py``). ``package_modules`` therefore imports only the
modules that define the networks, under empty stand-ins for those three package modules, so
nothing is downloaded and nothing under ``~/.cache/voicefixer`` is read or written. The
stand-ins stay in ``sys.modules`` for the rest of the process: ``import voicefixer`` then gives
the empty stand-in (``voicefixer.base`` and the other modules import as usual). Importing the
package's model module also sets ``KMP_DUPLICATE_LIB_OK=True`` in the environment, as it does
for every user of the package.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import importlib.machinery
import importlib.util
import pickle
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gensr_bench.errors import ConfigError
from gensr_bench.weights import WeightsError

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 441
N_MELS = 128
#: The package restores 30-s segments one after the other (``restore_inmem``).
SEGMENT_SAMPLES = SAMPLE_RATE * 30
#: The STFT's reflect padding needs more samples than half a window.
MIN_SAMPLES = N_FFT // 2 + 1
INSTALL_HINT = (
    "install it as ./install.sh does: pip install --no-deps voicefixer==0.1.3 "
    "torchlibrosa==0.1.0 (its other listed dependencies are not needed to run it)"
)
#: Package modules whose ``__init__`` downloads checkpoints; replaced by empty stand-ins.
_DOWNLOADING_PACKAGES = ("", "restorer", "vocoder")


class VoiceFixerCheckpointError(WeightsError):
    """A weight file is not the VoiceFixer checkpoint this model can load."""


@dataclass(frozen=True)
class PackageModules:
    """The modules of the ``voicefixer`` package that define the networks."""

    restorer: types.ModuleType  # voicefixer.restorer.model
    vocoder: types.ModuleType  # voicefixer.vocoder.model.generator
    vocoder_util: types.ModuleType  # voicefixer.vocoder.model.util
    config: Any  # voicefixer.vocoder.config.Config (class attributes, set for 44.1 kHz)
    stft: types.ModuleType  # torchlibrosa.stft (what FDomainHelper builds its STFT with)
    mel_scale: types.ModuleType  # voicefixer.tools.mel_scale


@functools.cache
def package_modules() -> PackageModules:
    """Import the network modules of ``voicefixer`` without running its downloading
    ``__init__`` files (see the module docstring). Raises ConfigError when it is missing."""
    # PathFinder looks on sys.path only: the stand-ins below have no spec of their own.
    spec = importlib.machinery.PathFinder.find_spec("voicefixer")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model 'voicefixer' needs the voicefixer package; {INSTALL_HINT}")
    if importlib.util.find_spec("torchlibrosa") is None:
        raise ConfigError(f"model 'voicefixer' needs the torchlibrosa package; {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    for sub in _DOWNLOADING_PACKAGES:
        name = "voicefixer" + (f".{sub}" if sub else "")
        if name not in sys.modules:
            # A stand-in package: submodules import from its folder, its __init__ never runs.
            stand_in = types.ModuleType(name, "stand-in: gensr-bench skips the downloads")
            stand_in.__path__ = [str(root / sub if sub else root)]
            stand_in.__package__ = name
            sys.modules[name] = stand_in
    try:
        config = importlib.import_module("voicefixer.vocoder.config").Config
        config.refresh(SAMPLE_RATE)  # the 44.1-kHz vocoder's sizes (the package does this too)
        return PackageModules(
            restorer=importlib.import_module("voicefixer.restorer.model"),
            vocoder=importlib.import_module("voicefixer.vocoder.model.generator"),
            vocoder_util=importlib.import_module("voicefixer.vocoder.model.util"),
            config=config,
            stft=importlib.import_module("torchlibrosa.stft"),
            mel_scale=importlib.import_module("voicefixer.tools.mel_scale"),
        )
    except ImportError as exc:
        raise ConfigError(
            f"model 'voicefixer' could not import the voicefixer package ({exc}); {INSTALL_HINT}"
        ) from exc


@functools.cache
def _stft_prototype() -> torch.nn.Module:
    """The package's STFT, built once per process: its DFT matrix takes seconds to compute."""
    return package_modules().stft.STFT(
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window="hann",
        center=(True,),  # sic: the package passes a tuple, which torchlibrosa reads as true
        pad_mode="reflect",
        freeze_parameters=True,
    )


def build_restorer(device: str | None = None) -> torch.nn.Module:
    """The analysis module with the module names of the package's ``restorer.model.VoiceFixer``
    (``f_helper``, ``mel``, ``generator``), so that ``vf.ckpt`` keys load as they are; built as
    the package builds it for 44.1 kHz, without the vocoder its constructor also loads (from
    its cache folder). ``device="meta"`` builds the generator without initialising its
    weights (``load_restorer`` then assigns them); the STFT and mel filters are always built
    (the checkpoint's copies, when it has them, replace them, as in the package).
    """
    import torch

    modules = package_modules()
    restorer = torch.nn.Module()
    # FDomainHelper(window_size=2048, hop_size=441, center=(True,), pad_mode="reflect",
    # window="hann", freeze_parameters=True) as the package builds it, less its inverse STFT,
    # which inference never uses (and which takes seconds to build): the same ``f_helper.stft``.
    restorer.f_helper = torch.nn.Module()
    restorer.f_helper.stft = copy.deepcopy(_stft_prototype())
    restorer.mel = modules.mel_scale.MelScale(
        n_mels=N_MELS, sample_rate=SAMPLE_RATE, n_stft=N_FFT // 2 + 1
    )
    with torch.device(device) if device else contextlib.nullcontext():
        restorer.generator = modules.restorer.Generator(N_MELS, N_FFT // 2 + 1, 2)
    return restorer


def build_vocoder(device: str | None = None) -> torch.nn.Module:
    """The 44.1-kHz TFGAN generator with weight norm (as trained); ``device="meta"`` builds it
    without initialising its weights (``load_vocoder`` then assigns them)."""
    import torch

    modules = package_modules()
    with torch.device(device) if device else contextlib.nullcontext():
        return modules.vocoder.Generator(modules.config.cin_channels)


def read_checkpoint(path: Path, unsafe_load: bool = False) -> Any:
    """``torch.load`` of a checkpoint on the CPU, tensors only unless ``unsafe_load``."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=not unsafe_load)
    except pickle.UnpicklingError as exc:
        # torch names what it refused on a line "WeightsUnpickler error: Unsupported global".
        detail = next(
            (line.strip() for line in str(exc).splitlines() if "WeightsUnpickler" in line),
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        if "Unsupported global" not in detail:
            raise VoiceFixerCheckpointError(
                f"{path} is not a readable torch checkpoint ({detail})"
            ) from exc
        raise VoiceFixerCheckpointError(
            f"{path} holds Python objects other than tensors, so it was not loaded (it could "
            "run code); if it is the official file, pass --model-option unsafe_load=true to "
            f"load it anyway ({detail})"
        ) from exc
    except Exception as exc:
        raise VoiceFixerCheckpointError(
            f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def load_state(
    module: torch.nn.Module, state: Mapping[str, Any], path: Path, required_prefix: str
) -> None:
    """Load ``state`` into ``module`` the package's way (keys the module lacks are ignored),
    but refuse a file that leaves any ``required_prefix`` weight of the module unset."""
    if not isinstance(state, Mapping) or not state:
        raise VoiceFixerCheckpointError(f"{path} holds no state dict")
    try:
        missing, _unexpected = module.load_state_dict(dict(state), strict=False, assign=True)
    except RuntimeError as exc:  # a weight of another shape
        raise VoiceFixerCheckpointError(
            f"{path} does not fit the VoiceFixer network: {exc}"
        ) from exc
    missing = [key for key in missing if key.startswith(required_prefix)]
    # Weights built on the meta device and not in the file have no values at all.
    missing += [
        name
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]
        if tensor.is_meta and name not in missing
    ]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise VoiceFixerCheckpointError(
            f"{path} lacks {len(missing)} weight(s) of the VoiceFixer network ({shown}): it is "
            "not the expected VoiceFixer checkpoint"
        )


def load_restorer(path: Path, unsafe_load: bool = False) -> torch.nn.Module:
    """The analysis module with the weights of ``vf.ckpt`` (a flat state dict), in eval mode
    (the package's mode 0)."""
    state = read_checkpoint(path, unsafe_load)
    if not isinstance(state, Mapping) or not any(
        str(key).startswith("generator.") for key in state
    ):
        raise VoiceFixerCheckpointError(
            f"{path} has no 'generator.*' weights: it is not the VoiceFixer analysis module "
            "checkpoint vf.ckpt (a state dict of the package's restorer)"
        )
    restorer = build_restorer(device="meta")
    load_state(restorer, state, path, "generator.")
    return restorer.eval()


def load_vocoder(path: Path, unsafe_load: bool = False) -> torch.nn.Module:
    """The vocoder with the weights of ``model.ckpt-1490000_trimed.pt`` (``{"generator":
    state}``), weight norm folded into the weights, in eval mode.

    The package calls the old ``torch.nn.utils.remove_weight_norm``, which does nothing to the
    ``parametrizations.weight_norm`` its generator now uses (it catches the ValueError); the
    result is the same network, recomputing ``g v / |v|`` at every call. Folding it once with
    ``remove_parametrizations`` gives the same weights and saves that work. Checkpoints with the
    old ``weight_g``/``weight_v`` names load through torch's compatibility hook.
    """
    from torch.nn.utils import parametrize

    checkpoint = read_checkpoint(path, unsafe_load)
    if not isinstance(checkpoint, Mapping) or "generator" not in checkpoint:
        raise VoiceFixerCheckpointError(
            f"{path} has no 'generator' entry: it is not the VoiceFixer vocoder checkpoint "
            "model.ckpt-1490000_trimed.pt"
        )
    vocoder = build_vocoder()  # initialised, then overwritten: faster than the meta device here
    load_state(vocoder, checkpoint["generator"], path, "")
    for module in vocoder.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    for parameter in vocoder.parameters():
        parameter.requires_grad_(False)
    return vocoder.eval()


def mel_weight() -> torch.Tensor:
    """The package's per-band weighting the vocoder's condition is divided by, (1,1,1,128)."""
    modules = package_modules()
    return modules.config.get_mel_weight_torch(percent=1.0)[None, None, None, ...]


def vocoder_condition(mel: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``Vocoder.forward`` before the generator: the restored (linear) mel (B, 1, T, 128) to
    the generator's condition (B, 128, T + 4 + T mod 2), via the package's own helpers."""
    util = package_modules().vocoder_util
    mel = mel / weight.to(mel)
    mel = util.tr_normalize(util.tr_amp_to_db(mel.abs()) - 20.0)
    return util.tr_pre(mel[:, 0, ...])
