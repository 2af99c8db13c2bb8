"""Reading and printing run folders (and leaderboard entries), shared by several commands."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.cli.toolkit import (
    CliState,
    format_value,
    render_table,
    summary_rows,
)

if TYPE_CHECKING:
    from gensr_bench.interfaces import Suite
    from gensr_bench.records import GroupMeans, RunNotes, RunResult, ScoredOutput


class RunBar:
    """The progress bar of a run: ``start`` and ``scored`` are ``run_suite``'s callbacks."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None
        self.failed = 0

    def start(self, total: int, done: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="utt", desc=self.desc, file=sys.stderr)

    def scored(self, scored: ScoredOutput) -> None:
        self.failed += bool(scored.errors)
        if self.bar is not None:
            self.bar.update(1)
            if self.failed:
                self.bar.set_postfix(with_errors=self.failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def print_run(
    label: str,
    result: RunResult,
    out_dir: Path,
    suite: Suite,
    by: str | None = None,
    show_model_ignored: bool = True,
) -> None:
    """What a finished run prints: its table, breakdown, the files its suite (and, with
    ``show_model_ignored``, its model) ignored, notes."""
    click.echo(f"\n{label}: {result.n_utterances} utterances ({out_dir})")
    click.echo(render_table(summary_rows(result.summaries), ["metric", "mean", "95% CI", "scored"]))
    print_breakdown(result.breakdown, by)
    print_ignored("note: the suite ignored", suite.ignored_files())
    if show_model_ignored:
        print_ignored("note: the model ignored", result.model_ignored_files, "in its folder")
    print_notes(result.notes, out_dir)


def print_ignored(
    lead: str, ignored: Sequence[tuple[str, str]], where: str = "in its data folder"
) -> None:
    """Every file a suite (or model) skipped, one a line, with why (``Suite.ignored_files``,
    ``RunResult.model_ignored_files``)."""
    if ignored:
        folders = sum(path.endswith("/") for path, _ in ignored)
        what = f"{len(ignored) - folders} file(s)"
        what += f" and {folders} folder(s)" if folders else ""
        click.echo(f"{lead} {what} {where}:")
        for path, why in ignored:
            click.echo(f"    {path}: {why}")


def print_notes(notes: RunNotes, out_dir: Path) -> None:
    """A run's notes (``RunResult.notes`` or ``stats.run_notes``), then where its results are."""
    if notes.peak_normalised:
        click.echo(
            f"note: {notes.peak_normalised} output(s) peaked above 1.0 and were scaled to peak "
            "1.0 before scoring (flag peak_normalised_gain in scores.jsonl)"
        )
    if notes.no_reference_metrics:
        click.echo(
            f"note: intrusive metrics ({', '.join(notes.no_reference_metrics)}) need a clean "
            "reference; this suite has none for some utterances, so only non-intrusive "
            "metrics scored those"
        )
    if notes.failed_utterances:
        click.echo(
            f"note: {notes.failed_utterances} utterance(s) have failed outputs (None), e.g.:"
        )
        for failure in notes.failures:
            click.echo(f"  {failure.utterance_id}: {failure.output}: {failure.message}")
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


def print_breakdown(rows: Sequence[GroupMeans], by: str | None) -> None:
    """A breakdown of means by a meta key (``RunResult.breakdown`` or ``stats.breakdown``)."""
    if not by or not rows:
        return
    names = list(dict.fromkeys(name for row in rows for name in row.means))
    table = [
        [row.group, str(row.n_utterances)] + [format_value(row.means.get(n)) for n in names]
        for row in rows
    ]
    click.echo(f"\nmeans by {by} (every utterance's scores: scores.jsonl):")
    click.echo(render_table(table, [by, "n", *names]))


def print_stored_breakdown(out_dir: Path, by: str | None) -> None:
    """:func:`print_breakdown` of a run (or leaderboard entry) read back from disk."""
    if not by:
        return
    from gensr_bench.stats import breakdown

    _, outputs = load_run(out_dir)
    print_breakdown(breakdown(outputs, by), by)


def direction_lookup(directions: dict[str, bool]) -> Any:
    return lambda name: directions.get(name, True)


def run_label(config: dict[str, Any]) -> str:
    model = (config.get("model") or {}).get("name", "?")
    suite = (config.get("suite") or {}).get("name", "?")
    return f"{model} on {suite}"
