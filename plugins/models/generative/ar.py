"""``ar-small``: an autoregressive transformer over frames of spectral tokens.

Frame ``t`` is predicted from the degraded input (through a convolutional encoder with a few
frames of look-ahead) and the decoded values of frames ``< t`` (causal attention). The
``N_BINS`` tokens of a frame are independent given the network's state: one categorical head
per bin. Sampling runs frame by frame with a key/value cache (top-k 25, nucleus 0.8,
temperature 1.0 as in the paper).
"""

from __future__ import annotations

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


class ARNet(FrameNet):
    def __init__(self, cfg: NetConfig, tokenizer: SpectralTokenizer) -> None:
        super().__init__(cfg, tokenizer)
        bins, levels = tokenizer.n_bins, tokenizer.levels
        self.cond = ConditionEncoder(bins, cfg)
        self.prev = nn.Linear(bins, cfg.d_model)
        self.bos = nn.Parameter(torch.zeros(cfg.d_model))
        self.body = Transformer(cfg)
        self.head = nn.Linear(cfg.d_model, bins * levels)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        b, t, _ = h.shape
        return self.head(h).view(b, t, self.tokenizer.n_bins, self.tokenizer.levels)

    def forward(
        self, cond: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits ``[B, T, bins, levels]`` for target ``tokens [B, T, bins]``."""
        values = self.tokenizer.decode(tokens)
        prev = self.prev(values[:, :-1])
        first = self.bos.expand(len(cond), 1, -1)
        x = self.cond(cond, valid) + torch.cat([first, prev], dim=1)
        return self._logits(self.body(x, causal=True, key_padding=~valid))

    def training_loss(self, batch: FrameBatch, generator: torch.Generator) -> torch.Tensor:
        tokens = self.tokenizer.encode(batch.target)
        logits = self(batch.cond, tokens, batch.valid)
        loss = F.cross_entropy(logits.permute(0, 3, 1, 2), tokens, reduction="none")  # [B,T,F]
        return loss.mean(-1)[batch.valid].mean()

    def token_logprob(self, batch: FrameBatch, positions: torch.Tensor) -> torch.Tensor:
        """Summed log-probability ``[B]`` of the target tokens at frames ``positions [B, T]``."""
        tokens = self.tokenizer.encode(batch.target)
        logp = torch.log_softmax(self(batch.cond, tokens, batch.valid), dim=-1)
        picked = logp.gather(-1, tokens[..., None])[..., 0].sum(-1)  # [B, T]
        keep = positions & batch.valid
        return (picked * keep).sum(-1)

    def generate(
        self, cond: torch.Tensor, generator: torch.Generator, settings: Mapping[str, Any]
    ) -> torch.Tensor:
        b, t, _ = cond.shape
        h_cond = self.cond(cond)
        caches: list[dict[str, torch.Tensor]] = [{} for _ in self.body.blocks]
        x = h_cond[:, :1] + self.bos.expand(b, 1, -1)
        frames = []
        temperature = float(settings.get("temperature", 1.0))
        top_k, top_p = settings.get("top_k"), settings.get("top_p")
        mean = emit_mean(settings, "ar")
        book = self.tokenizer.codebook.to(cond.dtype)
        for i in range(t):
            h = self.body.step(x, caches)
            logits = self._logits(h)[:, 0]
            tokens = sample_tokens(logits, generator, temperature, top_k, top_p)
            values = self.tokenizer.decode(tokens)  # [B, bins]
            if mean:  # the next frame still conditions on the drawn tokens
                frames.append(expected_values(logits, book, temperature, top_k, top_p))
            else:
                frames.append(values)
            if i + 1 < t:
                x = h_cond[:, i + 1 : i + 2] + self.prev(values)[:, None]
        return torch.stack(frames, dim=1)


class ARSmall(GenerativeModel):
    """Autoregressive transformer over per-bin spectral tokens (small enough for a CPU).

    Sampling options: ``temperature`` (1.0), ``top_k`` (25), ``top_p`` (0.8), ``emit``
    (``sample``: each bin's drawn value; ``mean``: its mean under the distribution drawn from,
    while the next frame still conditions on the drawn tokens).
    """

    name = "ar-small"
    version = "2"
    paradigm = "ar"
    net_class = ARNet
    default_sampling: ClassVar[dict[str, Any]] = {
        "temperature": 1.0,
        "top_k": 25,
        "top_p": 0.8,
        "emit": "sample",
    }
    candidate_sampling: ClassVar[dict[str, Any]] = {"temperature": 1.0, "top_k": 25, "top_p": 0.8}

    def alignment_inputs(
        self, batch: FrameBatch, generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor]:
        """``(positions,)``: every valid frame (AR's term has no randomness)."""
        self.pair_lengths(batch, len(generators))
        return (batch.valid.clone(),)

    def scored_tokens(self, batch: FrameBatch, positions: torch.Tensor) -> torch.Tensor:
        """Tokens ``sequence_logprob`` sums ``[B]``: every bin of the valid target frames."""
        return (positions & batch.valid).sum(-1) * batch.cond.shape[-1]

    def sequence_logprob(self, batch: FrameBatch, positions: torch.Tensor) -> torch.Tensor:
        """Summed log-probability ``[B]`` of the output's tokens at the target ``positions``.

        ``positions [B, T]`` marks the frames that count; padding never does. Dropout is off.
        """
        net = self.trainable_module()
        assert isinstance(net, ARNet)
        with eval_mode(net):
            return net.token_logprob(batch, positions)


class ARSmallDPO(ARSmall):
    """ar-small after multi-metric DPO on its own candidates (benchmarks/alignment/RESULTS.md).

    Pairs unanimous on NISQA MOS, DNSMOS OVRL, ESTOI and speaker similarity over 300
    ``synth-gsr-train`` inputs, 8 candidates each; 500 DPO steps (``gensr-bench align``'s
    defaults, beta 0.1). Sampling options as ``ar-small``.
    """

    name = "ar-small-dpo"
    checkpoint_model = "ar-small"
