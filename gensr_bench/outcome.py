"""The end of a run: its summaries, notes and breakdown, written beside the store.

Shared by :func:`gensr_bench.runner.run_suite` and :func:`gensr_bench.shards.merge_runs`, so a
merged run is summarised exactly as one unsharded run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gensr_bench.records import RunResult
from gensr_bench.stats import breakdown, run_notes, summarise
from gensr_bench.store import RunStore, write_exports


def finish_run(
    store: RunStore,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    directions: dict[str, bool],
    by: str | None = None,
) -> RunResult:
    """Summarise every output of a store, mark the run finished, write its exports.

    ``directions``: output -> higher is better, in table order. ``by``: a meta key to break
    the means down by (``RunResult.breakdown``). Writes ``summary.json`` and ``scores.jsonl``.
    """
    outputs = list(store.outputs())
    seed = int(config.get("seed", 0))
    summaries = summarise(outputs, list(directions), directions.__getitem__, seed)
    result = RunResult(
        run_id=os.path.basename(os.path.abspath(store.out_dir)),
        config=dict(config),
        provenance=dict(provenance),
        summaries=tuple(summaries),
        n_utterances=len(outputs),
        notes=run_notes(outputs),
        breakdown=breakdown(outputs, by) if by else (),
    )
    store.set_info("status", "finished")
    write_exports(store, result)
    return result
