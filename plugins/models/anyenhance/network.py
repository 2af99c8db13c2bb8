"""AnyEnhance's network (Zhang et al. 2025, "AnyEnhance: A Unified Generative Model with
Prompt-Guidance and Self-Critic for Voice Enhancement and Extraction").

Our own implementation of the published architecture, with module and parameter names that match
the published checkpoint (``epoch-1-step-300000-loss-4.3083/model.pt``) so it loads as it is:

- ``audio_encoder``: the degraded waveform's STFT (no analysis window), compressed magnitude
  ``|X|^0.3`` batch-normalised per bin beside the phase, an MLP, the task embedding, positions
  (sinusoidal or rotary) and one or more transformer paths whose outputs are summed later;
- ``code_emb``: one embedding table per codebook (``num_tokens + 1`` rows, the last the mask),
  summed over codebooks;
- ``transformer``: a bidirectional transformer (q/k l2-normalised with learned scales, a learned
  null key/value, GEGLU feed-forward) with one logit head per codebook, optional
  self-conditioning on the previous step's embedding, and a learned null condition for
  classifier-free guidance;
- ``token_critic``: scores each token's chance of being wrong, from the logits (v1) or from the
  transformer's embedding with one head per codebook (v2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """Layer norm with a learned gain and a fixed (buffer) bias, as the checkpoint stores it."""

    beta: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = x.chunk(2, dim=-1)
        return gate * F.gelu(value)


def feed_forward(dim: int, mult: float = 4) -> nn.Sequential:
    inner = int(dim * mult * 2 / 3)
    return nn.Sequential(
        LayerNorm(dim),
        nn.Linear(dim, inner * 2, bias=False),
        GEGLU(),
        LayerNorm(inner),
        nn.Linear(inner, dim, bias=False),
    )


class SinusoidalPositions(nn.Module):
    """Adds fixed sine/cosine positions (stored in the checkpoint as a frozen parameter)."""

    def __init__(self, seq_len: int, dim: int) -> None:
        super().__init__()
        position = torch.arange(seq_len).unsqueeze(1)
        freq = torch.exp(torch.arange(0, dim, 2) * -(math.log(10000.0) / dim))
        table = torch.zeros(seq_len, dim)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq)
        self.sinusoidal_embeddings = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sinusoidal_embeddings[: x.shape[1]]


def rotary_frequencies(dim_head: int, seq_len: int, theta: float = 10000.0) -> torch.Tensor:
    """Complex rotations ``[seq_len, dim_head / 2]`` for rotary positions on adjacent pairs."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim_head, 2)[: dim_head // 2].float() / dim_head))
    angles = torch.outer(torch.arange(seq_len), freqs).float()
    return torch.polar(torch.ones_like(angles), angles)


