"""Tests of gensr_bench.alignment.candidate_runs: reading finished candidate runs.

Building and saving pairs (``build_pairs``) runs in the library test of ``align``
(``test_align.py``) and in the ``pairs build`` command tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gensr_bench.alignment.candidate_runs import (
    candidates_finished,
    finished_candidate_run,
    missing_scores,
)
from gensr_bench.errors import StoreError
from gensr_bench.store import RunStore
from gensr_bench.testing import scored_output

SUITE = {"name": "test-toy", "candidates": 2}


def make_run(directory: Path, suite: dict[str, object], finished: bool) -> Path:
    with RunStore(directory) as store:
        store.create(
            {"model": {"name": "m"}, "suite": suite, "metrics": []}, resume=False, overwrite=False
        )
        store.write(scored_output(0, {"level_db": 1.0}))
        store.write(scored_output(1, {"level_db": None}))
        if finished:
            store.set_info("status", "finished")
    return directory


def test_a_finished_candidate_run_is_read_with_its_output_count(tmp_path: Path) -> None:
    run = finished_candidate_run(make_run(tmp_path / "c", SUITE, finished=True))
    assert run.outputs == 2
    assert run.config["suite"]["candidates"] == 2
    assert candidates_finished(tmp_path / "c")


@pytest.mark.parametrize(
    ("suite", "finished", "message"),
    [
        (SUITE, False, "has not finished .2 outputs so far.*--resume"),
        ({"name": "test-toy"}, True, "is not a candidate run"),
    ],
)
def test_what_is_not_a_finished_candidate_run_is_refused_with_how_to_fix(
    tmp_path: Path, suite: dict[str, object], finished: bool, message: str
) -> None:
    run_dir = make_run(tmp_path / "c", suite, finished)
    with pytest.raises(StoreError, match=message):
        finished_candidate_run(run_dir)


def test_an_empty_folder_holds_no_candidate_run(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no candidate run in .*gensr-bench align"):
        finished_candidate_run(tmp_path)
    assert not candidates_finished(tmp_path)


def test_missing_scores_counts_each_output_and_quotes_an_error(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "c", SUITE, finished=True)
    text = missing_scores(run_dir, ["level_db"])
    assert "level_db: 1 of 2 (e.g. failed in test)" in text
    with RunStore(tmp_path / "ok") as store:
        store.create({"suite": SUITE}, resume=False, overwrite=False)
        store.write(scored_output(0, {"level_db": 1.0}))
    assert missing_scores(tmp_path / "ok", ["level_db"]) == ""
