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

A candidate that scored fewer utterances than the baseline on an output (failed scores,
``None``) fails too: the paired mean covers only the utterances both scored, so a model whose
outputs broke (NaN audio, crashes) would otherwise pass on the few that survived, or on none.
``allow_missing`` turns that failure into a warning.

The report also compares the CPUs the two runs recorded in their provenance
(``machine.cpu``): a generative model's outputs may differ between x86 CPUs, by up to the
waveform tolerance its provenance declares (``components.model.waveform_tolerance``).
"""

from __future__ import annotations

import json
import math
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
    allow_missing: bool = False
    #: One utterance the baseline scored and the candidate did not, with the candidate's reason.
    missing_example: str | None = None

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
    def n_missing(self) -> int:
        """Utterances the baseline scored on this output and the candidate did not."""
        return self.difference.n_missing

    @property
    def incomplete(self) -> bool:
        """The candidate failed an utterance the baseline scored, and that is not allowed."""
        return self.n_missing > 0 and not self.allow_missing

    @property
    def missing_message(self) -> str:
        d = self.difference
        example = f" (e.g. {self.missing_example})" if self.missing_example else ""
        return (
            f"{self.output}: candidate scored {d.n_paired} of {d.n_baseline} utterances "
            f"the baseline scored{example}"
        )

    @property
    def verdict(self) -> str:
        if self.difference.mean is None:
            verdict = "no pairs"
        elif self.regressed:
            verdict = "REGRESSION"
        elif self.improved:
            verdict = "better"
        else:
            verdict = "same" if self.same else "ok"
        if self.incomplete:
            return "REGRESSION, MISSING" if self.regressed else "MISSING"
        if self.n_missing:
            return f"{verdict} ({self.n_missing} missing, allowed)"
        return verdict


@dataclass(frozen=True)
class CpuInfo:
    """The CPU a run recorded in its provenance (``machine.cpu``); ``None``: not recorded."""

    model: str | None
    flags: tuple[str, ...] | None

    @property
    def known(self) -> bool:
        return self.model is not None or self.flags is not None

    def describe(self) -> str:
        return self.model if self.model is not None else "unknown CPU model"


@dataclass(frozen=True)
class MachineCheck:
    """Whether baseline and candidate ran on the same CPU, and the model's declared
    cross-CPU waveform tolerance (``None``: not declared)."""

    baseline: CpuInfo
    candidate: CpuInfo
    baseline_tolerance: float | None
    candidate_tolerance: float | None
    #: Where each run's components ran (provenance ``device.kind``; runs made before
    #: ``--device`` existed ran on the CPU).
    baseline_device: str = "cpu"
    candidate_device: str = "cpu"

    @property
    def same_device(self) -> bool:
        return self.baseline_device == self.candidate_device

    def device_note(self) -> str:
        """A line when the runs used different devices; ``""`` when they did not."""
        if self.same_device:
            return ""
        return (
            f"baseline and candidate ran on different devices (baseline "
            f"{self.baseline_device}, candidate {self.candidate_device}): outputs and scores "
            "may differ between devices by more than the cross-CPU tolerance, and no "
            "cross-device tolerance has been measured; compare runs made on one device"
        )

    @property
    def same_cpu(self) -> bool | None:
        """``None`` when either run recorded no CPU (runs made before CPU provenance)."""
        b, c = self.baseline, self.candidate
        if not (b.known and c.known):
            return None
        models_differ = b.model is not None and c.model is not None and b.model != c.model
        flags_differ = b.flags is not None and c.flags is not None and set(b.flags) != set(c.flags)
        return not (models_differ or flags_differ)

    @property
    def flags_only_baseline(self) -> list[str]:
        b, c = self.baseline.flags, self.candidate.flags
        return sorted(set(b) - set(c)) if b is not None and c is not None else []

    @property
    def flags_only_candidate(self) -> list[str]:
        b, c = self.baseline.flags, self.candidate.flags
        return sorted(set(c) - set(b)) if b is not None and c is not None else []

    def tolerance_text(self) -> str:
        def text(value: float | None) -> str:
            return "not declared" if value is None else f"{value:g}"

        if self.baseline_tolerance == self.candidate_tolerance:
            return f"waveform tolerance the model declares: {text(self.candidate_tolerance)}"
        return (
            "waveform tolerance the models declare: baseline "
            f"{text(self.baseline_tolerance)}, candidate {text(self.candidate_tolerance)}"
        )

    def note(self) -> str:
        """One line for the text output."""
        same = self.same_cpu
        if same is None:
            sides = (("baseline", self.baseline), ("candidate", self.candidate))
            unknown = [side for side, cpu in sides if not cpu.known]
            known = [f"; the {side} ran on {cpu.describe()}" for side, cpu in sides if cpu.known]
            return (
                f"CPU unknown for the {' and the '.join(unknown)} (no machine.cpu in the "
                "provenance: runs made before gensr-bench recorded CPUs have none), so it "
                "cannot be told whether both ran on the same CPU" + "".join(known)
            )
        if same:
            return f"both runs on the same CPU: {self.candidate.describe()}"
        flags = []
        if self.flags_only_baseline:
            flags.append(f"only the baseline's has {', '.join(self.flags_only_baseline)}")
        if self.flags_only_candidate:
            flags.append(f"only the candidate's has {', '.join(self.flags_only_candidate)}")
        return (
            f"baseline and candidate ran on different CPUs: baseline "
            f"{self.baseline.describe()}, candidate {self.candidate.describe()}"
            + (f" ({'; '.join(flags)})" if flags else "")
            + f"; generated outputs may differ between CPUs; {self.tolerance_text()}"
        )

    def to_dict(self) -> dict[str, Any]:
        def cpu(info: CpuInfo) -> dict[str, Any] | None:
            if not info.known:
                return None
            return {"model": info.model, "flags": None if info.flags is None else list(info.flags)}

        return {
            "same_cpu": self.same_cpu,
            "baseline_cpu": cpu(self.baseline),
            "candidate_cpu": cpu(self.candidate),
            "flags_only_baseline": self.flags_only_baseline,
            "flags_only_candidate": self.flags_only_candidate,
            "waveform_tolerance": {
                "baseline": self.baseline_tolerance,
                "candidate": self.candidate_tolerance,
            },
            "devices": {"baseline": self.baseline_device, "candidate": self.candidate_device},
            "note": self.note(),
            "device_note": self.device_note() or None,
        }


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def cpu_of(provenance: Mapping[str, Any] | None) -> CpuInfo:
    """The CPU a run's provenance records, read defensively (an entry is an untrusted file;
    runs made before CPU provenance have none)."""
    model = _get(provenance, "machine", "cpu", "model")
    flags = _get(provenance, "machine", "cpu", "flags")
    return CpuInfo(
        model=model if isinstance(model, str) and model else None,
        flags=(
            tuple(sorted(str(f) for f in flags))
            if isinstance(flags, (list, tuple)) and all(isinstance(f, str) for f in flags)
            else None
        ),
    )


def waveform_tolerance_of(provenance: Mapping[str, Any] | None) -> float | None:
    """The cross-CPU waveform tolerance the run's model declares, or ``None``."""
    value = _get(provenance, "components", "model", "waveform_tolerance")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def device_of(provenance: Mapping[str, Any] | None) -> str:
    """The device a run's provenance records (``device.kind``); ``cpu`` when it records none
    (runs made before ``--device``, which all ran on the CPU)."""
    kind = _get(provenance, "device", "kind")
    return kind if isinstance(kind, str) and kind else "cpu"


