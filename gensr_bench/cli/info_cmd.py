"""``gensr-bench plugins`` and ``ls``: what is installed and registered."""

from __future__ import annotations

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.toolkit import (
    CliState,
    pass_state,
    render_table,
)


@cli.command()
@pass_state
def plugins(state: CliState) -> None:
    """List loaded plugins with their versions and the hooks they implement."""
    from gensr_bench.plugins import plugin_infos

    rows = [[i.name, i.source, i.version, ", ".join(i.hooks)] for i in plugin_infos(state.pm)]
    click.echo(render_table(rows, ["plugin", "from", "version", "hooks"]))


@cli.command(name="ls")
@click.argument(
    "kind", type=click.Choice(["metrics", "models", "suites", "backends", "features", "publishers"])
)
@pass_state
def list_components(state: CliState, kind: str) -> None:
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
    click.echo(render_table(rows, ["name", "version", "details", "description", "plugin"]))
    suggestions = registry.suggestions()
    if suggestions:
        click.echo("\nalso: " + "\n      ".join(suggestions))