def _on(freqs: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """The rotary table on ``x``'s device. It is a plain attribute, not a buffer (the
    checkpoint has none, and ``Module.to(dtype)`` would drop a buffer's imaginary part), so
    ``.to(device)`` leaves it on the CPU: it follows the input here (a no-op on the CPU)."""
    return None if freqs is None else freqs.to(x.device)


def _rotate(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    # x: [b, h, n, d] -> pairs (d/2 complex numbers) rotated by position
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * freqs[: x.shape[2]]).flatten(3).type_as(x)


class Attention(nn.Module):
    """Self-attention with l2-normalised queries and keys, a fixed scale and a null key/value."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, scale: float = 8) -> None:
        super().__init__()
        self.heads, self.scale = heads, scale
        inner = dim_head * heads
        self.norm = LayerNorm(dim)
        self.null_kv = nn.Parameter(torch.randn(2, heads, 1, dim_head))
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        k, v = self.to_kv(x).chunk(2, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, n, self.heads, -1).transpose(1, 2)

        q, k, v = heads(self.to_q(x)), heads(k), heads(v)
        if freqs is not None:
            q, k = _rotate(q, freqs), _rotate(k, freqs)
        null_k, null_v = (t.unsqueeze(0).expand(b, -1, -1, -1) for t in self.null_kv)
        k = torch.cat((null_k, k), dim=-2)
        v = torch.cat((null_v, v), dim=-2)
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        attn = (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class TransformerBlocks(nn.Module):
    """``depth`` pre-norm attention + feed-forward layers and a final norm."""

    def __init__(
        self, dim: int, depth: int, dim_head: int = 64, heads: int = 8, ff_mult: float = 4
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, dim_head, heads), feed_forward(dim, ff_mult)])
            for _ in range(depth)
        )
        self.norm = LayerNorm(dim)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            assert isinstance(layer, nn.ModuleList)
            x = layer[0](x, freqs) + x
            x = layer[1](x) + x
        return self.norm(x)


@dataclass(frozen=True)
class TransformerConfig:
    """The checkpoint's ``MaskGitTransformer`` section."""

    num_tokens: int
    dim: int
    seq_len: int
    depth: int
    dim_head: int = 64
    heads: int = 8
    ff_mult: float = 4
    vq_layers: int = 1
    self_cond: bool = False
    use_rotary_pos_enc: bool = False
    dim_out: int | None = None


class MaskGitTransformer(nn.Module):
    """The demasking transformer: logits ``[B, vq_layers, n, num_tokens]`` and the embedding."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.dim, self.vq_layers, self.seq_len = cfg.dim, cfg.vq_layers, cfg.seq_len
        self.num_tokens = cfg.num_tokens
        self.mask_id = cfg.num_tokens
        self.dim_out = cfg.dim_out or cfg.num_tokens
        self.self_cond = cfg.self_cond
        self.freqs: torch.Tensor | None = None
        if cfg.use_rotary_pos_enc:
            self.freqs = rotary_frequencies(cfg.dim_head, cfg.seq_len)
        else:
            self.pos_emb = SinusoidalPositions(cfg.seq_len, cfg.dim)
        self.null_embed = nn.Parameter(torch.randn(cfg.dim))
        self.transformer_blocks = TransformerBlocks(
            cfg.dim, cfg.depth, cfg.dim_head, cfg.heads, cfg.ff_mult
        )
        self.norm = LayerNorm(cfg.dim)  # in the checkpoint, unused by the forward pass
        self.to_logits = nn.ModuleList(
            nn.Linear(cfg.dim, self.dim_out, bias=False) for _ in range(cfg.vq_layers)
        )
        self.self_cond_to_init_embed = feed_forward(cfg.dim)

    def forward(
        self,
        code_embeds: torch.Tensor,
        audio_embeds: Sequence[torch.Tensor],
        task_embeds: torch.Tensor | None,
        self_cond_embed: torch.Tensor | None = None,
        drop_condition: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        condition = torch.stack(list(audio_embeds), dim=1).sum(dim=1)
        if drop_condition:  # the null condition of classifier-free guidance
            condition = self.null_embed.expand_as(condition)
        x = code_embeds + condition
        if task_embeds is not None:
            x = x + task_embeds
        if self.freqs is None:
            x = self.pos_emb(x)
        if self.self_cond:
            previous = torch.zeros_like(x) if self_cond_embed is None else self_cond_embed
            x = x + self.self_cond_to_init_embed(previous)
        embed = self.transformer_blocks(x, _on(self.freqs, x))
        logits = torch.stack([head(embed) for head in self.to_logits], dim=1)
        return logits, embed

    def guided(
        self,
        code_embeds: torch.Tensor,
        audio_embeds: Sequence[torch.Tensor],
        task_embeds: torch.Tensor | None,
        self_cond_embed: torch.Tensor | None,
        cond_scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits with classifier-free guidance at ``cond_scale`` (1: none) and the embedding."""
        logits, embed = self(code_embeds, audio_embeds, task_embeds, self_cond_embed)
        if cond_scale == 1:
            return logits, embed
        null_logits, _ = self(
            code_embeds, audio_embeds, task_embeds, self_cond_embed, drop_condition=True
        )
        return null_logits + (logits - null_logits) * cond_scale, embed


class TokenCritic(nn.Module):
    """Scores ``[B, vq_layers, n]``: how likely each token is wrong (re-masked first).

    v1 projects the transformer's logits (``to_pred`` one linear layer); v2 projects its
    embedding with one head per codebook (``to_pred`` a list). ``net`` is the same transformer
    the generator uses (the checkpoint stores it twice, under both names).
    """

    def __init__(self, net: MaskGitTransformer, v2: bool) -> None:
        super().__init__()
        self.net = net
        self.v2 = v2
        self.to_pred: nn.Module
        if v2:
            self.to_pred = nn.ModuleList(nn.Linear(net.dim, 1) for _ in range(net.vq_layers))
        else:
            self.to_pred = nn.Linear(net.dim_out, 1)

    def forward(
        self,
        code_embeds: torch.Tensor,
        audio_embeds: Sequence[torch.Tensor],
        task_embeds: torch.Tensor | None,
        self_cond_embed: torch.Tensor | None,
        cond_scale: float,
    ) -> torch.Tensor:
        logits, embed = self.net.guided(
            code_embeds, audio_embeds, task_embeds, self_cond_embed, cond_scale
        )
        if self.v2:
            assert isinstance(self.to_pred, nn.ModuleList)
            return torch.stack([head(embed) for head in self.to_pred], dim=1)[..., 0]
        return self.to_pred(logits)[..., 0]


@dataclass(frozen=True)
class AudioEncoderConfig:
    """The checkpoint's ``AudioEncoder`` section."""

    dim: int
    seq_len: int
    input_dim: int
    n_fft: int
    hop_length: int
    win_length: int
    mlp_layers: tuple[int, ...]
    transformer_layers: int = 6
    transformer_dim: int = 512
    transformer_heads: int = 8
    transformer_ff_mult: float = 4
    transformer_dim_head: int = 64
    use_rotary_pos_enc: bool = False
    num_transformer_paths: int = 1
    use_noisy_audio_embed: bool = False


class AudioEncoder(nn.Module):
    """Encodes the degraded waveform into one condition ``[B, n, dim]`` per transformer path."""

    def __init__(self, cfg: AudioEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.hop_length = cfg.hop_length
        self.batch_norm = nn.BatchNorm1d(cfg.input_dim)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.input_dim * 2, cfg.mlp_layers[0]),
            nn.ReLU(),
            nn.Linear(cfg.mlp_layers[0], cfg.mlp_layers[1]),
        )
        self.transformer_paths = nn.ModuleList(
            TransformerBlocks(
                cfg.transformer_dim,
                cfg.transformer_layers,
                cfg.transformer_dim_head,
                cfg.transformer_heads,
                cfg.transformer_ff_mult,
            )
            for _ in range(cfg.num_transformer_paths)
        )
        self.freqs: torch.Tensor | None = None
        if cfg.use_rotary_pos_enc:
            self.freqs = rotary_frequencies(cfg.transformer_dim_head, cfg.seq_len)
        else:
            self.pos_emb = SinusoidalPositions(cfg.seq_len, cfg.transformer_dim)
        # trained to match a semantic model's features; in the checkpoint, unused at inference
        self.embed_proj = nn.ModuleList(
            nn.Sequential(
                nn.Linear(cfg.transformer_dim, cfg.transformer_dim),
                nn.SiLU(),
                nn.Linear(cfg.transformer_dim, cfg.transformer_dim),
                nn.SiLU(),
                nn.Linear(cfg.transformer_dim, cfg.transformer_dim),
            )
            for _ in range(cfg.num_transformer_paths)
        )
        #: ``use_noisy_audio_embed``: ``semantic(audio [B, 1, T], seq_len, dim)``, the
        #: w2v-BERT condition (semantic.SemanticEmbedder), attached by the loader.
        self.semantic: Callable[[torch.Tensor, int, int], torch.Tensor] | None = None

    def forward(self, audio: torch.Tensor, task_embeds: torch.Tensor | None) -> list[torch.Tensor]:
        """``audio [B, 1, T]`` -> one ``[B, T / hop, dim]`` embedding per path."""
        x = audio.reshape(audio.shape[0], -1)
        spec = torch.stft(
            x,
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            win_length=self.cfg.win_length,
            # the reference passes none: rectangular (made on the input's device)
            window=torch.ones(self.cfg.win_length, device=x.device),
            return_complex=True,
        )
        magnitude = (spec.real**2 + spec.imag**2) ** 0.15
        phase = torch.atan2(spec.imag, spec.real)
        features = torch.cat((self.batch_norm(magnitude), phase), dim=1)[:, :, :-1].transpose(1, 2)
        h = self.mlp(features).reshape(x.shape[0], -1, self.cfg.dim)
        if task_embeds is not None:
            h = h + task_embeds
        if self.freqs is None:
            h = self.pos_emb(h)
        freqs = _on(self.freqs, h)
        embeddings = [path(h, freqs) for path in self.transformer_paths]
        if self.cfg.use_noisy_audio_embed:
            if self.semantic is None:
                raise RuntimeError("use_noisy_audio_embed needs the semantic model attached")
            embeddings.append(self.semantic(x[:, None], self.cfg.seq_len, self.cfg.dim))
        return embeddings


