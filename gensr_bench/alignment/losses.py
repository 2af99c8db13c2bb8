"""DPO objectives for the three generative paradigms, as pure functions on tensors.

Every loss compares a trainable *policy* with a frozen *reference* copy of the same model on a
batch of preference pairs (chosen ``w``, rejected ``l``) and returns a :class:`LossOutput`.
Both share one shape: an implicit reward per side, and the logistic loss on their difference,

    loss = mean_over_pairs( -log sigmoid(r_w - r_l) )

computed with ``logsigmoid`` so that a large margin (β = 1000 on FM errors) never overflows.
What the reward is depends on the paradigm's likelihood (DESIGN section 1, step 4):

* AR and MGM (:func:`dpo_loss`, Rafailov et al. 2023): the summed token log-probability of the
  output, ``π`` for the policy and ``r`` for the reference (MGM: over the positions of one
  random mask shared by policy and reference), and ``reward = β (π - r)``.
* FM (:func:`diffusion_dpo_loss`, Wallace et al. 2023, "Diffusion Model Alignment Using Direct
  Preference Optimization"): the per-sample velocity error ``e`` at one (t, noise) draw shared
  by policy and reference, and ``reward = -β (e_θ - e_ref)``: lowering the error on an output
  relative to the reference makes it more likely.

With the policy equal to the reference every reward is 0 and the loss is exactly ``log 2``.

The reference's numbers are constants of the objective: they are detached here, so a
reference that was (by mistake) computed with gradients never receives any.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

import torch
import torch.nn.functional as F

from gensr_bench.errors import ConfigError

#: β per paradigm, after the GenSR-Pref paper: it scales a summed log-probability over a whole
#: output (AR: every frame; MGM: the masked tokens) or a *mean* velocity error (FM), which is
#: why it spans four orders of magnitude.
DEFAULT_BETA: Final[Mapping[str, float]] = MappingProxyType({"ar": 0.1, "mgm": 10.0, "fm": 1000.0})


@dataclass(frozen=True)
class LossOutput:
    """What a preference loss returns for one batch of pairs.

    Attributes:
        loss: the scalar loss (mean over the pairs), differentiable w.r.t. the policy inputs.
        rewards_chosen: implicit reward of each chosen output, ``[B]``, detached.
        rewards_rejected: implicit reward of each rejected output, ``[B]``, detached.
        reward_accuracy: fraction of pairs with ``rewards_chosen > rewards_rejected``
            (a tie counts as wrong).
        margin: mean of ``rewards_chosen - rewards_rejected`` over the pairs.
    """

    loss: torch.Tensor
    rewards_chosen: torch.Tensor
    rewards_rejected: torch.Tensor
    reward_accuracy: float
    margin: float


class PreferenceLoss(Protocol):
    """The signature every paradigm's loss has: the policy's chosen and rejected values, the
    reference's chosen and rejected values (four ``[B]`` tensors, in that order) and β.

    The arguments are positional: their names differ between the paradigms.
    """

    def __call__(
        self,
        policy_chosen: torch.Tensor,
        policy_rejected: torch.Tensor,
        ref_chosen: torch.Tensor,
        ref_rejected: torch.Tensor,
        beta: float,
        /,
    ) -> LossOutput: ...


def _check_inputs(tensors: Mapping[str, torch.Tensor], beta: float) -> None:
    """Raise unless the tensors are equal-shaped non-empty 1-D float batches and β > 0."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise ConfigError(f"beta must be a positive number, got {beta!r}")
    if not (math.isfinite(beta) and beta > 0):
        raise ConfigError(
            f"beta must be a positive finite number, got {beta!r}; defaults per paradigm: "
            + ", ".join(f"{k}={v:g}" for k, v in DEFAULT_BETA.items())
        )
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if not tensor.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{name} {list(shape)}" for name, shape in shapes.items())
        raise ValueError(
            f"the four loss inputs must have the same shape [B] (one value per pair), got {listed}"
        )
    (shape,) = set(shapes.values())
    if len(shape) != 1:
        raise ValueError(
            f"the loss inputs must be one-dimensional [B] (one value per pair), got shape "
            f"{list(shape)}; reduce per-token or per-frame values to one per sample first"
        )
    if shape[0] == 0:
        raise ValueError("the loss inputs are empty: a batch needs at least one pair")


