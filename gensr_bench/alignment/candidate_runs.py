"""Finished candidate runs and the preference datasets built from them.

A candidate run is a run of :class:`~gensr_bench.alignment.candidates.CandidateSuite` with
saved audio (``gensr-bench align`` makes one in ``OUT/candidates``). This module reads what
such a run recorded (its config, the suite and metrics it was made with), explains why its
candidates may not pair, and builds and saves the preference dataset of its unanimous pairs:
:func:`build_pairs` is the one sequence that ``pairs build`` and ``align`` both run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gensr_bench.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from gensr_bench.interfaces import Metric, Suite
    from gensr_bench.registry import Registry

    from .pipeline import Criterion, PairSet, PairSettings, PairsRecord

#: Sub-folders of an ``align`` folder.
CANDIDATES_DIR = "candidates"
PAIRS_DIR = "pairs"


@dataclass(frozen=True)
class CandidateRun:
    """What a finished candidate run recorded: its config, provenance and output count."""

    directory: Path
    config: Mapping[str, Any]
    provenance: Mapping[str, Any]
    outputs: int


def finished_candidate_run(run_dir: Path) -> CandidateRun:
    """The finished candidate run in ``run_dir``.

    Raises:
        StoreError: ``run_dir`` holds no run, a run that is not a candidate run, or one that
            has not finished.
    """
    from gensr_bench.store import RUN_DB, has_run, read_run

    if not has_run(run_dir):
        raise StoreError(
            f"no candidate run in {run_dir}: expected {run_dir / RUN_DB}; make candidates with "
            "`gensr-bench align` (they go to OUT/candidates)"
        )
    run = read_run(run_dir, outputs=False)
    config = run.config or {}
    if "candidates" not in (config.get("suite") or {}):
        raise StoreError(
            f"{run_dir} is not a candidate run (its suite records no candidate count); make "
            "candidates with `gensr-bench align`"
        )
    if run.status != "finished":
        raise StoreError(
            f"the candidate run in {run_dir} has not finished ({run.count} outputs so far); "
            "finish it by rerunning the command that made it with --resume"
        )
    return CandidateRun(run_dir, config, run.provenance or {}, run.count)


def candidates_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (a resumed ``align`` samples nothing)."""
    from gensr_bench.store import has_run, read_run

    return has_run(run_dir) and read_run(run_dir, outputs=False).status == "finished"


def recorded_suite(suites: Registry[Suite], config: Mapping[str, Any], run_dir: Path) -> Suite:
    """The suite a candidate run sampled from, re-created from its recorded name and options.

    Raises:
        ConfigError: the re-created suite's fingerprint is not the recorded one.
    """
    recorded = config["suite"]
    suite = suites.create(
        recorded["name"], limit=recorded.get("suite_limit"), **(recorded.get("options") or {})
    )
    fingerprint = f"{suite.fingerprint()}x{recorded['candidates']}"
    if recorded.get("fingerprint") not in (None, fingerprint):
        raise ConfigError(
            f"suite {recorded['name']!r} has changed since the candidates in {run_dir} were "
            f"made (fingerprint now {fingerprint}, the run recorded {recorded['fingerprint']}): "
            "its inputs would not match; make the candidates again"
        )
    return suite


def recorded_metrics(config: Mapping[str, Any], classes: Sequence[type[Metric]]) -> list[Metric]:
    """Instances of ``classes`` with the options the candidate run recorded for them."""
    options = {m["name"]: m.get("options") or {} for m in config.get("metrics", [])}
    return [cls(**options.get(cls.name, {})) for cls in classes]