def compare_machines(
    baseline: Mapping[str, Any] | None, candidate: Mapping[str, Any] | None
) -> MachineCheck:
    """Compare the CPUs and devices two runs' provenances record (``None``: none known)."""
    return MachineCheck(
        baseline=cpu_of(baseline),
        candidate=cpu_of(candidate),
        baseline_tolerance=waveform_tolerance_of(baseline),
        candidate_tolerance=waveform_tolerance_of(candidate),
        baseline_device=device_of(baseline),
        candidate_device=device_of(candidate),
    )


@dataclass
class CheckReport:
    baseline: str
    candidate: str
    alpha: float
    checks: list[OutputCheck] = field(default_factory=list)
    allow_missing: bool = False
    machines: MachineCheck = field(default_factory=lambda: compare_machines(None, None))

    @property
    def regressions(self) -> list[OutputCheck]:
        return [c for c in self.checks if c.regressed]

    @property
    def missing(self) -> list[OutputCheck]:
        """Outputs where the candidate scored fewer of the baseline's utterances (failed
        scores), allowed or not."""
        return [c for c in self.checks if c.n_missing]

    @property
    def incomplete(self) -> list[OutputCheck]:
        """The missing outputs that fail the check (all of them unless ``allow_missing``)."""
        return [c for c in self.checks if c.incomplete]

    @property
    def passed(self) -> bool:
        return not (self.regressions or self.incomplete)

    @property
    def exit_code(self) -> int:
        return PASS if self.passed else REGRESSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "baseline": self.baseline,
                "candidate": self.candidate,
                "alpha": self.alpha,
                "passed": self.passed,
                "regressions": [c.output for c in self.regressions],
                "allow_missing": self.allow_missing,
                "missing": [
                    {
                        "output": c.output,
                        "n_baseline": c.difference.n_baseline,
                        "n_candidate": c.difference.n_paired,
                        "message": c.missing_message,
                    }
                    for c in self.missing
                ],
                "machines": self.machines.to_dict(),
                "outputs": [
                    {
                        **asdict(c),
                        "regressed": c.regressed,
                        "n_missing": c.n_missing,
                        "verdict": c.verdict,
                    }
                    for c in self.checks
                ],
            },
            indent=2,
        )