def _logistic_preference_loss(
    rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor
) -> LossOutput:
    """``mean(-log sigmoid(r_w - r_l))`` and its statistics, from rewards that carry gradients."""
    logits = rewards_chosen - rewards_rejected
    loss = -F.logsigmoid(logits).mean()
    chosen = rewards_chosen.detach()
    rejected = rewards_rejected.detach()
    return LossOutput(
        loss=loss,
        rewards_chosen=chosen,
        rewards_rejected=rejected,
        reward_accuracy=float((chosen > rejected).float().mean()),
        margin=float((chosen - rejected).mean()),
    )


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> LossOutput:
    """DPO on sequence log-probabilities (AR, MGM).

    With ``π_w, π_l`` the policy's and ``r_w, r_l`` the reference's summed log-probabilities
    of the chosen and rejected outputs (each ``[B]``)::

        rewards_chosen   = β (π_w - r_w)
        rewards_rejected = β (π_l - r_l)
        loss = mean( -log sigmoid(β [(π_w - r_w) - (π_l - r_l)]) )

    Its gradient raises ``π_w`` and lowers ``π_l``, each with weight
    ``β sigmoid(-(r_w - r_l)) / B``, so pairs the policy already ranks right count less.

    Raises:
        ValueError: the four tensors are not equal-shaped, non-empty and one-dimensional.
        TypeError: an input is not a floating-point tensor.
        ConfigError: ``beta`` is not a positive finite number.
    """
    _check_inputs(
        {
            "policy_chosen": policy_chosen,
            "policy_rejected": policy_rejected,
            "ref_chosen": ref_chosen,
            "ref_rejected": ref_rejected,
        },
        beta,
    )
    return _logistic_preference_loss(
        beta * (policy_chosen - ref_chosen.detach()),
        beta * (policy_rejected - ref_rejected.detach()),
    )


def diffusion_dpo_loss(
    policy_err_chosen: torch.Tensor,
    policy_err_rejected: torch.Tensor,
    ref_err_chosen: torch.Tensor,
    ref_err_rejected: torch.Tensor,
    beta: float,
) -> LossOutput:
    """Diffusion-DPO on per-sample velocity errors (FM), after Wallace et al. (2023).

    With ``e_θ(w), e_θ(l)`` the policy's and ``e_ref(w), e_ref(l)`` the reference's velocity
    errors of the chosen and rejected outputs at the same (t, noise) draw (each ``[B]``)::

        rewards_chosen   = -β (e_θ(w) - e_ref(w))
        rewards_rejected = -β (e_θ(l) - e_ref(l))
        loss = mean( -log sigmoid(-β [(e_θ(w) - e_ref(w)) - (e_θ(l) - e_ref(l))]) )

    The errors are per-sample *means* over valid frames and bins (as
    ``AlignablePolicy.velocity_error`` returns them), not sums. Published formulations differ
    by constant factors (Wallace et al. multiply β by the number of timesteps T and a
    weighting ω(λ_t); some implementations add 0.5): here β absorbs every such constant, which
    is why the default for FM is large (``DEFAULT_BETA["fm"]``).

    The gradient lowers the chosen error and raises the rejected one.

    Raises:
        ValueError: the four tensors are not equal-shaped, non-empty and one-dimensional.
        TypeError: an input is not a floating-point tensor.
        ConfigError: ``beta`` is not a positive finite number.
    """
    _check_inputs(
        {
            "policy_err_chosen": policy_err_chosen,
            "policy_err_rejected": policy_err_rejected,
            "ref_err_chosen": ref_err_chosen,
            "ref_err_rejected": ref_err_rejected,
        },
        beta,
    )
    return _logistic_preference_loss(
        -beta * (policy_err_chosen - ref_err_chosen.detach()),
        -beta * (policy_err_rejected - ref_err_rejected.detach()),
    )


_LOSSES: Final[Mapping[str, PreferenceLoss]] = MappingProxyType(
    {"ar": dpo_loss, "mgm": dpo_loss, "fm": diffusion_dpo_loss}
)


def loss_for_paradigm(paradigm: str) -> PreferenceLoss:
    """The preference loss of a model paradigm: ``dpo_loss`` for ``ar`` and ``mgm``,
    ``diffusion_dpo_loss`` for ``fm``.

    Raises:
        ConfigError: the paradigm has no preference loss (e.g. ``discriminative``, ``dsp``).
    """
    try:
        return _LOSSES[paradigm]
    except KeyError:
        raise ConfigError(
            f"no preference loss for paradigm {paradigm!r}; DPO alignment supports the "
            f"paradigms {', '.join(_LOSSES)} (models with a likelihood or a velocity error)"
        ) from None
