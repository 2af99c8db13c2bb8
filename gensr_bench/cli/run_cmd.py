"""``gensr-bench run``: one model on one suite, scored and stored."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.runs import RunBar, print_ignored, print_run
from gensr_bench.cli.toolkit import (
    SEED,
    CliState,
    backend_options,
    device_option,
    make_backend,
    parse_metric_options,
    parse_options,
    pass_state,
    read_suite_config,
)
from gensr_bench.errors import (
    ConfigError,
    UnknownOptionError,
)

if TYPE_CHECKING:
    from gensr_bench.interfaces import Metric, RestorationModel, Suite
    from gensr_bench.records import RunResult
    from gensr_bench.registry import Registries
    from gensr_bench.runner import RunOptions


@cli.command()
@click.option("--model", required=True, help="Registered model name (see `ls models`).")
@click.option("--suite", required=True, help="Registered suite name (see `ls suites`).")
@click.option(
    "--metrics",
    default=None,
    help="Comma-separated metric or output names; default: all default metrics.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Use the first N utterances."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes, each loading every metric once (default: number of cores).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option(
    "--out", type=click.Path(file_okay=False), default=None, help="Run folder [runs/MODEL--SUITE]."
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--by", "by", default=None, help="Also break results down by this meta key, e.g. degradation."
)
@click.option(
    "--resume", is_flag=True, help="Continue the run in --out, skipping finished utterances."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the score cache.")
@click.option("--save-audio", is_flag=True, help="Keep every scored output as OUT/audio/<id>.wav.")
@click.option("--model-option", multiple=True, metavar="KEY=VALUE", help="Option for the model.")
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.option(
    "--suite-config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML/JSON file of per-suite options, e.g. [dns] root = '/data/DNS-Challenge'.",
)
@click.option(
    "--metric-option", multiple=True, metavar="METRIC.KEY=VALUE", help="Option for one metric."
)
@backend_options
@device_option
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Run only shard I of N (utterances at positions p with p %% N == I), for job arrays; "
    "join the N finished shards with `gensr-bench merge`.",
)
@pass_state
def run(
    state: CliState,
    model: str,
    suite: str,
    metrics: str | None,
    limit: int | None,
    workers: int | None,
    batch_size: int,
    out: str | None,
    seed: int,
    by: str | None,
    resume: bool,
    overwrite: bool,
    no_cache: bool,
    save_audio: bool,
    model_option: tuple[str, ...],
    suite_option: tuple[str, ...],
    suite_config: str | None,
    metric_option: tuple[str, ...],
    backend: str,
    backend_option: tuple[str, ...],
    device: str,
    shard: str | None,
) -> None:
    """Restore every utterance of SUITE with MODEL and score it with every metric."""
    from gensr_bench.plugins import plugin_dirs_from_env
    from gensr_bench.runner import RunOptions, parse_shard

    if resume and overwrite:
        raise click.UsageError(
            "--resume and --overwrite contradict each other: --resume continues the run in "
            "--out, --overwrite replaces it; pass one of them"
        )
    metric_names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else []
    if metrics is not None and not metric_names:
        raise click.BadParameter(
            f"names no metric ({metrics!r}); pass comma-separated metric names (see "
            "`gensr-bench ls metrics`), or leave --metrics out for every default metric",
            param_hint="--metrics",
        )
    reg = state.registries
    metric_classes = reg.resolve_metrics(metric_names or None)
    per_metric = parse_metric_options(metric_option)
    unknown = sorted(set(per_metric) - {m.name for m in metric_classes})
    if unknown:
        raise click.BadParameter(
            f"options given for metrics not in this run: {unknown}", param_hint="--metric-option"
        )
    try:
        model_obj = create_model(reg, model, parse_options(model_option, "--model-option"))
    except UnknownOptionError as exc:  # a usage error, before any work
        raise click.BadParameter(str(exc), param_hint="--model-option") from exc
    suite_options = parse_options(suite_option, "--suite-option")
    suite_cls = reg.suites.get(suite)
    try:
        metric_objs = [cls(**per_metric.get(cls.name, {})) for cls in metric_classes]
    except ConfigError as exc:  # an unknown or invalid option: a usage error, before any work
        raise click.BadParameter(str(exc), param_hint="--metric-option") from exc
    try:
        shard_spec = parse_shard(shard) if shard is not None else None
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc
    default_name = f"{Path(model).name}--{suite}"
    if shard_spec is not None:
        default_name += f"--shard{shard_spec[0]}of{shard_spec[1]}"
    base_dir = Path(out) if out else Path("runs") / default_name
    options = RunOptions(
        seed=seed,
        workers=workers or os.cpu_count() or 1,
        batch_size=batch_size,
        resume=resume,
        overwrite=overwrite,
        use_cache=not no_cache,
        save_audio=save_audio,
        # Worker processes re-import local plugin files (from --plugins-dir or the env var).
        plugin_dirs=tuple(str(d.resolve()) for d in plugin_dirs_from_env(state.plugin_dirs)),
        backend=make_backend(state, backend, backend_option),
        shard=shard_spec,
        by=by,
        device=device,
    )
    # A suite with subsets (e.g. dns) is run and reported subset by subset; the files the
    # model ignored are those no subset used, listed once after the last.
    parts = [(name, reg.suites.get(name)) for name in suite_cls.subsets] or [(suite, suite_cls)]
    ignored_by_all: set[tuple[str, str]] | None = None
    for part_name, part_cls in parts:
        configured = read_suite_config(suite_config, [suite, part_name])
        try:
            suite_obj = part_cls(limit=limit, **{**configured, **suite_options})
        except UnknownOptionError as exc:  # a usage error
            raise click.BadParameter(str(exc), param_hint="--suite-option") from exc
        out_dir = base_dir / part_name if suite_cls.subsets else base_dir
        result = run_one(
            state, model, part_name, model_obj, suite_obj, metric_objs, out_dir, options,
            show_model_ignored=not suite_cls.subsets,
        )  # fmt: skip
        ignored = set(result.model_ignored_files)
        ignored_by_all = ignored if ignored_by_all is None else ignored_by_all & ignored
    if suite_cls.subsets:
        print_ignored(
            f"note: over {', '.join(suite_cls.subsets)}, the model ignored",
            sorted(ignored_by_all or ()),
            "in its folder",
        )


def create_model(reg: Registries, spec: str, options: dict[str, Any]) -> RestorationModel:
    """A model from a registered name, or from a checkpoint folder holding ``manifest.json``.

    A folder's manifest names the model class (``"model": "fm-small"``); the folder becomes
    that model's ``checkpoint`` option.
    """
    folder = Path(spec)
    if folder.is_dir():
        manifest = folder / "manifest.json"
        try:
            name = json.loads(manifest.read_text())["model"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.BadParameter(
                f"{folder} is a folder but not a model checkpoint: {manifest} is missing or "
                f"names no model ({exc}); pass a registered model name or a folder written by "
                "`gensr-bench train`",
                param_hint="--model",
            ) from exc
        return reg.models.create(name, **{**options, "checkpoint": str(folder)})
    return reg.models.create(spec, **options)


def run_one(
    state: CliState,
    model: str,
    suite: str,
    model_obj: RestorationModel,
    suite_obj: Suite,
    metric_objs: Sequence[Metric],
    out_dir: Path,
    options: RunOptions,
    show_model_ignored: bool = True,
) -> RunResult:
    """Run one suite with a progress bar, then print its table, breakdown and notes (the
    files the model ignored too, unless ``show_model_ignored`` is false); its result."""
    from gensr_bench.runner import run_suite

    bar = RunBar(f"{model} on {suite}")
    try:
        result = run_suite(
            model_obj, suite_obj, metric_objs, out_dir, options, state.pm, bar.start, bar.scored
        )
    finally:
        bar.close()
    print_run(f"{model} on {suite}", result, out_dir, suite_obj, options.by, show_model_ignored)
    return result
