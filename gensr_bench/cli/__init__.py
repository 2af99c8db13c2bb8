"""The ``gensr-bench`` command line. The only package that prints or chooses exit codes.

``app`` holds the one click group ``cli`` and ``main``; ``toolkit`` the helpers every command
shares; each ``*_cmd`` module registers one command group on ``cli`` when imported below,
except ``align_cmd`` and ``pairs_cmd``: ``alignment_plugin`` adds those through the
``gensr_register_commands`` hook (entry point ``alignment``), like any plugin's commands.
"""

from __future__ import annotations

# Importing each command module registers its commands on ``cli`` (defined in app).
from gensr_bench.cli.app import cli, main
from gensr_bench.cli.check_cmd import check
from gensr_bench.cli.info_cmd import list_components, plugins
from gensr_bench.cli.leaderboard_cmd import (
    leaderboard_add,
    leaderboard_build,
    leaderboard_group,
    leaderboard_list,
)
from gensr_bench.cli.report_cmd import merge, report
from gensr_bench.cli.run_cmd import create_model, run, run_one
from gensr_bench.cli.runs import (
    all_metric_outputs,
    direction_lookup,
    load_run,
    load_run_with_provenance,
    metric_directions,
    print_breakdown,
    print_ignored,
    print_notes,
    run_label,
)
from gensr_bench.cli.suite_cmd import suite_group, suite_verify
from gensr_bench.cli.toolkit import (
    EXIT_ERROR,
    EXIT_USAGE,
    SEED,
    CliState,
    backend_options,
    format_value,
    make_backend,
    parse_metric_options,
    parse_options,
    pass_state,
    read_suite_config,
    render_table,
    summary_rows,
)
from gensr_bench.cli.train_cmd import train
from gensr_bench.cli.weights_cmd import (
    weights,
    weights_fetch,
    weights_list,
    weights_verify,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "SEED",
    "CliState",
    "all_metric_outputs",
    "backend_options",
    "check",
    "cli",
    "create_model",
    "direction_lookup",
    "format_value",
    "leaderboard_add",
    "leaderboard_build",
    "leaderboard_group",
    "leaderboard_list",
    "list_components",
    "load_run",
    "load_run_with_provenance",
    "main",
    "make_backend",
    "merge",
    "metric_directions",
    "parse_metric_options",
    "parse_options",
    "pass_state",
    "plugins",
    "print_breakdown",
    "print_ignored",
    "print_notes",
    "read_suite_config",
    "render_table",
    "report",
    "run",
    "run_label",
    "run_one",
    "suite_group",
    "suite_verify",
    "summary_rows",
    "train",
    "weights",
    "weights_fetch",
    "weights_list",
    "weights_verify",
]
