"""Reading AnyEnhance's published weights folder (``amphion/anyenhance`` on the Hugging Face hub).

The folder holds ``anyenhance-360M-selfcritic-v2.json`` (the configuration, JSON5 as the
reference reads it), ``epoch-1-step-300000-loss-4.3083/model.pt`` (the network's state dict, the
codec's excluded, keys possibly prefixed ``module.``) and ``dac/weights.pth`` (the 44.1 kHz DAC).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .codec import DAC, load_codec, read_checkpoint
from .layout import (
    CODEC_FILE,
    CONFIG_FILE,
    IGNORED_PREFIXES,
    MODEL_FILE,
    CheckpointError,
    missing_files_message,
)
from .network import AnyEnhanceConfig, AnyEnhanceNet


def read_config(path: Path) -> AnyEnhanceConfig:
    """The configuration from its JSON file (JSON5 comments and trailing commas need json5)."""
    text = path.read_text(encoding="utf-8")
    data: Any
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            import json5
        except ImportError:
            raise CheckpointError(
                f"{path} is not plain JSON ({exc}); install json5 to read JSON5 configs"
            ) from exc
        data = json5.loads(text)
    try:
        return AnyEnhanceConfig.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not an AnyEnhance configuration: {exc!r}") from exc


@dataclass
class LoadedAnyEnhance:
    net: AnyEnhanceNet
    codec: DAC
    sha256: str
    ignored_keys: list[str] = field(default_factory=list)

    def __deepcopy__(self, memo: dict[int, Any]) -> LoadedAnyEnhance:
        # the DPO reference is a deep copy of the model: copy the network, share the frozen
        # codec and w2v-BERT
        from .policy import share_frozen

        return share_frozen(self, memo)


def network_state(raw: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The network's tensors (``module.`` prefix removed) and the keys left out."""
    state, ignored = {}, []
    for key, value in raw.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name.startswith(IGNORED_PREFIXES) or not isinstance(value, torch.Tensor):
            ignored.append(key)
        else:
            state[name] = value.float() if value.is_floating_point() else value
    return state, ignored


def _semantic(folder: Path, given: str | Path | None, config: Path) -> Any:
    from .semantic import SEMANTIC_FOLDER, SEMANTIC_HUB_ID, load_semantic

    source = given if given is not None else folder / SEMANTIC_FOLDER
    if given is None and not Path(source).is_dir():
        raise CheckpointError(
            f"{config} asks for the noisy-audio semantic embedding (use_noisy_audio_embed), "
            f"which needs w2v-BERT 2.0: no folder {source}. Get it where the hub is reachable "
            f"with `huggingface-cli download {SEMANTIC_HUB_ID} --local-dir {source}`, or pass "
            "--model-option semantic_model=<folder>."
        )
    return load_semantic(source)


def file_sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def load_folder(
    folder: Path,
    config_file: str = CONFIG_FILE,
    model_file: str = MODEL_FILE,
    codec_file: str = CODEC_FILE,
    semantic_model: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> LoadedAnyEnhance:
    """Build the network and codec from a weights folder; every tensor of the network must load.

    A configuration with ``use_noisy_audio_embed`` also needs w2v-BERT 2.0: ``semantic_model``
    (a folder written by ``save_pretrained``, or a hub id), by default ``<folder>/w2v-bert-2.0``.
    The weights are read on the CPU, then the network, codec and w2v-BERT are moved to
    ``device`` (``--device``; ``cpu`` leaves them where they are).
    """
    paths = [folder / config_file, folder / model_file, folder / codec_file]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise CheckpointError(
            f"the AnyEnhance weights folder {folder} lacks {', '.join(absent)}; "
            + missing_files_message(folder, [folder])
        )
    cfg = read_config(paths[0])
    net = AnyEnhanceNet(cfg)
    raw = read_checkpoint(paths[1])
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{paths[1]} is not a state dict")
    state, ignored = network_state(raw)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing:
        raise CheckpointError(
            f"{paths[1]} does not match {paths[0]}: {len(missing)} tensors missing "
            f"(first: {', '.join(sorted(missing)[:5])})"
        )
    net.eval().requires_grad_(False).to(device)
    if cfg.audio_encoder.use_noisy_audio_embed:
        net.audio_encoder.semantic = _semantic(folder, semantic_model, paths[0]).to(device)
    codec = load_codec(paths[2]).to(device)
    if codec.hop_length * cfg.window_tokens != cfg.audio_encoder.hop_length * cfg.window_tokens:
        raise CheckpointError(
            f"the codec's hop ({codec.hop_length}) differs from the audio encoder's "
            f"({cfg.audio_encoder.hop_length}) in {paths[0]}"
        )
    return LoadedAnyEnhance(net, codec, file_sha256(paths), sorted([*ignored, *unexpected]))
