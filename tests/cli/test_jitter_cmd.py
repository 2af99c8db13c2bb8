"""`gensr-bench pairs jitter`, and `--min-margin auto --jitter FILE` in `pairs build`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gensr_bench.alignment.dataset import load_preference_dataset
from gensr_bench.testing import invoke_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"
PLUGINS = ["--plugins-dir", str(TOY_PLUGINS)]


def test_jitter_measures_each_output_and_auto_margins_use_it(aligned: Path, tmp_path: Path) -> None:
    jitter = tmp_path / "jitter.json"
    suite = ["--suite", "test-toy", "--suite-option", "size=3"]
    rest = ["--metrics", "test-level", "--workers", "1", "--out", str(jitter)]
    measured = invoke_cli([*PLUGINS, "pairs", "jitter", *suite, *rest])
    assert measured.exit_code == 0, measured.stderr
    document = json.loads(jitter.read_text())
    level = document["outputs"]["level_db"]
    assert level["n"] == 9  # 3 inputs x 3 perturbations
    assert set(level["per_perturbation"]) == {"shift", "resample", "dither"}
    assert 0 < level["jitter"] < 0.1  # inaudible changes move the level by far less than 0.1 dB
    assert (tmp_path / "jitter-runs" / "original").is_dir()

    out = tmp_path / "pairs"
    args = ["pairs", "build", "--candidates", str(aligned / "candidates")]
    args += ["--metrics", "level_db", "--out", str(out)]
    built = invoke_cli([*PLUGINS, *args, "--min-margin", "auto", "--jitter", str(jitter)])
    assert built.exit_code == 0, built.stderr
    record = json.loads((out / "pairs.json").read_text())
    assert record["settings"]["min_margin"] == {"level_db": level["jitter"]}
    for row in load_preference_dataset(out):
        chosen, rejected = json.loads(row["chosen_scores"]), json.loads(row["rejected_scores"])
        assert chosen["level_db"] - rejected["level_db"] > level["jitter"]

    no_file = invoke_cli([*PLUGINS, *args, "--min-margin", "auto", "--overwrite"])
    assert no_file.exit_code == 2 and "--min-margin auto needs --jitter FILE" in no_file.stderr
    bad = invoke_cli([*PLUGINS, *args, "--min-margin", "lots"])
    assert bad.exit_code == 2 and "neither a number nor 'auto'" in bad.stderr
