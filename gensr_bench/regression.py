"""Regression check of a candidate run against a baseline run (``gensr-bench check``).

Both runs must restore the same suite (same fingerprint and limit) and the candidate must
have every metric output of the baseline. Each output is compared per utterance: the mean of
``candidate - baseline`` with a paired-bootstrap ``1 - alpha`` interval. An output *regresses*
when the whole interval lies on the worse side of ``-tolerance`` (for an output where lower
is better, of ``+tolerance``): worse beyond the tolerance, with significance. The core knows
no metric by name: directions come from the registered metric classes.

Differences no larger than ``floor`` (default :data:`FLOAT_FLOOR`) are float rounding, not
change: the same model scored on another machine or with another BLAS differs by ~1e-8 on
every utterance, which a paired bootstrap finds significant. Such an output is reported as
``same``, never as a regression or an improvement, whatever the tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gensr_bench.errors import ConfigError
from gensr_bench.records import ScoredOutput
from gensr_bench.stats import PairedDifference, paired_difference

PASS, REGRESSION, NOT_COMPARABLE = 0, 1, 2
FLOAT_FLOOR = 1e-5


class NotComparable(ConfigError):
    """The two runs cannot be compared (other suite, missing metric outputs ...)."""


@dataclass(frozen=True)
class OutputCheck:
    output: str
    higher_is_better: bool
    tolerance: float
    difference: PairedDifference
    baseline_mean: float | None
    candidate_mean: float | None
    floor: float = FLOAT_FLOOR

    @property
    def _interval(self) -> tuple[float, float] | None:
        low, high = self.difference.ci_low, self.difference.ci_high
        return None if low is None or high is None else (low, high)

    @property
    def regressed(self) -> bool:
        if (ci := self._interval) is None:
            return False
        allowed = max(self.tolerance, self.floor)
        return ci[1] < -allowed if self.higher_is_better else ci[0] > allowed

    @property
    def improved(self) -> bool:
        if (ci := self._interval) is None:
            return False
        return ci[0] > self.floor if self.higher_is_better else ci[1] < -self.floor

    @property
    def same(self) -> bool:
        """The whole interval lies within ``±floor``: no change beyond float rounding."""
        ci = self._interval
        return ci is not None and -self.floor <= ci[0] <= ci[1] <= self.floor

    @property
    def verdict(self) -> str:
        if self.difference.mean is None:
            return "no pairs"
        if self.regressed:
            return "REGRESSION"
        if self.improved:
            return "better"
        return "same" if self.same else "ok"


@dataclass
class CheckReport:
    baseline: str
    candidate: str
    alpha: float
    checks: list[OutputCheck] = field(default_factory=list)

    @property
    def regressions(self) -> list[OutputCheck]:
        return [c for c in self.checks if c.regressed]

    @property
    def exit_code(self) -> int:
        return REGRESSION if self.regressions else PASS

    def to_json(self) -> str:
        return json.dumps(
            {
                "baseline": self.baseline,
                "candidate": self.candidate,
                "alpha": self.alpha,
                "passed": not self.regressions,
                "regressions": [c.output for c in self.regressions],
                "outputs": [
                    {**asdict(c), "regressed": c.regressed, "verdict": c.verdict}
                    for c in self.checks
                ],
            },
            indent=2,
        )


def _suite_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    suite = config.get("suite") or {}
    return suite.get("name"), suite.get("fingerprint"), suite.get("limit")


def _mean(outputs: Sequence[ScoredOutput], name: str) -> float | None:
    values = [float(v) for o in outputs if (v := o.scores.get(name)) is not None]
    return sum(values) / len(values) if values else None


def check_runs(
    baseline: tuple[str, Mapping[str, Any], Sequence[ScoredOutput]],
    candidate: tuple[str, Mapping[str, Any], Sequence[ScoredOutput]],
    directions: Mapping[str, bool],
    tolerances: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    floor: float = FLOAT_FLOOR,
) -> CheckReport:
    """Compare ``candidate`` with ``baseline``, each ``(label, config, outputs)``.

    Differences within ``±floor`` count as float rounding (see the module's docstring).
    Raises :class:`NotComparable` when the suites differ, the candidate lacks an output of the
    baseline, an output's direction is unknown, or a tolerance names no compared output.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    if not floor >= 0:
        raise ConfigError(f"--floor must be >= 0, got {floor}")
    (b_label, b_config, b_outputs), (c_label, c_config, c_outputs) = baseline, candidate
    if _suite_key(b_config) != _suite_key(c_config):
        b_name, b_fp, b_limit = _suite_key(b_config)
        c_name, c_fp, c_limit = _suite_key(c_config)
        hint = (
            f"run the candidate with --limit {b_limit} too, or compare with an entry of its "
            f"first {c_limit} utterances (gensr-bench leaderboard add RUN --limit {c_limit})"
            if (b_name, b_fp) == (c_name, c_fp)
            else "run the candidate on the baseline's suite"
        )
        raise NotComparable(
            f"the runs restored different suites: baseline {b_label} has {b_name} "
            f"(fingerprint {b_fp}, limit {b_limit}), candidate {c_label} has {c_name} "
            f"(fingerprint {c_fp}, limit {c_limit}); {hint}"
        )
    if not b_outputs:
        raise NotComparable(f"baseline {b_label} has no scored outputs")
    b_names = list(dict.fromkeys(n for o in b_outputs for n in o.scores))
    c_names = {n for o in c_outputs for n in o.scores}
    missing = [n for n in b_names if n not in c_names]
    if missing:
        raise NotComparable(
            f"candidate {c_label} lacks metric output(s) {', '.join(missing)} of the baseline; "
            "score it with the same --metrics"
        )
    unknown = [n for n in b_names if n not in directions]
    if unknown:
        raise NotComparable(
            f"no registered metric declares output(s) {', '.join(unknown)}, so it is unknown "
            "whether higher is better; install the plugin that provides them"
        )
    tolerances = dict(tolerances or {})
    stray = sorted(set(tolerances) - set(b_names))
    if stray:
        raise ConfigError(
            f"--tolerance names output(s) {', '.join(stray)} that the runs do not have; "
            f"available: {', '.join(b_names)}"
        )
    report = CheckReport(b_label, c_label, alpha)
    for name in b_names:
        tolerance = float(tolerances.get(name, 0.0))
        if tolerance < 0:
            raise ConfigError(f"--tolerance {name}={tolerance} must be >= 0")
        report.checks.append(
            OutputCheck(
                output=name,
                higher_is_better=directions[name],
                tolerance=tolerance,
                difference=paired_difference(
                    c_outputs, b_outputs, name, seed=seed, confidence=1 - alpha
                ),
                baseline_mean=_mean(b_outputs, name),
                candidate_mean=_mean(c_outputs, name),
                floor=floor,
            )
        )
    return report


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def table_rows(report: CheckReport) -> list[list[str]]:
    rows = []
    for c in report.checks:
        d = c.difference
        rows.append(
            [
                c.output,
                "↑" if c.higher_is_better else "↓",
                _num(c.baseline_mean),
                _num(c.candidate_mean),
                f"{_num(d.mean, True)} [{_num(d.ci_low, True)}, {_num(d.ci_high, True)}]",
                str(d.n_paired),
                _num(c.tolerance),
                c.verdict,
            ]
        )
    return rows


TABLE_HEADERS = ["metric", "dir", "baseline", "candidate", "difference [CI]", "n", "tol", "verdict"]


def _escape_annotation(text: str) -> str:
    # GitHub workflow commands: %, CR and LF must be escaped in the message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_annotations(report: CheckReport) -> list[str]:
    """``::error`` for every regression, one ``::notice`` with the overall result."""
    lines = []
    for c in report.regressions:
        d = c.difference
        lines.append(
            "::error title=gensr-bench check: "
            + _escape_annotation(c.output).replace(":", "%3A").replace(",", "%2C")
            + "::"
            + _escape_annotation(
                f"{c.output} regressed: candidate - baseline = {_num(d.mean, True)} "
                f"[{_num(d.ci_low, True)}, {_num(d.ci_high, True)}] at alpha {report.alpha} "
                f"over {d.n_paired} utterances (tolerance {c.tolerance})"
            )
        )
    verdict = (
        f"{len(report.regressions)} regression(s): "
        + ", ".join(c.output for c in report.regressions)
        if report.regressions
        else f"no regression on {len(report.checks)} metric outputs"
    )
    lines.append(
        "::notice title=gensr-bench check::"
        + _escape_annotation(f"{report.candidate} vs {report.baseline}: {verdict}")
    )
    return lines
