"""``fm-small``: conditional flow matching over continuous log-magnitude frames.

The path starts at the degraded input plus Gaussian noise, ``x0 = y + sigma * eps``, and runs
straight to the clean frames ``x1``: ``x_t = (1 - t) x0 + t x1`` (velocity ``x1 - x0``). The
network predicts the clean frames as a residual on the degraded ones, ``x1_hat = y + f(x_t,
t, c)``, and the velocity follows as ``(x1_hat - x_t) / (1 - t)``: predicting the clean frame
is the easy solution (issue 5 measured a plain velocity target from pure noise far below the
degraded input after 22 minutes of CPU training). Sampling integrates with Euler steps;
classifier-free guidance mixes predictions with and without the condition ``c`` (the encoded
degraded input), which training drops with probability ``cond_drop``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from .base import FrameNet, GenerativeModel, eval_mode
from .data import FrameBatch
from .nets import ConditionEncoder, NetConfig, Transformer, time_embedding
from .tokenizer import SpectralTokenizer

SIGMA = 0.5
COND_DROP = 0.1
T_MAX = 0.999


class FMNet(FrameNet):
    def __init__(self, cfg: NetConfig, tokenizer: SpectralTokenizer) -> None:
        super().__init__(cfg, tokenizer)
        bins = tokenizer.n_bins
        self.sigma = float(cfg.extra.get("sigma", SIGMA))
        self.cond_drop = float(cfg.extra.get("cond_drop", COND_DROP))
        self.cond = ConditionEncoder(bins, cfg)
        self.null = nn.Parameter(torch.zeros(cfg.d_model))
        self.inp = nn.Linear(bins, cfg.d_model)
        self.time = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model)
        )
        self.body = Transformer(cfg)
        self.head = nn.Linear(cfg.d_model, bins)
        # Zero-initialised residual: the untrained model returns the degraded frames.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def condition(
        self, y: torch.Tensor, valid: torch.Tensor, use_cond: torch.Tensor
    ) -> torch.Tensor:
        """The encoded condition ``[B, T, D]``; ``use_cond [B]`` False puts the null there."""
        return torch.where(use_cond[:, None, None], self.cond(y, valid), self.null)

    def predict_clean(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        valid: torch.Tensor,
        use_cond: torch.Tensor,
        encoded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x1_hat [B, T, bins]``; ``use_cond [B]`` False replaces the condition by a null.

        ``encoded``: ``condition(y, valid, use_cond)`` when the caller already has it (the
        sampler encodes the condition once, not at every step).
        """
        c = self.condition(y, valid, use_cond) if encoded is None else encoded
        temb = self.time(time_embedding(t, self.cfg.d_model))[:, None]
        h = self.body(self.inp(x_t) + c + temb, key_padding=~valid)
        return y + self.head(h)

    def path(
        self, batch: FrameBatch, t: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_t, target velocity)`` at times ``t [B]`` with noise ``[B, T, bins]``."""
        x0 = batch.cond + self.sigma * noise
        tt = t[:, None, None]
        return (1 - tt) * x0 + tt * batch.target, batch.target - x0

    def velocity(
        self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        use = torch.ones(len(t), dtype=torch.bool, device=t.device)
        x1_hat = self.predict_clean(x_t, t, y, valid, use)
        return (x1_hat - x_t) / (1 - t.clamp(max=T_MAX))[:, None, None]

    def training_loss(self, batch: FrameBatch, generator: torch.Generator) -> torch.Tensor:
        b, device = len(batch), batch.cond.device
        # Drawn on the CPU (the same draws on every device), used where the batch is.
        t = torch.rand(b, generator=generator).to(device)
        noise = torch.randn(batch.cond.shape, generator=generator).to(device)
        x_t, _ = self.path(batch, t, noise)
        use = (torch.rand(b, generator=generator) >= self.cond_drop).to(device)
        x1_hat = self.predict_clean(x_t, t, batch.cond, batch.valid, use)
        err = (x1_hat - batch.target).square().mean(-1)
        return err[batch.valid].mean()

    def velocity_error(
        self, batch: FrameBatch, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Per-sample flow-matching error ``[B]`` at ``(t, noise)``, averaged over valid frames
        and bins, in the net's own (clean-frame) parametrisation: ``||x1_hat - x1||^2``.

        That is the velocity error ``||v_theta(x_t, t) - (x1 - x0)||^2`` weighted by
        ``(1 - t)^2`` (``v = (x1_hat - x_t) / (1 - t)``), and it is the net's training loss,
        as Diffusion-DPO wants. Unweighted, the velocity error of a clean-frame predictor grows
        as ``1 / (1 - t)^2``: on fm-small's synth-gsr-train pairs the reference terms ranged from
        0.07 to 1.1e6, so the few draws with ``t`` near 1 decided every DPO margin.
        """
        x_t, _ = self.path(batch, t, noise)
        use = torch.ones(len(t), dtype=torch.bool, device=t.device)
        x1_hat = self.predict_clean(x_t, t, batch.cond, batch.valid, use)
        err = (x1_hat - batch.target).square().mean(-1) * batch.valid
        return err.sum(-1) / batch.valid.sum(-1).clamp_min(1)

    def guided(self, x1_cond: torch.Tensor, x1_uncond: torch.Tensor, scale: float) -> torch.Tensor:
        """Classifier-free guidance ``x_u + s (x_c - x_u)``, kept within the clean range.

        Guidance extrapolates in the log-magnitude domain, so a scale of 3 triples every
        log-ratio between the two predictions: measured with ``fm-piper`` on
        ``piper-gsr-train`` inputs, unbounded outputs at scale 3 peaked at 2 to 9e4 times full
        scale (benchmarks/alignment/RESULTS.md). Each guided value is therefore bounded by the
        tokenizer's lowest and highest level of its bin (the range of clean training speech,
        which AR and MGM cannot leave at all) or by the conditional prediction, whichever is
        further out: guidance may not push a bin beyond both.
        """
        out = x1_uncond + scale * (x1_cond - x1_uncond)
        book = self.tokenizer.codebook.to(out.dtype)
        upper = torch.maximum(x1_cond, book[:, -1])
        lower = torch.minimum(x1_cond, book[:, 0])
        return torch.maximum(torch.minimum(out, upper), lower)

    def generate(
        self, cond: torch.Tensor, generator: torch.Generator, settings: Mapping[str, Any]
    ) -> torch.Tensor:
        b, t, _ = cond.shape
        steps = int(settings.get("steps", 20))
        scale = float(settings.get("cfg_scale", 1.0))
        device = cond.device
        valid = torch.ones(b, t, dtype=torch.bool, device=device)
        # In float64 torch draws normals with scalar code, the same on every CPU (float32 draws
        # take an AVX2 path where the CPU has one); drawn on the CPU, then moved to the device.
        noise = torch.randn(cond.shape, generator=generator, dtype=cond.dtype)
        x = cond + self.sigma * noise.to(device)
        on = torch.ones(b, dtype=torch.bool, device=device)
        with_cond = self.condition(cond, valid, on)
        without = self.condition(cond, valid, ~on) if scale != 1.0 else with_cond
        for k in range(steps):
            tk = torch.full((b,), k / steps, dtype=cond.dtype, device=device)
            x1_hat = self.predict_clean(x, tk, cond, valid, on, with_cond)
            if scale != 1.0:
                x1_uncond = self.predict_clean(x, tk, cond, valid, ~on, without)
                x1_hat = self.guided(x1_hat, x1_uncond, scale)
            v = (x1_hat - x) / (1 - tk)[:, None, None]
            x = x + v / steps
        return x


