"""`gensr-bench report`: runs side by side, paired differences, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.cli import main
from gensr_bench.store import RunStore

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"


def test_report_shows_runs_side_by_side(tmp_path, capsys, cache_env):
    base = [
        "--plugins-dir",
        str(TOY_PLUGINS),
        "run",
        "--suite",
        "test-toy",
        "--workers",
        "1",
        "--metrics",
        "test-level,test-snr",
    ]
    assert main([*base, "--model", "test-echo", "--out", str(tmp_path / "a")]) == 0
    assert (
        main(
            [
                *base,
                "--model",
                "test-echo",
                "--model-option",
                "gain=0.5",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "report",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--by",
            "degradation",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "level_db" in out and "snr_db" in out
    assert "noise-low" in out
    assert main(["report", str(tmp_path / "a"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[str(tmp_path / "a")]["level_db"]["n_scored"] == 8
    # gain 0.5 lowers the level by 6 dB
    a = {o.utterance_id: o.scores["level_db"] for o in RunStore(tmp_path / "a").outputs()}
    b = {o.utterance_id: o.scores["level_db"] for o in RunStore(tmp_path / "b").outputs()}
    assert all(abs(a[k] - b[k] - 20 * np.log10(2)) < 1e-3 for k in a)
    # --paired: run b minus baseline a, per utterance, in the table and in JSON.
    run_a, run_b = str(tmp_path / "a"), str(tmp_path / "b")
    assert main(["report", run_a, run_b, "--paired"]) == 0
    out = capsys.readouterr().out
    assert "paired differences" in out and "-6.021 [-6.021, -6.021]* 8" in out
    assert main(["report", run_a, run_b, "--paired", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"] == run_a
    level = data["paired_differences"][run_b]["level_db"]
    assert level["mean"] == pytest.approx(-20 * np.log10(2), abs=1e-3)
    assert level["n_paired"] == 8
    assert data["runs"][run_b]["level_db"]["n_scored"] == 8
    assert main(["report", run_a, "--paired"]) == 2
    assert "--paired needs at least two runs" in capsys.readouterr().err
    # --paired --by: the differences per degradation, with wins and losses (level_db is
    # higher-is-better for the toy metric, so halving the gain loses it everywhere).
    toy_report = ["--plugins-dir", str(TOY_PLUGINS), "report", run_a, run_b, "--paired"]
    assert main([*toy_report, "--by", "degradation"]) == 0
    out = capsys.readouterr().out
    assert "paired differences by degradation" in out and "wins" in out and "losses" in out
    assert "noise-low" in out and "-6.021*" in out
    assert main([*toy_report, "--by", "degradation", "--format", "json"]) == 0
    grouped = json.loads(capsys.readouterr().out)["paired_by"]
    assert grouped["key"] == "degradation"
    groups = grouped["runs"][run_b]
    assert sum(g["n_utterances"] for g in groups) == 8
    assert all(g["outcomes"]["level_db"] == -1 for g in groups if g["n_utterances"] >= 2)
    # A leaderboard entry stands in for its run.
    results = tmp_path / "results"
    toy = ["--plugins-dir", str(TOY_PLUGINS)]
    assert main([*toy, "leaderboard", "add", run_a, "--results", str(results)]) == 0
    (entry,) = results.glob("*.json")
    capsys.readouterr()
    assert main([*toy, "report", str(entry), run_b, "--paired"]) == 0
    assert "-6.021 [-6.021, -6.021]* 8" in capsys.readouterr().out


def test_report_of_a_folder_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "no results store" in capsys.readouterr().err
