"""Tests of gensr_bench.outcome: the end of a run (summaries, notes, breakdown, exports)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from gensr_bench.outcome import finish_run
from gensr_bench.records import NO_REFERENCE
from gensr_bench.store import RunStore, read_run
from gensr_bench.testing import scored_output

CONFIG = {"model": {"name": "m"}, "suite": {"name": "s"}, "metrics": [], "seed": 3}


def test_finish_run_returns_notes_and_breakdown_and_marks_the_run_finished(
    tmp_path: Path,
) -> None:
    with RunStore(tmp_path / "run") as store:
        store.create(CONFIG, resume=False, overwrite=False)
        store.write(scored_output(0, {"a": 1.0, "b": 2.0}, degradation="noise"))
        store.write(scored_output(1, {"a": 3.0, "b": None}, degradation="noise"))
        missing = {"b": f"test-snr: {NO_REFERENCE}"}
        store.write(replace(scored_output(2, {"a": 5.0, "b": None}), errors=missing))
        result = finish_run(store, CONFIG, {}, {"a": True, "b": False}, by="degradation")

    assert result.n_utterances == 3
    assert [(s.output, s.mean, s.n_scored) for s in result.summaries] == [
        ("a", 3.0, 3),
        ("b", 2.0, 1),
    ]
    assert result.summaries[1].higher_is_better is False
    assert result.notes.failed_utterances == 1
    assert result.notes.no_reference_metrics == ("test-snr",)
    assert [(g.group, g.n_utterances, g.means["a"]) for g in result.breakdown] == [
        ("(none)", 1, 5.0),
        ("noise", 2, 2.0),
    ]
    assert read_run(tmp_path / "run", outputs=False).status == "finished"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n_utterances"] == 3 and summary["config"]["seed"] == 3


def test_finish_run_without_by_has_no_breakdown(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run") as store:
        store.create(CONFIG, resume=False, overwrite=False)
        store.write(scored_output(0, {"a": 1.0}, degradation="noise"))
        result = finish_run(store, CONFIG, {}, {"a": True})
    assert result.breakdown == ()
    assert result.notes.failed_utterances == 0
