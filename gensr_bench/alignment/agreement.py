"""How informative each criterion output is on a set of candidates (for choosing the criterion).

For every pair of candidates of the same input, an output *prefers* one side when the two
scores differ by more than its margin (``--min-margin``, or its measured jitter), and *ties*
otherwise. Per output, :func:`criterion_agreement` reports

* ``tie_rate``: the share of candidate pairs it cannot order;
* ``spearman``: its rank correlation with each other output over all candidates (computed
  within each input, then averaged over inputs, so quality differences between inputs do
  not make unrelated metrics look alike);
* ``decides``: among the pairs that every *other* output orders the same way (the pairs the
  criterion would keep without this output), the share this output agrees with; ``vetoes``:
  the share it orders the opposite way; the rest it ties (and so also removes).

Scores are read as they are stored; ``directions`` says which way is better.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gensr_bench.errors import ConfigError


@dataclass(frozen=True)
class OutputAgreement:
    """One output's row of :func:`criterion_agreement`."""

    output: str
    #: Candidate pairs where both scores exist.
    pairs: int
    tie_rate: float | None
    #: Mean within-input Spearman correlation with each other output (``None``: no input
    #: with at least three candidates scored on both).
    spearman: Mapping[str, float | None]
    #: Pairs the other outputs agree on, and the shares this output agrees with / vetoes.
    others_agree: int
    decides: float | None
    vetoes: float | None


def _sign(a: float, b: float, higher: bool, margin: float) -> int:
    difference = (a - b) if higher else (b - a)
    if difference > margin:
        return 1
    if difference < -margin:
        return -1
    return 0


def _number(value: float | None) -> float | None:
    """The score as a float; ``None`` when missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    value = float(spearmanr(x, y).statistic)
    return value if math.isfinite(value) else None


def criterion_agreement(
    candidates: Mapping[str, Sequence[Mapping[str, float | None]]],
    outputs: Sequence[str],
    directions: Mapping[str, bool],
    margins: float | Mapping[str, float] = 0.0,
) -> list[OutputAgreement]:
    """Tie rate, within-input rank correlation and deciding power of each of ``outputs``.

    ``candidates``: input id -> each candidate's scores (output -> value or ``None``).
    """
    missing = [o for o in outputs if o not in directions]
    if missing:
        raise ConfigError(f"no direction known for {', '.join(missing)}")
    margin = {
        o: float(margins.get(o, 0.0) if isinstance(margins, Mapping) else margins) for o in outputs
    }
    signs: dict[str, list[int | None]] = {o: [] for o in outputs}
    correlations: dict[tuple[str, str], list[float]] = {}
    for raw in candidates.values():
        group = [{o: _number(c.get(o)) for o in outputs} for c in raw]
        for a, b in itertools.combinations(group, 2):
            for o in outputs:
                x, y = a[o], b[o]
                signs[o].append(
                    None if x is None or y is None else _sign(x, y, directions[o], margin[o])
                )
        for o, p in itertools.permutations(outputs, 2):
            both = [(x, y) for c in group if (x := c[o]) is not None and (y := c[p]) is not None]
            value = _spearman([x for x, _ in both], [y for _, y in both])
            if value is not None:
                correlations.setdefault((o, p), []).append(value)
    rows = []
    for o in outputs:
        known = [s for s in signs[o] if s is not None]
        others = [q for q in outputs if q != o]
        agreed = decided = vetoed = 0
        for i, s in enumerate(signs[o]):
            if s is None or not others:
                continue
            other_signs = [signs[q][i] for q in others]
            if any(v is None or v == 0 for v in other_signs) or len(set(other_signs)) != 1:
                continue
            agreed += 1
            decided += s == other_signs[0]
            vetoed += s == -(other_signs[0] or 0)
        rows.append(
            OutputAgreement(
                output=o,
                pairs=len(known),
                tie_rate=(sum(s == 0 for s in known) / len(known)) if known else None,
                spearman={
                    p: (float(np.mean(correlations[(o, p)])) if (o, p) in correlations else None)
                    for p in others
                },
                others_agree=agreed,
                decides=decided / agreed if agreed else None,
                vetoes=vetoed / agreed if agreed else None,
            )
        )
    return rows