@dataclass(frozen=True)
class AnyEnhanceConfig:
    """The three sections of the published JSON config (``model`` -> sections)."""

    transformer: TransformerConfig
    audio_encoder: AudioEncoderConfig
    seq_len: int
    prompt_len: int
    vq_layers: int
    task_num: int
    self_critic: bool = False
    critic_v2: bool = False

    @property
    def window_tokens(self) -> int:
        return self.seq_len + self.prompt_len

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnyEnhanceConfig:
        model = data.get("model", data)
        transformer = _pick(TransformerConfig, model["MaskGitTransformer"])
        encoder_section = dict(model["AudioEncoder"])
        encoder_section["mlp_layers"] = tuple(encoder_section["mlp_layers"])
        encoder = _pick(AudioEncoderConfig, encoder_section)
        section = model["AnyEnhance"]
        return cls(
            transformer=transformer,
            audio_encoder=encoder,
            seq_len=int(section["seq_len"]),
            prompt_len=int(section["prompt_len"]),
            vq_layers=int(section["vq_layers"]),
            task_num=int(section["task_num"]),
            self_critic=bool(section.get("self_critic", False)),
            critic_v2=bool(section.get("critic_v2", False)),
        )


def _pick(cls: Any, section: Mapping[str, Any]) -> Any:
    """Build a config dataclass from a JSON section, ignoring training-only keys."""
    fields = cls.__dataclass_fields__
    return cls(**{key: value for key, value in section.items() if key in fields})


class AnyEnhanceNet(nn.Module):
    """Everything of the checkpoint but the codec (whose weights ship separately)."""

    def __init__(self, cfg: AnyEnhanceConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.transformer = MaskGitTransformer(cfg.transformer)
        self.audio_encoder = AudioEncoder(cfg.audio_encoder)
        self.code_emb = nn.ModuleList(
            nn.Embedding(cfg.transformer.num_tokens + 1, cfg.transformer.dim)
            for _ in range(cfg.vq_layers)
        )
        self.task_emb = nn.Embedding(cfg.task_num, cfg.transformer.dim)
        self.token_critic: TokenCritic | None = None
        if cfg.self_critic:
            self.token_critic = TokenCritic(self.transformer, cfg.critic_v2)

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, vq_layers, n]`` (mask id allowed) -> summed embeddings ``[B, n, dim]``."""
        return torch.stack(
            [table(codes[:, i]) for i, table in enumerate(self.code_emb)], dim=1
        ).sum(dim=1)
