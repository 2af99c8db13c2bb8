"""``gensr-bench weights``: listing, fetching and verifying weight files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.toolkit import (
    CliState,
    pass_state,
    render_table,
)


@cli.group()
def weights() -> None:
    """Weight files of the registered metrics and models: list, fetch, verify."""


def _weight_entries(state: CliState, names: Sequence[str]) -> list[tuple[str, Any]]:
    entries: list[tuple[str, Any]] = []
    for kind in ("metrics", "models"):
        for entry in getattr(state.registries, kind):
            if names and entry.name not in names:
                continue
            entries.extend((entry.name, weight) for weight in entry.cls.weight_files)
    return entries


@weights.command(name="list")
@pass_state
def weights_list(state: CliState) -> None:
    """Which weight files are needed, where they are, and their licences."""
    from gensr_bench.weights import find, search_dirs

    rows = []
    for owner, weight in _weight_entries(state, ()):
        path = find(weight)
        rows.append([owner, weight.filename, str(path) if path else "missing", weight.license])
    click.echo(render_table(rows, ["component", "file", "found at", "licence"]))
    click.echo("searched: " + ", ".join(str(d) for d in search_dirs()))


@weights.command(name="fetch")
@click.argument("names", nargs=-1)
@pass_state
def weights_fetch(state: CliState, names: tuple[str, ...]) -> None:
    """Download missing weight files (of NAMES, or of every component) and check them."""
    from gensr_bench.weights import find, locate

    for owner, weight in _weight_entries(state, names):
        if find(weight) is None:
            click.echo(f"{owner}: fetching {weight.filename} from {weight.url}")
        path = locate(weight, download=True)
        click.echo(f"{owner}: {weight.filename} at {path}")


@weights.command(name="verify")
@pass_state
def weights_verify(state: CliState) -> None:
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
