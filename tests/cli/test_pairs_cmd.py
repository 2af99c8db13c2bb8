"""`gensr-bench pairs build|stats` on the candidates of a tiny `align` run
(gensr_bench/cli/pairs_cmd.py).

Every command runs as a user types it (``invoke_cli``: click's CliRunner around ``main``).
The suite (``test-toy``) and the metrics (``test-level``: ``level_db``, ``test-snr``:
``snr_db``) come from the toy plugin folder; the candidates are those of ``sft_aligned``
(conftest.py). Expected counts are derived from the candidates' own scores by brute force.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.alignment.dataset import load_preference_dataset
from gensr_bench.audio import decode_audio_cell
from gensr_bench.testing import ToySuite, invoke_cli
from gensr_bench.testing.alignment import (
    CANDIDATES,
    INPUTS,
    SECONDS,
    candidate_scores,
    unanimous_count,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"


@pytest.mark.parametrize("criterion", [("level_db",), ("level_db", "snr_db")])
def test_pairs_build_and_stats_count_what_the_dataset_holds(
    sft_aligned: Path, tmp_path: Path, criterion: tuple[str, ...]
) -> None:
    out = tmp_path / "pairs"
    built = invoke_cli(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "pairs",
            "build",
            "--candidates",
            str(sft_aligned / "candidates"),
            "--metrics",
            ",".join(criterion),
            "--out",
            str(out),
        ]
    )
    assert built.exit_code == 0, built.stderr
    ds = load_preference_dataset(out)
    grouped = candidate_scores(sft_aligned / "candidates", criterion)
    expected = {uid: unanimous_count(scores) for uid, scores in grouped.items()}
    assert len(ds) == sum(expected.values())
    if len(criterion) == 1:  # distinct candidates have distinct levels: every pair is one
        assert len(ds) == INPUTS * CANDIDATES * (CANDIDATES - 1) // 2
    inputs = {uid for uid, count in expected.items() if count}
    assert {row["input_id"] for row in ds} == inputs
    assert all(row["criterion"] == list(criterion) for row in ds)

    stats = invoke_cli(["pairs", "stats", str(out), "--format", "json"])
    assert stats.exit_code == 0, stats.stderr
    payload = json.loads(stats.stdout)
    assert payload["pairs"] == len(ds)
    assert payload["inputs"] == len(inputs)
    assert payload["pairs_per_input"] == (len(ds) / len(inputs) if inputs else None)
    assert list(payload["margins"]) == list(criterion)
    for output in criterion:
        margins = [
            json.loads(row["chosen_scores"])[output] - json.loads(row["rejected_scores"])[output]
            for row in ds
        ]
        summary = payload["margins"][output]
        assert summary["n"] == len(ds)
        if margins:
            assert summary["min"] == pytest.approx(min(margins)) and summary["min"] > 0
            assert summary["mean"] == pytest.approx(float(np.mean(margins)))
    table = invoke_cli(["pairs", "stats", str(out)])
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.split()[:1] == ["pairs"]))
    assert lines[header].split() == ["pairs", "inputs", "pairs/input"]
    assert lines[header + 2].split()[:2] == [str(len(ds)), str(len(inputs))]


def test_ground_truth_winner_makes_the_reference_the_chosen_output(
    sft_aligned: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gt"
    result = invoke_cli(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "pairs",
            "build",
            "--candidates",
            str(sft_aligned / "candidates"),
            "--metrics",
            "level_db",
            "--winner",
            "ground-truth",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.stderr
    ds = load_preference_dataset(out)
    references = {u.id: u.reference for u in ToySuite(size=INPUTS, seconds=SECONDS)}
    degraded = {u.id: u.degraded for u in ToySuite(size=INPUTS, seconds=SECONDS)}
    assert len(ds) == INPUTS * CANDIDATES  # every candidate loses to the reference
    rejected: dict[str, set[str]] = {}
    for row in ds:
        uid = row["input_id"]
        assert row["criterion"] == ["ground-truth"]
        assert row["chosen_id"] == f"{uid}~reference"
        chosen = decode_audio_cell(row["chosen"])
        np.testing.assert_array_equal(chosen.samples, references[uid].samples)
        np.testing.assert_array_equal(
            decode_audio_cell(row["prompt"]).samples, degraded[uid].samples
        )
        assert json.loads(row["chosen_scores"])["level_db"] is not None  # the reference scored
        rejected.setdefault(uid, set()).add(row["rejected_id"])
    assert rejected == {uid: {f"{uid}~c{k}" for k in range(CANDIDATES)} for uid in references}
