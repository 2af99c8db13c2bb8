"""What DPO needs from AnyEnhance (``AlignablePolicy``, the MGM paradigm).

An item (degraded input, model output) becomes whole windows of ``hop x (seq_len +
prompt_len)`` samples, consecutive and not overlapping, the last zero-padded: the degraded
windows condition the network (as in inference, without a prompt), the output's DAC codes are
the targets. The likelihood term is the summed log-probability of the output's codes at the
positions of a random mask, given the unmasked codes, summed over an item's windows; the mask
(one per window, its share ``cos(pi/2 r)``, ``r ~ U(0, 1)``, of the valid tokens, at least one,
the reference's training schedule) is drawn from the pair's generator and shared by policy and
reference. Padding never counts.

Devices: a batch is made on the network's device (the degraded windows and the output's codes,
computed by the codec where it is); masks are drawn on the CPU from the pairs' generators and
moved; ``masked_logprob`` moves its inputs to the network's device (a no-op when they are
there), so a batch follows the module it is scored by.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from gensr_bench.errors import ConfigError
from gensr_bench.records import Audio

from .layout import CODEC_FILE, CONFIG_FILE, MODEL_FILE
from .settings import TASKS

if TYPE_CHECKING:
    from .checkpoint import LoadedAnyEnhance
    from .network import AnyEnhanceNet

MANIFEST = "manifest.json"


@dataclass
class WindowBatch:
    """``audio [N, 1, W]`` degraded windows, ``codes [N, L, n]`` the output's codes, ``valid
    [N, n]`` real (unpadded) token positions, ``owner [N]`` the item of each window."""

    audio: torch.Tensor
    codes: torch.Tensor
    valid: torch.Tensor
    owner: torch.Tensor
    items: int

    def __len__(self) -> int:
        return self.items

    def windows_of(self, item: int) -> list[int]:
        return [i for i, owner in enumerate(self.owner.tolist()) if owner == item]


def _mono(audio: Audio, rate: int, what: str) -> np.ndarray:
    if audio.sample_rate != rate:
        raise ConfigError(f"{what} is at {audio.sample_rate} Hz; AnyEnhance works at {rate} Hz")
    samples = np.asarray(audio.samples, dtype=np.float32)
    return samples.mean(axis=0) if samples.ndim > 1 else samples


@torch.no_grad()
def window_batch(
    loaded: LoadedAnyEnhance, degraded: Sequence[Audio], outputs: Sequence[Audio]
) -> WindowBatch:
    codec, cfg = loaded.codec, loaded.net.cfg
    device = next(loaded.net.parameters()).device
    codec_device = next(codec.parameters()).device
    window = codec.hop_length * cfg.window_tokens
    audio, targets, valid, owner = [], [], [], []
    for item, (d, o) in enumerate(zip(degraded, outputs, strict=True)):
        out = _mono(o, codec.sample_rate, f"output {item}")
        cond = _mono(d, codec.sample_rate, f"degraded input {item}")[: len(out)]
        n_windows = max(1, math.ceil(len(out) / window))
        size = n_windows * window
        out_t = torch.from_numpy(np.pad(out, (0, size - len(out)))).reshape(n_windows, 1, window)
        cond_t = torch.from_numpy(np.pad(cond, (0, size - len(cond)))).reshape(n_windows, 1, -1)
        audio.append(cond_t)
        targets.append(out_t)
        for k in range(n_windows):
            real = min(window, len(out) - k * window)
            tokens = max(1, math.ceil(real / codec.hop_length))
            valid.append(torch.arange(cfg.window_tokens) < tokens)
            owner.append(item)
    windows = torch.cat(targets).to(codec_device)
    return WindowBatch(
        audio=torch.cat(audio).to(device),
        codes=codec.encode(windows).to(device),
        valid=torch.stack(valid).to(device),
        owner=torch.tensor(owner, dtype=torch.long, device=device),
        items=len(outputs),
    )


def draw_mask(batch: WindowBatch, item: int, generator: torch.Generator, out: torch.Tensor) -> None:
    """Fill ``out [N, L, n]`` at ``item``'s windows with a training-schedule mask (drawn on
    the CPU from ``generator``; ``out`` may be anywhere)."""
    layers = batch.codes.shape[1]
    valid = batch.valid.sum(dim=1).tolist()
    for w in batch.windows_of(item):
        tokens = int(valid[w])
        count = layers * tokens
        share = math.cos(math.pi / 2 * float(torch.rand(1, generator=generator)))
        chosen = torch.randperm(count, generator=generator)[: max(1, round(share * count))]
        flat = torch.zeros(count, dtype=torch.bool)
        flat[chosen] = True
        out[w, :, :tokens] = flat.reshape(layers, tokens).to(out.device)


def masked_logprob(net: AnyEnhanceNet, batch: WindowBatch, mask: torch.Tensor) -> torch.Tensor:
    """Per item: summed log-probability of the codes at ``mask [N, L, n]`` (valid tokens), on
    the network's device (the batch and mask are moved there)."""
    n = net.cfg.window_tokens
    device = next(net.parameters()).device
    codes, valid, owner = batch.codes.to(device), batch.valid.to(device), batch.owner.to(device)
    mask = mask.to(device)
    windows = codes.shape[0]
    inputs = codes.masked_fill(mask, net.transformer.mask_id)
    task = torch.full((windows,), TASKS["enhancement"], dtype=torch.long, device=device)
    task_embeds = net.task_emb(task).unsqueeze(1).repeat(1, n, 1)
    audio_embeds = net.audio_encoder(batch.audio.to(device), task_embeds)
    logits, _ = net.transformer(net.embed_codes(inputs), audio_embeds, task_embeds)
    picked = F.log_softmax(logits, dim=-1).gather(-1, codes[..., None])[..., 0]
    keep = mask & valid[:, None, :]
    per_window = (picked * keep).sum(dim=(1, 2))
    total = torch.zeros(batch.items, dtype=per_window.dtype, device=device)
    return total.index_add(0, owner, per_window)


