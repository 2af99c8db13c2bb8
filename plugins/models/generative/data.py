"""Training crops: clean speech from a suite, degraded afresh for every crop.

With a built-in synthetic suite (``synth-*``) every crop gets a newly drawn degradation chain
of the suite's recipe, so a model never sees the same degraded input twice. Any other suite
is used as it is: random crops of its (degraded, reference) pairs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import Suite

from . import features as ft
from .tokenizer import SpectralTokenizer


@dataclass
class FrameBatch:
    """Normalised log-magnitude frames of a batch.

    ``cond`` holds the degraded input and ``target`` the clean speech (both ``[B, T, bins]``);
    ``valid [B, T]`` is False at padding.
    """

    cond: torch.Tensor
    target: torch.Tensor
    valid: torch.Tensor

    def __len__(self) -> int:
        return int(self.cond.shape[0])


def frame_batch(
    pairs: list[tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]],
    tokenizer: SpectralTokenizer,
) -> FrameBatch:
    """A padded batch from (degraded, clean) waveform pairs; both share the degraded gain.

    The features are computed on the CPU; the batch is made where the tokenizer is (its
    network's device)."""
    device = tokenizer.mean.device
    conds, targets = [], []
    for degraded, clean in pairs:
        prepared = ft.prepare(degraded)
        clean_wave = torch.from_numpy(np.asarray(clean, dtype=np.float32) * prepared.gain)
        conds.append(tokenizer.normalise(prepared.logmag.to(device)))
        clean_logmag = ft.log_magnitude(ft.stft(clean_wave))
        targets.append(tokenizer.normalise(clean_logmag.to(device)))
    length = max(len(c) for c in conds)
    bins = tokenizer.n_bins
    cond = torch.zeros(len(pairs), length, bins, device=device)
    target = torch.zeros(len(pairs), length, bins, device=device)
    valid = torch.zeros(len(pairs), length, dtype=torch.bool, device=device)
    for i, (c, t) in enumerate(zip(conds, targets, strict=True)):
        n = min(len(c), len(t))
        cond[i, :n], target[i, :n], valid[i, :n] = c[:n], t[:n], True
    return FrameBatch(cond, target, valid)


class CropSampler:
    """Draws batches of training crops of ``crop_s`` seconds from a suite."""

    def __init__(self, suite: Suite, crop_s: float, seed: int, redraw: bool = True) -> None:
        self.crop = int(crop_s * ft.SAMPLE_RATE)
        self.rng = np.random.default_rng(seed)
        self.clean: list[npt.NDArray[np.float32]] = []
        self.degraded: list[npt.NDArray[np.float32]] = []
        for utt in suite:
            if utt.degraded is None or utt.reference is None:
                continue
            self.clean.append(utt.reference.samples)
            self.degraded.append(utt.degraded.samples)
        if not self.clean:
            raise ConfigError(
                f"suite {suite.name!r} has no utterances with both degraded audio and a clean "
                "reference; training needs pairs (e.g. --suite synth-gsr-train)"
            )
        self.recipe: str | None = getattr(suite, "recipe", None) if redraw else None

    def reseeded(self, seed: int) -> CropSampler:
        """The same pool of speech (loaded once) with its own random stream."""
        other = copy.copy(self)
        other.rng = np.random.default_rng(seed)
        return other

    def _crop(self, *signals: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        n = len(signals[0])
        if n <= self.crop:
            return [np.pad(s[:n], (0, self.crop - n)) for s in signals]
        start = int(self.rng.integers(n - self.crop))
        return [s[start : start + self.crop] for s in signals]

    def pair(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """One (degraded, clean) crop."""
        index = int(self.rng.integers(len(self.clean)))
        if self.recipe is None:
            degraded, clean = self._crop(self.degraded[index], self.clean[index])
            return degraded, clean
        from gensr_bench_plugins.suites import chains

        (clean,) = self._crop(self.clean[index])
        stages, params = chains.draw_chain(self.recipe, self.rng)
        talkers = []
        if params.get("noise_type") == "babble":
            for _ in range(int(params["babble_talkers"])):
                other = self.clean[int(self.rng.integers(len(self.clean)))]
                talkers.append(np.resize(other, len(clean)).astype(np.float32))
        reference, degraded = chains.apply_chain(
            clean, stages, params, self.recipe, self.rng, talkers
        )
        peak = max(float(np.max(np.abs(degraded))), float(np.max(np.abs(reference))), 1e-9)
        scale = min(1.0, 0.99 / peak)
        return (degraded * scale).astype(np.float32), (reference * scale).astype(np.float32)

    def batch(self, size: int, tokenizer: SpectralTokenizer) -> FrameBatch:
        return frame_batch([self.pair() for _ in range(size)], tokenizer)
