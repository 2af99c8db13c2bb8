"""Tests of gensr_bench.stats: bootstrap confidence intervals, summaries, breakdowns."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gensr_bench.records import NO_REFERENCE, FailedOutput
from gensr_bench.stats import (
    bootstrap_ci,
    breakdown,
    error_counts,
    group_by,
    paired_by_group,
    paired_difference,
    run_notes,
    summarise,
)
from gensr_bench.testing import scored_output


def normal_sample(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(3.0, 1.0, size=n)


def test_bootstrap_ci_is_deterministic_for_a_seed() -> None:
    data = normal_sample(40)
    assert bootstrap_ci(data, seed=5) == bootstrap_ci(list(data), seed=5)
    assert bootstrap_ci(data, seed=5) != bootstrap_ci(data, seed=6)


def test_bootstrap_ci_contains_the_mean() -> None:
    for seed in range(5):
        data = normal_sample(30, seed)
        low, high = bootstrap_ci(data, seed=seed)
        assert low < float(np.mean(data)) < high


def test_bootstrap_ci_shrinks_with_more_data() -> None:
    small = np.subtract(*bootstrap_ci(normal_sample(25))[::-1])
    large = np.subtract(*bootstrap_ci(normal_sample(400))[::-1])
    # the width of a mean's interval scales with 1 / sqrt(n): 16x the data, about 1/4 the width
    assert 2.5 < small / large < 6.0


def test_bootstrap_ci_widens_with_the_confidence_level() -> None:
    data = normal_sample(50)
    low50, high50 = bootstrap_ci(data, confidence=0.5)
    low99, high99 = bootstrap_ci(data, confidence=0.99)
    assert low99 < low50 < high50 < high99


@pytest.mark.parametrize("n", [12, 60])
def test_bootstrap_ci_agrees_with_scipy(n: int) -> None:
    """scipy.stats.bootstrap (percentile method) is an independent reference."""
    data = np.random.default_rng(n).exponential(2.0, size=n)  # skewed on purpose

    low, high = bootstrap_ci(data, resamples=4000, seed=1)
    reference = scipy_stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=0.95,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval

    width = reference.high - reference.low
    assert low == pytest.approx(reference.low, abs=0.06 * width)
    assert high == pytest.approx(reference.high, abs=0.06 * width)


def test_bootstrap_ci_of_one_value_and_of_none() -> None:
    assert bootstrap_ci([2.5]) == (2.5, 2.5)
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_ci([])


def test_summarise_counts_scored_and_total_with_failures() -> None:
    outputs = [
        scored_output(0, {"a": 1.0, "b": None}),
        scored_output(1, {"a": None, "b": None}),
        scored_output(2, {"a": 3.0}),  # "b" was never scored
        scored_output(3, {"a": 5.0, "b": None}),
    ]

    a, b = summarise(iter(outputs), ["a", "b"], direction=lambda name: name == "a", seed=3)

    assert (a.output, a.n_scored, a.n_total, a.higher_is_better) == ("a", 3, 4, True)
    assert a.mean == pytest.approx(3.0)
    assert (a.ci_low, a.ci_high) == bootstrap_ci([1.0, 3.0, 5.0], seed=3)
    assert (b.output, b.n_scored, b.n_total, b.higher_is_better) == ("b", 0, 4, False)
    assert (b.mean, b.ci_low, b.ci_high) == (None, None, None)


def test_summarise_keeps_the_requested_order_and_handles_no_outputs() -> None:
    summaries = summarise([], ["z", "a"], direction=lambda _: True)
    assert [(s.output, s.n_scored, s.n_total, s.mean) for s in summaries] == [
        ("z", 0, 0, None),
        ("a", 0, 0, None),
    ]


def test_group_by_meta_value_with_sorted_keys() -> None:
    outputs = [
        scored_output(0, {"a": 1.0}, degradation="reverb", snr_db=5),
        scored_output(1, {"a": 2.0}, degradation="noise", snr_db=0),
        scored_output(2, {"a": 3.0}),
        scored_output(3, {"a": 4.0}, degradation="noise", snr_db=5),
    ]

    groups = group_by(outputs, "degradation")

    assert list(groups) == ["(none)", "noise", "reverb"]
    assert [o.index for o in groups["noise"]] == [1, 3]  # suite order within a group
    assert [o.index for o in groups["(none)"]] == [2]
    assert {k: len(v) for k, v in group_by(outputs, "snr_db").items()} == {
        "(none)": 1,
        "0": 1,
        "5": 2,
    }
    assert group_by([], "degradation") == {}


def test_error_counts_per_output() -> None:
    outputs = [
        scored_output(0, {"a": None, "b": None}),
        scored_output(1, {"a": None, "b": 1.0}),
        scored_output(2, {"a": 2.0, "b": 1.0}),
    ]
    assert error_counts(outputs) == {"a": 2, "b": 1}


def test_paired_difference_of_a_constant_shift_is_exact_and_significant() -> None:
    values = normal_sample(30, 3)
    base = [scored_output(i, {"m": float(v)}) for i, v in enumerate(values)]
    shifted = [scored_output(i, {"m": float(v) + 0.25}) for i, v in enumerate(values)]
    diff = paired_difference(shifted, base, "m")
    assert diff.n_paired == 30
    assert diff.mean == pytest.approx(0.25)
    assert diff.ci_low == pytest.approx(0.25) and diff.ci_high == pytest.approx(0.25)
    assert diff.significant
    # Unpaired, the two 95% CIs of the means overlap widely: pairing is what resolves it.
    assert bootstrap_ci([v + 0.25 for v in values])[0] < bootstrap_ci(values)[1]


def test_paired_difference_matches_by_utterance_and_skips_failures() -> None:
    base = [scored_output(i, {"m": float(i)}) for i in range(6)]
    # Reversed order, one failed score, one utterance the baseline does not have.
    cand = [scored_output(i, {"m": float(i) + 1.0}) for i in reversed(range(4))]
    cand += [scored_output(4, {"m": None}), scored_output(9, {"m": 100.0})]
    diff = paired_difference(cand, base, "m")
    assert diff.n_paired == 4 and diff.mean == pytest.approx(1.0)
    # The baseline scored 6: the candidate failed one and lacks another.
    assert (diff.n_baseline, diff.n_missing) == (6, 2)
    noisy = [scored_output(i, {"m": float(i) + (0.1 if i % 2 else -0.1)}) for i in range(6)]
    mixed = paired_difference(noisy, base, "m")
    assert mixed.mean == pytest.approx(0.0, abs=1e-12)
    assert mixed.ci_low < 0 < mixed.ci_high and not mixed.significant
    empty = paired_difference(cand, base, "other")
    assert (empty.mean, empty.ci_low, empty.n_paired, empty.significant) == (None, None, 0, False)


def test_one_pair_is_never_significant() -> None:
    diff = paired_difference([scored_output(0, {"m": 2.0})], [scored_output(0, {"m": 1.0})], "m")
    assert diff.mean == pytest.approx(1.0) and diff.ci_low == diff.ci_high == pytest.approx(1.0)
    assert diff.n_paired == 1 and not diff.significant


def test_paired_by_group_compares_within_each_group_and_counts_wins() -> None:
    kinds = ["noise", "reverb", "noise", "reverb", "noise", "reverb", "clip"]
    base = [
        scored_output(i, {"up": float(i), "down": float(i)}, degradation=kind)
        for i, kind in enumerate(kinds)
    ]
    # Better on noise (higher "up", lower "down"), worse on reverb, one utterance of "clip".
    shift = {"noise": 1.0, "reverb": -1.0, "clip": 5.0}
    cand = [
        scored_output(
            i, {"up": float(i) + shift[k] + 0.01 * i, "down": float(i) - shift[k]}, degradation=k
        )
        for i, k in enumerate(kinds)
    ]
    comparisons = paired_by_group(cand, base, "degradation", ["up", "down"])
    by_group = {c.group: c for c in comparisons}
    assert list(by_group) == ["clip", "noise", "reverb"]
    assert by_group["noise"].n_utterances == 3
    assert by_group["noise"].differences["up"].mean == pytest.approx(1.0 + 0.01 * 2)
    higher = {"up": True, "down": False}.__getitem__
    assert by_group["noise"].outcomes(higher) == {"up": 1, "down": 1}
    assert by_group["reverb"].outcomes(higher) == {"up": -1, "down": -1}
    # One utterance: a difference, but no evidence either way.
    assert by_group["clip"].differences["up"].n_paired == 1
    assert by_group["clip"].outcomes(higher) == {"up": 0, "down": 0}


def test_paired_by_group_puts_both_sides_of_a_pair_in_the_baselines_group() -> None:
    base = [scored_output(i, {"m": 0.0}, degradation="noise") for i in range(3)]
    cand = [scored_output(i, {"m": 1.0}, degradation="other") for i in range(3)]
    (only,) = paired_by_group(cand, base, "degradation", ["m"])
    assert only.group == "noise" and only.differences["m"].n_paired == 3


# --- breakdowns and notes -------------------------------------------------------------------


def test_breakdown_gives_each_groups_mean_of_every_output() -> None:
    outputs = [
        scored_output(0, {"a": 1.0, "b": 10.0}, kind="x"),
        scored_output(1, {"a": 3.0, "b": None}, kind="x"),
        scored_output(2, {"a": 5.0, "b": 20.0}, kind="y"),
        scored_output(3, {"a": 7.0, "b": 40.0}),
    ]
    rows = breakdown(outputs, "kind")
    assert [(r.group, r.n_utterances) for r in rows] == [("(none)", 1), ("x", 2), ("y", 1)]
    assert rows[1].means == {"a": 2.0, "b": 10.0}  # the None of utt-1 is left out of b
    assert rows[0].means == {"a": 7.0, "b": 40.0}


def test_run_notes_separate_missing_references_from_failures() -> None:
    no_ref = {"snr_db": f"test-snr: {NO_REFERENCE}"}
    outputs = [
        replace(scored_output(0, {"level_db": 1.0, "snr_db": None}), errors=no_ref),
        scored_output(1, {"level_db": None, "snr_db": 2.0}),
        replace(
            scored_output(2, {"level_db": None, "snr_db": None}),
            errors={**no_ref, "level_db": "level: broke"},
        ),
        replace(scored_output(3, {"level_db": 1.0}), flags={"peak_normalised_gain": 0.5}),
    ]
    notes = run_notes(outputs, examples=1)
    assert notes.peak_normalised == 1
    assert notes.no_reference_metrics == ("test-snr",)
    assert notes.failed_utterances == 2  # utt-1 and utt-2; utt-0 only lacked a reference
    assert notes.failures == (FailedOutput("utt-1", "level_db", "failed in test"),)
    assert run_notes(outputs).failures[1] == FailedOutput("utt-2", "level_db", "level: broke")
    assert run_notes([]).failed_utterances == 0
