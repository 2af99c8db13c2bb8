"""``gensr-bench report`` and ``merge``: comparing and merging run folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.runs import (
    direction_lookup,
    load_run,
    metric_directions,
    print_breakdown,
    print_notes,
    print_stored_breakdown,
    run_label,
)
from gensr_bench.cli.toolkit import (
    CliState,
    format_value,
    pass_state,
    render_table,
    summary_rows,
)


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
    state: CliState, run_dirs: tuple[str, ...], by: str | None, fmt: str, paired: bool
) -> None:
    """Show saved runs side by side: per metric the mean, 95% CI and n scored / n total.

    RUN_DIRS are run folders or leaderboard entries (``leaderboard/results/*.json``).

    With ``--paired`` the first run is the baseline: for every other run and metric, the mean
    per-utterance difference (run - baseline) with its paired-bootstrap 95% CI; ``*`` marks an
    interval that excludes zero. With ``--paired --by KEY`` also, per value of the meta key
    (e.g. each degradation), the same differences and how many metrics the run significantly
    wins and loses there (↑: higher is better, ↓: lower is better).
    """
    from gensr_bench.stats import paired_by_group, paired_difference, summarise

    columns = []
    all_names: list[str] = []
    for run_dir in run_dirs:
        config, outputs = load_run(Path(run_dir))
        names = list(dict.fromkeys(name for o in outputs for name in o.scores))
        directions = metric_directions(config, state)
        summaries = {s.output: s for s in summarise(outputs, names, direction_lookup(directions))}
        columns.append((run_dir, config, summaries, outputs))
        all_names.extend(n for n in names if n not in all_names)
    if paired and len(columns) < 2:
        raise click.UsageError("--paired needs at least two runs: the baseline first")
    differences = {
        d: {n: paired_difference(outs, columns[0][3], n) for n in all_names}
        for d, _, _, outs in (columns[1:] if paired else [])
    }
    group_key = by or ""
    grouped = {
        d: paired_by_group(outs, columns[0][3], group_key, all_names)
        for d, _, _, outs in (columns[1:] if paired and group_key else [])
    }
    run_directions: dict[str, bool] = {}
    for _, config, _, _ in columns:
        run_directions.update(metric_directions(config, state))
    higher_is_better = direction_lookup(run_directions)
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
            if by:
                doc["paired_by"] = {
                    "key": by,
                    "runs": {
                        d: [
                            {**asdict(g), "outcomes": g.outcomes(higher_is_better)}
                            for g in comparisons
                        ]
                        for d, comparisons in grouped.items()
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
                else f"{format_value(s.mean)} "
                f"[{format_value(s.ci_low)}, {format_value(s.ci_high)}] "
                f"{s.n_scored}/{s.n_total}"
            )
        rows.append(row)
    headers = ["metric"] + [f"{run_label(c)}\n{d}" for d, c, _, _ in columns]
    click.echo(render_table(rows, headers))
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
        click.echo(render_table(diff_rows, ["metric"] + [f"{d}" for d in differences]))
    if grouped:
        _print_grouped(grouped, columns[0][0], by or "", all_names, higher_is_better)
        return
    for run_dir in run_dirs:
        if by:
            click.echo(f"\n{run_dir}")
            print_stored_breakdown(Path(run_dir), by)


def _print_grouped(
    grouped: dict[str, Any], baseline: str, by: str, names: list[str], higher_is_better: Any
) -> None:
    """One table per compared run: its paired differences per group, with wins and losses."""
    arrows = [f"{name} {'↑' if higher_is_better(name) else '↓'}" for name in names]
    for run_dir, comparisons in grouped.items():
        click.echo(
            f"\npaired differences by {by} ({run_dir} - {baseline}; * the 95% CI excludes 0; "
            "wins / losses: metrics significantly better / worse):"
        )
        rows = []
        for comparison in comparisons:
            outcomes = comparison.outcomes(higher_is_better)
            row = [
                comparison.group,
                str(comparison.n_utterances),
                str(sum(1 for v in outcomes.values() if v > 0)),
                str(sum(1 for v in outcomes.values() if v < 0)),
            ]
            for name in names:
                x = comparison.differences[name]
                row.append(
                    "—" if x.mean is None else f"{x.mean:+.3f}{'*' if x.significant else ''}"
                )
            rows.append(row)
        click.echo(render_table(rows, [by, "n", "wins", "losses", *arrows]))


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

    result = merge_runs(shard_dirs, out, overwrite=overwrite, by=by)
    out_dir = Path(out)
    click.echo(f"merged {len(shard_dirs)} shards: {result.n_utterances} utterances ({out_dir})")
    click.echo(render_table(summary_rows(result.summaries), ["metric", "mean", "95% CI", "scored"]))
    print_breakdown(result.breakdown, by)
    print_notes(result.notes, out_dir)
