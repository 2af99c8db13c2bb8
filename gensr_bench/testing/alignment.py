"""Tiny ``gensr-bench align`` and ``pairs build`` runs on the toy plugins, and their oracle.

The runs restore ``INPUTS`` utterances of ``test-toy`` (``SECONDS`` long) ``CANDIDATES`` times
each and score them with ``test-level`` (``level_db``) or ``test-snr`` (``snr_db``): the toy
components of ``gensr_bench.testing.toys``, registered by a local plugin folder passed as
``plugins_dir``. The expected number of pairs is counted by brute force from the candidates'
own scores (``candidate_scores``, ``unanimous_count``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from gensr_bench.store import RunStore

#: Inputs, candidates per input and seconds per input of the toy runs.
INPUTS, CANDIDATES, SECONDS = 3, 3, 0.5
#: The suite options of the toy runs.
SUITE = [
    "--suite",
    "test-toy",
    "--suite-option",
    f"size={INPUTS}",
    "--suite-option",
    f"seconds={SECONDS}",
]
#: Training options small enough for a test: batches of 2, a log line per step.
TRAIN = ["--align-option", "batch_size=2", "--align-option", "log_every=1"]


def align_args(
    plugins_dir: Path, model: Path, out: Path, *extra: str, metrics: str = "level_db"
) -> list[str]:
    """The argument list of a tiny `align` run (3 inputs x 3 candidates, one worker)."""
    return [
        "--plugins-dir",
        str(plugins_dir),
        "align",
        "--model",
        str(model),
        *SUITE,
        "--metrics",
        metrics,
        "--out",
        str(out),
        "--n",
        str(CANDIDATES),
        "--workers",
        "1",
        *TRAIN,
        *extra,
    ]


def candidate_scores(run_dir: Path, outputs: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Input id -> each candidate's scores on ``outputs``, read from the run store."""
    grouped: dict[str, list[tuple]] = {}
    for output in RunStore(run_dir).outputs():
        values = tuple(output.scores[name] for name in outputs)
        grouped.setdefault(str(output.meta["source_id"]), []).append(values)
    return grouped


def unanimous_count(scores: list[tuple]) -> int:
    """Candidate pairs where one is strictly better on every output (all higher-is-better)."""
    count = 0
    for a, b in itertools.combinations(scores, 2):
        diffs = [x - y for x, y in zip(a, b, strict=True)]
        count += all(d > 0 for d in diffs) or all(d < 0 for d in diffs)
    return count


__all__ = [
    "CANDIDATES",
    "INPUTS",
    "SECONDS",
    "SUITE",
    "TRAIN",
    "align_args",
    "candidate_scores",
    "unanimous_count",
]
