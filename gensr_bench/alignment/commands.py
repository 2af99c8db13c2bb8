"""``gensr-bench pairs build|stats`` and ``gensr-bench align``: preference data and DPO.

A plugin like any other (entry point ``alignment`` of the group ``gensr_bench``): its
``gensr_register_commands`` hook adds the commands to the top-level group.

* ``pairs build`` turns a finished candidate run (``gensr-bench align`` makes one in
  ``OUT/candidates``; any run of :class:`~gensr_bench.alignment.candidates.CandidateSuite`
  with saved audio will do) into a preference dataset. The candidates' audio comes from the
  files the run saved; the degraded inputs (the dataset's ``prompt``) and, for the
  ground-truth winner, the clean references are read by re-creating the suite recorded in the
  run's configuration (its name and options) through the suite registry, and checked against
  the recorded fingerprint: the run's store holds no input audio.
* ``pairs stats`` prints the counts and per-output margins of a saved preference dataset.
* ``align`` runs the whole pipeline in one folder: candidates, pairs, a held-out split by
  input, and the trainer, which leaves the aligned checkpoint in the folder itself.

The work is done by :mod:`gensr_bench.alignment.pipeline`; this module parses options, shows
progress and prints.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.cli import (
    SEED,
    _create_model,
    _fmt,
    _metric_options,
    _parse_options,
    _run_one,
    _State,
    _table,
    backend_options,
    make_backend,
    pass_state,
)
from gensr_bench.errors import ConfigError, GensrError, StoreError, describe
from gensr_bench.hookspecs import hookimpl

from .pairs import GROUND_TRUTH, MODEL_WINNER, SELECTIONS, WINNERS

if TYPE_CHECKING:
    from gensr_bench.interfaces import Metric, Suite
    from gensr_bench.records import PreferencePair, Utterance

    from .pipeline import Criterion, PairSet, PairSettings, PairsRecord

#: Sub-folders of an ``align`` folder.
CANDIDATES_DIR = "candidates"
PAIRS_DIR = "pairs"
SFT_TARGETS = ("winners", "ground-truth")


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _command_line(state: _State) -> str:
    """The command line as typed (``main``'s arguments; ``sys.argv`` outside ``main``)."""
    args = state.argv if state.argv is not None else sys.argv[1:]
    return shlex.join(["gensr-bench", *args])


def _echo_stats(stats: Mapping[str, Any], signed: bool) -> None:
    """The tables of ``pair_stats``: counts, then the margins of each output."""
    per_input = stats["pairs_per_input"]
    click.echo(
        _table(
            [[str(stats["pairs"]), str(stats["inputs"]), _fmt(per_input, 2)]],
            ["pairs", "inputs", "pairs/input"],
        )
    )
    margins = stats["margins"]
    if not margins:
        return
    rows = [
        [output, str(m["n"]), _fmt(m["mean"]), _fmt(m["median"]), _fmt(m["min"])]
        for output, m in margins.items()
    ]
    click.echo()
    click.echo(_table(rows, ["output", "n", "mean margin", "median", "min"]))
    click.echo(
        "margins: chosen minus rejected, signed so that > 0 means the chosen output is better"
        if signed
        else "margins: raw chosen minus rejected (the outputs' directions are unknown)"
    )


# -- pairs ---------------------------------------------------------------------------------------


def _finished_candidate_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The config, provenance and number of outputs of a finished candidate run."""
    from gensr_bench.store import RunStore

    store = RunStore(run_dir)
    if not store.exists():
        raise StoreError(
            f"no candidate run in {run_dir}: expected {store.path}; make candidates with "
            "`gensr-bench align` (they go to OUT/candidates)"
        )
    try:
        config = store.get_info("config") or {}
        provenance = store.get_info("provenance") or {}
        status = store.get_info("status")
        count = store.count()
    finally:
        store.close()
    if "candidates" not in (config.get("suite") or {}):
        raise StoreError(
            f"{run_dir} is not a candidate run (its suite records no candidate count); make "
            "candidates with `gensr-bench align`"
        )
    if status != "finished":
        raise StoreError(
            f"the candidate run in {run_dir} has not finished ({count} outputs so far); "
            "finish it by rerunning the command that made it with --resume"
        )
    return config, provenance, count


def _recorded_suite(reg: Any, config: Mapping[str, Any], run_dir: Path) -> Suite:
    """The suite a candidate run sampled from, re-created from its recorded name and options.

    Raises:
        ConfigError: the re-created suite's fingerprint is not the recorded one.
    """
    recorded = config["suite"]
    suite: Suite = reg.suites.create(
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


def _recorded_metrics(config: Mapping[str, Any], classes: Sequence[type[Metric]]) -> list[Metric]:
    """Instances of ``classes`` with the options the candidate run recorded for them."""
    options = {m["name"]: m.get("options") or {} for m in config.get("metrics", [])}
    return [cls(**options.get(cls.name, {})) for cls in classes]


def _reused_candidates(
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

    config, _provenance, _count = _finished_candidate_run(run_dir)
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
    return _recorded_metrics(config, criterion.metrics)


def _pairs_source(
    run_dir: Path, pair_set: PairSet, outputs: int, model: str, sha: str | None
) -> dict[str, Any]:
    return {
        "candidates": str(run_dir.resolve()),
        "outputs": outputs,
        "inputs": list(pair_set.utterances),
        "model": model,
        "checkpoint_sha256": sha,
    }


_PAIR_OPTIONS = (
    click.option(
        "--min-margin",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="How much better on each output (in its own units) the winner must be.",
    ),
    click.option(
        "--max-pairs", type=click.IntRange(min=1), default=None, help="At most N pairs per input."
    ),
    click.option(
        "--selection",
        type=click.Choice(SELECTIONS),
        default="margin",
        show_default=True,
        help="Which pairs --max-pairs keeps: the largest margins, or a seeded random draw.",
    ),
    click.option(
        "--winner",
        type=click.Choice(WINNERS),
        default=MODEL_WINNER,
        show_default=True,
        help="model: pairs within the candidates (the method); ground-truth: the clean "
        "reference beats every candidate (ablation).",
    ),
)


def _pair_options(command: Any) -> Any:
    """The pairing options that ``pairs build`` and ``align`` share, in this order."""
    for option in reversed(_PAIR_OPTIONS):
        command = option(command)
    return command


@click.group(name="pairs")
def pairs_group() -> None:
    """Preference pairs: build a dataset from candidates, show a dataset's statistics."""


@pairs_group.command(name="build")
@click.option(
    "--candidates",
    "candidates_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A finished candidate run (e.g. the candidates/ folder of `align`).",
)
@click.option(
    "--metrics",
    required=True,
    help="Comma-separated metric outputs the winner must beat the loser on, every one "
    "(e.g. dnsmos_ovrl,estoi); a metric name stands for all its outputs.",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Dataset folder to write."
)
@_pair_options
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of random selection.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already saved in --out.")
@pass_state
def pairs_build(
    state: _State,
    candidates_dir: str,
    metrics: str,
    out: str,
    min_margin: float,
    max_pairs: int | None,
    selection: str,
    winner: str,
    seed: int,
    overwrite: bool,
) -> None:
    """Build a preference dataset of unanimous pairs from a finished candidate run.

    The degraded inputs (and, for --winner ground-truth, the clean references) are read from
    the suite the run recorded, re-created through the registry with its recorded options;
    pass the same --plugins-dir / --data-dir as the run had.
    """
    from gensr_bench.store import ScoreCache

    from .pipeline import PairSettings, pairs_from_run, resolve_criterion, save_pairs

    run_dir = Path(candidates_dir)
    config, provenance, outputs = _finished_candidate_run(run_dir)
    reg = state.registries
    recorded = [m["name"] for m in config.get("metrics", [])]
    criterion = resolve_criterion(
        _items(metrics),
        [reg.metrics.get(name) for name in recorded],
        where=f"metrics of the candidate run {run_dir} ({', '.join(recorded)})",
    )
    settings = PairSettings(criterion.outputs, min_margin, max_pairs, selection, winner, seed)
    suite = _recorded_suite(reg, config, run_dir)
    model = str(config["model"]["name"])
    sha = provenance.get("model_checkpoint_sha256")
    cache = ScoreCache()
    try:
        pair_set = pairs_from_run(
            run_dir,
            suite,
            settings,
            criterion.directions,
            model=model,
            seed=int(config.get("seed", 0)),
            reference_metrics=(
                _recorded_metrics(config, criterion.metrics) if winner == GROUND_TRUTH else ()
            ),
            cache=cache,
        )
    finally:
        cache.close()
    record = save_pairs(
        pair_set.pairs,
        pair_set.degraded,
        Path(out),
        model=model,
        checkpoint_sha256=sha,
        settings=settings,
        directions=criterion.directions,
        source=_pairs_source(run_dir, pair_set, outputs, model, sha),
        overwrite=overwrite,
    )
    click.echo(
        f"{len(pair_set.pairs)} pairs from {pair_set.candidates} candidates of "
        f"{len(pair_set.utterances)} inputs ({run_dir}); criterion: "
        f"{', '.join(criterion.outputs)}; winner: {winner}; dataset: {out}"
    )
    _echo_stats(record.stats, signed=True)


@pairs_group.command(name="vectors")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--features",
    default="log-mel",
    show_default=True,
    help="Registered feature extractor (hook gensr_register_features): log-mel, speaker, ...",
)
@click.option(
    "--feature-option", multiple=True, metavar="KEY=VALUE", help="Option for the extractor."
)
@click.option(
    "--max-pairs",
    type=click.IntRange(min=2),
    default=500,
    show_default=True,
    help="Use at most N pairs of each dataset, drawn at random with --seed.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the draw.")
