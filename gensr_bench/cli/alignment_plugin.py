"""``gensr-bench pairs build|stats`` and ``gensr-bench align``: preference data and DPO.

A plugin like any other (entry point ``alignment`` of the group ``gensr_bench``): its
``gensr_register_commands`` hook adds the commands to the top-level group.

* ``pairs build`` turns a finished candidate run (``gensr-bench align`` makes one in
  ``OUT/candidates``; any run of :class:`~gensr_bench.alignment.candidates.CandidateSuite`
  with saved audio will do) into a preference dataset. The candidates' audio comes from the
  files the run saved; the degraded inputs (the dataset's ``prompt``) and, for the
  ground-truth winner, the clean references are read by re-creating the suite recorded in the
  run's configuration (its name and options) through the suite registry, and checked against
  the recorded fingerprint: the run's store holds no input audio.
* ``pairs stats`` prints the counts and per-output margins of a saved preference dataset.
* ``align`` runs the whole pipeline in one folder: candidates, pairs, a held-out split by
  input, and the trainer, which leaves the aligned checkpoint in the folder itself.

The work is done by the library (:func:`gensr_bench.alignment.align.align`,
:func:`gensr_bench.alignment.candidate_runs.build_pairs`); the commands, which parse
options, show progress and print, live in :mod:`~gensr_bench.cli.pairs_cmd` and
:mod:`~gensr_bench.cli.align_cmd` (re-exported here); this module registers them.
"""

from __future__ import annotations

import click

from gensr_bench.alignment.align import SFT_TARGETS
from gensr_bench.alignment.candidate_runs import CANDIDATES_DIR, PAIRS_DIR
from gensr_bench.hookspecs import hookimpl

from . import agreement_cmd, jitter_cmd  # noqa: F401  (register `pairs agreement`, `pairs jitter`)
from .align_cmd import align_command
from .pairs_cmd import pairs_build, pairs_group, pairs_stats, pairs_vectors

__all__ = [
    "CANDIDATES_DIR",
    "PAIRS_DIR",
    "SFT_TARGETS",
    "align_command",
    "gensr_register_commands",
    "pairs_build",
    "pairs_group",
    "pairs_stats",
    "pairs_vectors",
]


@hookimpl
def gensr_register_commands(cli: click.Group) -> None:
    for command in (pairs_group, align_command):
        if command.name not in cli.commands:
            cli.add_command(command)
