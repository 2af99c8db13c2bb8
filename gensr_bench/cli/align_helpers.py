"""What ``gensr-bench pairs`` and ``gensr-bench align`` share: folder names, options, tables.

Also the reading of a finished candidate run (its config, the suite and metrics it recorded).
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
from gensr_bench.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from gensr_bench.alignment.pipeline import PairSet
    from gensr_bench.interfaces import Metric, Suite


#: Sub-folders of an ``align`` folder.
CANDIDATES_DIR = "candidates"
PAIRS_DIR = "pairs"
SFT_TARGETS = ("winners", "ground-truth")


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


def finished_candidate_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The config, provenance and number of outputs of a finished candidate run."""
    from gensr_bench.store import RUN_DB, has_run, read_run

    if not has_run(run_dir):
        raise StoreError(
            f"no candidate run in {run_dir}: expected {run_dir / RUN_DB}; make candidates with "
            "`gensr-bench align` (they go to OUT/candidates)"
        )
    run = read_run(run_dir, outputs=False)
    config = run.config or {}
    provenance = run.provenance or {}
    status, count = run.status, run.count
    if "candidates" not in (config.get("suite") or {}):
        raise StoreError(
            f"{run_dir} is not a candidate run (its suite records no candidate count); make "
            "candidates with `gensr-bench align`"
        )
    if status != "finished":
        raise StoreError(
            f"the candidate run in {run_dir} has not finished ({count} outputs so far); "
            "finish it by rerunning the command that made it with --resume"
        )
    return config, provenance, count


def recorded_suite(reg: Any, config: Mapping[str, Any], run_dir: Path) -> Suite:
    """The suite a candidate run sampled from, re-created from its recorded name and options.

    Raises:
        ConfigError: the re-created suite's fingerprint is not the recorded one.
    """
    recorded = config["suite"]
    suite: Suite = reg.suites.create(
        recorded["name"], limit=recorded.get("suite_limit"), **(recorded.get("options") or {})
    )
    fingerprint = f"{suite.fingerprint()}x{recorded['candidates']}"
    if recorded.get("fingerprint") not in (None, fingerprint):
        raise ConfigError(
            f"suite {recorded['name']!r} has changed since the candidates in {run_dir} were "
            f"made (fingerprint now {fingerprint}, the run recorded {recorded['fingerprint']}): "
            "its inputs would not match; make the candidates again"
        )
    return suite


def recorded_metrics(config: Mapping[str, Any], classes: Sequence[type[Metric]]) -> list[Metric]:
    """Instances of ``classes`` with the options the candidate run recorded for them."""
    options = {m["name"]: m.get("options") or {} for m in config.get("metrics", [])}
    return [cls(**options.get(cls.name, {})) for cls in classes]


def pairs_source(
    run_dir: Path, pair_set: PairSet, outputs: int, model: str, sha: str | None
) -> dict[str, Any]:
    return {
        "candidates": str(run_dir.resolve()),
        "outputs": outputs,
        "inputs": list(pair_set.utterances),
        "model": model,
        "checkpoint_sha256": sha,
    }


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
