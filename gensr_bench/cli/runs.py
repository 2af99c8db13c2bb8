"""Reading and printing run folders (and leaderboard entries), shared by several commands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gensr_bench.cli.toolkit import (
    CliState,
    format_value,
    render_table,
)


def print_ignored(lead: str, ignored: Sequence[tuple[str, str]]) -> None:
    """Every file a suite skipped, one a line, with why (``Suite.ignored_files``)."""
    if ignored:
        folders = sum(path.endswith("/") for path, _ in ignored)
        what = f"{len(ignored) - folders} file(s)"
        what += f" and {folders} folder(s)" if folders else ""
        click.echo(f"{lead} {what} in its data folder:")
        for path, why in ignored:
            click.echo(f"    {path}: {why}")


def print_notes(out_dir: Path) -> None:
    from gensr_bench.store import read_run

    outputs = read_run(out_dir).outputs
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


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[Any]]:
    """``(config, outputs)`` of a run folder, or of a leaderboard entry (a ``.json`` file)."""
    if run_dir.suffix == ".json":
        from gensr_bench.leaderboard import load_entry

        return load_entry(run_dir)
    from gensr_bench.store import read_run

    run = read_run(run_dir)
    return run.config or {}, list(run.outputs)


def load_run_with_provenance(
    run_dir: Path,
) -> tuple[dict[str, Any], list[Any], dict[str, Any] | None]:
    """:func:`load_run` and the provenance the run (or entry) recorded; ``None`` if none."""
    if run_dir.suffix == ".json":
        from gensr_bench.leaderboard import load_entry_with_provenance

        return load_entry_with_provenance(run_dir)
    from gensr_bench.store import read_run

    run = read_run(run_dir)
    return run.config or {}, list(run.outputs), run.provenance


def all_metric_outputs(state: CliState) -> dict[str, dict[str, bool]]:
    """Registered metric name -> {output: higher is better}."""
    return {
        entry.name: {output: entry.cls.direction(output) for output in entry.cls.outputs}
        for entry in state.registries.metrics
    }


def metric_directions(config: dict[str, Any], state: CliState | None) -> dict[str, bool]:
    """Output name -> higher is better, from the registered metric classes when available."""
    registered = all_metric_outputs(state) if state is not None else {}
    return {
        name: better
        for metric in config.get("metrics", [])
        for name, better in registered.get(metric["name"], {}).items()
    }


def print_breakdown(out_dir: Path, by: str | None) -> None:
    if not by:
        return
    from gensr_bench.stats import group_by, summarise

    _, outputs = load_run(out_dir)
    names = list(dict.fromkeys(name for o in outputs for name in o.scores))
    groups = group_by(outputs, by)
    rows = []
    for group, members in groups.items():
        summaries = summarise(members, names, lambda _n: True)
        rows.append([group, str(len(members))] + [format_value(s.mean) for s in summaries])
    click.echo(f"\nmeans by {by} (every utterance's scores: scores.jsonl):")
    click.echo(render_table(rows, [by, "n", *names]))


def direction_lookup(directions: dict[str, bool]) -> Any:
    return lambda name: directions.get(name, True)


def run_label(config: dict[str, Any]) -> str:
    model = (config.get("model") or {}).get("name", "?")
    suite = (config.get("suite") or {}).get("name", "?")
    return f"{model} on {suite}"
