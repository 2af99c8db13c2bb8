"""The ``gensr-bench`` command line. The only module that prints or chooses exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gensr_bench.errors import (
    ConfigError,
    GensrError,
    UnknownNameError,
    UnknownOptionError,
    is_disk_full,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
#: --seed of every command: refused at parse time outside numpy's legacy seed range (0 to
#: 2**32 - 1, also what torch and default_rng accept), so no seed fails after hours of work.
SEED = click.IntRange(min=0, max=2**32 - 1)


# -- helpers ----------------------------------------------------------------------------------
def _parse_options(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse as JSON, else strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=what)
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def _suite_config(path: str | None, names: Sequence[str]) -> dict[str, Any]:
    """Options for the suites ``names`` from a TOML or JSON file ``{suite: {option: value}}``.

    Later names win (a group's own entry, then the subset's); ``--suite-option`` wins over all.
    """
    if not path:
        return {}
    from gensr_bench.errors import ConfigError

    file = Path(path)
    try:
        text = file.read_text()
        if file.suffix.lower() == ".json":
            config = json.loads(text)
        else:
            import tomllib

            config = tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read suite config {file}: {exc}; expected TOML or JSON such as "
            '[dns]\nroot = "/data/DNS-Challenge"'
        ) from exc
    merged: dict[str, Any] = {}
    for name in names:
        section = config.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"suite config {file}: [{name}] must be a table of options")
        merged.update(section)
    return merged


def _metric_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for name_key, value in _parse_options(pairs, "--metric-option").items():
        name, dot, key = name_key.partition(".")
        if not dot:
            raise click.BadParameter(
                f"expected METRIC.KEY=VALUE, got {name_key!r}", param_hint="--metric-option"
            )
        grouped.setdefault(name, {})[key] = value
    return grouped


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _summary_rows(summaries: Sequence[Any]) -> list[list[str]]:
    rows = []
    for s in summaries:
        ci = "—" if s.ci_low is None else f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]"
        arrow = "↑" if s.higher_is_better else "↓"
        rows.append([f"{s.output} {arrow}", _fmt(s.mean), ci, f"{s.n_scored}/{s.n_total}"])
    return rows


def _table(rows: list[list[str]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


class _State:
    """What every command shares: the plugin manager and registries, built on first use."""

    def __init__(self, plugin_dirs: tuple[str, ...]) -> None:
        self.plugin_dirs = plugin_dirs
        #: The arguments ``main`` was called with (recorded in manifests); None outside it.
        self.argv: tuple[str, ...] | None = None
        self._pm: Any = None
        self._registries: Any = None
        self._other: dict[str, Any] = {}

    @property
    def pm(self) -> Any:
        if self._pm is None:
            from gensr_bench.plugins import get_plugin_manager

            self._pm = get_plugin_manager(self.plugin_dirs or None)
        return self._pm

    @property
    def registries(self) -> Any:
        if self._registries is None:
            from gensr_bench.registry import Registries

            self._registries = Registries.from_plugins(self.pm)
        return self._registries

    def registry(self, kind: str) -> Any:
        """The registry of one kind (``registry.KINDS``: metrics, backends, features, ...),
        built once per command."""
        if kind in ("metrics", "models", "suites"):
            return getattr(self.registries, kind)
        if kind not in self._other:
            from gensr_bench.registry import Registry

            self._other[kind] = Registry.from_plugins(self.pm, kind)
        return self._other[kind]


pass_state = click.make_pass_decorator(_State)


# -- commands ---------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugins-dir",
    "plugin_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder of local plugin files (*.py) to load; also GENSR_BENCH_PLUGINS_DIR.",
)
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder searched first for weight files; also GENSR_BENCH_WEIGHTS_DIR.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding local copies of data sets, one sub-folder per suite; also "
    "GENSR_BENCH_DATA.",
)
@click.version_option(package_name="gensr-bench")
@click.pass_context
def cli(
    ctx: click.Context, plugin_dirs: tuple[str, ...], weights_dir: str | None, data_dir: str | None
) -> None:
    """Evaluate, compare and align generative speech restoration models."""
    if data_dir:
        from gensr_bench.data import set_data_dir

        set_data_dir(data_dir)
    if weights_dir:
        from gensr_bench.weights import set_weights_dir

        set_weights_dir(weights_dir)
    state = ctx.obj if isinstance(ctx.obj, _State) else _State(plugin_dirs)
    state.plugin_dirs = plugin_dirs or state.plugin_dirs
    ctx.obj = state


def backend_options(command: Any) -> Any:
    """``--backend`` and ``--backend-option``: where batches run (run, align)."""
    command = click.option(
        "--backend-option",
        multiple=True,
        metavar="KEY=VALUE",
        help="Option for the backend, e.g. address=auto for an existing Ray cluster.",
    )(command)
    return click.option(
        "--backend",
        default="local",
        show_default=True,
        help="Where batches run: local (this machine) or a registered backend such as ray.",
    )(command)


def make_backend(state: _State, name: str, pairs: Sequence[str]) -> Any:
    """The registered backend ``name`` with its ``--backend-option`` values."""
    return state.registry("backends").create(name, **_parse_options(pairs, "--backend-option"))


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
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Run only shard I of N (utterances at positions p with p %% N == I), for job arrays; "
    "join the N finished shards with `gensr-bench merge`.",
)
@pass_state
def run(
    state: _State,
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
    per_metric = _metric_options(metric_option)
    unknown = sorted(set(per_metric) - {m.name for m in metric_classes})
    if unknown:
        raise click.BadParameter(
            f"options given for metrics not in this run: {unknown}", param_hint="--metric-option"
        )
    try:
        model_obj = _create_model(reg, model, _parse_options(model_option, "--model-option"))
    except UnknownOptionError as exc:  # a usage error, before any work
        raise click.BadParameter(str(exc), param_hint="--model-option") from exc
    suite_options = _parse_options(suite_option, "--suite-option")
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
    )
    # A suite with subsets (e.g. dns) is run and reported subset by subset.
    parts = [(name, reg.suites.get(name)) for name in suite_cls.subsets] or [(suite, suite_cls)]
    for part_name, part_cls in parts:
        configured = _suite_config(suite_config, [suite, part_name])
        try:
            suite_obj = part_cls(limit=limit, **{**configured, **suite_options})
        except UnknownOptionError as exc:  # a usage error
            raise click.BadParameter(str(exc), param_hint="--suite-option") from exc
        out_dir = base_dir / part_name if suite_cls.subsets else base_dir
        _run_one(state, model, part_name, model_obj, suite_obj, metric_objs, out_dir, options, by)


def _create_model(reg: Any, spec: str, options: dict[str, Any]) -> Any:
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


def _run_one(
    state: _State,
    model: str,
    suite: str,
    model_obj: Any,
    suite_obj: Any,
    metric_objs: list[Any],
    out_dir: Path,
    options: Any,
    by: str | None,
) -> None:
    """Run one suite with a progress bar, then print its table, breakdown and notes."""
    from tqdm import tqdm

    from gensr_bench.runner import run_suite

    bar: Any = None
    failed = 0

    def on_start(total: int, done: int) -> None:
        nonlocal bar
        bar = tqdm(
            total=total, initial=done, unit="utt", desc=f"{model} on {suite}", file=sys.stderr
        )

    def on_output(scored: Any) -> None:
        nonlocal failed
        failed += bool(scored.errors)
        bar.update(1)
        if failed:
            bar.set_postfix(with_errors=failed)

    try:
        result = run_suite(
            model_obj, suite_obj, metric_objs, out_dir, options, state.pm, on_start, on_output
        )
    finally:
        if bar is not None:
            bar.close()
    click.echo(f"\n{model} on {suite}: {result.n_utterances} utterances ({out_dir})")
    click.echo(_table(_summary_rows(result.summaries), ["metric", "mean", "95% CI", "scored"]))
    _print_breakdown(out_dir, by)
    _print_ignored("note: the suite ignored", suite_obj.ignored_files())
    _print_notes(out_dir)


def _print_ignored(lead: str, ignored: Sequence[tuple[str, str]]) -> None:
    """Every file a suite skipped, one a line, with why (``Suite.ignored_files``)."""
    if ignored:
        folders = sum(path.endswith("/") for path, _ in ignored)
        what = f"{len(ignored) - folders} file(s)"
        what += f" and {folders} folder(s)" if folders else ""
        click.echo(f"{lead} {what} in its data folder:")
        for path, why in ignored:
            click.echo(f"    {path}: {why}")


def _print_notes(out_dir: Path) -> None:
    from gensr_bench.store import RunStore

    store = RunStore(out_dir)
    try:
        outputs = list(store.outputs())
    finally:
        store.close()
    with_errors = [o for o in outputs if o.errors]
    normalised = sum("peak_normalised_gain" in o.flags for o in outputs)
    if normalised:
        click.echo(
            f"note: {normalised} output(s) peaked above 1.0 and were scaled to peak 1.0 before "
            "scoring (flag peak_normalised_gain in scores.jsonl)"
        )
    no_reference = sorted(
        {
            message.split(":", 1)[0]
            for o in outputs
            for message in o.errors.values()
            if message.endswith("needs a reference, and this utterance has none")
        }
    )
    if no_reference:
        click.echo(
            f"note: intrusive metrics ({', '.join(no_reference)}) need a clean reference; this "
            "suite has none for some utterances, so only non-intrusive metrics scored those"
        )
        with_errors = [
            o
            for o in with_errors
            if not all(m.endswith("this utterance has none") for m in o.errors.values())
        ]
    if with_errors:
        click.echo(f"note: {len(with_errors)} utterance(s) have failed outputs (None), e.g.:")
        for output in with_errors[:5]:
            name, message = next(iter(output.errors.items()))
            click.echo(f"  {output.utterance_id}: {name}: {message}")
    click.echo(f"results: {out_dir / 'summary.json'}, {out_dir / 'scores.jsonl'}")


def _load_run(run_dir: Path) -> tuple[dict[str, Any], list[Any]]:
    """``(config, outputs)`` of a run folder, or of a leaderboard entry (a ``.json`` file)."""
    if run_dir.suffix == ".json":
        from gensr_bench.leaderboard import load_entry

        return load_entry(run_dir)
    from gensr_bench.store import RunStore

    store = RunStore(run_dir)
    try:
        config = store.get_info("config") or {}
        return config, list(store.outputs())
    finally:
        store.close()


def _load_run_with_provenance(
    run_dir: Path,
) -> tuple[dict[str, Any], list[Any], dict[str, Any] | None]:
    """:func:`_load_run` and the provenance the run (or entry) recorded; ``None`` if none."""
    if run_dir.suffix == ".json":
        from gensr_bench.leaderboard import load_entry_with_provenance

        return load_entry_with_provenance(run_dir)
    from gensr_bench.store import RunStore

    store = RunStore(run_dir)
    try:
        config = store.get_info("config") or {}
        provenance = store.get_info("provenance")
        return config, list(store.outputs()), provenance if isinstance(provenance, dict) else None
    finally:
        store.close()


def _all_metric_outputs(state: _State) -> dict[str, dict[str, bool]]:
    """Registered metric name -> {output: higher is better}."""
    return {
        entry.name: {output: entry.cls.direction(output) for output in entry.cls.outputs}
        for entry in state.registries.metrics
    }


def _directions(config: dict[str, Any], state: _State | None) -> dict[str, bool]:
    """Output name -> higher is better, from the registered metric classes when available."""
    registered = _all_metric_outputs(state) if state is not None else {}
    return {
        name: better
        for metric in config.get("metrics", [])
        for name, better in registered.get(metric["name"], {}).items()
    }


def _print_breakdown(out_dir: Path, by: str | None) -> None:
    if not by:
        return
    from gensr_bench.stats import group_by, summarise

    _, outputs = _load_run(out_dir)
    names = list(dict.fromkeys(name for o in outputs for name in o.scores))
    groups = group_by(outputs, by)
    rows = []
    for group, members in groups.items():
        summaries = summarise(members, names, lambda _n: True)
        rows.append([group, str(len(members))] + [_fmt(s.mean) for s in summaries])
    click.echo(f"\nmeans by {by} (every utterance's scores: scores.jsonl):")
    click.echo(_table(rows, [by, "n", *names]))


def _direction_lookup(directions: dict[str, bool]) -> Any:
    return lambda name: directions.get(name, True)


def _run_label(config: dict[str, Any]) -> str:
    model = (config.get("model") or {}).get("name", "?")
    suite = (config.get("suite") or {}).get("name", "?")
    return f"{model} on {suite}"


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--by", "by", default=None, help="Break each run down by this meta key.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--paired",
    is_flag=True,
    help="Also show each run minus the first one, per utterance, with paired-bootstrap CIs.",
)
@pass_state
def report(
    state: _State, run_dirs: tuple[str, ...], by: str | None, fmt: str, paired: bool
) -> None:
    """Show saved runs side by side: per metric the mean, 95% CI and n scored / n total.

    RUN_DIRS are run folders or leaderboard entries (``leaderboard/results/*.json``).

    With ``--paired`` the first run is the baseline: for every other run and metric, the mean
    per-utterance difference (run - baseline) with its paired-bootstrap 95% CI; ``*`` marks an
    interval that excludes zero.
    """
    from gensr_bench.stats import paired_difference, summarise

    columns = []
    all_names: list[str] = []
    for run_dir in run_dirs:
        config, outputs = _load_run(Path(run_dir))
        names = list(dict.fromkeys(name for o in outputs for name in o.scores))
        directions = _directions(config, state)
        summaries = {s.output: s for s in summarise(outputs, names, _direction_lookup(directions))}
        columns.append((run_dir, config, summaries, outputs))
        all_names.extend(n for n in names if n not in all_names)
    if paired and len(columns) < 2:
        raise click.UsageError("--paired needs at least two runs: the baseline first")
    differences = {
        d: {n: paired_difference(outs, columns[0][3], n) for n in all_names}
        for d, _, _, outs in (columns[1:] if paired else [])
    }
    if fmt == "json":
        from dataclasses import asdict

        doc: dict[str, Any] = {
            d: {n: asdict(s) for n, s in summ.items()} for d, _, summ, _ in columns
        }
        if paired:
            doc = {
                "runs": doc,
                "baseline": columns[0][0],
                "paired_differences": {
                    d: {n: asdict(x) for n, x in diff.items()} for d, diff in differences.items()
                },
            }
        click.echo(json.dumps(doc, indent=2))
        return
    rows = []
    for name in all_names:
        row = [name]
        for _, _, summaries, _ in columns:
            s = summaries.get(name)
            row.append(
                "—"
                if s is None or s.mean is None
                else f"{_fmt(s.mean)} [{_fmt(s.ci_low)}, {_fmt(s.ci_high)}] "
                f"{s.n_scored}/{s.n_total}"
            )
        rows.append(row)
    headers = ["metric"] + [f"{_run_label(c)}\n{d}" for d, c, _, _ in columns]
    click.echo(_table(rows, headers))
    if paired:
        click.echo(f"\npaired differences (run - {columns[0][0]}), 95% CI, n paired:")
        diff_rows = []
        for name in all_names:
            row = [name]
            for diff in differences.values():
                x = diff[name]
                row.append(
                    "—"
                    if x.mean is None
                    else f"{x.mean:+.3f} [{x.ci_low:+.3f}, {x.ci_high:+.3f}]"
                    f"{'*' if x.significant else ''} {x.n_paired}"
                )
            diff_rows.append(row)
        click.echo(_table(diff_rows, ["metric"] + [f"{d}" for d in differences]))
    for run_dir in run_dirs:
        if by:
            click.echo(f"\n{run_dir}")
            _print_breakdown(Path(run_dir), by)


@cli.command()
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder of the merged run."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
@click.option(
    "--by", "by", default=None, help="Also break results down by this meta key, e.g. degradation."
)
def merge(shard_dirs: tuple[str, ...], out: str, overwrite: bool, by: str | None) -> None:
    """Join the finished shards of one `run --shard I/N` into a single run in --out.

    The merged run has the scores, summary and configuration that one unsharded run of the
    same command gives; report, check and leaderboard add read it like any run.
    """
    from gensr_bench.runner import merge_runs

    result = merge_runs(shard_dirs, out, overwrite=overwrite)
    out_dir = Path(out)
    click.echo(f"merged {len(shard_dirs)} shards: {result.n_utterances} utterances ({out_dir})")
    click.echo(_table(_summary_rows(result.summaries), ["metric", "mean", "95% CI", "scored"]))
    _print_breakdown(out_dir, by)
    _print_notes(out_dir)


@cli.command()
@click.option(
    "--baseline", required=True, type=click.Path(), help="Run folder or leaderboard entry (.json)."
)
@click.option(
    "--candidate", required=True, type=click.Path(), help="Run folder or leaderboard entry (.json)."
)
@click.option(
    "--tolerance",
    multiple=True,
    metavar="OUTPUT=DELTA",
    help="Allowed worsening of one metric output (default 0), e.g. dnsmos_ovrl=0.05.",
)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="1 - confidence.")
@click.option(
    "--floor",
    type=float,
    default=1e-5,
    show_default=True,
    help="Differences no larger than this are float rounding (another machine, another "
    "BLAS): reported as 'same', never as a regression or an improvement.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Do not fail when the candidate scored fewer utterances than the baseline on an "
    "output (failed scores); warn, and compare the utterances both scored.",
)
@pass_state
def check(
    state: _State,
    baseline: str,
    candidate: str,
    tolerance: tuple[str, ...],
    alpha: float,
    floor: float,
    fmt: str,
    seed: int,
    allow_missing: bool,
) -> None:
    """Fail on a significant regression of CANDIDATE against BASELINE (paired, per utterance).

    Exit 0: no metric output is worse beyond its tolerance with significance (the whole
    ``1 - alpha`` paired-bootstrap interval of candidate - baseline lies past it). Exit 1: at
    least one is, or the candidate scored fewer utterances than the baseline on an output
    (its scores failed; ``--allow-missing`` makes that a warning); the output names them.
    Exit 2: the runs cannot be compared (different suites, missing metric outputs, unreadable
    run) or the options are wrong. ``--format github`` adds workflow annotations
    (``::error``) to the table. Either side may be a leaderboard entry (a ``.json`` file
    written by ``leaderboard add``) instead of a run folder. A note says when the two ran on
    different CPUs (from their provenance), with the waveform tolerance the model declares.
    """
    from gensr_bench import regression as checking

    try:
        tolerances: dict[str, float] = {}
        for key, value in _parse_options(tolerance, "--tolerance").items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"--tolerance {key}={value!r}: the delta must be a number")
            tolerances[key] = float(value)
        loaded = [_load_run_with_provenance(Path(label)) for label in (baseline, candidate)]
        runs = [
            (label, config, outputs)
            for label, (config, outputs, _) in zip((baseline, candidate), loaded, strict=True)
        ]
        directions = {**_directions(runs[0][1], state), **_directions(runs[1][1], state)}
        report = checking.check_runs(
            runs[0],
            runs[1],
            directions,
            tolerances,
            alpha=alpha,
            seed=seed,
            floor=floor,
            allow_missing=allow_missing,
            provenances=(loaded[0][2], loaded[1][2]),
        )
    except (GensrError, click.BadParameter) as exc:
        message = exc.format_message() if isinstance(exc, click.BadParameter) else str(exc)
        if fmt == "github":
            click.echo(f"::error title=gensr-bench check::{message}")
        click.echo(f"error: runs not compared: {message}", err=True)
        raise click.exceptions.Exit(checking.NOT_COMPARABLE) from exc
    if fmt == "json":
        click.echo(report.to_json())
    else:
        click.echo(f"candidate {candidate} vs baseline {baseline} (alpha {alpha}):")
        click.echo(_table(checking.table_rows(report), checking.TABLE_HEADERS))
        click.echo(f"note: {report.machines.note()}")
        for line in checking.failure_lines(report):
            click.echo(line)
        if report.passed:
            click.echo("PASS: no significant regression beyond tolerance")
        if fmt == "github":
            for line in checking.github_annotations(report):
                click.echo(line)
    raise click.exceptions.Exit(report.exit_code)


@cli.group(name="leaderboard")
def leaderboard_group() -> None:
    """Result entries (leaderboard/results/*.json) and the static leaderboard site.

    `add` freezes a finished run into an entry, `list` shows the entries, `build` renders the
    site (published figures from leaderboard/reported/*.csv in their own tables).
    """


def _suite_inputs(state: _State) -> Any:
    """For listening examples: degraded and reference audio of utterances, read from the suite
    an entry recorded, re-created through the registry and checked against its fingerprint."""

    def inputs(config: dict[str, Any], ids: Sequence[str]) -> dict[str, Any]:
        recorded = config.get("suite") or {}
        name = str(recorded.get("name"))
        suite = state.registries.suites.create(
            name, limit=recorded.get("limit"), **(recorded.get("options") or {})
        )
        if suite.fingerprint() != recorded.get("fingerprint"):
            raise ConfigError(
                f"suite {name!r} has changed since the run (fingerprint now "
                f"{suite.fingerprint()}, the run recorded {recorded.get('fingerprint')})"
            )
        wanted, found = set(ids), {}
        for utterance in suite:
            if utterance.id in wanted:
                found[utterance.id] = (utterance.degraded, utterance.reference)
                if len(found) == len(wanted):
                    break
        return found

    return inputs


@leaderboard_group.command(name="add")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--results",
    default="leaderboard/results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of entries.",
)
@click.option("--tag", default=None, help="Another entry of the same model and suite, e.g. dpo.")
@click.option(
    "--base", default=None, help="Entry (file stem) this model was aligned from, for deltas."
)
@click.option("--label", default=None, help="Name the leaderboard shows [model name(-TAG)].")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Keep only the first N utterances (what `run --limit N` scores), e.g. a CI baseline.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing entry file.")
@pass_state
def leaderboard_add(
    state: _State,
    run_dir: str,
    results: str,
    tag: str | None,
    base: str | None,
    label: str | None,
    limit: int | None,
    overwrite: bool,
) -> None:
    """Freeze the finished run in RUN_DIR into RESULTS/<model>--<suite>[--tag].json."""
    from gensr_bench.leaderboard import entry_from_run, write_entry

    entry = entry_from_run(
        run_dir, _all_metric_outputs(state), tag=tag, base=base, label=label, limit=limit
    )
    path = write_entry(entry, results, limit=limit, overwrite=overwrite)
    size = path.stat().st_size / 1024
    n = len(entry["utterances"])
    click.echo(f"added {_run_label(entry)} ({n} utterances) as {path} ({size:.0f} KiB)")


@leaderboard_group.command(name="list")
@click.option(
    "--results",
    default="leaderboard/results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of entries.",
)
def leaderboard_list(results: str) -> None:
    """List the entries: id, label, suite, paradigm, utterances, base, date added."""
    from gensr_bench.leaderboard import load_entries

    rows = []
    for entry in load_entries(results):
        suite = entry.data["suite"]
        scope = "all" if suite["limit"] is None else f"first {suite['limit']}"
        rows.append(
            [
                entry.id,
                entry.label,
                f"{suite['name']} ({scope})",
                entry.paradigm,
                str(len(entry.data["utterances"])),
                entry.data.get("base") or "",
                str(entry.data["added_at"])[:10],
            ]
        )
    click.echo(_table(rows, ["entry", "label", "suite", "paradigm", "n", "base", "added"]))


@leaderboard_group.command(name="build")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the site.")
@click.option(
    "--results",
    default="leaderboard/results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of entries.",
)
@click.option(
    "--reported",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of published figures (*.csv) [RESULTS/../reported].",
)
@click.option(
    "--publisher",
    default="files",
    show_default=True,
    help="Where the site goes (hook gensr_register_publishers); 'files' keeps it in --out.",
)
@click.option("--publish-option", multiple=True, metavar="KEY=VALUE", help="Publisher option.")
@click.option(
    "--by",
    "by",
    default="degradation",
    show_default=True,
    help="Utterance meta key of each model page's breakdown.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Listening examples per model (runs made with --save-audio).",
)
@pass_state
def leaderboard_build(
    state: _State,
    out: str,
    results: str,
    reported: str | None,
    publisher: str,
    publish_option: tuple[str, ...],
    by: str,
    examples: int,
) -> None:
    """Render the static site (opens from disk, no network) into --out, then publish it."""
    from gensr_bench import __version__
    from gensr_bench.leaderboard import build

    publisher_obj = state.registry("publishers").create(publisher)
    options = _parse_options(publish_option, "--publish-option")
    click.echo(f"building the leaderboard from {results} into {out} ...", err=True)
    report = build(
        results,
        out,
        reported_dir=reported,
        breakdown_key=by,
        examples=examples,
        inputs=_suite_inputs(state),
        generator=f"gensr-bench {__version__}",
    )
    click.echo(
        f"built {out}: {report.entries} entries in {report.suites} suite table(s), "
        f"{report.reported_rows} reported rows, {report.charts} charts, "
        f"{report.examples} listening examples"
    )
    for note in report.notes:
        click.echo(f"note: {note}")
    where = publisher_obj.publish(Path(out), options)
    click.echo(f"published with {publisher!r}: {where}")


@cli.command()
@pass_state
def plugins(state: _State) -> None:
    """List loaded plugins with their versions and the hooks they implement."""
    from gensr_bench.plugins import plugin_infos

    rows = [[i.name, i.source, i.version, ", ".join(i.hooks)] for i in plugin_infos(state.pm)]
    click.echo(_table(rows, ["plugin", "from", "version", "hooks"]))


@cli.command(name="ls")
@click.argument(
    "kind", type=click.Choice(["metrics", "models", "suites", "backends", "features", "publishers"])
)
@pass_state
def list_components(state: _State, kind: str) -> None:
    """List registered metrics, models, suites, backends, feature extractors or publishers."""
    registry = state.registry(kind)
    rows = []
    for entry in registry:
        cls = entry.cls
        if kind == "metrics":
            detail = (
                f"{', '.join(cls.outputs)} | {cls.sample_rate or 'native'} Hz"
                f"{' | reference' if cls.requires_reference else ''}"
            )
        elif kind == "models":
            detail = f"{cls.paradigm} | {cls.sample_rate} Hz"
        elif kind in ("suites", "features"):
            detail = f"{cls.sample_rate} Hz"
        else:
            detail = ""
        rows.append([entry.name, cls.version, detail, cls.description(), entry.plugin])
    click.echo(_table(rows, ["name", "version", "details", "description", "plugin"]))


@cli.group(invoke_without_command=True)
@click.option("--model", default=None, help="Trainable model name (see `ls models`).")
@click.option("--suite", default=None, help="Training suite, e.g. synth-gsr-train.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Checkpoint folder.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use N utterances.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the training run in --out.")
@click.option(
    "--max-minutes", type=click.FloatRange(min=0), default=None, help="Stop (and save) after M."
)
@click.option(
    "--train-option", multiple=True, metavar="KEY=VALUE", help="Training option, e.g. steps=500."
)
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.pass_context
def train(
    ctx: click.Context,
    model: str | None,
    suite: str | None,
    out: str | None,
    limit: int | None,
    seed: int,
    resume: bool,
    max_minutes: float | None,
    train_option: tuple[str, ...],
    suite_option: tuple[str, ...],
) -> None:
    """Train a model (--model NAME --suite SUITE --out DIR), or another component by name.

    Plugins add sub-commands for other trainable parts (e.g. `train tokenizer`). Training
    writes a checkpoint folder usable as `run --model DIR`; `--resume` continues it.
    """
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        flag
        for flag, value in (("--model", model), ("--suite", suite), ("--out", out))
        if value is None
    ]
    if missing:
        raise click.UsageError(
            f"train needs {', '.join(missing)} (or a sub-command: "
            f"{', '.join(sorted(train.commands)) or 'none installed'})"
        )
    assert model is not None and suite is not None and out is not None
    state = ctx.ensure_object(_State)
    from tqdm import tqdm

    reg = state.registries
    model_cls = reg.models.get(model)
    if not model_cls.trainable:
        from gensr_bench.errors import ConfigError

        trainable = sorted(name for name in reg.models.names() if reg.models.get(name).trainable)
        raise ConfigError(
            f"model {model!r} cannot be trained; trainable models: {', '.join(trainable)}"
        )
    suite_obj = reg.suites.create(
        suite, limit=limit, **_parse_options(suite_option, "--suite-option")
    )
    bar = tqdm(unit="step", desc=f"train {model}", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh()

    command = " ".join(["gensr-bench", *sys.argv[1:]])
    try:
        manifest = model_cls.fit(
            suite_obj,
            Path(out),
            seed=seed,
            resume=resume,
            max_minutes=max_minutes,
            options=_parse_options(train_option, "--train-option"),
            command=command,
            progress=progress,
        )
    finally:
        bar.close()
    if not manifest.get("steps"):
        raise GensrError(
            f"training of {model} stopped before its first step (is --max-minutes 0?); "
            f"nothing was written to {out}"
        )
    click.echo(
        f"trained {model}: {manifest.get('steps')} steps in {manifest.get('train_minutes')} min, "
        f"{manifest.get('parameters')} parameters; checkpoint in {out} "
        f"(use it with: gensr-bench run --model {out} --suite ...)"
    )


@cli.group(name="suite")
def suite_group() -> None:
    """Inspect suites' local data."""


@suite_group.command(name="verify")
@click.argument("name")
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.option("--suite-config", type=click.Path(dir_okay=False), default=None)
@pass_state
def suite_verify(
    state: _State, name: str, suite_option: tuple[str, ...], suite_config: str | None
) -> None:
    """Check a suite's local data: counts, missing, unpaired and ignored files (exit 1 if
    incomplete)."""
    from gensr_bench.errors import GensrError as _GensrError

    suite_cls = state.registries.suites.get(name)
    names = list(suite_cls.subsets) or [name]
    incomplete = 0
    for part in names:
        options = {
            **_suite_config(suite_config, [name, part]),
            **_parse_options(suite_option, "--suite-option"),
        }
        suite_obj = state.registries.suites.get(part)(**options)
        report = suite_obj.verify()
        expected = "?" if report.expected is None else str(report.expected)
        status = "complete" if report.ok else "INCOMPLETE"
        click.echo(f"{part}: {report.found}/{expected} pairs found in {report.root} ({status})")
        for item in report.missing:
            click.echo(f"  missing: {item}")
        for item in report.unpaired:
            click.echo(f"  unpaired: {item}")
        for item in report.notes:
            click.echo(f"  note: {item}")
        _print_ignored("  ignored", suite_obj.ignored_files())
        incomplete += not report.ok
    if incomplete:
        raise _GensrError(f"{incomplete} suite(s) incomplete; see the list above")


@cli.group()
def weights() -> None:
    """Weight files of the registered metrics and models: list, fetch, verify."""


def _weight_entries(state: _State, names: Sequence[str]) -> list[tuple[str, Any]]:
    entries: list[tuple[str, Any]] = []
    for kind in ("metrics", "models"):
        for entry in getattr(state.registries, kind):
            if names and entry.name not in names:
                continue
            entries.extend((entry.name, weight) for weight in entry.cls.weight_files)
    return entries


@weights.command(name="list")
@pass_state
def weights_list(state: _State) -> None:
    """Which weight files are needed, where they are, and their licences."""
    from gensr_bench.weights import find, search_dirs

    rows = []
    for owner, weight in _weight_entries(state, ()):
        path = find(weight)
        rows.append([owner, weight.filename, str(path) if path else "missing", weight.license])
    click.echo(_table(rows, ["component", "file", "found at", "licence"]))
    click.echo("searched: " + ", ".join(str(d) for d in search_dirs()))


@weights.command(name="fetch")
@click.argument("names", nargs=-1)
@pass_state
def weights_fetch(state: _State, names: tuple[str, ...]) -> None:
    """Download missing weight files (of NAMES, or of every component) and check them."""
    from gensr_bench.weights import find, locate

    for owner, weight in _weight_entries(state, names):
        if find(weight) is None:
            click.echo(f"{owner}: fetching {weight.filename} from {weight.url}")
        path = locate(weight, download=True)
        click.echo(f"{owner}: {weight.filename} at {path}")


@weights.command(name="verify")
@pass_state
def weights_verify(state: _State) -> None:
    """Check the sha256 of every weight file present; exit 1 when one does not match."""
    from gensr_bench.weights import WeightsError, find, verify

    bad = 0
    for owner, weight in _weight_entries(state, ()):
        path = find(weight)
        if path is None:
            click.echo(f"{owner}: {weight.filename}: missing")
            continue
        try:
            verify(weight, path)
            click.echo(f"{owner}: {weight.filename}: ok ({path})")
        except WeightsError as exc:
            bad += 1
            click.echo(f"{owner}: {weight.filename}: MISMATCH: {exc}")
    if bad:
        raise WeightsError(f"{bad} weight file(s) failed verification")


# -- entry point ------------------------------------------------------------------------------
def _early_plugin_dirs(argv: Sequence[str]) -> tuple[str, ...]:
    """``--plugins-dir`` values, read before click parses, so plugin commands can register."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg == "--plugins-dir" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("--plugins-dir="):
            dirs.append(arg.split("=", 1)[1])
    return tuple(dirs)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: runs the CLI and maps GensrError to messages and exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = _State(_early_plugin_dirs(args))
    state.argv = tuple(args)
    try:
        state.pm.hook.gensr_register_commands(cli=cli)
        # Without standalone mode click returns a command's ``Exit`` code instead of raising.
        result = cli.main(args=args, obj=state, standalone_mode=False)
    except UnknownNameError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    except GensrError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_ERROR
    except Exception as exc:
        # The run store, cache, exports and saved audio raise DiskFullError themselves; this
        # catches a full disk under any other writer (leaderboard files, pairs, training state)
        # so that it too is one line instead of a traceback. Anything else is a bug: re-raised.
        if not is_disk_full(exc):
            raise
        where = getattr(exc, "filename", None) or "a file"
        detail = getattr(exc, "strerror", None) or str(exc)
        click.echo(
            f"error: cannot write {where}: the disk is full ({detail}); free some space and rerun "
            "the command (run and align continue what they saved with --resume)",
            err=True,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
