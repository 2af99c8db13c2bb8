"""``mgm-small``: a masked generative transformer over spectral tokens (MaskGIT-style).

Every token (frame x bin) can be masked. A frame enters the network as its decoded values
with masked bins zeroed plus a mask indicator per bin, added to the encoded degraded input;
a bidirectional transformer predicts every bin's token. Training masks a ratio
``cos(pi/2 * r)``, ``r ~ U(0, 1)``, of the tokens (the cosine schedule). Decoding starts fully
masked and, over ``steps`` iterations, samples every masked token (temperature, top-k,
nucleus) and keeps the most confident ones, leaving ``cos(pi/2 * (k+1)/steps)`` masked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    FrameNet,
    GenerativeModel,
    emit_mean,
    eval_mode,
    expected_values,
    sample_tokens,
)
from .data import FrameBatch
from .nets import ConditionEncoder, NetConfig, Transformer
from .tokenizer import SpectralTokenizer


class MGMNet(FrameNet):
    def __init__(self, cfg: NetConfig, tokenizer: SpectralTokenizer) -> None:
        super().__init__(cfg, tokenizer)
        bins, levels = tokenizer.n_bins, tokenizer.levels
        self.cond = ConditionEncoder(bins, cfg)
        self.inp = nn.Linear(2 * bins, cfg.d_model)
        self.body = Transformer(cfg)
        self.head = nn.Linear(cfg.d_model, bins * levels)

    def forward(
        self,
        cond: torch.Tensor,
        tokens: torch.Tensor,
        masked: torch.Tensor,
        valid: torch.Tensor,
        encoded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[B, T, bins, levels]``; ``masked [B, T, bins]`` hides those tokens.

        ``encoded``: ``self.cond(cond, valid)`` when the caller already has it (the sampler
        encodes the condition once, not at every step).
        """
        values = self.tokenizer.decode(tokens) * (~masked)
        flags = masked.to(values.dtype)
        c = self.cond(cond, valid) if encoded is None else encoded
        x = c + self.inp(torch.cat([values, flags], dim=-1))
        h = self.body(x, key_padding=~valid)
        b, t, _ = h.shape
        return self.head(h).view(b, t, self.tokenizer.n_bins, self.tokenizer.levels)

    def random_mask(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        """A training mask drawn on the CPU (the same draws on every device)."""
        ratio = torch.cos(math.pi / 2 * torch.rand(shape[0], generator=generator))
        return torch.rand(shape, generator=generator) < ratio[:, None, None]

    def training_loss(self, batch: FrameBatch, generator: torch.Generator) -> torch.Tensor:
        tokens = self.tokenizer.encode(batch.target)
        masked = self.random_mask(tokens.shape, generator).to(tokens.device)
        logits = self(batch.cond, tokens, masked, batch.valid)
        loss = F.cross_entropy(logits.permute(0, 3, 1, 2), tokens, reduction="none")
        weight = (masked & batch.valid[..., None]).float()
        return (loss * weight).sum() / weight.sum().clamp_min(1.0)

    def token_logprob(self, batch: FrameBatch, masked: torch.Tensor) -> torch.Tensor:
        """Summed log-probability ``[B]`` of the target tokens at the ``masked`` positions."""
        tokens = self.tokenizer.encode(batch.target)
        logp = torch.log_softmax(self(batch.cond, tokens, masked, batch.valid), dim=-1)
        picked = logp.gather(-1, tokens[..., None])[..., 0]  # [B, T, bins]
        keep = masked & batch.valid[..., None]
        return (picked * keep).sum((-1, -2))

    def generate(
        self, cond: torch.Tensor, generator: torch.Generator, settings: Mapping[str, Any]
    ) -> torch.Tensor:
        b, t, bins = cond.shape
        steps = int(settings.get("steps", 20))
        device = cond.device
        valid = torch.ones(b, t, dtype=torch.bool, device=device)
        tokens = torch.zeros(b, t, bins, dtype=torch.long, device=device)
        masked = torch.ones(b, t, bins, dtype=torch.bool, device=device)
        total = t * bins
        encoded = self.cond(cond, valid)
        temperature = float(settings.get("temperature", 1.0))
        top_k, top_p = settings.get("top_k"), settings.get("top_p")
        mean = emit_mean(settings, "mgm")
        means = torch.zeros(b, t, bins, dtype=cond.dtype, device=device)
        book = self.tokenizer.codebook.to(cond.dtype).expand(b, t, bins, -1)
        for k in range(steps):
            logits = self(cond, tokens, masked, valid, encoded)[masked]  # [N masked, levels]
            drawn = sample_tokens(logits, generator, temperature, top_k, top_p)
            if mean:  # each bin keeps the mean of the step that fixed its token
                means[masked] = expected_values(logits, book[masked], temperature, top_k, top_p)
            logp = torch.log_softmax(logits, dim=-1).gather(-1, drawn[:, None])[:, 0]
            tokens[masked] = drawn
            remaining = math.floor(total * math.cos(math.pi / 2 * (k + 1) / steps))
            if remaining <= 0:
                masked = torch.zeros_like(masked)
                break
            # Keep the most confident new tokens; the least confident stay masked (a token
            # fixed in an earlier step is never masked again).
            confidence = torch.full(masked.shape, math.inf, dtype=logp.dtype, device=device)
            confidence[masked] = logp
            flat = confidence.reshape(b, -1)
            threshold = torch.kthvalue(flat, remaining, dim=-1).values
            masked = (flat <= threshold[:, None]).reshape(b, t, bins) & masked
        return means if mean else self.tokenizer.decode(tokens)


class MGMSmall(GenerativeModel):
    """Masked generative transformer over per-bin spectral tokens (small enough for a CPU).

    Sampling options for ``restore``: ``steps`` (20), ``temperature`` (0.4), ``top_k``
    (none), ``top_p`` (0.5), ``emit`` (``sample``, or ``mean``: each bin's mean value under
    the distribution of the step that fixed its token); candidates (``sample``) use the
    paper's settings (steps 10-40, temperature 1.0, top-p 0.9). Generated frames are smoothed
    over 13 frames before synthesis. The restore defaults were picked on the first 12
    ``synth-gsr`` utterances (issue 5): at the paper's settings and 9 frames the single output
    scored DNSMOS OVRL 1.80 there, at these settings 1.91 (input 1.89); per-bin sampling noise
    is what costs quality.
    """

    name = "mgm-small"
    version = "2"
    paradigm = "mgm"
    net_class = MGMNet
    default_smooth = 13
    default_sampling: ClassVar[dict[str, Any]] = {
        "steps": 20,
        "temperature": 0.4,
        "top_k": None,
        "top_p": 0.5,
        "emit": "sample",
    }
    candidate_sampling: ClassVar[dict[str, Any]] = {
        "steps": [10, 40],
        "temperature": 1.0,
        "top_k": None,
        "top_p": 0.9,
    }

    def alignment_inputs(
        self, batch: FrameBatch, generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor]:
        """``(mask,)``: one random mask per pair element (chosen, then rejected, from the
        pair's generator), its ratio drawn from the training schedule, at least one token."""
        pairs = len(generators)
        self.pair_lengths(batch, pairs)
        lengths = batch.valid.sum(-1)
        mask = torch.zeros(batch.cond.shape, dtype=torch.bool)
        for i, generator in enumerate(generators):
            for j in (i, i + pairs):
                n = int(lengths[j])
                ratio = math.cos(math.pi / 2 * float(torch.rand(1, generator=generator)))
                drawn = torch.rand((n, mask.shape[-1]), generator=generator) < ratio
                if n and not bool(drawn.any()):
                    drawn.view(-1)[0] = True
                mask[j, :n] = drawn
        return (mask.to(batch.cond.device),)  # drawn on the CPU, used where the batch is

    def scored_tokens(self, batch: FrameBatch, masked: torch.Tensor) -> torch.Tensor:
        """Tokens ``sequence_logprob`` sums ``[B]``: the masked ones of valid frames."""
        return (masked & batch.valid[..., None]).sum((-1, -2))

    def sequence_logprob(self, batch: FrameBatch, masked: torch.Tensor) -> torch.Tensor:
        """Summed log-probability ``[B]`` of the output's tokens at the ``masked [B, T, bins]``
        positions, given the unmasked ones; padding never counts. Dropout is off."""
        net = self.trainable_module()
        assert isinstance(net, MGMNet)
        with eval_mode(net):
            return net.token_logprob(batch, masked)


class MGMSmallDPO(MGMSmall):
    """mgm-small after multi-metric DPO on its own candidates (benchmarks/alignment/RESULTS.md).

    Pairs unanimous on NISQA MOS, DNSMOS OVRL, ESTOI and speaker similarity over 300
    ``synth-gsr-train`` inputs, 8 candidates each; 500 DPO steps (``gensr-bench align``'s
    defaults, beta 10). Sampling options as ``mgm-small``.
    """

    name = "mgm-small-dpo"
    checkpoint_model = "mgm-small"
