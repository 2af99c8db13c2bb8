"""What ``gensr-bench pairs`` and ``gensr-bench align`` share: options and tables.

Reading a finished candidate run is the library's: :mod:`gensr_bench.alignment.candidate_runs`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
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


class MarginType(click.ParamType):
    """``--min-margin``: a number >= 0, or ``auto`` (each output's measured jitter)."""

    name = "MARGIN"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        if isinstance(value, (int, float)) or value == "auto":
            return value if value == "auto" else float(value)
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)
        if not number >= 0:
            self.fail(f"{value!r} must be >= 0 (or 'auto')", param, ctx)
        return number


def resolve_margin(
    min_margin: float | str, jitter: str | None, outputs: Sequence[str]
) -> float | dict[str, float]:
    """The margin of ``--min-margin`` / ``--jitter``: a number, or per output from the file."""
    from gensr_bench.alignment.jitter import margins_from_jitter

    if min_margin == "auto":
        if jitter is None:
            raise click.UsageError(
                "--min-margin auto needs --jitter FILE, the per-output jitter that `gensr-bench "
                "pairs jitter --suite SUITE --metrics ... --out FILE` measures"
            )
        return margins_from_jitter(Path(jitter), outputs)
    if jitter is not None:
        raise click.UsageError("--jitter applies with --min-margin auto only")
    return float(min_margin)


_PAIR_OPTIONS = (
    click.option(
        "--min-margin",
        type=MarginType(),
        default=0.0,
        show_default=True,
        help="How much better on each output (in its own units) the winner must be; auto: "
        "by more than each output's measured jitter (--jitter FILE).",
    ),
    click.option(
        "--jitter",
        type=click.Path(dir_okay=False),
        default=None,
        help="With --min-margin auto: a jitter file from `gensr-bench pairs jitter`.",
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
