"""``gensr-bench pairs agreement``: how informative each criterion output is on a candidate run.

Registered in the ``pairs`` group by :mod:`gensr_bench.cli.alignment_plugin`; the work is
:func:`gensr_bench.alignment.agreement.criterion_agreement`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from gensr_bench.cli.toolkit import CliState, format_value, pass_state, render_table

from .align_helpers import MarginType, resolve_margin, split_items
from .pairs_cmd import pairs_group


@pairs_group.command(name="agreement")
@click.option(
    "--candidates",
    "candidates_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A finished candidate run (e.g. the candidates/ folder of `align`).",
)
@click.option(
    "--metrics", required=True, help="Comma-separated criterion outputs (or metric names)."
)
@click.option(
    "--min-margin",
    type=MarginType(),
    default=0.0,
    show_default=True,
    help="Scores closer than this (per output: auto, from --jitter) count as a tie.",
)
@click.option(
    "--jitter",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --min-margin auto: a jitter file from `gensr-bench pairs jitter`.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_state
def pairs_agreement(
    state: CliState,
    candidates_dir: str,
    metrics: str,
    min_margin: float | str,
    jitter: str | None,
    fmt: str,
) -> None:
    """Per criterion output: tie rate, within-input rank correlation with the others, and how
    often it agrees with / vetoes the pairs all the other outputs agree on.

    For choosing a criterion by measurement (e.g. a content metric: whisper_cer or estoi).
    """
    from gensr_bench.alignment.agreement import criterion_agreement
    from gensr_bench.alignment.candidate_runs import finished_candidate_run
    from gensr_bench.alignment.candidates import load_candidates
    from gensr_bench.alignment.pipeline import resolve_criterion

    run_dir = Path(candidates_dir)
    run = finished_candidate_run(run_dir)
    recorded = [m["name"] for m in run.config.get("metrics", [])]
    reg = state.registries
    criterion = resolve_criterion(
        split_items(metrics),
        [reg.metrics.get(name) for name in recorded],
        where=f"metrics of the candidate run {run_dir} ({', '.join(recorded)})",
    )
    margins = resolve_margin(min_margin, jitter, criterion.outputs)
    grouped = {
        uid: [entry["scores"] for entry in entries]
        for uid, entries in load_candidates(run_dir).items()
    }
    rows = criterion_agreement(grouped, criterion.outputs, criterion.directions, margins)
    if fmt == "json":
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    outputs = list(criterion.outputs)
    table = [
        [
            row.output,
            str(row.pairs),
            format_value(row.tie_rate, 3),
            str(row.others_agree),
            format_value(row.decides, 3),
            format_value(row.vetoes, 3),
        ]
        + [format_value(row.spearman.get(o), 2) if o != row.output else "—" for o in outputs]
        for row in rows
    ]
    headers = ["output", "pairs", "tie rate", "others agree", "decides", "vetoes"]
    click.echo(render_table(table, headers + [f"rho {o}" for o in outputs]))
    click.echo(
        f"{len(grouped)} inputs ({run_dir}); rho: Spearman within each input, averaged; decides "
        "/ vetoes: of the pairs all other outputs order alike, the share this one agrees with "
        "/ reverses (the rest it ties)"
    )
