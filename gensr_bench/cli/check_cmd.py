"""``gensr-bench check``: the regression check against a leaderboard entry."""

from __future__ import annotations

from pathlib import Path

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.runs import load_run_with_provenance, metric_directions
from gensr_bench.cli.toolkit import (
    SEED,
    CliState,
    parse_options,
    pass_state,
    render_table,
)
from gensr_bench.errors import (
    ConfigError,
    GensrError,
)


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
    state: CliState,
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
        for key, value in parse_options(tolerance, "--tolerance").items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"--tolerance {key}={value!r}: the delta must be a number")
            tolerances[key] = float(value)
        loaded = [load_run_with_provenance(Path(label)) for label in (baseline, candidate)]
        runs = [
            (label, config, outputs)
            for label, (config, outputs, _) in zip((baseline, candidate), loaded, strict=True)
        ]
        directions = {
            **metric_directions(runs[0][1], state),
            **metric_directions(runs[1][1], state),
        }
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
        click.echo(render_table(checking.table_rows(report), checking.TABLE_HEADERS))
        click.echo(f"note: {report.machines.note()}")
        if not report.machines.same_device:
            click.echo(f"note: {report.machines.device_note()}")
        for line in checking.failure_lines(report):
            click.echo(line)
        if report.passed:
            click.echo("PASS: no significant regression beyond tolerance")
        if fmt == "github":
            for line in checking.github_annotations(report):
                click.echo(line)
    raise click.exceptions.Exit(report.exit_code)
