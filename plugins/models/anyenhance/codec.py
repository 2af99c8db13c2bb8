"""The Descript Audio Codec (DAC) that AnyEnhance tokenises and synthesises with.

Our own implementation of the published architecture (Kumar et al. 2023, "High-Fidelity Audio
Compression with Improved RVQGAN"): a convolutional encoder with Snake activations, residual
vector quantisation with factorised, l2-normalised codebooks, and a transposed-convolution
decoder. Module and parameter names follow the published checkpoints (``weights.pth`` holds
``{"state_dict": ..., "metadata": {"kwargs": ...}}``; convolutions are weight-normalised, stored
as ``weight_g`` / ``weight_v``), so the published 44.1 kHz weights load as they are, without the
``descript-audio-codec`` package (which needs torchaudio through ``descript-audiotools``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gensr_bench.errors import GensrError


class CodecError(GensrError):
    """A DAC checkpoint cannot be read or does not match its configuration."""


def _weight_norm(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # weight = g * v / ||v||, the norm taken over every dimension but the first (dim=0)
    norm = v.pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
    return v * (g / norm)


class WNConv1d(nn.Module):
    """A weight-normalised 1-D convolution (parameters ``weight_g``, ``weight_v``, ``bias``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight_v = nn.Parameter(torch.randn(c_out, c_in, kernel_size) * 0.02)
        self.weight_g = nn.Parameter(
            self.weight_v.detach().flatten(1).norm(dim=1)[:, None, None].clone()
        )
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _weight_norm(self.weight_v, self.weight_g)
        return F.conv1d(x, weight, self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(nn.Module):
    """A weight-normalised transposed 1-D convolution (norm over the input channels, dim 0)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight_v = nn.Parameter(torch.randn(c_in, c_out, kernel_size) * 0.02)
        self.weight_g = nn.Parameter(
            self.weight_v.detach().flatten(1).norm(dim=1)[:, None, None].clone()
        )
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _weight_norm(self.weight_v, self.weight_g)
        return F.conv_transpose1d(x, weight, self.bias, self.stride, self.padding)


class Snake1d(nn.Module):
    """``x + sin(alpha x)^2 / alpha`` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(dim),
            WNConv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation),
            Snake1d(dim),
            WNConv1d(dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        crop = (x.shape[-1] - y.shape[-1]) // 2
        if crop > 0:
            x = x[..., crop:-crop]
        return x + y


class _Block(nn.Module):
    """Layers applied in order, named ``block`` (DAC's ``EncoderBlock`` and ``DecoderBlock``)."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def _encoder_block(dim: int, stride: int) -> nn.Module:
    half = dim // 2
    return _Block(
        ResidualUnit(half, 1),
        ResidualUnit(half, 3),
        ResidualUnit(half, 9),
        Snake1d(half),
        WNConv1d(half, dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
    )


def _decoder_block(c_in: int, c_out: int, stride: int) -> nn.Module:
    return _Block(
        Snake1d(c_in),
        WNConvTranspose1d(c_in, c_out, 2 * stride, stride, math.ceil(stride / 2)),
        ResidualUnit(c_out, 1),
        ResidualUnit(c_out, 3),
        ResidualUnit(c_out, 9),
    )


class Encoder(nn.Module):
    def __init__(self, d_model: int, strides: Sequence[int], d_latent: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(1, d_model, 7, padding=3)]
        for stride in strides:
            d_model *= 2
            layers.append(_encoder_block(d_model, stride))
        layers += [Snake1d(d_model), WNConv1d(d_model, d_latent, 3, padding=1)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Decoder(nn.Module):
    def __init__(self, c_in: int, channels: int, rates: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(c_in, channels, 7, padding=3)]
        out = channels
        for i, stride in enumerate(rates):
            out = channels // 2 ** (i + 1)
            layers.append(_decoder_block(channels // 2**i, out, stride))
        layers += [Snake1d(out), WNConv1d(out, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class VectorQuantizer(nn.Module):
    """One codebook: project down, nearest l2-normalised code, project back up."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_proj = WNConv1d(input_dim, codebook_dim, 1)
        self.out_proj = WNConv1d(codebook_dim, input_dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def nearest(self, latents: torch.Tensor) -> torch.Tensor:
        """Code indices ``[B, T]`` of the projected latents ``[B, D, T]``."""
        b = latents.shape[0]
        enc = F.normalize(latents.transpose(1, 2).reshape(-1, latents.shape[1]))
        book = F.normalize(self.codebook.weight)
        dist = (
            enc.pow(2).sum(1, keepdim=True)
            - 2 * enc @ book.t()
            + book.pow(2).sum(1, keepdim=True).t()
        )
        return (-dist).max(1)[1].reshape(b, -1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors ``[B, D, T]`` of ``codes [B, T]``."""
        return F.embedding(codes, self.codebook.weight).transpose(1, 2)


class ResidualVectorQuantizer(nn.Module):
    def __init__(
        self,
        input_dim: int,
        n_codebooks: int,
        codebook_size: int,
        codebook_dim: int | Sequence[int],
    ) -> None:
        super().__init__()
        dims = [codebook_dim] * n_codebooks if isinstance(codebook_dim, int) else list(codebook_dim)
        self.quantizers = nn.ModuleList(VectorQuantizer(input_dim, codebook_size, d) for d in dims)

    def encode(
        self, z: torch.Tensor, n_quantizers: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_q [B, D, T], codes [B, N, T])`` of the encoder output ``z``."""
        residual, z_q, codes = z, torch.zeros_like(z), []
        for quantizer in list(self.quantizers)[: n_quantizers or len(self.quantizers)]:
            assert isinstance(quantizer, VectorQuantizer)
            indices = quantizer.nearest(quantizer.in_proj(residual))
            z_q_i = quantizer.out_proj(quantizer.lookup(indices))
            z_q = z_q + z_q_i
            residual = residual - z_q_i
            codes.append(indices)
        return z_q, torch.stack(codes, dim=1)

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The quantised latent ``[B, D, T]`` of ``codes [B, N, T]`` (first N codebooks)."""
        z_q: torch.Tensor | float = 0.0
        for i in range(codes.shape[1]):
            quantizer = self.quantizers[i]
            assert isinstance(quantizer, VectorQuantizer)
            z_q = z_q + quantizer.out_proj(quantizer.lookup(codes[:, i, :]))
        assert isinstance(z_q, torch.Tensor)
        return z_q


@dataclass(frozen=True)
class CodecConfig:
    """The constructor arguments of a DAC checkpoint (its ``metadata.kwargs``)."""

    encoder_dim: int = 64
    encoder_rates: tuple[int, ...] = (2, 4, 8, 8)
    latent_dim: int | None = None
    decoder_dim: int = 1536
    decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
    n_codebooks: int = 9
    codebook_size: int = 1024
    codebook_dim: int | tuple[int, ...] = 8
    sample_rate: int = 44100
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> CodecConfig:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in known:
                values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values, extra={k: v for k, v in kwargs.items() if k not in known})


class DAC(nn.Module):
    """The codec: ``encode(audio) -> codes``, ``decode(codes) -> audio`` at ``sample_rate``."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        latent = config.latent_dim or config.encoder_dim * 2 ** len(config.encoder_rates)
        self.sample_rate = config.sample_rate
        self.hop_length = math.prod(config.encoder_rates)
        self.encoder = Encoder(config.encoder_dim, config.encoder_rates, latent)
        self.quantizer = ResidualVectorQuantizer(
            latent, config.n_codebooks, config.codebook_size, config.codebook_dim
        )
        self.decoder = Decoder(latent, config.decoder_dim, config.decoder_rates)

    def preprocess(self, audio: torch.Tensor) -> torch.Tensor:
        """Right-pad ``audio [..., T]`` with zeros to a multiple of the hop length."""
        pad = math.ceil(audio.shape[-1] / self.hop_length) * self.hop_length - audio.shape[-1]
        return F.pad(audio, (0, pad))

    def encode(self, audio: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        """Codes ``[B, N, T / hop]`` of ``audio [B, 1, T]`` (padded to a multiple of the hop)."""
        return self.quantizer.encode(self.encoder(self.preprocess(audio)), n_quantizers)[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, T * hop]`` of ``codes [B, N, T]``."""
        return self.decoder(self.quantizer.from_codes(codes))


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` a checkpoint the user supplied, tensors only when that suffices.

    Published checkpoints may pickle plain Python objects beside their tensors (DAC's metadata);
    those need the full unpickler, which is safe only for files the user trusts.
    """
    import pickle

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as restricted:
        # Not an error yet: the file holds more than tensors (DAC's metadata), which only the
        # full unpickler reads. Its reason is kept for the error below if that fails too.
        tensors_only = restricted
    except (OSError, RuntimeError, EOFError) as exc:
        raise CodecError(f"cannot read the checkpoint {path}: {exc}") from exc
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CodecError(
            f"cannot read the checkpoint {path}: {exc} (read as tensors only: {tensors_only})"
        ) from exc


def load_codec(path: str | Path) -> DAC:
    """Load a DAC ``weights.pth`` (the layout ``dac.DAC.load`` reads) into our ``DAC``."""
    blob = read_checkpoint(path)
    if isinstance(blob, Mapping) and "state_dict" in blob:
        state = blob["state_dict"]
        kwargs = dict((blob.get("metadata") or {}).get("kwargs") or {})
    elif isinstance(blob, Mapping):
        state, kwargs = blob, {}
    else:
        raise CodecError(f"{path} is not a DAC checkpoint (expected a dict with 'state_dict')")
    model = DAC(CodecConfig.from_kwargs(kwargs))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CodecError(
            f"{path} does not match the DAC configuration {kwargs or '(defaults)'}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return model.eval().requires_grad_(False)