class FMSmall(GenerativeModel):
    """Flow-matching transformer over log-magnitude frames (small enough for a CPU).

    Sampling options: ``steps`` (Euler steps, 20) and ``cfg_scale`` (guidance, 1.0 = none).
    """

    name = "fm-small"
    #: 3: guided sampling (cfg_scale != 1) bounded by the clean range (``FMNet.guided``).
    version = "3"
    paradigm = "fm"
    net_class = FMNet
    default_sampling: ClassVar[dict[str, Any]] = {"steps": 20, "cfg_scale": 1.0}
    candidate_sampling: ClassVar[dict[str, Any]] = {"steps": [10, 40], "cfg_scale": [1.0, 3.0]}

    def alignment_inputs(
        self, batch: FrameBatch, generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, noise)``: one draw per pair, shared by its chosen and rejected output."""
        pairs = len(generators)
        lengths = self.pair_lengths(batch, pairs)
        t = torch.zeros(2 * pairs)
        noise = torch.zeros(batch.cond.shape)
        for i, generator in enumerate(generators):
            t_i = torch.rand(1, generator=generator)
            drawn = torch.randn((lengths[i], noise.shape[-1]), generator=generator)
            for j in (i, i + pairs):
                t[j] = t_i
                noise[j, : lengths[i]] = drawn
        device = batch.cond.device  # drawn on the CPU, used where the batch is
        return t.to(device), noise.to(device)

    def velocity_error(
        self, batch: FrameBatch, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Per-sample velocity error ``[B]`` at explicit times ``t`` and ``noise``; the
        condition is never dropped and dropout is off, so copies of a model agree exactly."""
        net = self.trainable_module()
        assert isinstance(net, FMNet)
        with eval_mode(net):
            return net.velocity_error(batch, t, noise)


class FMSmallDPO(FMSmall):
    """fm-small after multi-metric DPO on its own candidates (benchmarks/alignment/RESULTS.md).

    Pairs unanimous on NISQA MOS, DNSMOS OVRL, ESTOI and speaker similarity over 300
    ``synth-gsr-train`` inputs, 8 candidates each; 500 DPO steps (``gensr-bench align``'s
    defaults). Sampling options as ``fm-small``.
    """

    name = "fm-small-dpo"
    checkpoint_model = "fm-small"


class FMPiper(FMSmall):
    """fm-small fine-tuned on neural-voice speech (``piper-gsr-train``; issue 23, item 1).

    From the shipped ``fm-small`` (``init``), 800 steps at lr 3e-4 on crops of the first 300
    ``piper-gsr-train`` utterances (the recipe is in its manifest). On ``piper-gsr`` it beats
    ``identity`` on DNSMOS OVRL and NISQA, which ``fm-small`` does not on NISQA
    (benchmarks/alignment/RESULTS.md). Sampling options as ``fm-small``.
    """

    name = "fm-piper"
    checkpoint_model = "fm-small"


class FMPiperDPO(FMSmall):
    """fm-piper after multi-metric DPO on its own candidates (issue 23; RESULTS.md).

    Pairs unanimous on NISQA MOS, DNSMOS OVRL, Whisper CER and speaker similarity over the
    first 100 ``piper-gsr-train`` inputs, 8 candidates each; 500 DPO steps (``gensr-bench
    align``'s defaults). Sampling options as ``fm-small``.
    """

    name = "fm-piper-dpo"
    checkpoint_model = "fm-piper"