def alignment_masks(batch: WindowBatch, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """A mask per window of each pair element (chosen, then rejected), from the pair's
    generator, for a batch of ``2 x pairs`` outputs (chosen ones first); drawn on the CPU,
    returned on the batch's device."""
    pairs = len(generators)
    if len(batch) != 2 * pairs:
        raise ValueError(f"a batch of {len(batch)} outputs cannot hold {pairs} pairs")
    mask = torch.zeros(batch.codes.shape, dtype=torch.bool)
    for i, generator in enumerate(generators):
        for item in (i, i + pairs):
            draw_mask(batch, item, generator, mask)
    return mask.to(batch.codes.device)


def sequence_logprob(net: AnyEnhanceNet, batch: WindowBatch, mask: torch.Tensor) -> torch.Tensor:
    """``masked_logprob`` in eval mode (batch norm fixed; the network has no dropout)."""
    was_training = net.training
    net.eval()
    try:
        return masked_logprob(net, batch, mask)
    finally:
        net.train(was_training)


def supervised_loss(
    net: AnyEnhanceNet, batch: WindowBatch, generator: torch.Generator
) -> torch.Tensor:
    """Cross-entropy of the masked codes (mean per masked token), outputs as targets: the
    reference's token loss (its critic and semantic-feature losses are not included)."""
    mask = torch.zeros(batch.codes.shape, dtype=torch.bool)
    for item in range(len(batch)):
        draw_mask(batch, item, generator, mask)
    total = masked_logprob(net, batch, mask).sum()
    counted = (mask & batch.valid.cpu()[:, None, :]).sum().clamp_min(1)
    return -total / counted.to(total.device)


def save_folder(
    loaded: LoadedAnyEnhance, source: Path, directory: Path, record: Mapping[str, Any]
) -> Path:
    """The published folder layout with the current network: the config and codec copied from
    ``source``, w2v-BERT linked, and ``manifest.json`` (``record`` plus the files' sha256)."""
    from .checkpoint import file_sha256
    from .semantic import SEMANTIC_FOLDER

    directory = Path(directory)
    (directory / MODEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    (directory / CODEC_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / CONFIG_FILE, directory / CONFIG_FILE)
    shutil.copyfile(source / CODEC_FILE, directory / CODEC_FILE)
    semantic = source / SEMANTIC_FOLDER
    if semantic.is_dir() and not (directory / SEMANTIC_FOLDER).exists():
        (directory / SEMANTIC_FOLDER).symlink_to(semantic.resolve(), target_is_directory=True)
    # saved from the CPU, wherever the network trained
    state = {k: v.detach().cpu().clone() for k, v in loaded.net.state_dict().items()}
    torch.save(state, directory / MODEL_FILE)
    paths = [directory / CONFIG_FILE, directory / MODEL_FILE, directory / CODEC_FILE]
    manifest = {**dict(record), "sha256": file_sha256(paths)}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return directory


def share_frozen(loaded: LoadedAnyEnhance, memo: dict[int, Any]) -> LoadedAnyEnhance:
    """A copy whose network is new and whose frozen codec (and w2v-BERT) are shared: the DPO
    reference is a deep copy of the model, and those parts never train."""
    from .checkpoint import LoadedAnyEnhance

    semantic = loaded.net.audio_encoder.semantic
    memo[id(loaded.codec)] = loaded.codec
    if semantic is not None:
        memo[id(semantic)] = semantic
    return LoadedAnyEnhance(
        copy.deepcopy(loaded.net, memo), loaded.codec, loaded.sha256, list(loaded.ignored_keys)
    )
