"""What ``gensr-bench pairs`` and ``gensr-bench align`` share: options and tables.

Reading a finished candidate run is the library's: :mod:`gensr_bench.alignment.candidate_runs`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.alignment.pairs import MODEL_WINNER, SELECTIONS, WINNERS
from gensr_bench.cli.toolkit import CliState, format_value, render_table

if TYPE_CHECKING:
    pass


def split_items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def command_line(state: CliState) -> str:
    """The command line as typed (``main``'s arguments; ``sys.argv`` outside ``main``)."""
    args = state.argv if state.argv is not None else sys.argv[1:]
    return shlex.join(["gensr-bench", *args])


def echo_pair_stats(stats: Mapping[str, Any], signed: bool) -> None:
    """The tables of ``pair_stats``: counts, then the margins of each output."""
    per_input = stats["pairs_per_input"]
    click.echo(
        render_table(
            [[str(stats["pairs"]), str(stats["inputs"]), format_value(per_input, 2)]],
            ["pairs", "inputs", "pairs/input"],
        )
    )
    margins = stats["margins"]
    if not margins:
        return
    rows = [
        [
            output,
            str(m["n"]),
            format_value(m["mean"]),
            format_value(m["median"]),
            format_value(m["min"]),
        ]
        for output, m in margins.items()
    ]
    click.echo()
    click.echo(render_table(rows, ["output", "n", "mean margin", "median", "min"]))
    click.echo(
        "margins: chosen minus rejected, signed so that > 0 means the chosen output is better"
        if signed
        else "margins: raw chosen minus rejected (the outputs' directions are unknown)"
    )


_PAIR_OPTIONS = (
    click.option(
        "--min-margin",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="How much better on each output (in its own units) the winner must be.",
    ),
    click.option(
        "--max-pairs", type=click.IntRange(min=1), default=None, help="At most N pairs per input."
    ),
    click.option(
        "--selection",
        type=click.Choice(SELECTIONS),
        default="margin",
        show_default=True,
        help="Which pairs --max-pairs keeps: the largest margins, or a seeded random draw.",
    ),
    click.option(
        "--winner",
        type=click.Choice(WINNERS),
        default=MODEL_WINNER,
        show_default=True,
        help="model: pairs within the candidates (the method); ground-truth: the clean "
        "reference beats every candidate (ablation).",
    ),
)


def pair_options(command: Any) -> Any:
    """The pairing options that ``pairs build`` and ``align`` share, in this order."""
    for option in reversed(_PAIR_OPTIONS):
        command = option(command)
    return command
