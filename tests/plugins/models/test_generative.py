"""ar-small, mgm-small, fm-small: tokenizer, networks, sampling, alignment terms, training, CLI.

Everything runs on tiny networks (``tiny_net_config``) and a tokenizer fitted on a few seconds
of synthetic voiced speech (``tiny_spectral_tokenizer``), so the whole file takes seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gensr_bench.cli import main
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import Audio, Utterance
from gensr_bench.store import RunStore
from gensr_bench.testing import (
    ListSuite,
    add_noise,
    check_model_conformance,
    noisy_utterance,
    tiny_utterances,
    voiced_signal,
)
from gensr_bench_plugins.models import generative
from gensr_bench_plugins.models.generative import (
    ARSmall,
    ARSmallDPO,
    FMPiper,
    FMPiperDPO,
    FMSmall,
    FMSmallDPO,
    MGMSmall,
    MGMSmallDPO,
)
from gensr_bench_plugins.models.generative import features as ft
from gensr_bench_plugins.models.generative.ar import ARNet
from gensr_bench_plugins.models.generative.base import (
    MANIFEST,
    MODEL_FILE,
    FrameNet,
    GenerativeModel,
    expected_values,
    filter_logits,
    read_manifest,
    sample_tokens,
    save_checkpoint,
)
from gensr_bench_plugins.models.generative.data import FrameBatch, frame_batch
from gensr_bench_plugins.models.generative.fm import FMNet
from gensr_bench_plugins.models.generative.mgm import MGMNet
from gensr_bench_plugins.models.generative.nets import count_parameters
from gensr_bench_plugins.models.generative.testing import (
    tiny_generative_checkpoint,
    tiny_generative_net,
    tiny_net_config,
    tiny_spectral_tokenizer,
)
from gensr_bench_plugins.models.generative.tokenizer import (
    TOKENIZER_FILE,
    SpectralTokenizer,
    clean_frames,
    round_trip,
)
from gensr_bench_plugins.models.generative.training import LOG_FILE, STATE_FILE, train_net

TOY_PLUGINS = Path(__file__).parents[2] / "fixtures" / "toy_plugins"
MODELS: dict[str, type[GenerativeModel]] = {cls.name: cls for cls in (ARSmall, MGMSmall, FMSmall)}
NAMES = sorted(MODELS)
#: Model options that keep restoring cheap: few Griffin-Lim iterations and sampling steps.
FAST: dict[str, dict[str, Any]] = {
    "ar-small": {"gl_iterations": 2},
    "mgm-small": {"gl_iterations": 2, "steps": 2},
    "fm-small": {"gl_iterations": 2, "steps": 2},
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """The tensors here are tiny: a second intra-op thread saves nothing, and on a busy
    machine its spin-waiting slows these tests down by an order of magnitude."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer() -> SpectralTokenizer:
    return tiny_spectral_tokenizer(levels=8)


