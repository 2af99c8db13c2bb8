"""``gensr-bench pairs jitter``: how much each metric output moves when nothing audible does.

Registered in the ``pairs`` group by :mod:`gensr_bench.cli.alignment_plugin`; the work is
:func:`gensr_bench.alignment.jitter.measure_jitter`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from gensr_bench.cli.toolkit import (
    CliState,
    format_value,
    parse_metric_options,
    parse_options,
    pass_state,
    render_table,
)

from .align_helpers import split_items
from .pairs_cmd import pairs_group


@pairs_group.command(name="jitter")
@click.option("--suite", required=True, help="Suite whose degraded inputs are perturbed.")
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.option("--metrics", required=True, help="Comma-separated metrics (or outputs) to measure.")
@click.option(
    "--metric-option", multiple=True, metavar="METRIC.KEY=VALUE", help="Option for one metric."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The jitter file to write (JSON; give it to --jitter with --min-margin auto).",
)
@click.option(
    "--work",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the runs (one per perturbation, resumable) [OUT without .json + '-runs'].",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use N utterances.")
@click.option(
    "--perturbations",
    default="shift,resample,dither",
    show_default=True,
    help="Comma-separated: shift (one sample), resample (44.1 kHz and back), dither (-90 dBFS).",
)
@click.option(
    "--quantile",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.95,
    show_default=True,
    help="The quantile of the absolute score changes that counts as the jitter.",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes.")
@pass_state
def pairs_jitter(
    state: CliState,
    suite: str,
    suite_option: tuple[str, ...],
    metrics: str,
    metric_option: tuple[str, ...],
    out: str,
    work: str | None,
    limit: int | None,
    perturbations: str,
    quantile: float,
    workers: int | None,
) -> None:
    """Measure each metric output's jitter on SUITE's degraded inputs.

    Every input is scored as it is and after each perturbation (through the runner, as `run`
    scores); an output's jitter is the --quantile of the absolute score changes. `align` and
    `pairs build` with `--min-margin auto --jitter OUT` then pair candidates only where the
    winner is ahead by more than that on every criterion output.
    """
    from gensr_bench.alignment.jitter import measure_jitter, save_jitter, suite_runner
    from gensr_bench.plugins import plugin_dirs_from_env
    from gensr_bench.runner import RunOptions

    reg = state.registries
    metric_classes = reg.resolve_metrics(split_items(metrics))
    per_metric = parse_metric_options(metric_option)
    metric_objs = [cls(**per_metric.get(cls.name, {})) for cls in metric_classes]
    suite_obj = reg.suites.create(
        suite, limit=limit, **parse_options(suite_option, "--suite-option")
    )
    out_path = Path(out)
    work_dir = Path(work) if work else out_path.with_name(out_path.stem + "-runs")
    options = RunOptions(
        workers=workers or os.cpu_count() or 1,
        resume=True,
        plugin_dirs=tuple(str(d.resolve()) for d in plugin_dirs_from_env(state.plugin_dirs)),
    )
    kinds = split_items(perturbations)
    first = next(iter(suite_obj), None)
    rate = first.degraded.sample_rate if first is not None and first.degraded else 16000
    run = suite_runner(
        suite_obj,
        metric_objs,
        options,
        state.pm,
        on_run=lambda label: click.echo(f"scoring the {label} inputs ({work_dir / label})"),
    )
    table = measure_jitter(run, work_dir, kinds, quantile, sample_rate=rate)
    save_jitter(
        out_path,
        table,
        {
            "suite": suite_obj.config(),
            "fingerprint": suite_obj.fingerprint(),
            "utterances": len(suite_obj),
            "metrics": [m.config() for m in metric_objs],
            "perturbations": kinds,
            "quantile": quantile,
        },
    )
    rows = [
        [name, format_value(j.jitter, 4)]
        + [format_value(j.per_perturbation.get(kind), 4) for kind in kinds]
        + [str(j.n)]
        for name, j in table.items()
    ]
    click.echo(render_table(rows, ["output", f"jitter (q{quantile:g})", *kinds, "n"]))
    click.echo(f"jitter file: {out_path} (use it with --min-margin auto --jitter {out_path})")
