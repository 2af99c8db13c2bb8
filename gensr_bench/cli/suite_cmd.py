"""``gensr-bench suite``: suite maintenance (verify)."""

from __future__ import annotations

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.runs import print_ignored
from gensr_bench.cli.toolkit import (
    CliState,
    parse_options,
    pass_state,
    read_suite_config,
)


@cli.group(name="suite")
def suite_group() -> None:
    """Inspect suites' local data."""


@suite_group.command(name="verify")
@click.argument("name")
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.option("--suite-config", type=click.Path(dir_okay=False), default=None)
@pass_state
def suite_verify(
    state: CliState, name: str, suite_option: tuple[str, ...], suite_config: str | None
) -> None:
    """Check a suite's local data: counts, missing, unpaired and ignored files (exit 1 if
    incomplete)."""
    from gensr_bench.errors import GensrError as _GensrError

    suite_cls = state.registries.suites.get(name)
    names = list(suite_cls.subsets) or [name]
    incomplete = 0
    for part in names:
        options = {
            **read_suite_config(suite_config, [name, part]),
            **parse_options(suite_option, "--suite-option"),
        }
        suite_obj = state.registries.suites.get(part)(**options)
        report = suite_obj.verify()
        expected = "?" if report.expected is None else str(report.expected)
        status = "complete" if report.ok else "INCOMPLETE"
        click.echo(f"{part}: {report.found}/{expected} pairs found in {report.root} ({status})")
        for item in report.missing:
            click.echo(f"  missing: {item}")
        for item in report.unpaired:
            click.echo(f"  unpaired: {item}")
        for item in report.notes:
            click.echo(f"  note: {item}")
        print_ignored("  ignored", suite_obj.ignored_files())
        incomplete += not report.ok
    if incomplete:
        raise _GensrError(f"{incomplete} suite(s) incomplete; see the list above")
