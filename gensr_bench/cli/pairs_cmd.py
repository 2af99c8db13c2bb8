"""``gensr-bench pairs build|stats|vectors``: preference datasets from candidate runs.

Registered by :mod:`gensr_bench.cli.alignment_plugin`; the work is done by
:mod:`gensr_bench.alignment.pipeline` and :mod:`gensr_bench.alignment.vectors`.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from gensr_bench.alignment.pairs import GROUND_TRUTH
from gensr_bench.cli.toolkit import SEED, CliState, parse_options, pass_state, render_table
from gensr_bench.errors import ConfigError

from .align_helpers import echo_pair_stats, pair_options, resolve_margin, split_items


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
@pair_options
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of random selection.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already saved in --out.")
@pass_state
def pairs_build(
    state: CliState,
    candidates_dir: str,
    metrics: str,
    out: str,
    min_margin: float | str,
    jitter: str | None,
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
    from gensr_bench.alignment.candidate_runs import (
        build_pairs,
        finished_candidate_run,
        recorded_metrics,
        recorded_suite,
    )
    from gensr_bench.alignment.pipeline import PairSettings, resolve_criterion

    run_dir = Path(candidates_dir)
    run = finished_candidate_run(run_dir)
    reg = state.registries
    recorded = [m["name"] for m in run.config.get("metrics", [])]
    criterion = resolve_criterion(
        split_items(metrics),
        [reg.metrics.get(name) for name in recorded],
        where=f"metrics of the candidate run {run_dir} ({', '.join(recorded)})",
    )
    margin = resolve_margin(min_margin, jitter, criterion.outputs)
    settings = PairSettings(criterion.outputs, margin, max_pairs, selection, winner, seed)
    pair_set, record = build_pairs(
        run_dir,
        recorded_suite(reg.suites, run.config, run_dir),
        settings,
        criterion.directions,
        Path(out),
        model=str(run.config["model"]["name"]),
        checkpoint_sha256=run.provenance.get("model_checkpoint_sha256"),
        seed=int(run.config.get("seed", 0)),
        outputs=run.outputs,
        reference_metrics=(
            recorded_metrics(run.config, criterion.metrics) if winner == GROUND_TRUTH else ()
        ),
        overwrite=overwrite,
    )
    click.echo(
        f"{len(pair_set.pairs)} pairs from {pair_set.candidates} candidates of "
        f"{len(pair_set.utterances)} inputs ({run_dir}); criterion: "
        f"{', '.join(criterion.outputs)}; winner: {winner}; dataset: {out}"
    )
    echo_pair_stats(record.stats, signed=True)


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
    state: CliState,
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

    from gensr_bench.alignment.dataset import load_preference_dataset
    from gensr_bench.alignment.vectors import (
        VectorSum,
        cosine_table,
        format_table,
        load_summary,
        preference_vectors,
        sample_indices,
        save_summary,
    )
    from gensr_bench.leaderboard import safe_name

    extractor = state.registry("features").create(
        features, **parse_options(feature_option, "--feature-option")
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
    click.echo(render_table(format_table(table), ["", *table]))
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
def pairs_stats(state: CliState, dataset_dir: str, fmt: str) -> None:
    """Counts (pairs, inputs, pairs per input) and per-output margins of a saved dataset."""
    import json

    from gensr_bench.alignment.dataset import load_preference_dataset
    from gensr_bench.alignment.pipeline import dataset_stats, read_pairs_record

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
    echo_pair_stats(stats, signed)
