"""Unanimous multi-metric preference pairs from one input's scored candidates.

GenSR-Pref (DESIGN section 1, step 3) keeps a pair (winner, loser) only when the winner beats
the loser on *every* metric output of the criterion, each in its own direction. Agreement of
several metrics filters out pairs that one metric ranks by its own quirks; a criterion of a
single output is the single-metric ablation and goes through the same function.

Rules of :func:`unanimous_pairs`, for the candidates of one input:

* strictly better on every criterion output, by more than ``min_margin`` of that output (in
  the metric's own units): a tie or a disagreement on any output makes no pair;
* a candidate with a missing, ``None`` or non-finite score on a criterion output never pairs;
* no self pairs: a candidate never pairs with itself nor with a candidate of identical audio
  (the same output sampled twice, e.g. by greedy decoding with another seed);
* the clean reference (ground truth) is never a winner, and by default takes no part at all;
  only the explicit ablation ``winner="ground-truth"`` pairs it, as the winner, with every
  candidate.

Everything here is pure: records in, records out.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import PreferencePair, Restoration

#: ``winner`` of :func:`unanimous_pairs`: pairs within the model's own candidates (the method).
MODEL_WINNER: Final = "model"
#: ``winner`` of :func:`unanimous_pairs`: the clean reference beats every candidate (ablation).
GROUND_TRUTH: Final = "ground-truth"
WINNERS: Final = (MODEL_WINNER, GROUND_TRUTH)
#: How :func:`unanimous_pairs` chooses pairs under ``max_pairs``.
SELECTIONS: Final = ("margin", "random")


class ScoredPair(Protocol):
    """What :func:`pair_stats` reads of a pair: its input and both candidates' scores.

    A :class:`~gensr_bench.records.PreferencePair` is one; so is a row of a saved preference
    dataset read without its audio (``gensr-bench pairs stats``)."""

    @property
    def input_id(self) -> str: ...

    @property
    def chosen_scores(self) -> Mapping[str, float | None]: ...

    @property
    def rejected_scores(self) -> Mapping[str, float | None]: ...


@dataclass(frozen=True)
class Candidate:
    """One restoration of an input and its scores (metric output name -> value or ``None``)."""

    restoration: Restoration
    scores: Mapping[str, float | None]


def _finite(value: object) -> float | None:
    """The score as a float, or ``None`` when it is missing, ``None``, NaN or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # numpy scalars, ints, floats
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _known_scores(scores: Mapping[str, float | None]) -> dict[str, float]:
    """A copy of ``scores`` without the failed (``None``) outputs, as ``PreferencePair`` holds."""
    return {name: float(value) for name, value in scores.items() if value is not None}


def _check_criterion(
    criterion: Sequence[str] | str, directions: Mapping[str, bool]
) -> tuple[str, ...]:
    outputs = (criterion,) if isinstance(criterion, str) else tuple(criterion)
    known = ", ".join(sorted(directions)) or "(none)"
    for output in outputs:
        if output not in directions:
            raise ConfigError(
                f"unknown criterion output {output!r}: no metric direction is known for it; "
                f"known outputs: {known}"
            )
    repeated = sorted({output for output in outputs if outputs.count(output) > 1})
    if repeated:
        raise ConfigError(f"criterion lists {', '.join(repeated)} more than once: {outputs}")
    return outputs


def _check_margins(
    min_margin: float | Mapping[str, float], criterion: tuple[str, ...]
) -> dict[str, float]:
    if isinstance(min_margin, Mapping):
        extra = sorted(set(min_margin) - set(criterion))
        if extra:
            raise ConfigError(
                f"min_margin names {', '.join(extra)}, which the criterion does not use; "
                f"criterion: {', '.join(criterion)}"
            )
        given = {output: min_margin.get(output, 0.0) for output in criterion}
    else:
        given = dict.fromkeys(criterion, min_margin)
    margins = {}
    for output, margin in given.items():
        value = _finite(margin)
        if value is None or value < 0:
            raise ConfigError(
                f"min_margin for {output!r} must be a finite number >= 0 (in the metric's own "
                f"units), got {margin!r}"
            )
        margins[output] = value
    return margins


def _input_id(candidates: Sequence[Candidate], reference: Candidate | None) -> str | None:
    """The one input id all candidates (and the reference) share; ``None`` when there are none."""
    ids = [c.restoration.utterance_id for c in candidates]
    if reference is not None:
        ids.append(reference.restoration.utterance_id)
    distinct = sorted(set(ids))
    if len(distinct) > 1:
        raise ValueError(
            f"candidates of several inputs ({', '.join(distinct)}) were passed together; "
            "call unanimous_pairs once per input"
        )
    return distinct[0] if distinct else None