@pytest.fixture(scope="module")
def checkpoints(
    tmp_path_factory: pytest.TempPathFactory, tokenizer: SpectralTokenizer
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generative-checkpoints")
    return {name: tiny_generative_checkpoint(root / name, name, tokenizer) for name in NAMES}


def pairs(*seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(degraded, clean) waveform pairs of the given lengths (10 dB white noise)."""
    out = []
    for i, length in enumerate(seconds):
        utt = noisy_utterance(f"p{i}", seconds=length, snr_db=10.0, seed=3 + i)
        assert utt.degraded is not None and utt.reference is not None
        out.append((utt.degraded.samples, utt.reference.samples))
    return out


def single(batch: FrameBatch, i: int) -> FrameBatch:
    """Sample ``i`` of ``batch`` alone, cut to its valid frames (no padding at all)."""
    n = int(batch.valid[i].sum())
    return FrameBatch(
        batch.cond[i : i + 1, :n], batch.target[i : i + 1, :n], batch.valid[i : i + 1, :n]
    )


def pad_with_junk(batch: FrameBatch, extra: int, seed: int = 0) -> FrameBatch:
    """``batch`` with ``extra`` more padding frames holding arbitrary (random, large) values."""
    g = torch.Generator().manual_seed(seed)
    b, _, bins = batch.cond.shape
    junk = 5 * torch.randn(2, b, extra, bins, generator=g)
    return FrameBatch(
        torch.cat([batch.cond, junk[0]], dim=1),
        torch.cat([batch.target, junk[1]], dim=1),
        torch.cat([batch.valid, torch.zeros(b, extra, dtype=torch.bool)], dim=1),
    )


def model_with(name: str, net: FrameNet) -> GenerativeModel:
    """A model of ``name`` that uses ``net`` (no checkpoint is read)."""
    model = MODELS[name]()
    model.net = net
    return model


def close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=1e-3)


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_fit_sorts_codebooks_within_the_data_and_normalises_it() -> None:
    clips = [add_noise(voiced_signal(1.0, seed=20 + i), 30.0, i).samples for i in range(2)]
    frames = clean_frames(clips)
    assert frames.shape == (2 * ft.n_frames(16000), ft.N_BINS)
    tokenizer = SpectralTokenizer(8).fit(frames)
    book = tokenizer.codebook
    assert book.shape == (ft.N_BINS, 8)
    assert bool((book[:, 1:] >= book[:, :-1]).all()), "codebooks must be sorted"
    assert bool((book[:, 1:] > book[:, :-1]).any(dim=1).all()), "a bin collapsed to one value"
    values = tokenizer.normalise(frames)
    torch.testing.assert_close(values.mean(0), torch.zeros(ft.N_BINS), atol=1e-3, rtol=0)
    torch.testing.assert_close(values.std(0), torch.ones(ft.N_BINS), atol=1e-2, rtol=0)
    torch.testing.assert_close(tokenizer.denormalise(values), frames, rtol=0, atol=1e-4)
    # Lloyd centroids are means of cells, so they lie within the data of their bin.
    assert bool((book[:, 0] >= values.min(0).values - 1e-5).all())
    assert bool((book[:, -1] <= values.max(0).values + 1e-5).all())
    # About as many frames fall into each cell as quantile-started Lloyd gives: none empty.
    counts = torch.stack([torch.bincount(col, minlength=8) for col in tokenizer.encode(values).T])
    assert bool((counts > 0).all())


def test_tokenizer_round_trip_picks_the_nearest_value_within_half_a_step(
    tokenizer: SpectralTokenizer,
) -> None:
    # Frames of other speech than the fitting data, noisier, so some fall outside the codebook.
    utt = noisy_utterance("rt", seconds=0.5, snr_db=5.0, seed=42)
    assert utt.degraded is not None
    values = tokenizer.normalise(ft.prepare(utt.degraded.samples).logmag)[None]  # [1, T, bins]
    tokens = tokenizer.encode(values)
    assert tokens.shape == values.shape and tokens.dtype == torch.int64
    assert int(tokens.min()) >= 0 and int(tokens.max()) < tokenizer.levels
    decoded = tokenizer.decode(tokens)
    error = (decoded - values).abs()
    book = tokenizer.codebook  # [bins, levels]
    nearest = (values[..., None] - book).abs().min(-1).values
    torch.testing.assert_close(error, nearest, rtol=0, atol=1e-5)
    inside = (values >= book[:, 0]) & (values <= book[:, -1])
    assert bool(inside.any()) and bool((~inside).any())
    half_step = (book[:, 1:] - book[:, :-1]).max(-1).values / 2  # [bins]
    assert bool((error <= half_step + 1e-5)[inside].all())
    # Decoded values are codebook values: encoding them again is the identity.
    assert torch.equal(tokenizer.encode(decoded), tokens)


def test_tokenizer_save_and_load_round_trip(tokenizer: SpectralTokenizer, tmp_path: Path) -> None:
    path = tokenizer.save(tmp_path / "tok", {"suite": "tiny"})
    assert path == tmp_path / "tok" / TOKENIZER_FILE
    manifest = json.loads((tmp_path / "tok" / "manifest.json").read_text())
    assert manifest["kind"] == "tokenizer" and manifest["levels"] == 8
    assert manifest["suite"] == "tiny"
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    for source in (tmp_path / "tok", path, str(path)):
        loaded = SpectralTokenizer.load(source)
        assert (loaded.levels, loaded.n_bins) == (tokenizer.levels, tokenizer.n_bins)
        for name, buffer in tokenizer.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], buffer), name
    with pytest.raises(ConfigError, match="no tokenizer"):
        SpectralTokenizer.load(tmp_path / "missing")


def test_tokenizer_refuses_bad_fits() -> None:
    with pytest.raises(ConfigError, match="at least 8 frames"):
        SpectralTokenizer(8).fit(torch.randn(7, ft.N_BINS))
    with pytest.raises(ConfigError, match="frames of 257 bins"):
        SpectralTokenizer(8).fit(torch.randn(100, 10))
    with pytest.raises(ConfigError, match="at least 2 levels"):
        SpectralTokenizer(1)
    with pytest.raises(ConfigError, match="no clean audio"):
        clean_frames([np.zeros(100, dtype=np.float32)])  # shorter than one FFT
    SpectralTokenizer(8).fit(torch.randn(8, ft.N_BINS))  # exactly enough frames is fine


def test_waveform_round_trip_keeps_length_and_shape_of_the_signal(
    tokenizer: SpectralTokenizer,
) -> None:
    clean = add_noise(voiced_signal(0.5, seed=7), 30.0, 7).samples
    out = round_trip(tokenizer, clean)
    assert out.dtype == np.float32 and out.shape == clean.shape
    assert np.isfinite(out).all()
    # Quantised magnitude with the signal's own phase: still clearly the same waveform.
    corr = float(np.corrcoef(out, clean)[0, 1])
    assert corr > 0.9, corr
    # With another signal's phase the magnitude is kept but the waveform is not.
    other = round_trip(tokenizer, clean, phase_from=voiced_signal(0.5, seed=8).samples)
    assert other.shape == clean.shape
    assert float(np.corrcoef(other, clean)[0, 1]) < corr - 0.2


def test_smooth_time_is_a_normalised_hann_average_over_frames() -> None:
    torch.manual_seed(0)
    frames = torch.randn(20, 6)
    assert torch.equal(ft.smooth_time(frames, 1), frames)
    # A constant and a linear ramp over time are kept (weights sum to 1 and are symmetric);
    # the ramp only away from the edges, where the first and last frames are repeated.
    constant = torch.full((20, 6), -3.0)
    assert torch.allclose(ft.smooth_time(constant, 9), constant)
    ramp = torch.arange(20, dtype=torch.float32)[:, None].expand(20, 6)
    assert torch.allclose(ft.smooth_time(ramp, 5)[2:-2], ramp[2:-2], atol=1e-5)
    # An impulse spreads into the normalised inner points of a Hann window of width + 2.
    impulse = torch.zeros(9, 1)
    impulse[4] = 1.0
    spread = ft.smooth_time(impulse, 5)[:, 0]
    weights = torch.tensor([math.sin(math.pi * k / 6) ** 2 for k in range(1, 6)])
    weights = weights / weights.sum()
    assert torch.allclose(spread[2:7], weights, atol=1e-6)
    assert float(spread[:2].abs().sum() + spread[7:].abs().sum()) == 0.0
    assert ft.smooth_time(frames, 9).shape == frames.shape
    assert ft.smooth_time(frames[:2], 9).shape == (2, 6)
    for width in (0, 4, -1):
        with pytest.raises(ValueError, match="odd number of frames"):
            ft.smooth_time(frames, width)


def test_smooth_option_changes_the_output_and_is_checked(checkpoints: dict[str, Path]) -> None:
    utts = tiny_utterances(1, 0.4)
    ck = str(checkpoints["fm-small"])
    rough = FMSmall(checkpoint=ck, smooth=1, **FAST["fm-small"]).restore(utts, 0)[0].audio
    smooth = FMSmall(checkpoint=ck, smooth=9, **FAST["fm-small"]).restore(utts, 0)[0].audio
    default = FMSmall(checkpoint=ck, **FAST["fm-small"]).restore(utts, 0)[0].audio
    assert rough.samples.shape == smooth.samples.shape
    assert not np.allclose(rough.samples, smooth.samples)
    assert np.array_equal(default.samples, smooth.samples)  # 9 frames is the default
    with pytest.raises(ConfigError, match="smooth=4 of 'fm-small' must be an odd number"):
        FMSmall(checkpoint=ck, smooth=4)


# --------------------------------------------------------------------------- token sampling


def test_top_k_keeps_exactly_the_k_largest() -> None:
    logits = torch.randn(4, 3, 10, generator=torch.Generator().manual_seed(0))
    for k in range(1, 10):
        kept = torch.isfinite(filter_logits(logits, top_k=k))
        assert bool((kept.sum(-1) == k).all()), k
        top = torch.topk(logits, k, dim=-1).indices
        assert bool(kept.gather(-1, top).all()), k
    assert torch.equal(filter_logits(logits, top_k=10), logits)
    assert torch.equal(filter_logits(logits), logits)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = 2 * torch.randn(50, 12, generator=torch.Generator().manual_seed(1))
    for p in (0.05, 0.3, 0.5, 0.8, 0.95):
        filtered = filter_logits(logits, top_p=p)
        kept = torch.isfinite(filtered)
        assert torch.equal(filtered[kept], logits[kept]), "kept logits must be unchanged"
        for row, keep in zip(logits, kept, strict=True):
            probs = torch.softmax(row.double(), -1)
            ordered = torch.sort(probs, descending=True).values
            # The fewest tokens whose mass reaches p, and they are the most likely ones.
            smallest = int((ordered.cumsum(0) < p).sum()) + 1
            assert int(keep.sum()) == smallest, (p, row)
            if not bool(keep.all()):
                assert float(probs[keep].min()) >= float(probs[~keep].max())
    assert torch.equal(filter_logits(logits, top_p=1.0), logits)


def test_sample_tokens_temperature_zero_is_argmax_and_filters_apply() -> None:
    logits = torch.randn(6, 40, 8, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample_tokens(logits, g, temperature=0.0), logits.argmax(-1))
    assert torch.equal(sample_tokens(logits, g, top_k=1), logits.argmax(-1))
    drawn = sample_tokens(logits, g, top_k=3)
    assert drawn.shape == logits.shape[:-1]
    allowed = torch.topk(logits, 3, dim=-1).indices
    assert bool((allowed == drawn[..., None]).any(-1).all())
    first = sample_tokens(logits, torch.Generator().manual_seed(5))
    assert torch.equal(first, sample_tokens(logits, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, sample_tokens(logits, torch.Generator().manual_seed(6)))
    # At temperature 1 the draws follow the softmax.
    row = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(20000, 4)
    counts = torch.bincount(sample_tokens(row, g), minlength=4).double() / 20000
    torch.testing.assert_close(counts, torch.softmax(row[0].double(), -1), atol=0.02, rtol=0)


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("name", NAMES)
def test_tiny_network_loss_decreases(name: str, tokenizer: SpectralTokenizer) -> None:
    batch = frame_batch(pairs(0.5, 0.5), tokenizer)
    net = tiny_generative_net(name, tokenizer, seed=1)
    codebook = tokenizer.codebook.clone()
    net.train()
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss = net.training_loss(batch, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.8 * first, losses
    # The tokenizer is fixed: training never touches the codebooks.
    assert torch.equal(net.tokenizer.codebook, codebook)


def test_ar_cached_sampling_matches_the_teacher_forced_network(
    tokenizer: SpectralTokenizer,
) -> None:
    net = tiny_generative_net("ar-small", tokenizer)
    assert isinstance(net, ARNet)
    cond = frame_batch(pairs(0.2), tokenizer).cond
    with torch.no_grad():
        frames = net.generate(cond, torch.Generator().manual_seed(0), {"temperature": 0.0})
        assert frames.shape == cond.shape
        tokens = tokenizer.encode(frames)
        valid = torch.ones(cond.shape[:2], dtype=torch.bool)
        logits = net(cond, tokens, valid)
    # Greedy decoding frame by frame with the key/value cache picks the argmax of the
    # teacher-forced logits (up to float noise between the two code paths).
    picked = logits.gather(-1, tokens[..., None])[..., 0]
    assert bool((picked >= logits.max(-1).values - 1e-4).all())
    # Sampling is deterministic for a generator seed.
    settings = {"temperature": 1.0, "top_p": 0.9}
    with torch.no_grad():
        a = net.generate(cond, torch.Generator().manual_seed(1), settings)
        b = net.generate(cond, torch.Generator().manual_seed(1), settings)
    assert torch.equal(a, b)


def test_mgm_single_greedy_step_is_the_fully_masked_argmax(tokenizer: SpectralTokenizer) -> None:
    net = tiny_generative_net("mgm-small", tokenizer)
    assert isinstance(net, MGMNet)
    cond = frame_batch(pairs(0.2), tokenizer).cond
    settings = {"steps": 1, "temperature": 0.0}
    with torch.no_grad():
        frames = net.generate(cond, torch.Generator().manual_seed(0), settings)
        masked = torch.ones(cond.shape, dtype=torch.bool)
        zeros = torch.zeros(cond.shape, dtype=torch.long)
        logits = net(cond, zeros, masked, torch.ones(cond.shape[:2], dtype=torch.bool))
    assert torch.equal(frames, tokenizer.decode(logits.argmax(-1)))
    with torch.no_grad():
        several = net.generate(cond, torch.Generator().manual_seed(0), {"steps": 4})
    assert several.shape == cond.shape
    # Every output value is a codebook value of its bin (no token is left masked).
    assert torch.equal(tokenizer.decode(tokenizer.encode(several)), several)


def test_fm_euler_sampling_lands_on_the_predicted_clean_frames(
    tokenizer: SpectralTokenizer,
) -> None:
    net = tiny_generative_net("fm-small", tokenizer)
    assert isinstance(net, FMNet)
    with torch.no_grad():  # a zero head predicts x1_hat = y (the degraded frames)
        net.head.weight.zero_()
        net.head.bias.zero_()
    cond = frame_batch(pairs(0.2), tokenizer).cond
    for settings in ({"steps": 3}, {"steps": 5, "cfg_scale": 2.0}):
        with torch.no_grad():
            out = net.generate(cond, torch.Generator().manual_seed(0), settings)
        torch.testing.assert_close(out, cond, rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- log-probabilities


def token_logprob_alone(net: FrameNet, batch: FrameBatch, mask: torch.Tensor) -> torch.Tensor:
    """Each sample's summed log-probability computed on its own frames only, from the
    network's forward logits: the reference the batched value must match."""
    out = []
    for i in range(len(batch)):
        one = single(batch, i)
        n = one.cond.shape[1]
        tokens = net.tokenizer.encode(one.target)
        if isinstance(net, MGMNet):
            m = mask[i : i + 1, :n]
            logp = torch.log_softmax(net(one.cond, tokens, m, one.valid), dim=-1)
            picked = logp.gather(-1, tokens[..., None])[..., 0]
            out.append(picked[m].sum())
        else:
            logp = torch.log_softmax(net(one.cond, tokens, one.valid), dim=-1)
            picked = logp.gather(-1, tokens[..., None])[..., 0].sum(-1)
            out.append(picked[mask[i : i + 1, :n]].sum())
    return torch.stack(out)


def test_ar_logprob_counts_only_positions_and_valid_frames(tokenizer: SpectralTokenizer) -> None:
    net = tiny_generative_net("ar-small", tokenizer)
    assert isinstance(net, ARNet)
    model = model_with("ar-small", net)
    batch = frame_batch(pairs(0.5, 0.3), tokenizer)  # the second sample is padded
    t = batch.cond.shape[1]
    assert not bool(batch.valid[1].all())
    g = torch.Generator().manual_seed(0)
    positions = torch.rand(2, t, generator=g) < 0.6
    with torch.no_grad():
        value = model.sequence_logprob(batch, positions)
        assert value.shape == (2,)
        close(value, token_logprob_alone(net, batch, positions))
        # Padding never counts, whatever the positions say there.
        close(model.sequence_logprob(batch, positions | ~batch.valid), value)
        assert torch.equal(model.sequence_logprob(batch, ~batch.valid), torch.zeros(2))
        # Sums over disjoint positions add up.
        close(
            model.sequence_logprob(batch, positions) + model.sequence_logprob(batch, ~positions),
            model.sequence_logprob(batch, torch.ones_like(positions)),
        )
        # More padding frames of arbitrary content change nothing: not the total, not the
        # last valid frames (which a convolution could see).
        padded = pad_with_junk(batch, 9)
        everywhere = torch.ones(padded.valid.shape, dtype=torch.bool)
        close(
            model.sequence_logprob(padded, everywhere), model.sequence_logprob(batch, batch.valid)
        )
        tail = torch.zeros(2, t, dtype=torch.bool)
        tail[0, -3:] = True
        tail_padded = torch.cat([tail, torch.ones(2, 9, dtype=torch.bool)], dim=1)
        close(model.sequence_logprob(padded, tail_padded), model.sequence_logprob(batch, tail))
        # Causality: frames after the counted ones do not change the value.
        early = torch.zeros(2, t, dtype=torch.bool)
        early[:, :10] = True
        changed = FrameBatch(batch.cond, batch.target.clone(), batch.valid)
        changed.target[:, 10:] = -changed.target[:, 10:]
        close(model.sequence_logprob(changed, early), model.sequence_logprob(batch, early))
        assert not torch.allclose(
            model.sequence_logprob(changed, batch.valid), model.sequence_logprob(batch, batch.valid)
        )


def test_mgm_logprob_counts_only_masked_valid_tokens(tokenizer: SpectralTokenizer) -> None:
    net = tiny_generative_net("mgm-small", tokenizer)
    assert isinstance(net, MGMNet)
    model = model_with("mgm-small", net)
    batch = frame_batch(pairs(0.5, 0.3), tokenizer)
    b, t, bins = batch.cond.shape
    masked = torch.rand(b, t, bins, generator=torch.Generator().manual_seed(0)) < 0.5
    with torch.no_grad():
        value = model.sequence_logprob(batch, masked)
        assert value.shape == (2,)
        close(value, token_logprob_alone(net, batch, masked))
        nothing = torch.zeros_like(masked)
        assert torch.equal(model.sequence_logprob(batch, nothing), torch.zeros(2))
        close(model.sequence_logprob(batch, masked | ~batch.valid[..., None]), value)
        # Masked tokens are hidden from the network: changing them changes no logit, and the
        # value by exactly the change of the picked log-probabilities.
        tokens = tokenizer.encode(batch.target)
        other = torch.where(masked, (tokens + 3) % tokenizer.levels, tokens)
        changed = FrameBatch(batch.cond, tokenizer.decode(other), batch.valid)
        assert torch.equal(tokenizer.encode(changed.target), other)
        logits = net(batch.cond, tokens, masked, batch.valid)
        assert torch.equal(net(batch.cond, other, masked, batch.valid), logits)
        logp = torch.log_softmax(logits, -1)
        keep = masked & batch.valid[..., None]
        delta = (
            logp.gather(-1, other[..., None])[..., 0] - logp.gather(-1, tokens[..., None])[..., 0]
        )
        close(model.sequence_logprob(changed, masked), value + (delta * keep).sum((-1, -2)))
        # Padding frames of arbitrary content, masked or not, change nothing.
        padded = pad_with_junk(batch, 9)
        extra = torch.ones(b, 9, bins, dtype=torch.bool)
        close(model.sequence_logprob(padded, torch.cat([masked, extra], dim=1)), value)
        tail = torch.zeros_like(masked)
        tail[0, -3:] = masked[0, -3:]
        close(
            model.sequence_logprob(padded, torch.cat([tail, extra], dim=1)),
            model.sequence_logprob(batch, tail),
        )


def test_fm_velocity_error_has_a_closed_form_independent_of_length(
    tokenizer: SpectralTokenizer,
) -> None:
    net = tiny_generative_net("fm-small", tokenizer)
    assert isinstance(net, FMNet)
    with torch.no_grad():  # x1_hat = y: the error is (y - x1)^2, the same at every t
        net.head.weight.zero_()
        net.head.bias.zero_()
    model = model_with("fm-small", net)
    g = torch.Generator().manual_seed(0)
    bins, frames = ft.N_BINS, 12
    offset = 0.5 * torch.randn(bins, generator=g)  # target - cond, the same in every frame
    cond = torch.randn(2, 2 * frames, bins, generator=g)
    valid = torch.ones(2, 2 * frames, dtype=torch.bool)
    valid[0, frames:] = False  # sample 0: T frames then padding; sample 1: 2T frames
    target = torch.where(valid[..., None], cond + offset, 7 * torch.randn(cond.shape, generator=g))
    batch = FrameBatch(cond, target, valid)
    noise = torch.randn(cond.shape, generator=g)
    per_frame = float(offset.square().mean())
    with torch.no_grad():
        for times in ([0.3, 0.3], [0.0, 0.6]):
            t = torch.tensor(times)
            expected = torch.full((2,), per_frame)
            close(model.velocity_error(batch, t, noise), expected)
            close(model.velocity_error(batch, t, 3 * noise.flip(1)), expected)


def test_fm_velocity_error_is_zero_for_a_perfect_prediction(
    tokenizer: SpectralTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = tiny_generative_net("fm-small", tokenizer)
    assert isinstance(net, FMNet)
    batch = frame_batch(pairs(0.3, 0.2), tokenizer)
    noise = torch.randn(batch.cond.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.1, 0.7])
    with torch.no_grad():
        assert bool((net.velocity_error(batch, t, noise) > 0).all())
        monkeypatch.setattr(net, "predict_clean", lambda *args: batch.target)
        torch.testing.assert_close(
            net.velocity_error(batch, t, noise), torch.zeros(2), atol=1e-5, rtol=0
        )
        wrong = batch.target + 0.5
        monkeypatch.setattr(net, "predict_clean", lambda *args: wrong)
        close(net.velocity_error(batch, t, noise), torch.full((2,), 0.25))
        # It is the velocity error ||v - (x1 - x0)||^2 weighted by (1 - t)^2.
        x_t, target_velocity = net.path(batch, t, noise)
        v = net.velocity(x_t, t, batch.cond, batch.valid)
        weighted = (v - target_velocity).square().mean((1, 2)) * (1 - t) ** 2
        close(net.velocity_error(batch, t, noise), weighted)


def test_fm_velocity_error_ignores_padding(tokenizer: SpectralTokenizer) -> None:
    net = tiny_generative_net("fm-small", tokenizer)
    model = model_with("fm-small", net)
    batch = frame_batch(pairs(0.5, 0.3), tokenizer)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(batch.cond.shape, generator=g)
    t = torch.tensor([0.2, 0.5])
    with torch.no_grad():
        value = model.velocity_error(batch, t, noise)
        for i in range(2):
            one = single(batch, i)
            n = one.cond.shape[1]
            close(model.velocity_error(one, t[i : i + 1], noise[i : i + 1, :n]), value[i : i + 1])
        padded = pad_with_junk(batch, 9)
        more = torch.cat([noise, 4 * torch.randn(2, 9, ft.N_BINS, generator=g)], dim=1)
        close(model.velocity_error(padded, t, more), value)


# --------------------------------------------------------------------------- alignment


def alignment_value(model: GenerativeModel, batch: FrameBatch) -> torch.Tensor:
    """The paradigm's alignment term on ``batch`` with fixed positions / times / noise."""
    g = torch.Generator().manual_seed(0)
    if isinstance(model, FMSmall):
        t = torch.rand(len(batch), generator=g)
        return model.velocity_error(batch, t, torch.randn(batch.cond.shape, generator=g))
    if isinstance(model, MGMSmall):
        return model.sequence_logprob(batch, torch.rand(batch.cond.shape, generator=g) < 0.5)
    return model.sequence_logprob(batch, batch.valid)


def raw_value(net: FrameNet, batch: FrameBatch) -> torch.Tensor:
    """The network's own term without ``eval_mode`` (so dropout applies in train mode)."""
    g = torch.Generator().manual_seed(0)
    if isinstance(net, FMNet):
        t = torch.rand(len(batch), generator=g)
        return net.velocity_error(batch, t, torch.randn(batch.cond.shape, generator=g))
    assert isinstance(net, (ARNet, MGMNet))
    if isinstance(net, MGMNet):
        return net.token_logprob(batch, torch.rand(batch.cond.shape, generator=g) < 0.5)
    return net.token_logprob(batch, batch.valid)


@pytest.mark.parametrize("name", NAMES)
def test_deep_copy_gives_identical_alignment_terms_in_train_mode(
    name: str, tokenizer: SpectralTokenizer
) -> None:
    net = tiny_generative_net(name, tokenizer, dropout=0.5)
    model = model_with(name, net)
    utts = tiny_utterances(2, 0.4)
    degraded = [u.degraded for u in utts if u.degraded is not None]
    outputs = [u.reference for u in utts if u.reference is not None]
    batch = model.policy_batch(degraded, outputs)
    assert len(batch) == 2
    twin = copy.deepcopy(model)
    model.trainable_module().train()
    twin.trainable_module().train()
    with torch.no_grad():  # dropout is live in train mode: the raw term is random
        assert not torch.equal(raw_value(net, batch), raw_value(net, batch))
    value = alignment_value(model, batch)
    assert value.requires_grad, "alignment needs gradients through the term"
    assert torch.equal(value, alignment_value(twin, batch))
    assert torch.equal(value, alignment_value(model, batch))
    assert model.trainable_module().training and twin.trainable_module().training
    value.sum().backward()
    grad = net.head.weight.grad
    assert grad is not None and bool(grad.abs().sum() > 0)


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_and_errors(tokenizer: SpectralTokenizer, tmp_path: Path) -> None:
    net = tiny_generative_net("mgm-small", tokenizer, seed=5)
    digest = save_checkpoint(tmp_path / "ck", "mgm-small", net, {"note": "x"})
    data = (tmp_path / "ck" / MODEL_FILE).read_bytes()
    manifest = read_manifest(tmp_path / "ck")
    assert digest == manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["model"] == "mgm-small" and manifest["note"] == "x"
    assert manifest["size_bytes"] == len(data)
    assert manifest["parameters"] == count_parameters(net) > 0  # the tokenizer has none
    model = MGMSmall(checkpoint=str(tmp_path / "ck"))
    model.setup()
    assert model.checkpoint_hash() == digest
    assert model.net is not None and not model.net.training
    loaded = model.net.state_dict()
    for key, value in net.state_dict().items():
        if key.startswith("tokenizer."):
            assert torch.equal(loaded[key], value), key  # full precision
        else:  # half precision
            torch.testing.assert_close(loaded[key], value, rtol=1e-3, atol=1e-4)
    assert MGMSmall(checkpoint=str(tmp_path / "ck")).checkpoint_hash() == digest
    with pytest.raises(ConfigError, match="holds a 'mgm-small' checkpoint"):
        ARSmall(checkpoint=str(tmp_path / "ck")).setup()
    with pytest.raises(ConfigError, match="no checkpoint for model 'fm-small'"):
        FMSmall(checkpoint=str(tmp_path / "none")).setup()
    with pytest.raises(ConfigError, match="cannot read the checkpoint manifest"):
        read_manifest(tmp_path / "none")
    with pytest.raises(ConfigError, match="has no option cfg_scale"):
        ARSmall(cfg_scale=2.0)


@pytest.mark.parametrize(
    ("aligned_cls", "base_cls"),
    [(ARSmallDPO, ARSmall), (MGMSmallDPO, MGMSmall), (FMSmallDPO, FMSmall)],
)
def test_aligned_variant_ships_weights_written_for_its_base_model(
    tmp_path: Path, aligned_cls: type[GenerativeModel], base_cls: type[GenerativeModel]
) -> None:
    shipped = aligned_cls().checkpoint_dir
    manifest = read_manifest(shipped)
    assert manifest["model"] == base_cls.name and manifest["base_model"] == base_cls.name
    assert manifest["objective"] == "dpo"
    assert (shipped / MODEL_FILE).stat().st_size <= 5_000_000  # the base models' size limit
    aligned, base = aligned_cls(), base_cls()
    aligned.setup()
    base.setup()
    assert aligned.checkpoint_hash() == manifest["sha256"] != base.checkpoint_hash()
    assert manifest["base_checkpoint_sha256"] == base.checkpoint_hash()
    assert aligned.paradigm == base.paradigm and aligned.sampling == base.sampling
    assert aligned.net is not None and base.net is not None
    differs = [
        not torch.equal(value, base.net.state_dict()[key])
        for key, value in aligned.net.state_dict().items()
    ]
    assert any(differs)
    # A checkpoint written under the variant's own name (aligning it again) loads too; another
    # model's does not.
    net = aligned.net
    save_checkpoint(tmp_path / "again", aligned_cls.name, net, {})
    aligned_cls(checkpoint=str(tmp_path / "again")).setup()
    other = "fm-small" if base_cls is not FMSmall else "mgm-small"
    save_checkpoint(tmp_path / "other", other, net, {})
    with pytest.raises(ConfigError, match=f"not one of '{base_cls.name}' or '{aligned_cls.name}'"):
        aligned_cls(checkpoint=str(tmp_path / "other")).setup()


def test_the_piper_variant_ships_weights_fine_tuned_from_its_base_on_piper_speech() -> None:
    shipped = FMPiper().checkpoint_dir
    manifest = read_manifest(shipped)
    assert manifest["model"] == "fm-small" and manifest["suite"] == "piper-gsr-train"
    assert (shipped / MODEL_FILE).stat().st_size <= 5_000_000  # the base models' size limit
    piper, base = FMPiper(), FMSmall()
    piper.setup()
    base.setup()
    assert piper.checkpoint_hash() == manifest["sha256"] != base.checkpoint_hash()
    assert manifest["init"]["sha256"] == base.checkpoint_hash()  # fine-tuned from fm-small
    assert piper.sampling == base.sampling and piper.paradigm == "fm"


def test_the_aligned_piper_variant_ships_weights_aligned_from_fm_piper() -> None:
    shipped = FMPiperDPO().checkpoint_dir
    manifest = read_manifest(shipped)
    assert manifest["model"] == "fm-piper" == manifest["base_model"]
    assert manifest["objective"] == "dpo" and manifest["suite"]["name"] == "piper-gsr-train"
    assert manifest["criterion"] == ["nisqa_mos", "dnsmos_ovrl", "whisper_cer", "speaker_sim"]
    assert (shipped / MODEL_FILE).stat().st_size <= 5_000_000  # the base models' size limit
    aligned, base = FMPiperDPO(), FMPiper()
    aligned.setup()
    base.setup()
    assert aligned.checkpoint_hash() == manifest["sha256"] != base.checkpoint_hash()
    assert manifest["base_checkpoint_sha256"] == base.checkpoint_hash()
    assert aligned.sampling == base.sampling and aligned.paradigm == "fm"


# --------------------------------------------------------------------------- restore & sample


@pytest.mark.parametrize("name", NAMES)
def test_restore_is_deterministic_per_seed_and_per_utterance(
    name: str, checkpoints: dict[str, Path]
) -> None:
    model = MODELS[name](checkpoint=str(checkpoints[name]), **FAST[name])
    utts = tiny_utterances(2, 0.5)
    first = model.restore(utts, seed=3)
    again = model.restore(utts, seed=3)
    other = model.restore(utts, seed=4)
    alone = model.restore(utts[1:], seed=3)[0]
    for utt, a, b, c in zip(utts, first, again, other, strict=True):
        assert utt.degraded is not None
        assert a.utterance_id == utt.id and a.model == name and a.seed == 3
        assert a.audio.samples.shape == utt.degraded.samples.shape
        assert a.audio.samples.dtype == np.float32 and np.isfinite(a.audio.samples).all()
        assert np.array_equal(a.audio.samples, b.audio.samples)
        assert not np.array_equal(a.audio.samples, c.audio.samples), "the sampler is stochastic"
    assert np.array_equal(alone.audio.samples, first[1].audio.samples)


@pytest.mark.parametrize("name", NAMES)
def test_restore_runs_in_float64_and_leaves_the_network_as_it_was(
    name: str, checkpoints: dict[str, Path]
) -> None:
    model = MODELS[name](checkpoint=str(checkpoints[name]), **FAST[name])
    model.setup()
    assert model.net is not None
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    params = list(model.net.parameters())
    seen: list[torch.dtype] = []
    model.net.get_submodule("head").register_forward_hook(
        lambda _m, _i, out: seen.append(out.dtype)
    )
    model.restore(tiny_utterances(1, 0.3), seed=0)
    assert seen and set(seen) == {torch.float64}
    after = model.net.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    # The same parameter objects: an optimiser that holds them (alignment) still does.
    assert all(a is b for a, b in zip(params, model.net.parameters(), strict=True))


#: Restores a 1-s utterance with the shipped fm-small in a fresh process and saves it.
RESTORE_IN_A_PROCESS = """
import sys
import numpy as np
import torch
from gensr_bench.testing import noisy_utterance
from gensr_bench_plugins.models.generative import FMSmall
(out,) = FMSmall().restore([noisy_utterance("cpu", seconds=1.0, snr_db=5.0)], seed=0)
np.save(sys.argv[1], out.audio.samples)
print(torch.backends.cpu.get_cpu_capability())
"""
#: Other x86 CPUs, emulated by switching vector units off: one with AVX2 but no AVX-512, and
#: one without AVX2 (torch's scalar kernels, oneDNN's SSE4.1 code).
OTHER_CPUS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "without-avx2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


@pytest.mark.skipif(
    platform.machine().lower() not in {"x86_64", "amd64"}, reason="emulates other x86 CPUs"
)
def test_fm_gives_the_same_waveform_on_x86_cpus_with_other_vector_units(
    tmp_path: Path,
) -> None:
    """Issue 19: float32 sampling gave these 1.4e-6 apart (8e-6 on synth-gsr utterances)."""
    runs: dict[str, tuple[str, np.ndarray]] = {}
    for label, extra in {"native": {}, **OTHER_CPUS}.items():
        env = {k: v for k, v in os.environ.items() if k not in OTHER_CPUS["avx2"]}
        env.update({**extra, "OMP_NUM_THREADS": "1"})
        out = tmp_path / f"{label}.npy"
        done = subprocess.run(
            [sys.executable, "-c", RESTORE_IN_A_PROCESS, str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs[label] = (done.stdout.split()[-1], np.load(out))
    assert runs["without-avx2"][0] == "DEFAULT"
    if runs["native"][0] == "DEFAULT":
        pytest.skip("this CPU has no vector unit beyond SSE4.1 for torch to switch off")
    tolerance = FMSmall.waveform_tolerance
    assert tolerance is not None
    native = runs["native"][1]
    assert native.shape == (16000,) and np.max(np.abs(native)) > 0.05, "a restoration"
    for label, (_, wave) in runs.items():
        assert np.max(np.abs(wave - native)) <= tolerance, label
    assert np.max(np.abs(runs["avx2"][1] - runs["without-avx2"][1])) <= tolerance


@pytest.mark.parametrize("name", ["ar-small", "mgm-small"])
def test_greedy_token_sampling_does_not_depend_on_the_seed(
    name: str, checkpoints: dict[str, Path]
) -> None:
    model = MODELS[name](checkpoint=str(checkpoints[name]), temperature=0.0, **FAST[name])
    utt = tiny_utterances(1, 0.3)
    a = model.restore(utt, seed=0)[0].audio.samples
    assert np.array_equal(a, model.restore(utt, seed=1)[0].audio.samples)


def check_settings(name: str, settings: dict[str, Any]) -> None:
    if name == "ar-small":
        assert settings == {"temperature": 1.0, "top_k": 25, "top_p": 0.8}
    elif name == "mgm-small":
        assert set(settings) == {"steps", "temperature", "top_k", "top_p"}
        assert isinstance(settings["steps"], int) and 10 <= settings["steps"] <= 40
        assert (settings["temperature"], settings["top_k"], settings["top_p"]) == (1.0, None, 0.9)
    else:
        assert set(settings) == {"steps", "cfg_scale"}
        assert isinstance(settings["steps"], int) and 10 <= settings["steps"] <= 40
        assert isinstance(settings["cfg_scale"], float) and 1.0 <= settings["cfg_scale"] <= 3.0


@pytest.mark.parametrize("name", NAMES)
def test_sample_draws_candidates_with_the_paper_settings(
    name: str, checkpoints: dict[str, Path]
) -> None:
    model = MODELS[name](checkpoint=str(checkpoints[name]), gl_iterations=1)
    utts = tiny_utterances(2, 0.25)
    out = model.sample(utts, n=3, seed=0)
    assert len(out) == 2 and all(len(c) == 3 for c in out)
    again = model.sample(utts, n=3, seed=0)
    for utt, candidates, repeated in zip(utts, out, again, strict=True):
        assert [c.utterance_id for c in candidates] == [utt.id] * 3
        assert [c.seed for c in candidates] == [0, 1, 2]
        for k, (c, r) in enumerate(zip(candidates, repeated, strict=True)):
            check_settings(name, c.meta["sampling"])
            # The settings come from item_seed(seed + k, id): a caller can re-draw them.
            rng = random.Random(item_seed(k, utt.id))
            assert c.meta["sampling"] == model.draw_settings(rng, {})
            assert c.meta == r.meta
            assert np.array_equal(c.audio.samples, r.audio.samples)
            assert np.isfinite(c.audio.samples).all()
        waves = [c.audio.samples for c in candidates]
        assert not np.array_equal(waves[0], waves[1]) and not np.array_equal(waves[1], waves[2])
    # Candidate k of seed s is candidate 0 of seed s + k, and one utterance does not depend
    # on the others.
    shifted = model.sample(utts[1:], n=1, seed=2)[0][0]
    assert shifted.meta == out[1][2].meta
    assert np.array_equal(shifted.audio.samples, out[1][2].audio.samples)


def test_sample_accepts_narrower_settings_and_rejects_unknown_ones(
    checkpoints: dict[str, Path],
) -> None:
    model = FMSmall(checkpoint=str(checkpoints["fm-small"]), gl_iterations=1)
    utts = tiny_utterances(1, 0.25)
    out = model.sample(utts, n=4, seed=0, sampling={"steps": [2, 3], "cfg_scale": 1.5})
    for candidate in out[0]:
        assert candidate.meta["sampling"]["steps"] in (2, 3)
        assert candidate.meta["sampling"]["cfg_scale"] == 1.5
    with pytest.raises(ConfigError, match="no sampling setting top_k"):
        model.sample(utts, n=1, seed=0, sampling={"top_k": 3})


def test_model_options_are_single_values_and_do_not_change_candidate_ranges(
    checkpoints: dict[str, Path],
) -> None:
    with pytest.raises(ConfigError, match="steps of 'mgm-small' must be single values"):
        MGMSmall(checkpoint=str(checkpoints["mgm-small"]), steps=[10, 40])
    model = MGMSmall(checkpoint=str(checkpoints["mgm-small"]), steps=2, gl_iterations=1)
    drawn = model.sample(tiny_utterances(1, 0.25), n=3, seed=0)[0]
    assert all(10 <= c.meta["sampling"]["steps"] <= 40 for c in drawn)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_checkpoints_conform(name: str, checkpoints: dict[str, Path]) -> None:
    utts = tiny_utterances(3, 0.4)
    out = check_model_conformance(
        MODELS[name], utts, checkpoint=str(checkpoints[name]), **FAST[name]
    )
    assert [r.model for r in out] == [name] * 3


def test_models_are_registered_by_the_plugin() -> None:
    assert generative.gensr_register_models() == [
        ARSmall,
        MGMSmall,
        FMSmall,
        ARSmallDPO,
        MGMSmallDPO,
        FMSmallDPO,
        FMPiper,
        FMPiperDPO,
    ]
    assert [cls.paradigm for cls in (ARSmall, MGMSmall, FMSmall)] == ["ar", "mgm", "fm"]
    assert all(cls.trainable for cls in MODELS.values())


def test_restore_reports_missing_input(checkpoints: dict[str, Path]) -> None:
    model = FMSmall(checkpoint=str(checkpoints["fm-small"]), steps=1)
    with pytest.raises(AudioValidationError, match="no degraded audio"):
        model.restore([Utterance("x", None, error="gone")], seed=0)
    silent = Utterance("s", Audio(np.zeros(4000, dtype=np.float32), 16000))
    out = model.restore([silent], seed=0)[0].audio.samples
    assert out.shape == (4000,) and np.isfinite(out).all()


# --------------------------------------------------------------------------- training


def train_suite() -> ListSuite:
    return ListSuite(tiny_utterances(3, 0.5))


RECIPE = {"steps": 6, "batch_size": 2, "crop_s": 0.3, "lr": 3e-3, "warmup": 2}


def test_train_net_checkpoints_logs_refuses_to_overwrite_and_resumes(
    tokenizer: SpectralTokenizer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    seen: list[tuple[int, int, float, int | None]] = []

    def progress(step: int, total: int, loss: float) -> None:
        saved = read_manifest(out)["steps"] if (out / MANIFEST).exists() else None
        seen.append((step, total, loss, saved))

    recipe = {**RECIPE, "log_every": 2, "checkpoint_every": 3}
    net = tiny_generative_net("mgm-small", tokenizer)
    manifest = train_net(
        net,
        "mgm-small",
        train_suite(),
        out,
        recipe,
        seed=1,
        manifest={"suite": "x"},
        progress=progress,
    )
    assert [s[:2] for s in seen] == [(step, 6) for step in range(1, 7)]
    assert all(math.isfinite(s[2]) for s in seen)
    # The checkpoint is written every 3 steps (the progress call comes before it).
    assert [s[3] for s in seen] == [None, None, None, 3, 3, 3]
    for name in (MODEL_FILE, MANIFEST, LOG_FILE, STATE_FILE):
        assert (out / name).is_file(), name
    written = read_manifest(out)
    assert written["steps"] == manifest["steps"] == 6
    assert written["sha256"] == hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
    assert written["model"] == "mgm-small" and written["suite"] == "x"
    assert written["recipe"] == recipe and written["net"]["d_model"] == 32
    assert manifest["parameters"] == count_parameters(net) - count_parameters(net.tokenizer)
    lines = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [entry["step"] for entry in lines] == [2, 4, 6]
    assert all(math.isfinite(e["loss"]) and math.isfinite(e["val_loss"]) for e in lines)
    assert written["history"] == lines
    # The checkpoint restores.
    restored = MGMSmall(checkpoint=str(out), steps=2, gl_iterations=1).restore(
        tiny_utterances(1, 0.25), seed=0
    )
    assert np.isfinite(restored[0].audio.samples).all()

    with pytest.raises(ConfigError, match="--resume"):
        train_net(
            tiny_generative_net("mgm-small", tokenizer), "mgm-small", train_suite(), out, recipe
        )
    assert read_manifest(out)["steps"] == 6

    # Resuming at the saved step trains nothing and loads the saved weights.
    seen.clear()
    fresh = tiny_generative_net("mgm-small", tokenizer, seed=9)
    train_net(
        fresh, "mgm-small", train_suite(), out, recipe, seed=1, resume=True, progress=progress
    )
    assert seen == []
    saved = torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)
    assert saved["step"] == 6
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, saved["net"][key]), key
    assert torch.equal(fresh.head.weight, net.head.weight)
    # With more steps it continues from the saved step.
    longer = {**recipe, "steps": 8}
    resumed = train_net(
        fresh, "mgm-small", train_suite(), out, longer, seed=1, resume=True, progress=progress
    )
    assert [s[0] for s in seen] == [7, 8], "training continues from the saved step"
    assert resumed["steps"] == read_manifest(out)["steps"] == 8
    lines = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [entry["step"] for entry in lines] == [2, 4, 6, 8]
    assert read_manifest(out)["history"] == lines
    assert torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)["step"] == 8


def test_fit_sizes_a_new_network_and_checks_its_options(
    tokenizer: SpectralTokenizer, tmp_path: Path
) -> None:
    tokenizer.save(tmp_path / "tok", {})
    options = {
        **RECIPE,
        "steps": 2,
        "d_model": 32,
        "layers": 1,
        "heads": 2,
        "ff": 64,
        "tokenizer": str(tmp_path / "tok"),
    }
    manifest = ARSmall.fit(train_suite(), tmp_path / "ar", seed=0, options=options, command="t")
    assert manifest["steps"] == 2 and manifest["training_command"] == "t"
    assert manifest["suite"] == "test-list" and manifest["seed"] == 0
    assert manifest["net"]["d_model"] == 32 and manifest["net"]["ff"] == 64
    model = ARSmall(checkpoint=str(tmp_path / "ar"))
    model.setup()
    assert model.net is not None
    assert torch.equal(model.net.tokenizer.codebook, tokenizer.codebook)
    # ``init`` continues from a checkpoint folder, keeping its sizes.
    again = ARSmall.fit(
        train_suite(),
        tmp_path / "ar2",
        options={**RECIPE, "steps": 1, "init": str(tmp_path / "ar")},
    )
    assert again["steps"] == 1 and again["net"]["d_model"] == 32
    with pytest.raises(ConfigError, match="no training option cfg_scale"):
        ARSmall.fit(train_suite(), tmp_path / "bad", options={"cfg_scale": 2})
    with pytest.raises(ConfigError, match="no tokenizer"):
        ARSmall.fit(train_suite(), tmp_path / "bad", options={"tokenizer": str(tmp_path / "no")})
    no_pairs = ListSuite([Utterance("x", Audio(np.zeros(8000, dtype=np.float32), 16000))])
    with pytest.raises(ConfigError, match="training needs pairs"):
        ARSmall.fit(no_pairs, tmp_path / "bad2", options={**options, "steps": 1})


# --------------------------------------------------------------------------- command line


def cli(command: str, *more: str) -> int:
    """``gensr-bench --plugins-dir TOY_PLUGINS`` with ``command`` (split at spaces) and ``more``
    (paths, which may hold spaces)."""
    return main(["--plugins-dir", str(TOY_PLUGINS), *command.split(), *more])


def test_cli_trains_a_tokenizer_and_a_model_and_runs_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tok = tmp_path / "tok"
    assert cli("train tokenizer --suite test-toy --limit 2 --levels 8 --out", str(tok)) == 0
    assert "tokenizer with 8 levels" in capsys.readouterr().out
    assert SpectralTokenizer.load(tok).levels == 8

    ck = tmp_path / "fm"
    train = "train --model fm-small --suite test-toy --limit 2"
    sizes = {"steps": 3, "d_model": 32, "layers": 1, "heads": 2, "ff": 64}
    recipe = {"batch_size": 2, "crop_s": 0.3, "warmup": 1}
    for key, value in {**sizes, **recipe}.items():
        train += f" --train-option {key}={value}"
    more = ("--train-option", f"tokenizer={tok}", "--out", str(ck))
    code = cli(train, *more)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "trained fm-small: 3 steps" in captured.out
    manifest = read_manifest(ck)
    assert manifest["model"] == "fm-small" and manifest["steps"] == 3
    assert manifest["suite"] == "test-toy" and manifest["net"]["d_model"] == 32
    assert cli(train, *more) == 1
    assert "--resume" in capsys.readouterr().err

    run = tmp_path / "run"
    base = "run --suite test-toy --limit 2 --metrics test-level --workers 1"
    options = " --model-option steps=2 --model-option gl_iterations=1"
    code = cli(base + options, "--model", str(ck), "--out", str(run))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    outputs = list(RunStore(run).outputs())
    assert len(outputs) == 2
    assert all(o.scores["level_db"] is not None and not o.errors for o in outputs)
    provenance = RunStore(run).get_info("provenance")
    assert provenance["model_checkpoint_sha256"] == manifest["sha256"]
    config = RunStore(run).get_info("config")
    assert config["model"]["options"] == {"steps": 2, "gl_iterations": 1, "checkpoint": str(ck)}

    (tmp_path / "empty").mkdir()
    code = cli(base, "--model", str(tmp_path / "empty"), "--out", str(tmp_path / "r2"))
    assert code == 2
    assert "not a model checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()

    assert cli("train --model test-echo --suite test-toy --out", str(tmp_path / "e")) == 1
    assert "cannot be trained" in capsys.readouterr().err

    zero = (
        "--max-minutes",
        "0",
        "--train-option",
        f"tokenizer={tok}",
        "--out",
        str(tmp_path / "z"),
    )
    assert cli(train, *zero) == 1
    assert "stopped before its first step" in capsys.readouterr().err


# --------------------------------------------------------------------------- starting points


def test_untrained_fm_returns_the_degraded_frames(tokenizer: SpectralTokenizer) -> None:
    net = FMNet(tiny_net_config(), tokenizer).eval()
    cond = torch.randn(1, 7, tokenizer.n_bins, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net.generate(cond, torch.Generator().manual_seed(2), {"steps": 4, "cfg_scale": 2})
    torch.testing.assert_close(out, cond)


@pytest.mark.parametrize("model_cls", [ARSmall, FMSmall])
def test_sampling_keeps_every_tensor_on_the_conditions_device(
    model_cls: type[GenerativeModel], tmp_path: Path
) -> None:
    """No CPU tensor is created inside ``generate`` (``--device cuda`` must not meet one).

    Run on torch's ``meta`` device, where mixing in a CPU tensor raises ("Tensor on device cpu
    is not on the expected device meta"): shapes flow, values do not. MGM's boolean-mask
    indexing has no meta implementation (its output size depends on values), so it is not
    covered here; its new tensors are made on ``cond.device`` the same way.
    """
    folder = tiny_generative_checkpoint(tmp_path, model_cls.name, tiny_spectral_tokenizer())
    model = model_cls(checkpoint=str(folder))
    model.setup()
    assert model.net is not None
    net = model.net.to("meta")
    cond = torch.zeros(1, 7, net.tokenizer.n_bins, device="meta")
    frames = net.generate(cond, torch.Generator().manual_seed(0), dict(model.sampling))
    assert frames.device.type == "meta" and tuple(frames.shape) == (1, 7, net.tokenizer.n_bins)


def test_training_batches_are_made_where_the_tokenizer_is() -> None:
    """``frame_batch`` (training, DPO's policy batches) follows its network's device: on
    torch's ``meta`` device a CPU tensor mixed in would raise."""
    tokenizer = tiny_spectral_tokenizer()
    wave = voiced_signal(0.3).samples
    cpu = frame_batch([(wave, wave)], tokenizer)
    meta = frame_batch([(wave, wave)], copy.deepcopy(tokenizer).to("meta"))
    for name in ("cond", "target", "valid"):
        assert getattr(meta, name).device.type == "meta"
        assert getattr(meta, name).shape == getattr(cpu, name).shape
    assert cpu.cond.device.type == "cpu"


def test_train_refuses_a_device_it_cannot_use(tmp_path: Path) -> None:
    from gensr_bench import devices

    if devices.cuda_available():  # pragma: no cover - a GPU machine
        pytest.skip("this machine has a GPU: --device cuda would train there")
    args = ["train", "--model", "ar-small", "--suite", "synth-gsr-train"]
    code = main([*args, "--out", str(tmp_path), "--device", "cuda"])
    assert code == 1 and not any(tmp_path.iterdir())


def test_fm_guidance_never_leaves_both_the_clean_range_and_the_conditional_prediction(
    tokenizer: SpectralTokenizer,
) -> None:
    net = tiny_generative_net("fm-small", tokenizer)
    assert isinstance(net, FMNet)
    lo, hi = tokenizer.codebook[:, 0], tokenizer.codebook[:, -1]
    x_c = torch.stack([lo - 1.0, hi - 0.5, hi + 2.0])[None]  # [1, 3 frames, bins]
    x_u = torch.stack([lo + 1.0, hi - 1.0, hi + 1.0])[None]
    out = net.guided(x_c, x_u, 3.0)
    # Frame 0: guidance pushes down to lo - 5, bounded by the conditional prediction lo - 1.
    torch.testing.assert_close(out[0, 0], lo - 1.0)
    # Frame 1: pushed up to hi + 0.5, bounded by the clean range's top level.
    torch.testing.assert_close(out[0, 1], hi)
    # Frame 2: pushed up to hi + 4, bounded by the conditional prediction hi + 2.
    torch.testing.assert_close(out[0, 2], hi + 2.0)
    # Inside both bounds guidance is the plain extrapolation.
    mid = (lo + hi) / 2
    inner = net.guided(mid[None, None] + 0.1, mid[None, None], 2.0)
    torch.testing.assert_close(inner[0, 0], mid + 0.2)


def test_expected_values_is_the_mean_of_the_distribution_sampled_from() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 5.0]])
    book = torch.tensor([[-1.0, 0.5, 3.0], [0.0, 1.0, 2.0]])
    probs = torch.softmax(logits / 0.5, dim=-1)
    torch.testing.assert_close(expected_values(logits, book, 0.5), (probs * book).sum(-1))
    # top-k 1 and temperature 0 both leave the argmax token's value.
    argmax_value = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(expected_values(logits, book, 1.0, top_k=1), argmax_value)
    torch.testing.assert_close(expected_values(logits, book, 0.0), argmax_value)
    # A nucleus that keeps the first token only (it holds > 0.5 of the mass).
    torch.testing.assert_close(expected_values(logits, book, 1.0, top_p=0.5), argmax_value)