@click.option(
    "--save",
    "save_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write each dataset's summed vectors to DIR/LABEL.json; such files can be "
    "given later in place of the dataset.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_state
def pairs_vectors(
    state: _State,
    sources: tuple[str, ...],
    features: str,
    feature_option: tuple[str, ...],
    max_pairs: int,
    seed: int,
    save_dir: str | None,
    fmt: str,
) -> None:
    """Mean pairwise cosine of preference vectors within and across datasets (Table 5).

    Each pair gives f(chosen) - f(rejected) for the feature extractor f; the table shows the
    mean cosine similarity of those vectors within each dataset (diagonal) and across two
    (off-diagonal). SOURCES are preference dataset folders, or summaries that an earlier
    `pairs vectors --save DIR` wrote (DIR/LABEL.json; same --features and options). Label:
    the dataset's model, with its folder when models repeat.
    """
    import json

    from tqdm import tqdm

    from gensr_bench.leaderboard import safe_name

    from .dataset import load_preference_dataset
    from .vectors import (
        VectorSum,
        cosine_table,
        format_table,
        load_summary,
        preference_vectors,
        sample_indices,
        save_summary,
    )

    extractor = state.registry("features").create(
        features, **_parse_options(feature_option, "--feature-option")
    )
    wanted = extractor.config()
    loaded: list[tuple[Path, str, Any]] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            summary, saved_features = load_summary(path)
            if saved_features != wanted:
                raise ConfigError(
                    f"{path} sums {saved_features} vectors, not {wanted}; give --features "
                    "(and --feature-option) as when it was saved"
                )
            loaded.append((path, summary.label, summary))
        else:
            ds = load_preference_dataset(path)
            loaded.append((path, str(ds[0]["model"]) if len(ds) else path.name, ds))
    models = [model for _, model, _ in loaded]
    groups = []
    for path, model, data in loaded:
        label = model if models.count(model) == 1 else f"{model} ({path})"
        if isinstance(data, VectorSum):
            group = replace(data, label=label)
        else:
            indices = sample_indices(len(data), max_pairs, seed)
            with tqdm(total=len(indices), unit="pair", desc=label, file=sys.stderr) as bar:
                vectors = preference_vectors(
                    data, extractor, label, indices=indices, progress=bar.update
                )
            group = vectors.summed()
            if save_dir is not None:
                target = Path(save_dir) / f"{safe_name(label)}.json"
                save_summary(
                    group,
                    target,
                    features=wanted,
                    dataset=str(path),
                    seed=seed,
                    max_pairs=max_pairs,
                )
                click.echo(f"saved {target}", err=True)
        groups.append(group)
    table = cosine_table(groups)
    if fmt == "json":
        payload = {
            "features": wanted,
            "seed": seed,
            "datasets": [
                {
                    "label": g.label,
                    "path": str(path),
                    "pairs_read": g.pairs,
                    "vectors": g.count,
                    "skipped": [{"row": r, "reason": why} for r, why in g.skipped],
                }
                for g, (path, _, _) in zip(groups, loaded, strict=True)
            ],
            "mean_cosine": table,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        f"mean pairwise cosine of preference vectors (f(chosen) - f(rejected)), f = "
        f"{extractor.name} {dict(extractor.options) or ''}".rstrip()
    )
    click.echo(_table(format_table(table), ["", *table]))
    for g in groups:
        click.echo(f"{g.label}: {g.count} vectors of {g.pairs} pairs read")
        for row, why in g.skipped[:3]:
            click.echo(f"  skipped row {row}: {why}")
        if len(g.skipped) > 3:
            click.echo(f"  ... {len(g.skipped) - 3} more skipped")


@pairs_group.command(name="stats")
@click.argument("dataset_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_state
def pairs_stats(state: _State, dataset_dir: str, fmt: str) -> None:
    """Counts (pairs, inputs, pairs per input) and per-output margins of a saved dataset."""
    import json

    from .dataset import load_preference_dataset
    from .pipeline import dataset_stats, read_pairs_record

    path = Path(dataset_dir)
    ds = load_preference_dataset(path)
    record = read_pairs_record(path)
    known: dict[str, bool] = {}
    if record is None:
        known = {o: e.cls.direction(o) for e in state.registries.metrics for o in e.cls.outputs}
    stats, signed = dataset_stats(ds, record, known)
    if fmt == "json":
        payload = {
            "dataset": str(path),
            **stats,
            "margins_signed": signed,
            "settings": None if record is None else dict(record.settings),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"{path}: model {ds[0]['model'] if len(ds) else '—'}")
    if record is not None:
        settings = record.settings
        click.echo(
            f"criterion: {', '.join(settings['criterion'])}; winner: {settings['winner']}; "
            f"min margin: {settings['min_margin']}; max pairs: {settings['max_pairs'] or 'all'}"
        )
    _echo_stats(stats, signed)


# -- align ---------------------------------------------------------------------------------------


def _alignable(reg: Any, model: Any, spec: str) -> None:
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


def _candidates_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished candidate run (a resumed `align` samples nothing)."""
    from gensr_bench.store import RunStore

    store = RunStore(run_dir)
    if not store.exists():
        return False
    try:
        return bool(store.get_info("status") == "finished")
    finally:
        store.close()


def _preflight_metrics(metrics: Sequence[type[Metric]], options: Mapping[str, Any]) -> None:
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


def _missing_scores(run_dir: Path, outputs: Sequence[str]) -> str:
    """Why candidates may not pair: per criterion output, how many lack a score and why.

    ``""`` when every candidate has a score on every output (the cause is elsewhere).
    """
    from gensr_bench.store import RunStore

    missing: dict[str, int] = {name: 0 for name in outputs}
    first_error: dict[str, str] = {}
    total = 0
    store = RunStore(run_dir)
    try:
        for output in store.outputs():
            total += 1
            for name in outputs:
                if output.scores.get(name) is None:
                    missing[name] += 1
                    error = output.errors.get(name)
                    if error and name not in first_error:
                        first_error[name] = error
    finally:
        store.close()
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


def _check_out(out_dir: Path, model_spec: str, resume: bool) -> None:
    from .trainer import STATE_FILE

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


def _pairs_step(
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
    from gensr_bench.store import RunStore, ScoreCache

    from .pipeline import (
        load_pairs,
        pairs_from_run,
        read_pairs_record,
        save_pairs,
        source_utterances,
    )
    from .trainer import STATE_FILE

    pairs_dir = out_dir / PAIRS_DIR
    store = RunStore(cand_dir)
    try:
        outputs = store.count()
    finally:
        store.close()
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
    cache = ScoreCache()
    try:
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
    finally:
        cache.close()
    record = save_pairs(
        pair_set.pairs,
        pair_set.degraded,
        pairs_dir,
        model=model,
        checkpoint_sha256=sha,
        settings=settings,
        directions=criterion.directions,
        source=_pairs_source(cand_dir, pair_set, outputs, model, sha),
        overwrite=True,
    )
    click.echo(f"\n{len(pair_set.pairs)} pairs saved in {pairs_dir}")
    return pair_set.pairs, pair_set.utterances, record


@click.command(name="align")
@click.option(
    "--model",
    "model_spec",
    required=True,
    help="Model to align: a registered name or a checkpoint folder (see `ls models`).",
)
@click.option("--suite", required=True, help="Suite whose inputs the candidates restore.")
@click.option(
    "--metrics",
    required=True,
    help="Comma-separated metric outputs the winner must beat the loser on, every one "
    "(e.g. dnsmos_ovrl,dnsmos_sig,estoi); a metric name stands for all its outputs.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder of the run: candidates/, pairs/ and the aligned checkpoint itself.",
)
@click.option(
    "--n", type=click.IntRange(min=2), default=8, show_default=True, help="Candidates per input."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use the first N inputs.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes for the candidates (default: number of cores).",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed of the candidates, pair selection, held-out split and training.",
)
@_pair_options
@click.option(
    "--objective",
    type=click.Choice(["dpo", "sft"]),  # trainer.OBJECTIVES (not imported: it loads torch)
    default="dpo",
    show_default=True,
    help="dpo (the method) or sft (supervised baseline on --sft-target).",
)
@click.option(
    "--sft-target",
    type=click.Choice(SFT_TARGETS),
    default=None,
    help="With --objective sft: the pairs' chosen outputs [winners] or the clean references.",
)
@click.option(
    "--held-out",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.1,
    show_default=True,
    help="Fraction of the inputs whose pairs are held out to evaluate training.",
)
@click.option(
    "--align-option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Trainer option (AlignConfig field), e.g. steps=500, beta=1000, lr=1e-5.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out, step by step.")
@click.option(
    "--candidates",
    "candidates_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Reuse a finished candidate run (e.g. another align's OUT/candidates) instead of "
    "sampling: same model, suite, --limit, --n and --seed, scored with the criterion's "
    "metrics. For ablations: another criterion or winner on the same candidates.",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop training (and save) after M minutes.",
)
@click.option("--model-option", multiple=True, metavar="KEY=VALUE", help="Option for the model.")
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.option(
    "--metric-option", multiple=True, metavar="METRIC.KEY=VALUE", help="Option for one metric."
)
@backend_options
@pass_state
def align_command(
    state: _State,
    model_spec: str,
    suite: str,
    metrics: str,
    out: str,
    n: int,
    limit: int | None,
    workers: int | None,
    seed: int,
    min_margin: float,
    max_pairs: int | None,
    selection: str,
    winner: str,
    objective: str,
    sft_target: str | None,
    held_out: float,
    align_option: tuple[str, ...],
    resume: bool,
    candidates_dir: str | None,
    max_minutes: float | None,
    model_option: tuple[str, ...],
    suite_option: tuple[str, ...],
    metric_option: tuple[str, ...],
    backend: str,
    backend_option: tuple[str, ...],
) -> None:
    """Align a generative model on its own candidates: sample, pair, train (DPO).

    Everything goes into --out: the candidates (OUT/candidates, a run with saved audio, so
    the score cache, --workers and --resume apply), the preference dataset (OUT/pairs), and
    the aligned checkpoint in OUT itself (use it with `gensr-bench run --model OUT`), with
    train_state.pt and align.log. --resume skips finished candidates, reuses the pairs when
    their settings match and continues training. With --candidates the candidates of another
    run are reused (nothing is sampled) and only pairs/ and the checkpoint go into --out.
    """
    from tqdm import tqdm

    from gensr_bench.plugins import plugin_dirs_from_env
    from gensr_bench.runner import RunOptions, run_config

    from .candidates import CandidateModel, CandidateSuite
    from .losses import loss_for_paradigm
    from .pipeline import (
        PairSettings,
        align_config,
        alignment_examples,
        degraded_inputs,
        held_out_split,
        reference_examples,
        resolve_criterion,
        winner_examples,
    )
    from .trainer import DPOTrainer

    if sft_target is not None and objective != "sft":
        raise click.UsageError("--sft-target applies to --objective sft only")
    target = sft_target or "winners"
    out_dir = Path(out)
    reg = state.registries
    criterion = resolve_criterion(_items(metrics), [e.cls for e in reg.metrics])
    config = align_config(
        _parse_options(align_option, "--align-option"), objective=objective, seed=seed
    )
    _check_out(out_dir, model_spec, resume)
    own_candidates = out_dir / CANDIDATES_DIR
    if (
        candidates_dir is not None
        and own_candidates.exists()
        and own_candidates.resolve() != Path(candidates_dir).resolve()
    ):
        raise ConfigError(
            f"{out_dir} already holds its own candidates ({own_candidates}); drop "
            "--candidates to continue with them, or align into another --out"
        )
    model = _create_model(reg, model_spec, _parse_options(model_option, "--model-option"))
    _alignable(reg, model, model_spec)
    if objective == "dpo":
        loss_for_paradigm(model.paradigm)  # a paradigm without a DPO loss fails before sampling
    suite_cls = reg.suites.get(suite)
    if suite_cls.subsets:
        raise ConfigError(
            f"suite {suite!r} stands for several suites ({', '.join(suite_cls.subsets)}); "
            "align on one of them"
        )
    suite_obj = suite_cls(limit=limit, **_parse_options(suite_option, "--suite-option"))
    per_metric = _metric_options(metric_option)
    unknown = sorted(set(per_metric) - {cls.name for cls in criterion.metrics})
    if unknown:
        raise click.BadParameter(
            f"options given for metrics that no criterion output needs: {unknown} (scoring "
            f"with: {', '.join(cls.name for cls in criterion.metrics)})",
            param_hint="--metric-option",
        )
    metric_objs = [cls(**per_metric.get(cls.name, {})) for cls in criterion.metrics]
    sha = model.checkpoint_hash()
    cand_model, cand_suite = CandidateModel(model), CandidateSuite(suite_obj, n)

    # (a) candidates, through the runner (or those of a finished run, reused).
    if candidates_dir is not None:
        cand_dir = Path(candidates_dir)
        metric_objs = _reused_candidates(
            cand_dir, criterion, run_config(cand_model, cand_suite, [], seed), per_metric
        )
        click.echo(f"reusing the candidates in {cand_dir}")
    else:
        cand_dir = own_candidates
        if not _candidates_finished(cand_dir):
            _preflight_metrics(criterion.metrics, per_metric)
        options = RunOptions(
            seed=seed,
            workers=workers or os.cpu_count() or 1,
            resume=resume,
            save_audio=True,
            plugin_dirs=tuple(str(d.resolve()) for d in plugin_dirs_from_env(state.plugin_dirs)),
            backend=make_backend(state, backend, backend_option),
        )
        _run_one(
            state,
            f"{model.name} ({n} candidates per input)",
            suite,
            cand_model,
            cand_suite,
            metric_objs,
            cand_dir,
            options,
            None,
        )

    # (b) pairs.
    settings = PairSettings(criterion.outputs, min_margin, max_pairs, selection, winner, seed)
    pairs, utterances, record = _pairs_step(
        out_dir,
        cand_dir,
        suite_obj,
        criterion,
        settings,
        metric_objs,
        model=model.name,
        sha=sha,
        seed=seed,
        resume=resume,
    )
    _echo_stats(record.stats, signed=True)

    # (c) the held-out split, by input.
    train_ids, held_ids = held_out_split(list(utterances), held_out, seed)
    rate = pairs[0].chosen.audio.sample_rate if pairs else model.sample_rate
    degraded = degraded_inputs(utterances, rate)
    if objective == "dpo":
        examples = alignment_examples(pairs, degraded, train_ids)
    elif target == "winners":
        examples = winner_examples(pairs, degraded, train_ids)
    else:
        examples = reference_examples(utterances, degraded, train_ids)
    eval_examples = alignment_examples(pairs, degraded, held_ids)
    if not examples:
        advice = _missing_scores(cand_dir, criterion.outputs) or (
            "Sample more candidates (--n), use more inputs (--limit), a smaller --min-margin "
            "or fewer criterion outputs"
        )
        raise ConfigError(
            f"nothing to train on: {len(pairs)} pairs over {len(utterances)} inputs, none in "
            f"the {len(train_ids)} training inputs ({len(held_ids)} held out). {advice}"
        )
    click.echo(
        f"training on {len(examples)} {'pairs' if objective == 'dpo' else 'targets'} of "
        f"{len(train_ids)} inputs; {len(eval_examples)} held-out pairs of {len(held_ids)} inputs"
    )

    # (d) the trainer, into OUT itself.
    manifest = {
        "command": _command_line(state),
        "base_model": model_spec,
        "base_model_name": model.name,
        "base_checkpoint_sha256": sha,
        "suite": {
            "name": suite,
            "options": dict(suite_obj.options),
            "limit": limit,
            "fingerprint": suite_obj.fingerprint(),
        },
        "criterion": list(criterion.outputs),
        "directions": dict(criterion.directions),
        "objective": objective,
        "sft_target": target if objective == "sft" else None,
        "candidates": {"run": str(cand_dir.resolve()), "n": n, "seed": seed},
        "pairs": {
            "dataset": str((out_dir / PAIRS_DIR).resolve()),
            **settings.to_dict(),
            "total": len(pairs),
            "inputs": len({pair.input_id for pair in pairs}),
            "train_examples": len(examples),
            "held_out_pairs": len(eval_examples),
            "held_out_fraction": held_out,
            "held_out_inputs": held_ids,
        },
    }
    trainer = DPOTrainer(
        model,  # an AlignablePolicy: checked by _alignable
        examples,
        config,
        out_dir,
        eval_examples=eval_examples,
        manifest=manifest,
    )
    bar = tqdm(unit="step", desc=f"{objective} {model.name}", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh()

    reference_bar = tqdm(unit="pair", desc="reference terms", file=sys.stderr, delay=1.0)

    def reference_progress(done: int, total: int) -> None:
        reference_bar.total = total
        reference_bar.n = done
        reference_bar.refresh()

    try:
        saved = trainer.train(
            resume=resume,
            max_minutes=max_minutes,
            progress=progress,
            reference_progress=reference_progress,
        )
    finally:
        reference_bar.close()
        bar.close()
    if not saved:
        raise GensrError(
            f"training stopped before its first step (is --max-minutes 0?); no checkpoint "
            f"was written to {out_dir}"
        )
    done = saved["alignment"]
    last = done["history"][-1] if done["history"] else {}
    shown = ", ".join(
        f"{key} {value:.4g}"
        for key, value in last.items()
        if key in ("loss", "reward_accuracy", "eval_reward_accuracy", "eval_margin")
    )
    click.echo(
        f"aligned {model.name} ({objective}): {done['steps_done']}/{config.steps} steps in "
        f"{done['minutes']} min{'; ' + shown if shown else ''}"
    )
    click.echo(
        f"checkpoint in {out_dir} (use it with: gensr-bench run --model {out_dir} --suite ...)"
    )


@hookimpl
def gensr_register_commands(cli: click.Group) -> None:
    for command in (pairs_group, align_command):
        if command.name not in cli.commands:
            cli.add_command(command)
