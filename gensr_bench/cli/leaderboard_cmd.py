"""``gensr-bench leaderboard``: add, list and build the leaderboard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.runs import all_metric_outputs, run_label
from gensr_bench.cli.toolkit import (
    CliState,
    parse_options,
    pass_state,
    render_table,
)
from gensr_bench.errors import (
    ConfigError,
)


@cli.group(name="leaderboard")
def leaderboard_group() -> None:
    """Result entries (leaderboard/results/*.json) and the static leaderboard site.

    `add` freezes a finished run into an entry, `list` shows the entries, `build` renders the
    site (published figures from leaderboard/reported/*.csv in their own tables).
    """


def _suite_inputs(state: CliState) -> Any:
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
    state: CliState,
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
        run_dir, all_metric_outputs(state), tag=tag, base=base, label=label, limit=limit
    )
    path = write_entry(entry, results, limit=limit, overwrite=overwrite)
    size = path.stat().st_size / 1024
    n = len(entry["utterances"])
    click.echo(f"added {run_label(entry)} ({n} utterances) as {path} ({size:.0f} KiB)")


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
    click.echo(render_table(rows, ["entry", "label", "suite", "paradigm", "n", "base", "added"]))


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
    state: CliState,
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
    options = parse_options(publish_option, "--publish-option")
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
