"""`gensr-bench run`: runs over bad files, unknown names, seeds and flags that contradict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from gensr_bench.cli import main
from gensr_bench.store import RunStore
from gensr_bench.testing import noisy_utterance, write_plugin_file

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"


BAD_FILES_SUITE = '''
from pathlib import Path

from gensr_bench import Suite, hookimpl
from gensr_bench.audio import load_utterance

DATA = Path({data!r})
NAMES = ["good-1", "empty", "nan", "short", "not-audio", "good-2"]


class BadFilesSuite(Suite):
    """Good files beside an empty, a NaN, a 0.1 s and a non-audio file."""

    name = "test-bad-files"

    def iter_utterances(self):
        for name in NAMES:
            yield load_utterance(name, DATA / f"{{name}}.wav", DATA / "clean.wav",
                                 meta={{"kind": name}})

    def full_size(self):
        return len(NAMES)


@hookimpl
def gensr_register_suites():
    return [BadFilesSuite]
'''


def _bad_files_tree(root: Path) -> Path:
    root.mkdir()
    utt = noisy_utterance("x", seconds=3.0, snr_db=5.0)
    soundfile.write(root / "clean.wav", utt.reference.samples, 16000, subtype="FLOAT")
    for name in ("good-1", "good-2"):
        soundfile.write(root / f"{name}.wav", utt.degraded.samples, 16000, subtype="FLOAT")
    soundfile.write(root / "empty.wav", np.zeros(0, np.float32), 16000, subtype="FLOAT")
    nan = utt.degraded.samples.copy()
    nan[100:200] = np.nan
    soundfile.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    soundfile.write(root / "short.wav", utt.degraded.samples[:1600], 16000, subtype="FLOAT")
    (root / "not-audio.wav").write_text("this is not a RIFF file\n")
    return root


def test_bad_inputs_give_none_with_errors_and_the_run_completes(tmp_path, capsys, cache_env):
    data = _bad_files_tree(tmp_path / "data")
    plugins = tmp_path / "plugins"
    write_plugin_file(plugins, BAD_FILES_SUITE.format(data=str(data)), stem="badfiles")
    metrics = "dnsmos,pesq,stoi,estoi,si-sdr,speaker-sim"
    code = main(
        [
            "--plugins-dir",
            str(plugins),
            "run",
            "--model",
            "identity",
            "--suite",
            "test-bad-files",
            "--metrics",
            metrics,
            "--workers",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    outputs = {o.utterance_id: o for o in RunStore(tmp_path / "run").outputs()}
    assert set(outputs) == {"good-1", "empty", "nan", "short", "not-audio", "good-2"}
    for good in ("good-1", "good-2"):
        assert not outputs[good].errors
        assert all(v is not None for v in outputs[good].scores.values())
    names = list(outputs["good-1"].scores)
    expected_words = {"empty": "empty", "nan": "NaN", "not-audio": "cannot decode"}
    for bad, word in expected_words.items():
        assert all(outputs[bad].scores[n] is None for n in names), bad
        assert all(word in outputs[bad].errors[n] for n in names), outputs[bad].errors
    assert "not-audio.wav" in outputs["not-audio"].errors["pesq_wb"]
    # 0.1 s is too short for DNSMOS, PESQ, (E)STOI and speaker similarity: each says so
    # instead of inventing a score. SI-SDR is defined for any length and scores it.
    short = outputs["short"]
    too_short = [n for n in names if n != "si_sdr"]
    assert all(short.scores[n] is None for n in too_short)
    assert all("shorter than" in short.errors[n] for n in too_short), short.errors
    assert short.scores["si_sdr"] is not None
    # The table reports how many were scored, out of how many.
    assert "2/6" in captured.out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {s["output"]: s["n_scored"] for s in summary["summaries"]}["pesq_wb"] == 2
    assert "4 utterance(s) have failed outputs" in captured.out


def test_unknown_names_exit_2_with_suggestions(capsys, cache_env):
    assert main(["run", "--model", "wienr", "--suite", "synth-gsr"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'wienr'. Did you mean: wiener?" in err
    # One more line: the other ways to name a model, contributed by the plugins serving them.
    also = next(line for line in err.splitlines() if line.startswith("Also: "))
    assert "outputs:DIR" in also and "command" in also and "`gensr-bench ls models`" in also
    assert main(["run", "--model", "identity", "--suite", "synth-gsr", "--metrics", "pesqq"]) == 2
    err = capsys.readouterr().err
    assert "Unknown metric 'pesqq'. Did you mean: pesq?" in err
    assert "Available: " in err and ", dnsmos, " in err


def test_existing_run_is_not_overwritten_without_a_flag(tmp_path, capsys, cache_env):
    args = _toy_run_args(tmp_path / "r")
    assert main(args) == 0
    assert main(args) == 1
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_plugins_dir_from_env_reaches_worker_processes(tmp_path, capsys, monkeypatch, cache_env):
    monkeypatch.setenv("GENSR_BENCH_PLUGINS_DIR", str(TOY_PLUGINS))
    code = main(
        [
            "run",
            "--model",
            "test-echo",
            "--suite",
            "test-toy",
            "--metrics",
            "test-level",
            "--workers",
            "2",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, f"exit {code}\nstdout:\n{captured.out}\nstderr:\n{captured.err}"
    assert "8/8" in captured.out, f"stdout:\n{captured.out}\nstderr:\n{captured.err}"


def _toy_run_args(out: Path, *extra: str) -> list[str]:
    return [
        "--plugins-dir",
        str(TOY_PLUGINS),
        "run",
        "--model",
        "test-echo",
        "--suite",
        "test-toy",
        "--metrics",
        "test-level",
        "--workers",
        "1",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize("seed", ["-5", str(2**32)])
def test_run_refuses_an_out_of_range_seed_before_any_work(tmp_path, capsys, cache_env, seed):
    # Issue 19 point 6: --seed -5 scored every utterance, then crashed in the bootstrap and
    # left a run folder that refused a rerun.
    out = tmp_path / "r"
    assert main(_toy_run_args(out, "--seed", seed)) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and seed in err and "Traceback" not in err
    assert not out.exists()
    assert main(_toy_run_args(out, "--seed", "5")) == 0


def test_run_refuses_empty_metrics_and_resume_with_overwrite(tmp_path, capsys, cache_env):
    out = tmp_path / "r"
    args = _toy_run_args(out)
    for empty in ("", " , "):
        metrics_at = args.index("--metrics") + 1
        assert main([*args[:metrics_at], empty, *args[metrics_at + 1 :]]) == 2
        err = capsys.readouterr().err
        assert "--metrics" in err and "names no metric" in err
        assert not out.exists()
    assert main([*args, "--resume", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--resume and --overwrite contradict each other" in err
    assert not out.exists()