def unanimous_pairs(
    candidates: Sequence[Candidate],
    criterion: Sequence[str],
    directions: Mapping[str, bool],
    *,
    min_margin: float | Mapping[str, float] = 0.0,
    max_pairs: int | None = None,
    selection: str = "margin",
    seed: int = 0,
    reference: Candidate | None = None,
    winner: str = MODEL_WINNER,
) -> list[PreferencePair]:
    """Preference pairs among the scored candidates of one input.

    Args:
        candidates: the model's outputs for one input, each with its scores.
        criterion: the metric outputs every one of which the winner must win on (one output:
            the single-metric ablation). A bare string is read as one output.
        directions: metric output -> whether higher is better (``Metric.direction``).
        min_margin: how much better than the loser the winner must be, in each output's own
            units: one number for every output, or a mapping output -> margin (outputs it
            leaves out get 0). The winner must beat the loser by *more* than it.
        max_pairs: keep at most this many pairs (``None``: all).
        selection: which pairs ``max_pairs`` keeps. ``"margin"``: those with the largest
            *minimum normalised margin*, where an output's margin is divided by the spread
            (max - min) of that output over this input's eligible candidates, so outputs in
            different units compare; ties go to the pair found first (candidate order, the
            winner-loser pairs of candidate 0 with 1, 2, ... first). ``"random"``: a uniform
            draw seeded by ``item_seed(seed, input id)``, so the same inputs and seed always
            give the same pairs, and different inputs draw independently.
        seed: the seed of ``selection="random"``.
        reference: the clean reference of the input with its scores. Ignored unless ``winner``
            is ``"ground-truth"``: ground truth is never a winner of the method's pairs.
        winner: ``"model"`` (the method: pairs within the candidates) or ``"ground-truth"``
            (the ablation: ``(reference, candidate)`` for every candidate whose audio differs
            from the reference, criterion recorded as ``("ground-truth",)``; no metric is
            consulted, so ``min_margin`` must stay 0 and ``"margin"`` selection keeps the first
            candidates in order).

    Returns:
        The pairs in the order they were found (candidate order), with ``criterion`` the tuple
        of criterion outputs and ``chosen_scores`` / ``rejected_scores`` the full score dicts
        of the two candidates, less any failed (``None``) outputs.

    Raises:
        ConfigError: an unknown criterion output (the message lists the known ones), an empty
            criterion (allowed for the ground-truth ablation only), a negative or non-finite
            margin, a bad ``max_pairs``, ``selection`` or ``winner``, or
            ``winner="ground-truth"`` without a reference or with a margin.
        ValueError: the candidates belong to more than one input.
    """
    if winner not in WINNERS:
        raise ConfigError(f"winner must be one of {', '.join(WINNERS)}, got {winner!r}")
    if selection not in SELECTIONS:
        raise ConfigError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if max_pairs is not None and (
        isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1
    ):
        raise ConfigError(
            f"max_pairs must be a positive integer (or None for no cap), got {max_pairs!r}"
        )
    outputs = _check_criterion(criterion, directions)
    margins = _check_margins(min_margin, outputs)
    input_id = _input_id(candidates, reference)
    if winner == GROUND_TRUTH:
        return _ground_truth_pairs(
            candidates, reference, margins, max_pairs, selection, seed, input_id
        )
    if not outputs:
        raise ConfigError(
            "the criterion names no metric output: every pair would be 'unanimous'; "
            "name at least one output (e.g. dnsmos_ovrl)"
        )
    if input_id is None:
        return []

    # Candidates with a usable score on every criterion output, and their scores.
    eligible: list[tuple[int, dict[str, float]]] = []
    for index, candidate in enumerate(candidates):
        values = {output: _finite(candidate.scores.get(output)) for output in outputs}
        usable = {output: value for output, value in values.items() if value is not None}
        if len(usable) == len(outputs):
            eligible.append((index, usable))
    audio_keys = {
        index: candidates[index].restoration.audio.content_hash() for index, _ in eligible
    }

    found: list[tuple[int, int, dict[str, float]]] = []  # (winner, loser, gain per output)
    for a, (i, scores_i) in enumerate(eligible):
        for j, scores_j in eligible[a + 1 :]:
            if candidates[i] is candidates[j] or audio_keys[i] == audio_keys[j]:
                continue
            # gain > 0: candidate i is better than j on that output, in its own direction.
            gains = {
                output: (scores_i[output] - scores_j[output])
                * (1.0 if directions[output] else -1.0)
                for output in outputs
            }
            if all(gains[output] > margins[output] for output in outputs):
                found.append((i, j, gains))
            elif all(-gains[output] > margins[output] for output in outputs):
                found.append((j, i, {output: -gain for output, gain in gains.items()}))

    keep = list(range(len(found)))
    if max_pairs is not None and len(found) > max_pairs:
        if selection == "random":
            keep = sorted(random.Random(item_seed(seed, input_id)).sample(keep, max_pairs))
        else:
            spreads = {
                output: max(s[output] for _, s in eligible) - min(s[output] for _, s in eligible)
                for output in outputs
            }  # > 0 for every output: a pair exists, so two candidates differ on each
            strength = [
                min(gains[output] / spreads[output] for output in outputs) for _, _, gains in found
            ]
            ranked = sorted(keep, key=lambda k: (-strength[k], k))
            keep = sorted(ranked[:max_pairs])

    return [
        PreferencePair(
            input_id=input_id,
            chosen=candidates[found[k][0]].restoration,
            rejected=candidates[found[k][1]].restoration,
            chosen_scores=_known_scores(candidates[found[k][0]].scores),
            rejected_scores=_known_scores(candidates[found[k][1]].scores),
            criterion=outputs,
        )
        for k in keep
    ]


