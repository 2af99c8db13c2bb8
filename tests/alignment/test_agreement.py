"""Tests of gensr_bench.alignment.agreement on hand-made candidate scores (closed forms)."""

from __future__ import annotations

import pytest

from gensr_bench.alignment.agreement import criterion_agreement
from gensr_bench.errors import ConfigError

UP = {"a": True, "b": True, "c": False}


def test_ties_decisions_and_vetoes_are_counted_over_candidate_pairs() -> None:
    # One input, three candidates: a and b agree on every order; c (lower is better)
    # reverses the order of candidates 0 and 1 and ties 1 and 2.
    group = [
        {"a": 1.0, "b": 10.0, "c": 0.5},
        {"a": 2.0, "b": 20.0, "c": 0.1},
        {"a": 3.0, "b": 30.0, "c": 0.1},
    ]
    rows = {r.output: r for r in criterion_agreement({"x": group}, ["a", "b", "c"], UP)}
    # Pairs (0,1), (0,2), (1,2): c prefers 1 over 0 (lower), 2 over 0, ties 1 and 2.
    assert rows["c"].pairs == 3 and rows["c"].tie_rate == pytest.approx(1 / 3)
    assert rows["a"].tie_rate == 0.0
    # For c: a and b agree on all 3 pairs; c agrees on (0,1) and (0,2), ties (1,2).
    assert rows["c"].others_agree == 3
    assert rows["c"].decides == pytest.approx(2 / 3) and rows["c"].vetoes == 0.0
    # For a: b and c must agree: on (0,1) and (0,2) they do (c says 1 and 2 are better).
    assert rows["a"].others_agree == 2 and rows["a"].decides == 1.0
    assert rows["a"].spearman["b"] == pytest.approx(1.0)
    assert rows["a"].spearman["c"] == pytest.approx(-0.866, abs=1e-3)  # raw scores, not "better"


def test_margins_turn_small_differences_into_ties_and_none_scores_are_left_out() -> None:
    group = [{"a": 1.0, "b": 1.0}, {"a": 1.05, "b": None}, {"a": 2.0, "b": 3.0}]
    rows = criterion_agreement({"x": group}, ["a", "b"], UP, margins={"a": 0.1})
    a, b = rows
    assert a.pairs == 3 and a.tie_rate == pytest.approx(1 / 3)  # 1.0 vs 1.05 is a tie
    assert b.pairs == 1 and b.tie_rate == 0.0
    assert a.spearman["b"] is None  # two candidates scored on both: no correlation
    with pytest.raises(ConfigError, match="no direction known for d"):
        criterion_agreement({"x": group}, ["a", "d"], UP)
