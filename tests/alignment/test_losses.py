"""Tests of gensr_bench.alignment.losses: DPO and Diffusion-DPO on tensors.

Values are checked against hand computations with ``math`` (an independent implementation of
the formulas), gradients by their signs and closed forms, and the losses once end to end on
the tiny generative networks, through the same calls the DPO trainer makes.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable

import pytest
import torch

from gensr_bench.alignment.losses import (
    DEFAULT_BETA,
    LossOutput,
    diffusion_dpo_loss,
    dpo_loss,
    loss_for_paradigm,
)
from gensr_bench.errors import ConfigError
from gensr_bench.testing import add_noise, voiced_signal
from gensr_bench_plugins.models.generative.ar import ARNet
from gensr_bench_plugins.models.generative.base import FrameNet
from gensr_bench_plugins.models.generative.data import FrameBatch, frame_batch
from gensr_bench_plugins.models.generative.fm import FMNet
from gensr_bench_plugins.models.generative.mgm import MGMNet
from gensr_bench_plugins.models.generative.testing import (
    tiny_generative_net,
    tiny_spectral_tokenizer,
)
from gensr_bench_plugins.models.generative.tokenizer import SpectralTokenizer

LOSSES = [dpo_loss, diffusion_dpo_loss]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], LossOutput]


def values(n: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    """``n`` float64 values drawn from N(0, scale^2), deterministic for a seed."""
    return scale * torch.randn(
        n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def hand_loss(margins: list[float]) -> float:
    """mean(-log sigmoid(h)) written out with math: -log(1 / (1 + exp(-h)))."""
    return sum(-math.log(1.0 / (1.0 + math.exp(-h))) for h in margins) / len(margins)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_policy_equal_to_reference_gives_log_2(loss_fn: LossFn) -> None:
    for seed in range(3):
        chosen, rejected = values(5, seed), values(5, seed + 10)
        out = loss_fn(chosen, rejected, chosen.clone(), rejected.clone(), 7.0)
        assert out.loss.dim() == 0
        assert out.loss.item() == pytest.approx(math.log(2), abs=1e-15)
        assert torch.equal(out.rewards_chosen, torch.zeros(5, dtype=torch.float64))
        assert torch.equal(out.rewards_rejected, torch.zeros(5, dtype=torch.float64))
        assert out.margin == 0.0
        assert out.reward_accuracy == 0.0  # a tie is not a correct ranking


def test_dpo_matches_a_hand_computation() -> None:
    rng = random.Random(4)
    for _ in range(5):
        n = rng.randint(1, 6)
        beta = rng.uniform(0.05, 2.0)
        pc, pr, rc, rr = ([rng.uniform(-30.0, -1.0) for _ in range(n)] for _ in range(4))
        out = dpo_loss(*(torch.tensor(v, dtype=torch.float64) for v in (pc, pr, rc, rr)), beta)

        rewards_c = [beta * (pc[i] - rc[i]) for i in range(n)]
        rewards_r = [beta * (pr[i] - rr[i]) for i in range(n)]
        diffs = [rewards_c[i] - rewards_r[i] for i in range(n)]
        assert out.loss.item() == pytest.approx(hand_loss(diffs), rel=1e-12)
        assert out.rewards_chosen.tolist() == pytest.approx(rewards_c, rel=1e-12)
        assert out.rewards_rejected.tolist() == pytest.approx(rewards_r, rel=1e-12)
        assert out.margin == pytest.approx(sum(diffs) / n, rel=1e-12)
        assert out.reward_accuracy == pytest.approx(sum(d > 0 for d in diffs) / n)


def test_diffusion_dpo_matches_a_hand_computation() -> None:
    rng = random.Random(5)
    for _ in range(5):
        n = rng.randint(1, 6)
        beta = rng.uniform(100.0, 2000.0)
        # velocity errors are positive means; policy and reference differ by a little
        ew, el = ([rng.uniform(0.2, 1.0) for _ in range(n)] for _ in range(2))
        rw = [e + rng.uniform(-2e-3, 2e-3) for e in ew]
        rl = [e + rng.uniform(-2e-3, 2e-3) for e in el]
        out = diffusion_dpo_loss(
            *(torch.tensor(v, dtype=torch.float64) for v in (ew, el, rw, rl)), beta
        )

        rewards_c = [-beta * (ew[i] - rw[i]) for i in range(n)]
        rewards_r = [-beta * (el[i] - rl[i]) for i in range(n)]
        diffs = [-beta * ((ew[i] - rw[i]) - (el[i] - rl[i])) for i in range(n)]
        assert out.loss.item() == pytest.approx(hand_loss(diffs), rel=1e-10)
        assert out.rewards_chosen.tolist() == pytest.approx(rewards_c, rel=1e-10)
        assert out.rewards_rejected.tolist() == pytest.approx(rewards_r, rel=1e-10)
        assert out.margin == pytest.approx(sum(diffs) / n, rel=1e-10)
        assert out.reward_accuracy == pytest.approx(sum(d > 0 for d in diffs) / n)


def test_reward_accuracy_counts_pairs_ranked_right() -> None:
    # pair 0 ranked right, pair 1 wrong, pair 2 a tie, pair 3 right: 2 of 4
    policy_chosen = torch.tensor([2.0, 0.0, 1.0, 5.0])
    policy_rejected = torch.tensor([0.0, 3.0, 1.0, 4.0])
    zeros = torch.zeros(4)
    out = dpo_loss(policy_chosen, policy_rejected, zeros, zeros, 1.0)
    assert out.reward_accuracy == 0.5
    assert out.margin == pytest.approx((2 - 3 + 0 + 1) / 4)
    # the same errors as velocity errors rank the other way round (lower error is better)
    flipped = diffusion_dpo_loss(policy_chosen, policy_rejected, zeros, zeros, 1.0)
    assert flipped.reward_accuracy == 0.25
    assert flipped.margin == pytest.approx(-out.margin)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_swapping_winner_and_loser_negates_margin_and_rewards(loss_fn: LossFn) -> None:
    pc, pr, rc, rr = (values(6, seed, 0.5) for seed in range(4))
    beta = 3.0
    out = loss_fn(pc, pr, rc, rr, beta)
    swapped = loss_fn(pr, pc, rr, rc, beta)
    assert swapped.margin == pytest.approx(-out.margin, rel=1e-12)
    assert out.margin != 0.0
    assert torch.equal(swapped.rewards_chosen, out.rewards_rejected)
    assert torch.equal(swapped.rewards_rejected, out.rewards_chosen)
    diff = out.rewards_chosen - out.rewards_rejected
    assert torch.equal(
        torch.sign(swapped.rewards_chosen - swapped.rewards_rejected), -torch.sign(diff)
    )
    assert bool((diff != 0).all())  # no ties, so the accuracies are complementary
    assert swapped.reward_accuracy == pytest.approx(1.0 - out.reward_accuracy)
    # softplus(h) - softplus(-h) = h: the swapped loss exceeds the loss by the mean margin
    assert float(swapped.loss - out.loss) == pytest.approx(out.margin, rel=1e-10)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_rewards_are_detached_and_scale_with_beta(loss_fn: LossFn) -> None:
    pc, pr = (values(3, seed).requires_grad_() for seed in (0, 1))
    rc, rr = values(3, 2), values(3, 3)
    out1 = loss_fn(pc, pr, rc, rr, 1.0)
    out4 = loss_fn(pc, pr, rc, rr, 4.0)
    assert out1.loss.requires_grad
    assert not out1.rewards_chosen.requires_grad and not out1.rewards_rejected.requires_grad
    torch.testing.assert_close(out4.rewards_chosen, 4 * out1.rewards_chosen)
    torch.testing.assert_close(out4.rewards_rejected, 4 * out1.rewards_rejected)
    assert out4.margin == pytest.approx(4 * out1.margin)
    assert isinstance(out1.reward_accuracy, float) and isinstance(out1.margin, float)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_large_margins_stay_finite(loss_fn: LossFn) -> None:
    """beta = 1000 times an error gap of 10: -log(sigmoid(-1e4)) overflows if written naively."""
    big = torch.tensor([10.0, -10.0], dtype=torch.float32, requires_grad=True)
    zeros = torch.zeros(2)
    out = loss_fn(big, zeros, zeros, zeros, 1000.0)
    assert math.isfinite(out.loss.item())
    # one pair is ranked wrong by 1e4 (loss ~ 1e4), the other right by 1e4 (loss ~ 0)
    assert out.loss.item() == pytest.approx(1e4 / 2, rel=1e-6)
    out.loss.backward()
    assert big.grad is not None and bool(torch.isfinite(big.grad).all())


# --------------------------------------------------------------------------- gradients


def test_dpo_gradient_raises_chosen_and_lowers_rejected_logprob() -> None:
    beta, n = 0.5, 4
    policy_chosen = values(n, 0, 3.0).requires_grad_()
    policy_rejected = values(n, 1, 3.0).requires_grad_()
    ref_chosen = values(n, 2, 3.0).requires_grad_()  # gradients must not flow into these
    ref_rejected = values(n, 3, 3.0).requires_grad_()
    out = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    out.loss.backward()
    assert policy_chosen.grad is not None and policy_rejected.grad is not None
    assert bool((policy_chosen.grad < 0).all())  # descent raises the chosen log-prob
    assert bool((policy_rejected.grad > 0).all())  # ... and lowers the rejected one
    assert ref_chosen.grad is None and ref_rejected.grad is None
    # closed form: d loss / d pi_w = -beta * sigmoid(-(r_w - r_l)) / B
    diff = (out.rewards_chosen - out.rewards_rejected).tolist()
    expected = [-beta / (1 + math.exp(d)) / n for d in diff]
    assert policy_chosen.grad.tolist() == pytest.approx(expected, rel=1e-12)
    assert policy_rejected.grad.tolist() == pytest.approx([-g for g in expected], rel=1e-12)


def test_diffusion_dpo_gradient_lowers_chosen_and_raises_rejected_error() -> None:
    beta, n = 1000.0, 4
    err_chosen = (0.5 + values(n, 0, 1e-3)).requires_grad_()
    err_rejected = (0.5 + values(n, 1, 1e-3)).requires_grad_()
    ref_chosen = (0.5 + values(n, 2, 1e-3)).requires_grad_()
    ref_rejected = (0.5 + values(n, 3, 1e-3)).requires_grad_()
    out = diffusion_dpo_loss(err_chosen, err_rejected, ref_chosen, ref_rejected, beta)
    out.loss.backward()
    assert err_chosen.grad is not None and err_rejected.grad is not None
    assert bool((err_chosen.grad > 0).all())  # descent lowers the chosen error
    assert bool((err_rejected.grad < 0).all())  # ... and raises the rejected one
    assert ref_chosen.grad is None and ref_rejected.grad is None
    diff = (out.rewards_chosen - out.rewards_rejected).tolist()
    expected = [beta / (1 + math.exp(d)) / n for d in diff]
    assert err_chosen.grad.tolist() == pytest.approx(expected, rel=1e-10)
    assert err_rejected.grad.tolist() == pytest.approx([-g for g in expected], rel=1e-10)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_a_gradient_step_lowers_the_loss_and_raises_the_margin(loss_fn: LossFn) -> None:
    pc, pr = (values(5, seed).requires_grad_() for seed in (0, 1))
    rc, rr = values(5, 2), values(5, 3)
    beta = 2.0
    before = loss_fn(pc, pr, rc, rr, beta)
    before.loss.backward()
    with torch.no_grad():
        assert pc.grad is not None and pr.grad is not None
        pc -= 0.1 * pc.grad
        pr -= 0.1 * pr.grad
    after = loss_fn(pc, pr, rc, rr, beta)
    assert after.loss.item() < before.loss.item()
    assert after.margin > before.margin


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_inputs_of_different_shapes_are_refused(loss_fn: LossFn) -> None:
    three, four = torch.zeros(3), torch.zeros(4)
    with pytest.raises(ValueError, match=r"same shape.*\[3\].*\[4\]"):
        loss_fn(three, three, three, four, 1.0)
    grid = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="one-dimensional"):
        loss_fn(grid, grid, grid, grid, 1.0)
    scalar = torch.tensor(1.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        loss_fn(scalar, scalar, scalar, scalar, 1.0)
    empty = torch.zeros(0)
    with pytest.raises(ValueError, match="at least one pair"):
        loss_fn(empty, empty, empty, empty, 1.0)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_inputs_that_are_not_float_tensors_are_refused(loss_fn: LossFn) -> None:
    floats = torch.zeros(2)
    with pytest.raises(TypeError, match="floating-point"):
        loss_fn(torch.zeros(2, dtype=torch.long), floats, floats, floats, 1.0)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        loss_fn([0.0, 0.0], floats, floats, floats, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("beta", [0.0, -0.1, math.nan, math.inf, True, "0.1"])
def test_beta_must_be_a_positive_finite_number(loss_fn: LossFn, beta: object) -> None:
    x = torch.zeros(2)
    with pytest.raises(ConfigError, match="beta must be a positive"):
        loss_fn(x, x, x, x, beta)  # type: ignore[arg-type]


def test_an_integer_beta_is_accepted() -> None:
    x = values(2, 0)
    assert float(dpo_loss(x, x, x, x, 2).loss) == pytest.approx(math.log(2))


# --------------------------------------------------------------------------- paradigms


def test_loss_for_paradigm_picks_the_paradigm_loss() -> None:
    assert loss_for_paradigm("ar") is dpo_loss
    assert loss_for_paradigm("mgm") is dpo_loss
    assert loss_for_paradigm("fm") is diffusion_dpo_loss


@pytest.mark.parametrize("paradigm", ["dsp", "discriminative", "FM", ""])
def test_loss_for_an_unknown_paradigm_names_the_known_ones(paradigm: str) -> None:
    with pytest.raises(ConfigError) as info:
        loss_for_paradigm(paradigm)
    message = str(info.value)
    assert repr(paradigm) in message
    assert all(known in message for known in ("ar", "mgm", "fm"))


def test_default_beta_per_paradigm() -> None:
    assert dict(DEFAULT_BETA) == {"ar": 0.1, "mgm": 10.0, "fm": 1000.0}
    for paradigm in DEFAULT_BETA:
        loss_for_paradigm(paradigm)  # every paradigm with a beta has a loss
    with pytest.raises(TypeError):
        DEFAULT_BETA["fm"] = 1.0  # type: ignore[index]  # module state stays read-only


# --------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def tokenizer() -> SpectralTokenizer:
    return tiny_spectral_tokenizer()


def chosen_and_rejected(tokenizer: SpectralTokenizer) -> tuple[FrameBatch, FrameBatch]:
    """(chosen, rejected) batches of the same two noisy inputs: the clean speech as the
    chosen output, a noisier copy as the rejected one (equal lengths, so one mask fits)."""
    chosen, rejected = [], []
    for i in range(2):
        clean = voiced_signal(0.5, seed=20 + i)
        degraded = add_noise(clean, 5.0, seed=30 + i).samples
        chosen.append((degraded, clean.samples))
        rejected.append((degraded, add_noise(clean, 15.0, seed=40 + i).samples))
    return frame_batch(chosen, tokenizer), frame_batch(rejected, tokenizer)


@pytest.mark.parametrize(
    ("model_name", "paradigm"), [("ar-small", "ar"), ("mgm-small", "mgm"), ("fm-small", "fm")]
)
def test_losses_on_the_generative_networks(
    tokenizer: SpectralTokenizer, model_name: str, paradigm: str
) -> None:
    """A frozen copy of the policy gives log 2; one optimiser step on the loss lowers it."""
    policy = tiny_generative_net(model_name, tokenizer, seed=1)
    reference = copy.deepcopy(policy).requires_grad_(False)
    chosen, rejected = chosen_and_rejected(tokenizer)
    g = torch.Generator().manual_seed(0)
    b, t, bins = chosen.cond.shape
    mask = torch.rand(b, t, bins, generator=g) < 0.5  # MGM: one mask for every term
    times, noise = torch.rand(b, generator=g), torch.randn(b, t, bins, generator=g)

    def value(net: FrameNet, batch: FrameBatch) -> torch.Tensor:
        if isinstance(net, ARNet):
            return net.token_logprob(batch, batch.valid)
        if isinstance(net, MGMNet):
            return net.token_logprob(batch, mask)
        assert isinstance(net, FMNet)
        return net.velocity_error(batch, times, noise)

    loss_fn = loss_for_paradigm(paradigm)
    beta = DEFAULT_BETA[paradigm]

    def loss() -> LossOutput:
        with torch.no_grad():
            ref_c, ref_r = value(reference, chosen), value(reference, rejected)
        return loss_fn(value(policy, chosen), value(policy, rejected), ref_c, ref_r, beta)

    start = loss()
    assert start.rewards_chosen.shape == (b,)
    assert start.loss.item() == pytest.approx(math.log(2), abs=1e-6)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-4)
    start.loss.backward()
    optimiser.step()
    after = loss()
    assert after.loss.item() < math.log(2) - 1e-6
    assert after.margin > 0