def reused_candidates(
    run_dir: Path,
    criterion: Criterion,
    expected: Mapping[str, Any],
    metric_options: Mapping[str, Any],
    *,
    other_model: bool = False,
) -> list[Metric]:
    """The criterion's metrics, as a finished candidate run in ``run_dir`` scored them.

    ``expected`` is the run config (model, suite, seed) that ``align`` would have written for
    its own candidates: the reused run must match it, so the pairs are the pairs that
    sampling again would give. With ``other_model`` the candidates may come from another
    model (cross-paradigm data, the paper's Table 4): only the suite and seed must match.

    Raises:
        StoreError: ``run_dir`` holds no finished candidate run.
        ConfigError: the run was made with another model, checkpoint, suite, --limit, --n or
            --seed, lacks a criterion metric, or metric options were given.
    """
    config = finished_candidate_run(run_dir).config
    if metric_options:
        raise ConfigError(
            f"--metric-option does not apply with --candidates: the metrics keep the options "
            f"the candidate run in {run_dir} recorded"
        )

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    checks = (
        ("model", "model, checkpoint or --model-option"),
        ("suite", "suite, --suite-option, --limit or --n"),
        ("seed", "--seed"),
    )
    for key, what in checks[1:] if other_model else checks:
        if plain(config.get(key)) != plain(expected[key]):
            raise ConfigError(
                f"the candidate run in {run_dir} was made with another {what} "
                f"(recorded {key}: {plain(config.get(key))}; this command: "
                f"{plain(expected[key])}); pass the options it was made with, or drop "
                "--candidates to sample again"
            )
    recorded = [m["name"] for m in config.get("metrics", [])]
    missing = [cls.name for cls in criterion.metrics if cls.name not in recorded]
    if missing:
        raise ConfigError(
            f"the candidate run in {run_dir} was not scored with {', '.join(missing)} (its "
            f"metrics: {', '.join(recorded)}); choose criterion outputs among them, or drop "
            "--candidates to sample again"
        )
    return recorded_metrics(config, criterion.metrics)


def candidate_model(run_dir: Path) -> dict[str, Any]:
    """The model that made the finished candidate run in ``run_dir``: its recorded config
    (name, version, options, candidate sampling) and ``checkpoint_sha256`` (``None`` when the
    run's provenance records none)."""
    finished = finished_candidate_run(run_dir)
    return {
        **dict(finished.config.get("model") or {}),
        "checkpoint_sha256": finished.provenance.get("model_checkpoint_sha256"),
    }


def missing_scores(run_dir: Path, outputs: Sequence[str]) -> str:
    """Why candidates may not pair: per criterion output, how many lack a score and why.

    ``""`` when every candidate has a score on every output (the cause is elsewhere).
    """
    from gensr_bench.store import read_run

    missing: dict[str, int] = {name: 0 for name in outputs}
    first_error: dict[str, str] = {}
    total = 0
    for output in read_run(run_dir).outputs:
        total += 1
        for name in outputs:
            if output.scores.get(name) is None:
                missing[name] += 1
                error = output.errors.get(name)
                if error and name not in first_error:
                    first_error[name] = error
    parts = [
        f"{name}: {count} of {total}"
        + (f" (e.g. {first_error[name]})" if name in first_error else "")
        for name, count in missing.items()
        if count
    ]
    if not parts:
        return ""
    return (
        f"Candidates without a score on a criterion output never pair, and in {run_dir} "
        f"these lack one: {'; '.join(parts)}. Fix that metric and align again into a new --out"
    )


def pairs_source(
    run_dir: Path, pair_set: PairSet, outputs: int, model: str, sha: str | None
) -> dict[str, Any]:
    """The ``source`` of a ``pairs.json``: the candidate run and inputs the pairs came from."""
    return {
        "candidates": str(run_dir.resolve()),
        "outputs": outputs,
        "inputs": list(pair_set.utterances),
        "model": model,
        "checkpoint_sha256": sha,
    }


def build_pairs(
    run_dir: Path,
    suite: Suite,
    settings: PairSettings,
    directions: Mapping[str, bool],
    out_dir: Path,
    *,
    model: str,
    checkpoint_sha256: str | None,
    seed: int,
    outputs: int,
    reference_metrics: Sequence[Metric] = (),
    overwrite: bool = False,
) -> tuple[PairSet, PairsRecord]:
    """Pair the candidates of a finished run and save the preference dataset in ``out_dir``.

    The score cache is open (for the ground-truth winner's reference scores) only while the
    pairs are made. ``outputs`` is the run's output count, recorded as the dataset's source
    with the run folder, the inputs, ``model`` and ``checkpoint_sha256``.

    Raises what :func:`~gensr_bench.alignment.pipeline.pairs_from_run` and
    :func:`~gensr_bench.alignment.pipeline.save_pairs` raise.
    """
    from gensr_bench.store import ScoreCache

    from .pipeline import pairs_from_run, save_pairs

    with ScoreCache() as cache:
        pair_set = pairs_from_run(
            run_dir,
            suite,
            settings,
            directions,
            model=model,
            seed=seed,
            reference_metrics=reference_metrics,
            cache=cache,
        )
    record = save_pairs(
        pair_set.pairs,
        pair_set.degraded,
        out_dir,
        model=model,
        checkpoint_sha256=checkpoint_sha256,
        settings=settings,
        directions=directions,
        source=pairs_source(run_dir, pair_set, outputs, model, checkpoint_sha256),
        overwrite=overwrite,
    )
    return pair_set, record
