"""Aggregates: means with percentile-bootstrap 95% confidence intervals, grouped breakdowns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gensr_bench.records import (
    NO_REFERENCE,
    FailedOutput,
    GroupMeans,
    MetricSummary,
    RunNotes,
    ScoredOutput,
)

DEFAULT_RESAMPLES = 2000


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (deterministic for a seed)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if data.size == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``candidate - baseline`` over the utterances both scored, with its CI.

    ``n_baseline`` counts the utterances the baseline scored: ``n_baseline - n_paired`` of them
    the candidate failed (or lacks), which the mean cannot show.
    """

    output: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n_paired: int
    n_baseline: int = 0

    @property
    def n_missing(self) -> int:
        """Utterances the baseline scored and the candidate did not."""
        return self.n_baseline - self.n_paired

    @property
    def significant(self) -> bool:
        """The interval excludes zero, over at least two pairs (one pair's bootstrap interval is
        the single difference itself, which shows no spread and so proves nothing)."""
        if self.ci_low is None or self.ci_high is None or self.n_paired < 2:
            return False
        return self.ci_low > 0 or self.ci_high < 0


def paired_difference(
    candidate: Iterable[ScoredOutput],
    baseline: Iterable[ScoredOutput],
    output: str,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDifference:
    """Paired bootstrap of the mean difference of ``output`` between two runs (``confidence``
    interval, 95% by default).

    Outputs are matched by utterance id (and index, for several candidates per utterance);
    an utterance counts only where both runs scored it, so a failed metric shrinks
    ``n_paired`` instead of biasing the mean. Resampling utterances keeps the pairing, which
    gives a much narrower interval than comparing two unpaired CIs.
    """
    base = {
        (o.utterance_id, o.index): float(v)
        for o in baseline
        if (v := o.scores.get(output)) is not None
    }
    diffs = [
        float(v) - base[key]
        for o in candidate
        if (v := o.scores.get(output)) is not None and (key := (o.utterance_id, o.index)) in base
    ]
    if not diffs:
        return PairedDifference(output, None, None, None, 0, len(base))
    low, high = bootstrap_ci(diffs, confidence=confidence, seed=seed)
    return PairedDifference(output, float(np.mean(diffs)), low, high, len(diffs), len(base))


def summarise(
    outputs: Iterable[ScoredOutput],
    output_names: Sequence[str],
    direction: Callable[[str], bool],
    seed: int = 0,
) -> list[MetricSummary]:
    """Mean, 95% CI and n scored / n total of each output name over ``outputs``."""
    items = list(outputs)
    summaries = []
    for name in output_names:
        values = [float(v) for o in items if (v := o.scores.get(name)) is not None]
        mean: float | None = None
        low: float | None = None
        high: float | None = None
        if values:
            low, high = bootstrap_ci(values, seed=seed)
            mean = float(np.mean(values))
        summaries.append(
            MetricSummary(
                output=name,
                mean=mean,
                ci_low=low,
                ci_high=high,
                n_scored=len(values),
                n_total=len(items),
                higher_is_better=direction(name),
            )
        )
    return summaries


def group_by(outputs: Iterable[ScoredOutput], key: str) -> dict[str, list[ScoredOutput]]:
    """Outputs grouped by ``meta[key]`` (missing values go to ``"(none)"``), keys sorted."""
    groups: dict[str, list[ScoredOutput]] = defaultdict(list)
    for output in outputs:
        groups[str(output.meta.get(key, "(none)"))].append(output)
    return dict(sorted(groups.items()))


def breakdown(outputs: Iterable[ScoredOutput], key: str) -> tuple[GroupMeans, ...]:
    """The mean of every output within each group of ``meta[key]`` (as :func:`group_by`)."""
    items = list(outputs)
    names = list(dict.fromkeys(name for o in items for name in o.scores))
    rows = []
    for group, members in group_by(items, key).items():
        summaries = summarise(members, names, lambda _name: True)
        rows.append(GroupMeans(group, len(members), {s.output: s.mean for s in summaries}))
    return tuple(rows)


def lacks_reference(message: str) -> bool:
    """Whether an output's error says only that its intrusive metric had no reference."""
    return message.endswith(NO_REFERENCE)


def run_notes(outputs: Iterable[ScoredOutput], examples: int = 5) -> RunNotes:
    """What a run's outputs have to say beyond their means (see :class:`RunNotes`).

    Outputs that failed only for want of a reference are not failures: a suite may lack a
    reference for some utterances, and then only its non-intrusive metrics score them.
    """
    peak_normalised = 0
    no_reference: set[str] = set()
    failed = 0
    failures: list[FailedOutput] = []
    for output in outputs:
        peak_normalised += "peak_normalised_gain" in output.flags
        real = []
        for name, message in output.errors.items():
            if lacks_reference(message):
                no_reference.add(message.split(":", 1)[0])
            else:
                real.append((name, message))
        if real:
            failed += 1
            if len(failures) < examples:
                failures.append(FailedOutput(output.utterance_id, *real[0]))
    return RunNotes(peak_normalised, tuple(sorted(no_reference)), failed, tuple(failures))


@dataclass(frozen=True)
class GroupComparison:
    """The paired differences of one group of utterances (one value of a meta key)."""

    group: str
    n_utterances: int
    differences: dict[str, PairedDifference]

    def outcomes(self, higher_is_better: Callable[[str], bool]) -> dict[str, int]:
        """Per output: +1 where the candidate is significantly better, -1 where significantly
        worse, 0 where the interval includes zero (or nothing was paired)."""
        found = {}
        for name, difference in self.differences.items():
            if not difference.significant or difference.mean is None:
                found[name] = 0
                continue
            better = difference.mean > 0 if higher_is_better(name) else difference.mean < 0
            found[name] = 1 if better else -1
        return found


def paired_by_group(
    candidate: Sequence[ScoredOutput],
    baseline: Sequence[ScoredOutput],
    key: str,
    outputs: Sequence[str],
    seed: int = 0,
) -> list[GroupComparison]:
    """:func:`paired_difference` within every group of ``meta[key]`` (as :func:`group_by`).

    Utterances are grouped by the baseline's meta (the candidate's where the baseline lacks an
    utterance), so both sides of a pair always fall in the same group.
    """
    group_of = {o.utterance_id: str(o.meta.get(key, "(none)")) for o in candidate}
    group_of.update({o.utterance_id: str(o.meta.get(key, "(none)")) for o in baseline})
    by_candidate: dict[str, list[ScoredOutput]] = defaultdict(list)
    by_baseline: dict[str, list[ScoredOutput]] = defaultdict(list)
    for output in candidate:
        by_candidate[group_of[output.utterance_id]].append(output)
    for output in baseline:
        by_baseline[group_of[output.utterance_id]].append(output)
    comparisons = []
    for group in sorted(set(by_candidate) | set(by_baseline)):
        members = by_candidate.get(group, [])
        reference = by_baseline.get(group, [])
        differences = {
            name: paired_difference(members, reference, name, seed=seed) for name in outputs
        }
        n = len({o.utterance_id for o in members} | {o.utterance_id for o in reference})
        comparisons.append(GroupComparison(group, n, differences))
    return comparisons


def error_counts(outputs: Iterable[ScoredOutput]) -> Mapping[str, int]:
    """How many utterances failed per output name."""
    counts: dict[str, int] = defaultdict(int)
    for output in outputs:
        for name in output.errors:
            counts[name] += 1
    return dict(counts)