@pytest.mark.parametrize("paradigm", ["ar-small", "mgm-small"])
def test_token_models_emit_the_mean_value_on_request(
    tokenizer: SpectralTokenizer, paradigm: str
) -> None:
    net = tiny_generative_net(paradigm, tokenizer)
    cond = frame_batch(pairs(0.2), tokenizer).cond
    settings: dict[str, Any] = {"temperature": 1.0, "top_p": 0.9, "steps": 3}
    with torch.no_grad():
        drawn = net.generate(cond, torch.Generator().manual_seed(1), settings)
        mean = net.generate(cond, torch.Generator().manual_seed(1), {**settings, "emit": "mean"})
        greedy = net.generate(
            cond, torch.Generator().manual_seed(1), {"steps": 3, "temperature": 0}
        )
        greedy_mean = net.generate(
            cond, torch.Generator().manual_seed(1), {"steps": 3, "temperature": 0, "emit": "mean"}
        )
    book = tokenizer.codebook
    assert torch.equal(tokenizer.decode(tokenizer.encode(drawn)), drawn)  # codebook values
    assert not torch.equal(tokenizer.decode(tokenizer.encode(mean)), mean)  # between them
    assert bool(((mean >= book[:, 0] - 1e-6) & (mean <= book[:, -1] + 1e-6)).all())
    # Each mean is nearer its bin's centre of mass than the draws: less spread over time.
    assert float(mean.var(dim=1).mean()) < float(drawn.var(dim=1).mean())
    # At temperature 0 the mean is the drawn (argmax) value: the same frames.
    torch.testing.assert_close(greedy_mean, greedy)
    with pytest.raises(ConfigError, match="emit='median'"):
        net.generate(cond, torch.Generator().manual_seed(1), {"emit": "median"})