def _ground_truth_pairs(
    candidates: Sequence[Candidate],
    reference: Candidate | None,
    margins: Mapping[str, float],
    max_pairs: int | None,
    selection: str,
    seed: int,
    input_id: str | None,
) -> list[PreferencePair]:
    """The ablation: ``(reference, candidate)`` for every candidate of different audio."""
    if reference is None:
        raise ConfigError(
            f"winner={GROUND_TRUTH!r} needs the input's clean reference: pass reference=..."
        )
    if any(margin > 0 for margin in margins.values()):
        raise ConfigError(
            f"min_margin has no meaning with winner={GROUND_TRUTH!r} (the reference wins by "
            "construction, no metric is compared); leave it at 0"
        )
    assert input_id is not None  # the reference has one
    reference_audio = reference.restoration.audio.content_hash()
    losers = [
        candidate
        for candidate in candidates
        if candidate is not reference
        and candidate.restoration.audio.content_hash() != reference_audio
    ]
    if max_pairs is not None and len(losers) > max_pairs:
        if selection == "random":
            rng = random.Random(item_seed(seed, input_id))
            losers = [losers[k] for k in sorted(rng.sample(range(len(losers)), max_pairs))]
        else:
            losers = losers[:max_pairs]
    chosen_scores = _known_scores(reference.scores)
    return [
        PreferencePair(
            input_id=input_id,
            chosen=reference.restoration,
            rejected=loser.restoration,
            chosen_scores=dict(chosen_scores),
            rejected_scores=_known_scores(loser.scores),
            criterion=(GROUND_TRUTH,),
        )
        for loser in losers
    ]


def pair_stats(
    pairs: Sequence[ScoredPair],
    criterion: Sequence[str],
    *,
    directions: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """Counts and per-output margins of a set of pairs (``gensr-bench pairs stats``).

    Returns a dict with ``pairs`` (the number of pairs), ``inputs`` (the number of inputs with
    at least one pair), ``pairs_per_input`` (their ratio, ``None`` without pairs) and
    ``margins``: for each output of ``criterion``, ``{"n", "mean", "median", "min"}`` of the
    pair margins ``chosen - rejected`` over the pairs where both scores are known (``None``
    values when there are none). With ``directions`` each margin is signed so that a positive
    value means the chosen output is better (lower-is-better outputs are negated); without it,
    margins are the raw differences ``chosen - rejected``.

    Raises:
        ConfigError: ``directions`` is given and lacks an output of ``criterion``.
    """
    outputs = (criterion,) if isinstance(criterion, str) else tuple(criterion)
    if directions is not None:
        outputs = _check_criterion(outputs, directions)
    inputs = len({pair.input_id for pair in pairs})
    margins: dict[str, dict[str, Any]] = {}
    for output in outputs:
        sign = 1.0 if directions is None or directions[output] else -1.0
        values = []
        for pair in pairs:
            chosen = _finite(pair.chosen_scores.get(output))
            rejected = _finite(pair.rejected_scores.get(output))
            if chosen is not None and rejected is not None:
                values.append(sign * (chosen - rejected))
        margins[output] = {
            "n": len(values),
            "mean": statistics.fmean(values) if values else None,
            "median": float(statistics.median(values)) if values else None,
            "min": min(values) if values else None,
        }
    return {
        "pairs": len(pairs),
        "inputs": inputs,
        "pairs_per_input": len(pairs) / inputs if inputs else None,
        "margins": margins,
    }