def _suite_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    suite = config.get("suite") or {}
    return suite.get("name"), suite.get("fingerprint"), suite.get("limit")


def _missing_example(
    baseline: Sequence[ScoredOutput], candidate: Sequence[ScoredOutput], name: str
) -> str | None:
    """The first utterance the baseline scored on ``name`` and the candidate did not, with
    the candidate's error for it."""
    scored = {(o.utterance_id, o.index): o for o in candidate}
    for o in baseline:
        if o.scores.get(name) is None:
            continue
        other = scored.get((o.utterance_id, o.index))
        if other is None:
            return f"{o.utterance_id}: not in the candidate"
        if other.scores.get(name) is None:
            return f"{o.utterance_id}: {other.errors.get(name) or 'no score, no error recorded'}"
    return None


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
    *,
    allow_missing: bool = False,
    provenances: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None] = (None, None),
) -> CheckReport:
    """Compare ``candidate`` with ``baseline``, each ``(label, config, outputs)``.

    Differences within ``±floor`` count as float rounding (see the module's docstring). An
    output the candidate scored on fewer of the baseline's utterances fails the check unless
    ``allow_missing``. ``provenances`` (baseline's, candidate's; ``None`` where unknown) give
    the report's CPU comparison.
    Raises :class:`NotComparable` when the suites differ, the candidate lacks an output of the
    baseline, an output's direction is unknown, or a tolerance names no compared output.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    if not floor >= 0:
        raise ConfigError(f"--floor must be >= 0, got {floor}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0 (a bootstrap seed), got {seed}")
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
    report = CheckReport(
        b_label,
        c_label,
        alpha,
        allow_missing=allow_missing,
        machines=compare_machines(*provenances),
    )
    for name in b_names:
        tolerance = float(tolerances.get(name, 0.0))
        if tolerance < 0:
            raise ConfigError(f"--tolerance {name}={tolerance} must be >= 0")
        difference = paired_difference(c_outputs, b_outputs, name, seed=seed, confidence=1 - alpha)
        report.checks.append(
            OutputCheck(
                output=name,
                higher_is_better=directions[name],
                tolerance=tolerance,
                difference=difference,
                baseline_mean=_mean(b_outputs, name),
                candidate_mean=_mean(c_outputs, name),
                floor=floor,
                allow_missing=allow_missing,
                missing_example=(
                    _missing_example(b_outputs, c_outputs, name) if difference.n_missing else None
                ),
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
                # n paired, and of how many the baseline scored where the candidate failed some.
                f"{d.n_paired}/{d.n_baseline}" if d.n_missing else str(d.n_paired),
                _num(c.tolerance),
                c.verdict,
            ]
        )
    return rows


TABLE_HEADERS = ["metric", "dir", "baseline", "candidate", "difference [CI]", "n", "tol", "verdict"]


def _escape_annotation(text: str) -> str:
    # GitHub workflow commands: %, CR and LF must be escaped in the message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _title(text: str) -> str:
    # A workflow command's property value: ':' and ',' end it, so they are escaped too.
    return _escape_annotation(text).replace(":", "%3A").replace(",", "%2C")


def failure_lines(report: CheckReport) -> list[str]:
    """What makes the check fail, or what ``allow_missing`` let pass, one line each."""
    lines = []
    if report.regressions:
        names = ", ".join(c.output for c in report.regressions)
        lines.append(f"FAIL: significant regression beyond tolerance on {names}")
    for c in report.missing:
        prefix = "FAIL: " if c.incomplete else "warning (--allow-missing): "
        lines.append(prefix + c.missing_message)
    if report.incomplete:
        lines.append(
            "the candidate failed scores the baseline has; see scores.jsonl for the errors, or "
            "pass --allow-missing to compare only the utterances both scored"
        )
    return lines


def github_annotations(report: CheckReport) -> list[str]:
    """``::error`` for every regression and every output the candidate scored on fewer
    utterances (``::warning`` where allowed), a ``::warning`` when the runs' CPUs differ
    (a ``::notice`` when unknown), and one ``::notice`` with the overall result."""
    lines = []
    for c in report.regressions:
        d = c.difference
        lines.append(
            f"::error title=gensr-bench check: {_title(c.output)}::"
            + _escape_annotation(
                f"{c.output} regressed: candidate - baseline = {_num(d.mean, True)} "
                f"[{_num(d.ci_low, True)}, {_num(d.ci_high, True)}] at alpha {report.alpha} "
                f"over {d.n_paired} utterances (tolerance {c.tolerance})"
            )
        )
    for c in report.missing:
        level = "error" if c.incomplete else "warning"
        lines.append(
            f"::{level} title=gensr-bench check: {_title(c.output)}::"
            + _escape_annotation(
                c.missing_message + ("" if c.incomplete else " (allowed by --allow-missing)")
            )
        )
    same_cpu = report.machines.same_cpu
    if not same_cpu:
        level = "warning" if same_cpu is False else "notice"
        lines.append(
            f"::{level} title=gensr-bench check: CPU::" + _escape_annotation(report.machines.note())
        )
    if not report.machines.same_device:
        lines.append(
            "::warning title=gensr-bench check: device::"
            + _escape_annotation(report.machines.device_note())
        )
    problems = []
    if report.regressions:
        problems.append(
            f"{len(report.regressions)} regression(s): "
            + ", ".join(c.output for c in report.regressions)
        )
    if report.incomplete:
        problems.append(
            "fewer utterances scored than the baseline on "
            + ", ".join(c.output for c in report.incomplete)
        )
    verdict = (
        "; ".join(problems) if problems else f"no regression on {len(report.checks)} metric outputs"
    )
    lines.append(
        "::notice title=gensr-bench check::"
        + _escape_annotation(f"{report.candidate} vs {report.baseline}: {verdict}")
    )
    return lines
