"""Small transformer building blocks shared by the AR, MGM and FM models.

Positions reach the transformer only through a convolutional front end over the conditioning
frames (and, for AR, through the causal mask), so a model trained on short crops runs on
utterances of any length. ``Transformer.step`` runs a causal model one frame at a time with a
key/value cache, which keeps autoregressive sampling linear in the length.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    """Sizes of a model network (saved in checkpoints)."""

    d_model: int = 160
    layers: int = 4
    heads: int = 4
    ff: int = 512
    dropout: float = 0.1
    conv_kernel: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetConfig:
        return cls(**data)


class Block(nn.Module):
    """Pre-norm transformer block: self-attention then a GELU feed-forward layer."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ff), nn.GELU(), nn.Linear(cfg.ff, cfg.d_model)
        )
        self.drop = nn.Dropout(cfg.dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        *,
        causal: bool = False,
        key_padding: torch.Tensor | None = None,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x [B, T, D]``; ``key_padding [B, T]`` is True at padded frames (not attended to).

        With ``cache`` (a dict, filled in place) ``x`` holds only new frames of a causal model.
        """
        q, k, v = (self._split(part) for part in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        mask = None
        if key_padding is not None:
            mask = ~key_padding[:, None, None, :]  # True = attend
        if causal and cache is None:
            t = x.shape[1]
            lower = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            mask = lower if mask is None else mask & lower
        p = self.drop.p if self.training else 0.0
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        b, h, t, dh = attn.shape
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, t, h * dh)))
        return x + self.drop(self.ff(self.norm2(x)))


class Transformer(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(
        self, x: torch.Tensor, *, causal: bool = False, key_padding: torch.Tensor | None = None
    ) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, causal=causal, key_padding=key_padding)
        return self.norm(x)

    def step(self, x: torch.Tensor, caches: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """Causal forward of new frames ``x [B, 1, D]`` given the caches of earlier frames."""
        for block, cache in zip(self.blocks, caches, strict=True):
            x = block(x, causal=True, cache=cache)
        return self.norm(x)


class ConditionEncoder(nn.Module):
    """Degraded frames ``[B, T, bins]`` to ``[B, T, D]``: two 1-D convolutions (local context)."""

    def __init__(self, n_bins: int, cfg: NetConfig) -> None:
        super().__init__()
        pad = cfg.conv_kernel // 2
        self.conv1 = nn.Conv1d(n_bins, cfg.d_model, cfg.conv_kernel, padding=pad)
        self.conv2 = nn.Conv1d(cfg.d_model, cfg.d_model, cfg.conv_kernel, padding=pad)

    def forward(self, cond: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``valid [B, T]`` False at padding: padded frames (and the first convolution's output
        there) are zeroed, so a frame's encoding never depends on the padding after it."""
        x = cond.transpose(1, 2)
        keep = None if valid is None else valid[:, None, :]
        if keep is not None:
            x = torch.where(keep, x, 0.0)
        h = F.gelu(self.conv1(x))
        if keep is not None:
            h = torch.where(keep, h, 0.0)
        return (h + F.gelu(self.conv2(h))).transpose(1, 2)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of flow times ``t [B]`` in [0, 1], in the precision
    of ``t`` (float32 for any other dtype)."""
    half = dim // 2
    dtype = t.dtype if t.dtype == torch.float64 else torch.float32
    steps = torch.arange(half, device=t.device, dtype=dtype)
    freqs = torch.exp(-math.log(1000.0) * steps / half)
    angles = t[:, None].to(dtype) * 100.0 * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
