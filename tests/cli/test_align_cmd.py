"""`gensr-bench align` on tiny models, suites and metrics (gensr_bench/cli/align_cmd.py).

Every command runs as a user types it (``invoke_cli``: click's CliRunner around ``main``).
The suite (``test-toy``) and the metrics (``test-level``: ``level_db``, ``test-snr``:
``snr_db``) come from the toy plugin folder; the models are tiny random generative
checkpoints (``checkpoints``, ``aligned`` and ``sft_aligned`` in conftest.py). Expected counts
are derived from the candidates' own scores by brute force.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import pytest

from gensr_bench.alignment.dataset import load_preference_dataset
from gensr_bench.store import RunStore
from gensr_bench.testing import invoke_cli
from gensr_bench.testing.alignment import (
    CANDIDATES,
    INPUTS,
    SUITE,
    align_args,
    candidate_scores,
    unanimous_count,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"
align = functools.partial(align_args, TOY_PLUGINS)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_align_leaves_a_checkpoint_that_run_restores(
    aligned: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    manifest = json.loads((aligned / "manifest.json").read_text())
    base = checkpoints["ar-small"]
    assert manifest["model"] == "ar-small"
    assert manifest["base_model"] == str(base)
    assert manifest["base_checkpoint_sha256"] == sha256(base / "model.pt")
    assert manifest["criterion"] == ["level_db"]
    assert manifest["command"].startswith("gensr-bench --plugins-dir")
    assert " align " in manifest["command"] and f"--out {aligned}" in manifest["command"]
    assert manifest["candidates"]["run"] == str((aligned / "candidates").resolve())
    assert manifest["alignment"]["steps_done"] == 2
    # The candidates: every input n times, through the runner, audio kept.
    assert RunStore(aligned / "candidates").count() == INPUTS * CANDIDATES
    # The pairs: as many as the rule allows on the candidates' scores.
    ds = load_preference_dataset(aligned / "pairs")
    grouped = candidate_scores(aligned / "candidates", ("level_db",))
    assert len(ds) == manifest["pairs"]["total"] == sum(map(unanimous_count, grouped.values()))
    assert all(row["chosen_id"].startswith(row["input_id"] + "~c") for row in ds)
    # The held-out split: one of the three inputs, its pairs evaluated, not trained on.
    held = manifest["pairs"]["held_out_inputs"]
    assert len(held) == 1 and held[0] in grouped
    held_rows = sum(row["input_id"] in held for row in ds)
    assert manifest["pairs"]["held_out_pairs"] == held_rows
    assert manifest["pairs"]["train_examples"] == len(ds) - held_rows
    # Training changed the weights, and `run --model DIR` restores the aligned ones.
    assert sha256(aligned / "model.pt") != sha256(base / "model.pt")
    run_dir = tmp_path / "eval"
    result = invoke_cli(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "run",
            "--model",
            str(aligned),
            *SUITE,
            "--metrics",
            "level_db",
            "--workers",
            "1",
            "--out",
            str(run_dir),
        ]
    )
    assert result.exit_code == 0, result.stderr
    store = RunStore(run_dir)
    assert store.count() == INPUTS
    assert store.get_info("config")["model"]["options"]["checkpoint"] == str(aligned)
    provenance = store.get_info("provenance")
    assert provenance["model_checkpoint_sha256"] == sha256(aligned / "model.pt")


def test_unknown_metric_outputs_and_align_options_are_named(
    sft_aligned: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    build = invoke_cli(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "pairs",
            "build",
            "--candidates",
            str(sft_aligned / "candidates"),
            "--metrics",
            "level_db,snr_dbb",
            "--out",
            str(tmp_path / "never"),
        ]
    )
    assert build.exit_code == 2
    assert "unknown metric output 'snr_dbb' (did you mean: snr_db?)" in build.stderr
    assert "Available outputs: level_db, snr_db" in build.stderr
    assert not (tmp_path / "never").exists()

    out = tmp_path / "never-aligned"
    unknown = invoke_cli(align(checkpoints["ar-small"], out, metrics="level_db,loudness_lufs"))
    assert unknown.exit_code == 2
    assert "'loudness_lufs'" in unknown.stderr and "level_db" in unknown.stderr
    option = invoke_cli(align(checkpoints["ar-small"], out, "--align-option", "stepz=2"))
    assert option.exit_code == 1
    assert "unknown alignment option stepz; valid keys: beta, lr, steps" in option.stderr
    assert not out.exists()


def test_a_criterion_metric_that_cannot_load_stops_align_before_sampling(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "no-weights"
    reason = "weight file 'level.onnx' not found; put it in /somewhere"
    result = invoke_cli(
        align(
            checkpoints["ar-small"],
            out,
            "--metric-option",
            f"test-level.setup_error={reason}",
            metrics="level_db,snr_db",
        )
    )
    assert result.exit_code == 1
    assert "criterion metric 'test-level' cannot be set up" in result.stderr
    assert "(level_db)" in result.stderr and reason in result.stderr
    assert "Nothing was sampled" in result.stderr
    # Stopped before the candidate run began: no run store, no audio.
    assert not (out / "candidates").exists()


def test_no_pairs_because_scores_failed_names_the_output_and_its_error(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "failed-scores"
    result = invoke_cli(
        align(
            checkpoints["ar-small"],
            out,
            "--metric-option",
            "test-level.score_error=level meter broke",
            metrics="level_db,snr_db",
        )
    )
    assert result.exit_code == 1
    assert "nothing to train on: 0 pairs" in result.stderr
    total = INPUTS * CANDIDATES
    assert f"level_db: {total} of {total}" in result.stderr
    assert "level meter broke" in result.stderr
    assert "snr_db:" not in result.stderr  # scored on every candidate: not listed
    assert "Sample more candidates" not in result.stderr
    assert RunStore(out / "candidates").count() == total  # the candidates are kept

    # Every score present, no pair for another reason: the advice is about the pairs.
    strict = invoke_cli(align(checkpoints["ar-small"], tmp_path / "strict", "--min-margin", "1e9"))
    assert strict.exit_code == 1
    assert "nothing to train on: 0 pairs" in strict.stderr
    assert "Sample more candidates (--n)" in strict.stderr
    assert "never pair" not in strict.stderr


def test_resume_reuses_candidates_and_pairs_and_continues_training(
    checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gensr_bench_plugins.models.generative.ar import ARSmall

    sampled: list[str] = []
    original = ARSmall.sample

    def counting(self, batch, n, seed, sampling=None):  # type: ignore[no-untyped-def]
        sampled.extend(utt.id for utt in batch for _ in range(n))
        return original(self, batch, n, seed, sampling)

    monkeypatch.setattr(ARSmall, "sample", counting)
    out = tmp_path / "resumed"
    first = invoke_cli(align(checkpoints["ar-small"], out, "--align-option", "steps=1"))
    assert first.exit_code == 0, first.stderr
    assert len(sampled) == INPUTS * CANDIDATES
    pairs_record = (out / "pairs" / "pairs.json").read_bytes()

    again = invoke_cli(align(checkpoints["ar-small"], out, "--align-option", "steps=2"))
    assert again.exit_code == 1
    assert "pass --resume" in again.stderr

    sampled.clear()
    resumed = invoke_cli(
        align(checkpoints["ar-small"], out, "--align-option", "steps=2", "--resume")
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert sampled == []  # no new restorations
    assert RunStore(out / "candidates").count() == INPUTS * CANDIDATES
    assert "reusing the" in resumed.stdout
    assert (out / "pairs" / "pairs.json").read_bytes() == pairs_record
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["alignment"]["steps_done"] == 2
    log = [json.loads(line) for line in (out / "align.log").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2]


def test_sft_on_ground_truth_trains_on_the_clean_references(sft_aligned: Path) -> None:
    manifest = json.loads((sft_aligned / "manifest.json").read_text())
    assert manifest["model"] == "fm-small"
    assert manifest["alignment"]["objective"] == "sft"
    assert manifest["sft_target"] == "ground-truth"
    assert manifest["criterion"] == ["level_db", "snr_db"]
    held = manifest["pairs"]["held_out_inputs"]
    assert manifest["pairs"]["train_examples"] == INPUTS - len(held)  # one per training input
    assert manifest["alignment"]["steps_done"] == 1


def test_align_refuses_a_model_that_is_not_alignable(tmp_path: Path) -> None:
    out = tmp_path / "identity"
    result = invoke_cli(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "align",
            "--model",
            "identity",
            *SUITE,
            "--metrics",
            "level_db",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 1
    assert "model 'identity'" in result.stderr and "cannot be aligned" in result.stderr
    assert "ar-small" in result.stderr  # the models that can
    assert not out.exists()  # refused before any candidate was made


def test_candidates_of_another_run_are_reused_for_another_criterion(
    sft_aligned: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gensr_bench_plugins.models.generative.fm import FMSmall

    def no_sampling(self, batch, n, seed, sampling=None):  # type: ignore[no-untyped-def]
        raise AssertionError("--candidates must not sample")

    monkeypatch.setattr(FMSmall, "sample", no_sampling)
    source = sft_aligned / "candidates"
    out = tmp_path / "snr-only"
    result = invoke_cli(
        align(
            checkpoints["fm-small"],
            out,
            "--candidates",
            str(source),
            "--align-option",
            "steps=1",
            metrics="snr_db",
        )
    )
    assert result.exit_code == 0, result.stderr
    assert f"reusing the candidates in {source}" in result.stdout
    assert not (out / "candidates").exists()
    expected = sum(
        unanimous_count(scores) for scores in candidate_scores(source, ("snr_db",)).values()
    )
    dataset = load_preference_dataset(out / "pairs")
    assert len(dataset) == expected > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["candidates"]["run"] == str(source.resolve())
    assert manifest["criterion"] == ["snr_db"]


@pytest.mark.parametrize(
    ("model", "extra", "metrics", "message"),
    [
        ("ar-small", (), "snr_db", "another model, checkpoint"),
        ("fm-small", ("--n", "2"), "snr_db", "--limit or --n"),
        ("fm-small", ("--seed", "1"), "snr_db", "another --seed"),
        ("fm-small", ("--metric-option", "test-level.setup_log=x"), "level_db", "--metric-option"),
    ],
)
def test_reused_candidates_must_match_the_command(
    sft_aligned: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    model: str,
    extra: tuple[str, ...],
    metrics: str,
    message: str,
) -> None:
    args = align(checkpoints[model], tmp_path / "out", metrics=metrics)
    n_at = args.index("--n")
    if "--n" in extra:
        del args[n_at : n_at + 2]
    result = invoke_cli([*args, "--candidates", str(sft_aligned / "candidates"), *extra])
    assert result.exit_code == 1, result.stdout
    assert message in result.stderr
    assert str(sft_aligned / "candidates") in result.stderr
    assert not (tmp_path / "out" / "pairs").exists()


def test_reused_candidates_must_be_scored_with_the_criterion(
    aligned: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    result = invoke_cli(
        align(
            checkpoints["ar-small"],
            tmp_path / "out",
            "--candidates",
            str(aligned / "candidates"),
            metrics="snr_db",
        )
    )
    assert result.exit_code == 1, result.stdout
    assert "was not scored with test-snr (its metrics: test-level)" in result.stderr


def test_other_model_candidates_align_another_paradigm(
    sft_aligned: Path, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    # fm-small's candidates train ar-small (the paper's cross-paradigm data, Table 4).
    source = sft_aligned / "candidates"
    out = tmp_path / "ar-on-fm"
    args = align(checkpoints["ar-small"], out, "--align-option", "steps=1", metrics="level_db")
    result = invoke_cli([*args, "--candidates", str(source), "--other-model"])
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "ar-small"
    assert manifest["candidates"]["model"]["name"] == "fm-small"
    assert manifest["candidates"]["model"]["checkpoint_sha256"] == sha256(
        checkpoints["fm-small"] / "model.pt"
    )
    dataset = load_preference_dataset(out / "pairs")
    expected = sum(
        unanimous_count(scores) for scores in candidate_scores(source, ("level_db",)).values()
    )
    assert len(dataset) == expected > 0
    assert set(dataset["model"]) == {"fm-small"}


def test_other_model_needs_candidates(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    result = invoke_cli([*align(checkpoints["ar-small"], tmp_path / "o"), "--other-model"])
    assert result.exit_code == 2
    assert "--other-model needs --candidates" in result.stderr
