"""The checks and steps of ``gensr-bench align`` around the pipeline.

Reusing a finished candidate run, refusing a model DPO cannot train, setting the criterion
metrics up before sampling, explaining missing scores, and the pairs step (reuse or rebuild).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.errors import ConfigError, describe

from .align_helpers import (
    CANDIDATES_DIR,
    PAIRS_DIR,
    finished_candidate_run,
    pairs_source,
    recorded_metrics,
)

if TYPE_CHECKING:
    from gensr_bench.alignment.pipeline import Criterion, PairSettings, PairsRecord
    from gensr_bench.interfaces import Metric, Suite
    from gensr_bench.records import PreferencePair, Utterance


def reused_candidates(
    run_dir: Path,
    criterion: Criterion,
    expected: Mapping[str, Any],
    metric_options: Mapping[str, Any],
) -> list[Metric]:
    """The criterion's metrics, as a finished candidate run in ``run_dir`` scored them.

    ``expected`` is the run config (model, suite, seed) that `align` would have written for
    its own candidates: the reused run must match it, so the pairs are the pairs that
    sampling again would give.

    Raises:
        StoreError: ``run_dir`` holds no finished candidate run.
        ConfigError: the run was made with another model, checkpoint, suite, --limit, --n or
            --seed, lacks a criterion metric, or --metric-option was given.
    """
    import json

    config, _provenance, _count = finished_candidate_run(run_dir)
    if metric_options:
        raise ConfigError(
            f"--metric-option does not apply with --candidates: the metrics keep the options "
            f"the candidate run in {run_dir} recorded"
        )

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    for key, what in (
        ("model", "model, checkpoint or --model-option"),
        ("suite", "suite, --suite-option, --limit or --n"),
        ("seed", "--seed"),
    ):
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


def require_alignable(reg: Any, model: Any, spec: str) -> None:
    """Refuse a model that DPO cannot train, naming the models that it can."""
    from gensr_bench.interfaces import AlignablePolicy

    if isinstance(model, AlignablePolicy):
        return
    alignable = sorted(e.name for e in reg.models if issubclass(e.cls, AlignablePolicy))
    raise ConfigError(
        f"model {spec!r} ({model.name}, paradigm {model.paradigm}) cannot be aligned: it is "
        "not an AlignablePolicy, so it has no likelihood for DPO to train; alignable models: "
        f"{', '.join(alignable) or '(none installed)'}"
    )


def candidates_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished candidate run (a resumed `align` samples nothing)."""
    from gensr_bench.store import has_run, read_run

    return has_run(run_dir) and read_run(run_dir, outputs=False).status == "finished"


def preflight_metrics(metrics: Sequence[type[Metric]], options: Mapping[str, Any]) -> None:
    """Set each criterion metric up once before sampling, in a throw-away instance.

    The runner records a metric that cannot load as ``None`` plus an error on every output
    and goes on, which suits `run`; a criterion metric without scores ranks nothing, so
    `align` stops here, before hours of sampling, instead of after them with no pairs.

    Raises:
        ConfigError: a metric's setup failed; names the metric and gives its own reason
            (which says how to fix it, e.g. where its weights go).
    """
    for cls in metrics:
        probe = cls(**options.get(cls.name, {}))
        try:
            probe.setup()
        except Exception as exc:
            raise ConfigError(
                f"criterion metric {cls.name!r} cannot be set up, so no candidate could be "
                f"ranked on its outputs ({', '.join(cls.outputs)}): {describe(exc)}. Nothing "
                "was sampled; fix that, or leave its outputs out of --metrics, and rerun"
            ) from exc


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


def check_out_dir(out_dir: Path, model_spec: str, resume: bool) -> None:
    from gensr_bench.alignment.trainer import STATE_FILE

    if Path(model_spec).is_dir() and Path(model_spec).resolve() == out_dir.resolve():
        raise ConfigError(
            f"--out {out_dir} is the base model's own checkpoint folder; choose another --out"
        )
    started = [
        name for name in (CANDIDATES_DIR, PAIRS_DIR, STATE_FILE) if (out_dir / name).exists()
    ]
    if started and not resume:
        raise ConfigError(
            f"{out_dir} already holds an alignment run ({', '.join(started)}); pass --resume "
            "to continue it, or choose another --out"
        )


def pairs_step(
    out_dir: Path,
    cand_dir: Path,
    suite: Suite,
    criterion: Criterion,
    settings: PairSettings,
    metrics: Sequence[Metric],
    *,
    model: str,
    sha: str | None,
    seed: int,
    resume: bool,
) -> tuple[list[PreferencePair], dict[str, Utterance], PairsRecord]:
    """(pairs, inputs by id, record): the saved pairs when their settings match, else new."""
    from gensr_bench.alignment.pipeline import (
        load_pairs,
        pairs_from_run,
        read_pairs_record,
        save_pairs,
        source_utterances,
    )
    from gensr_bench.alignment.trainer import STATE_FILE
    from gensr_bench.store import ScoreCache, read_run

    pairs_dir = out_dir / PAIRS_DIR
    outputs = read_run(cand_dir, outputs=False).count
    record = read_pairs_record(pairs_dir) if resume else None
    if (
        record is not None
        and dict(record.settings) == settings.to_dict()
        and record.source.get("candidates") == str(cand_dir.resolve())
        and record.source.get("outputs") == outputs
    ):
        pairs = load_pairs(pairs_dir)
        utterances = source_utterances(suite, record.source["inputs"])
        click.echo(f"\nreusing the {len(pairs)} pairs saved in {pairs_dir} (same settings)")
        return pairs, {u: utterances[u] for u in record.source["inputs"]}, record
    if (out_dir / STATE_FILE).exists():
        raise ConfigError(
            f"the pair settings differ from those the training in {out_dir} started with "
            f"(saved: {None if record is None else dict(record.settings)}); rerun with the "
            "same options, or align into another --out"
        )
    with ScoreCache() as cache:
        pair_set = pairs_from_run(
            cand_dir,
            suite,
            settings,
            criterion.directions,
            model=model,
            seed=seed,
            reference_metrics=metrics,
            cache=cache,
        )
    record = save_pairs(
        pair_set.pairs,
        pair_set.degraded,
        pairs_dir,
        model=model,
        checkpoint_sha256=sha,
        settings=settings,
        directions=criterion.directions,
        source=pairs_source(cand_dir, pair_set, outputs, model, sha),
        overwrite=True,
    )
    click.echo(f"\n{len(pair_set.pairs)} pairs saved in {pairs_dir}")
    return pair_set.pairs, pair_set.utterances, record
