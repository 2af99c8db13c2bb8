"""The ``gensr-bench`` command line. The only package that prints or chooses exit codes.

``app`` holds the one click group ``cli`` and ``main``; ``toolkit`` the helpers every command
shares; each ``*_cmd`` module registers one command group on ``cli`` when imported below.
"""

from __future__ import annotations

# Importing each command module registers its commands on ``cli`` (defined in app).
from gensr_bench.cli.app import _early_plugin_dirs, cli, main
from gensr_bench.cli.check_cmd import check
from gensr_bench.cli.info_cmd import list_components, plugins
from gensr_bench.cli.leaderboard_cmd import (
    _suite_inputs,
    leaderboard_add,
    leaderboard_build,
    leaderboard_group,
    leaderboard_list,
)
from gensr_bench.cli.report_cmd import merge, report
from gensr_bench.cli.run_cmd import _create_model, _run_one, run
from gensr_bench.cli.runs import (
    _all_metric_outputs,
    _direction_lookup,
    _directions,
    _load_run,
    _load_run_with_provenance,
    _print_breakdown,
    _print_ignored,
    _print_notes,
    _run_label,
)
from gensr_bench.cli.suite_cmd import suite_group, suite_verify
from gensr_bench.cli.toolkit import (
    EXIT_ERROR,
    EXIT_USAGE,
    SEED,
    _fmt,
    _metric_options,
    _parse_options,
    _State,
    _suite_config,
    _summary_rows,
    _table,
    backend_options,
    make_backend,
    pass_state,
)
from gensr_bench.cli.train_cmd import train
from gensr_bench.cli.weights_cmd import (
    _weight_entries,
    weights,
    weights_fetch,
    weights_list,
    weights_verify,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "SEED",
    "_State",
    "_all_metric_outputs",
    "_create_model",
    "_direction_lookup",
    "_directions",
    "_early_plugin_dirs",
    "_fmt",
    "_load_run",
    "_load_run_with_provenance",
    "_metric_options",
    "_parse_options",
    "_print_breakdown",
    "_print_ignored",
    "_print_notes",
    "_run_label",
    "_run_one",
    "_suite_config",
    "_suite_inputs",
    "_summary_rows",
    "_table",
    "_weight_entries",
    "backend_options",
    "check",
    "cli",
    "leaderboard_add",
    "leaderboard_build",
    "leaderboard_group",
    "leaderboard_list",
    "list_components",
    "main",
    "make_backend",
    "merge",
    "pass_state",
    "plugins",
    "report",
    "run",
    "suite_group",
    "suite_verify",
    "train",
    "weights",
    "weights_fetch",
    "weights_list",
    "weights_verify",
]
