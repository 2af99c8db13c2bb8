"""Runner behaviour: failure isolation, peak policy, workers, resume after SIGKILL, cache."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.errors import ConfigError, GensrError, StoreError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.runner import (
    BatchProcessor,
    RunOptions,
    collect_provenance,
    cpu_info,
    evaluate,
    merge_runs,
    parse_shard,
    run_suite,
)
from gensr_bench.store import RunStore, ScoreCache
from gensr_bench.testing import (
    EchoModel,
    LevelMetric,
    ListSuite,
    NoisyEchoModel,
    SnrMetric,
    ToySuite,
    noisy_utterance,
    run_rows,
)

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"


def _scores(outputs):
    return {o.utterance_id: dict(o.scores) for o in outputs}


def test_outputs_above_full_scale_are_peak_normalised_and_flagged(tmp_path):
    utts = [noisy_utterance("loud", 1.0, seed=1)]
    result = run_suite(
        EchoModel(gain=4.0),
        ListSuite(utts),
        [LevelMetric()],
        tmp_path / "run",
        RunOptions(use_cache=False),
    )
    assert result.n_utterances == 1
    (scored,) = list(RunStore(tmp_path / "run").outputs())
    gain = scored.flags["peak_normalised_gain"]
    peak = float(np.max(np.abs(utts[0].degraded.samples))) * 4.0
    assert gain == pytest.approx(1.0 / peak)
    expected = 10 * np.log10(np.mean((utts[0].degraded.samples * 4.0 * gain) ** 2))
    assert scored.scores["level_db"] == pytest.approx(expected, abs=1e-4)


class _Flaky(LevelMetric):
    """Raises for one utterance id, to check per-utterance isolation inside a batch."""

    name = "test-flaky"

    def score_batch(self, restorations, utterances):
        if any(r.utterance_id == "bad" for r in restorations):
            raise RuntimeError("cannot score 'bad'")
        return super().score_batch(restorations, utterances)


class _NanMetric(LevelMetric):
    name = "test-nan"

    def score_batch(self, restorations, utterances):
        return [{"level_db": float("nan")} for _ in restorations]


def test_metric_failure_is_isolated_to_its_utterance():
    utts = [noisy_utterance(uid, 1.0, seed=i) for i, uid in enumerate(["a", "bad", "c"])]
    processor = BatchProcessor(EchoModel(), [_Flaky(), SnrMetric()])
    results = {s.utterance_id: s for s, _ in processor.process(list(enumerate(utts)), seed=0)}
    assert results["bad"].scores["level_db"] is None
    assert "cannot score 'bad'" in results["bad"].errors["level_db"]
    assert results["bad"].scores["snr_db"] is not None  # the other metric still scored it
    assert results["a"].scores["level_db"] is not None
    assert results["c"].scores["level_db"] is not None
    assert not results["a"].errors


def test_non_finite_metric_value_becomes_none_with_error():
    processor = BatchProcessor(EchoModel(), [_NanMetric()])
    ((scored, cached),) = processor.process([(0, noisy_utterance("x", 1.0))], seed=0)
    assert scored.scores["level_db"] is None
    assert "non-finite" in scored.errors["level_db"]
    assert cached == {}  # failures are never cached


def test_missing_reference_is_an_error_not_a_score():
    utt = Utterance("noref", noisy_utterance().degraded)
    ((scored, _),) = BatchProcessor(EchoModel(), [SnrMetric(), LevelMetric()]).process(
        [(0, utt)], seed=0
    )
    assert scored.scores["snr_db"] is None
    assert "reference" in scored.errors["snr_db"]
    assert scored.scores["level_db"] is not None


def test_model_output_length_mismatch_is_trimmed_and_flagged():
    class Longer(EchoModel):
        name = "test-longer"

        def restore(self, batch, seed):
            return [
                Restoration(
                    u.id,
                    Audio(
                        np.concatenate([u.degraded.samples, np.zeros(160)]), u.degraded.sample_rate
                    ),
                    self.name,
                )
                for u in batch
            ]

    ((scored, _),) = BatchProcessor(Longer(), [SnrMetric()]).process(
        [(0, noisy_utterance("x", 1.0))], seed=0
    )
    assert scored.flags["length_trimmed_samples"] == 160
    assert scored.scores["snr_db"] is not None


def test_item_seed_independent_of_batching():
    assert item_seed(3, "a") == item_seed(3, "a")
    assert item_seed(3, "a") != item_seed(4, "a")
    assert item_seed(3, "a") != item_seed(3, "b")


def test_duplicate_utterance_ids_are_refused():
    utts = [noisy_utterance("same", 0.5), noisy_utterance("same", 0.5, seed=2)]
    with pytest.raises(Exception, match="occurs twice"):
        list(evaluate(EchoModel(), utts, [LevelMetric()]))


def test_two_workers_give_identical_scores_to_one(tmp_path):
    suite = ToySuite(size=6)
    one = run_suite(
        EchoModel(),
        suite,
        [LevelMetric(), SnrMetric()],
        tmp_path / "w1",
        RunOptions(workers=1, use_cache=False),
    )
    two = run_suite(
        EchoModel(),
        suite,
        [LevelMetric(), SnrMetric()],
        tmp_path / "w2",
        RunOptions(workers=2, batch_size=2, use_cache=False),
    )
    assert one.n_utterances == two.n_utterances == 6
    assert _scores(RunStore(tmp_path / "w1").outputs()) == _scores(
        RunStore(tmp_path / "w2").outputs()
    )


def test_cache_hits_return_the_same_scores_and_skip_the_metric(tmp_path):
    cache = ScoreCache(tmp_path / "cache.sqlite")
    utts = [noisy_utterance(f"u{i}", 1.0, seed=i) for i in range(3)]
    cold = list(evaluate(EchoModel(), utts, [LevelMetric(), SnrMetric()], cache=cache))
    warm = list(evaluate(EchoModel(), utts, [LevelMetric(), SnrMetric()], cache=cache))
    assert _scores(cold) == _scores(warm)
    assert all(o.flags.get("cached") == ["test-level", "test-snr"] for o in warm)
    assert all("cached" not in o.flags for o in cold)
    # A changed option is a different metric identity: no stale hit.
    other = list(evaluate(EchoModel(), utts, [LevelMetric(delay=0.0001)], cache=cache))
    assert all("cached" not in o.flags for o in other)


def _cli(args, env, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "gensr_bench.cli", "--plugins-dir", str(TOY_PLUGINS), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _rows(out_dir):
    """Scored rows so far; 0 while the store is still being created by the other process."""
    try:
        with sqlite3.connect(out_dir / "results.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "GENSR_BENCH_CACHE_DIR": str(tmp_path / "cache")}
    common = [
        "run",
        "--model",
        "test-echo",
        "--suite",
        "test-toy",
        "--suite-option",
        "size=12",
        "--metrics",
        "test-level,test-snr",
        "--metric-option",
        "test-level.delay=0.15",
        "--workers",
        "1",
        "--batch-size",
        "1",
        "--no-cache",
    ]
    full = _cli([*common, "--out", str(tmp_path / "full")], env)
    killed = _cli([*common, "--out", str(tmp_path / "killed")], env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (tmp_path / "killed" / "results.sqlite").exists() and _rows(tmp_path / "killed") >= 5:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    partial = _rows(tmp_path / "killed")
    assert 5 <= partial < 12, "the kill should land halfway through the run"
    resumed = _cli([*common, "--out", str(tmp_path / "killed"), "--resume"], env)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    full.communicate(timeout=120)
    assert full.returncode == 0
    a = [json.loads(line) for line in (tmp_path / "full" / "scores.jsonl").read_text().splitlines()]
    b = [
        json.loads(line) for line in (tmp_path / "killed" / "scores.jsonl").read_text().splitlines()
    ]
    assert [r["utterance_id"] for r in b] == [f"toy-{i:03d}" for i in range(12)]  # no gaps, no dups
    assert [r["scores"] for r in a] == [r["scores"] for r in b]
    sessions = RunStore(tmp_path / "killed").get_info("sessions")
    assert [s["already_done"] for s in sessions] == [0, partial]


class _BrokenSetup(LevelMetric):
    name = "test-broken-setup"
    calls = 0

    def setup(self):
        type(self).calls += 1
        raise FileNotFoundError("weights file /nowhere/w.bin is missing")


def test_setup_failure_is_none_with_error_for_that_metric_only():
    processor = BatchProcessor(EchoModel(), [_BrokenSetup(), SnrMetric()])
    utts = [noisy_utterance(f"u{i}", 0.5, seed=i) for i in range(3)]
    results = [s for s, _ in processor.process(list(enumerate(utts)), seed=0)]
    results += [s for s, _ in processor.process([(3, noisy_utterance("u3", 0.5))], seed=0)]
    assert all(r.scores["level_db"] is None for r in results)
    assert all("/nowhere/w.bin is missing" in r.errors["level_db"] for r in results)
    assert all(r.scores["snr_db"] is not None for r in results)
    assert _BrokenSetup.calls == 1  # remembered, not retried for every batch


def test_fully_cached_rerun_sets_nothing_up(tmp_path):
    class Counting(LevelMetric):
        name = "test-counting"
        setups = 0

        def setup(self):
            type(self).setups += 1

    cache = ScoreCache(tmp_path / "cache.sqlite")
    utts = [noisy_utterance(f"u{i}", 0.5, seed=i) for i in range(2)]
    list(evaluate(EchoModel(), utts, [Counting()], cache=cache))
    list(evaluate(EchoModel(), utts, [Counting()], cache=cache))
    assert Counting.setups == 1


def test_run_hooks_are_called_with_the_run_and_its_result(tmp_path):
    from gensr_bench.plugins import get_plugin_manager
    from gensr_bench.testing import write_plugin_file

    log = tmp_path / "hooks.log"
    plugins = tmp_path / "plugins"
    write_plugin_file(
        plugins,
        f"""
        from gensr_bench import hookimpl

        @hookimpl
        def gensr_run_started(run):
            with open({str(log)!r}, "a") as f:
                f.write("started " + run["config"]["suite"]["name"] + "\\n")

        @hookimpl
        def gensr_run_finished(run, result):
            with open({str(log)!r}, "a") as f:
                f.write(f"finished {{result.n_utterances}}\\n")
    """,
    )
    pm = get_plugin_manager(plugins_dirs=[plugins], entry_points=False)
    run_suite(
        EchoModel(),
        ToySuite(size=3),
        [LevelMetric()],
        tmp_path / "run",
        RunOptions(use_cache=False),
        pm=pm,
    )
    assert log.read_text().splitlines() == ["started test-toy", "finished 3"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["provenance"]["suite_fingerprint"] == ToySuite(size=3).fingerprint()
    assert summary["provenance"]["components"]["model"]["name"] == "test-echo"
    assert "machine" in summary["provenance"] and "gensr_bench_version" in summary["provenance"]


def test_transcript_is_part_of_the_cache_key_for_metrics_that_use_it(tmp_path):
    from dataclasses import replace

    class WordCount(LevelMetric):
        """Number of words in the transcript (depends on text, not audio)."""

        name = "test-words"
        uses_transcript = True
        outputs = ("words",)

        def score_batch(self, restorations, utterances):
            return [{"words": float(len(u.transcript.split()))} for u in utterances]

    cache = ScoreCache(tmp_path / "cache.sqlite")
    base = noisy_utterance("a", 0.5)
    one = [replace(base, transcript="one two")]
    two = [replace(base, id="b", transcript="one two three")]
    first = list(evaluate(EchoModel(), one, [WordCount()], cache=cache))
    second = list(evaluate(EchoModel(), two, [WordCount()], cache=cache))
    assert first[0].scores["words"] == 2.0
    assert second[0].scores["words"] == 3.0  # same audio, other text: no stale cache hit


def test_a_broken_reference_only_fails_the_metrics_that_need_it():
    utt = noisy_utterance("x", 1.0)
    bad_reference = utt.reference.samples.copy()
    bad_reference[10] = np.nan
    from dataclasses import replace

    broken = replace(utt, reference=Audio(bad_reference, 16000))
    ((scored, _),) = BatchProcessor(EchoModel(), [LevelMetric(), SnrMetric()]).process(
        [(0, broken)], seed=0
    )
    assert scored.scores["level_db"] is not None
    assert scored.scores["snr_db"] is None
    assert "reference of 'x' contains 1 NaN/Inf" in scored.errors["snr_db"]


def test_resampling_for_model_and_metrics_is_recorded():
    class NativeLevel(LevelMetric):
        """Scores at the reference's own rate."""

        name = "test-native-level"
        sample_rate = None

    utt = noisy_utterance("hi", 1.0, sample_rate=44100)
    ((scored, _),) = BatchProcessor(EchoModel(), [SnrMetric(), NativeLevel()]).process(
        [(0, utt)], seed=0
    )
    # The model runs at 16 kHz; SNR scores at 16 kHz (no change); the native-rate metric
    # scores the 16-kHz output back at the reference's 44.1 kHz.
    assert scored.flags["resampled"] == {
        "model": "44100->16000",
        "test-native-level": "16000->44100",
    }
    assert scored.scores["snr_db"] is not None and scored.scores["level_db"] is not None


@pytest.mark.parametrize("workers", [1, 2])
def test_save_audio_keeps_each_scored_output(tmp_path, workers):
    from gensr_bench.audio import read_audio
    from gensr_bench.runner import audio_file_name

    utts = [noisy_utterance("plain", 0.3, seed=1), noisy_utterance("odd/id:1", 0.3, seed=2)]
    run_suite(
        EchoModel(gain=4.0),
        ListSuite(utts),
        [LevelMetric()],
        tmp_path / "run",
        RunOptions(use_cache=False, save_audio=True, workers=workers, batch_size=1),
    )
    for scored, utt in zip(RunStore(tmp_path / "run").outputs(), utts, strict=True):
        name = scored.flags["audio"]
        assert name == audio_file_name(utt.id)
        saved = read_audio(tmp_path / "run" / "audio" / name)
        # What was saved is what was scored: the peak-normalised output.
        expected = utt.degraded.samples * 4.0 * scored.flags["peak_normalised_gain"]
        np.testing.assert_allclose(saved.samples, expected, atol=1e-6)
        level = 10 * np.log10(np.mean(saved.samples.astype(np.float64) ** 2))
        assert scored.scores["level_db"] == pytest.approx(level, abs=1e-4)
    assert audio_file_name("plain") == "plain.wav"
    assert audio_file_name("odd/id:1") != audio_file_name("odd_id_1")
    assert "/" not in audio_file_name("../x") and not audio_file_name("../x").startswith(".")


def test_without_save_audio_nothing_is_written(tmp_path):
    run_suite(
        EchoModel(),
        ListSuite([noisy_utterance("a", 0.3, seed=1)]),
        [LevelMetric()],
        tmp_path / "run",
        RunOptions(use_cache=False),
    )
    assert not (tmp_path / "run" / "audio").exists()
    (scored,) = RunStore(tmp_path / "run").outputs()
    assert "audio" not in scored.flags


def test_metric_errors_name_the_metric_once() -> None:
    from gensr_bench.runner import prefixed

    assert prefixed("speaker-sim", "no speech") == "speaker-sim: no speech"
    assert prefixed("speaker-sim", "speaker-sim: no speech") == "speaker-sim: no speech"
    assert prefixed("speaker-sim", "speaker-sim: speaker-sim: x") == "speaker-sim: x"
    assert prefixed("pesq", "speaker-sim: x") == "pesq: speaker-sim: x"


# -- shards and merge --------------------------------------------------------------------


def _comparable(run_dir: Path) -> tuple[list[tuple[str, int, dict, dict, dict]], list[dict]]:
    """What must not differ between one run and its merged shards: rows and summaries."""
    rows = run_rows(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    return rows, summary["summaries"]


def _shard_runs(tmp_path: Path, count: int, **options) -> list[Path]:
    suite = ToySuite(size=11)
    dirs = []
    for index in range(count):
        out = tmp_path / f"shard{index}"
        run_suite(
            NoisyEchoModel(noise=0.05),
            suite,
            [LevelMetric(), SnrMetric()],
            out,
            RunOptions(use_cache=False, shard=(index, count), **options),
        )
        dirs.append(out)
    return dirs


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", (0, 1)), ("2/3", (2, 3)), (" 1 / 4 ", (1, 4))]
)
def test_parse_shard_reads_i_of_n(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("3/3", "out of range"),
        ("1/0", "out of range"),
        ("a/2", "i/N"),
        ("1", "i/N"),
        ("-1/2", "i/N"),
    ],
)
def test_parse_shard_names_the_bad_value(text, hint):
    with pytest.raises(ConfigError, match=hint) as caught:
        parse_shard(text)
    assert repr(text) in str(caught.value)


def test_shards_split_the_suite_round_robin_and_merge_into_the_single_run(tmp_path):
    whole = tmp_path / "whole"
    run_suite(
        NoisyEchoModel(noise=0.05),
        ToySuite(size=11),
        [LevelMetric(), SnrMetric()],
        whole,
        RunOptions(use_cache=False, batch_size=3),
    )
    shards = _shard_runs(tmp_path, 3, batch_size=2)
    sizes = [RunStore(d).count() for d in shards]
    assert sizes == [4, 4, 3]
    assert {o.index % 3 for o in RunStore(shards[1]).outputs()} == {1}
    result = merge_runs(list(reversed(shards)), tmp_path / "merged")
    assert result.n_utterances == 11
    assert _comparable(tmp_path / "merged") == _comparable(whole)
    merged_store = RunStore(tmp_path / "merged")
    assert merged_store.get_info("config") == RunStore(whole).get_info("config")
    assert merged_store.get_info("status") == "finished"
    assert len(merged_store.get_info("provenance")["merged_from"]) == 3


def test_merge_refuses_incomplete_overlapping_or_foreign_shards(tmp_path):
    shards = _shard_runs(tmp_path, 3)
    with pytest.raises(ConfigError, match="shard\\(s\\) 2/3 missing"):
        merge_runs(shards[:2], tmp_path / "m1")
    with pytest.raises(ConfigError, match="given twice"):
        merge_runs([shards[0], shards[0], shards[1], shards[2]], tmp_path / "m2")
    other = tmp_path / "other"
    run_suite(
        NoisyEchoModel(noise=0.2),
        ToySuite(size=11),
        [LevelMetric(), SnrMetric()],
        other,
        RunOptions(use_cache=False, shard=(2, 3)),
    )
    with pytest.raises(ConfigError, match=r"different run .*'model'"):
        merge_runs([shards[0], shards[1], other], tmp_path / "m3")
    two = _shard_runs(tmp_path / "two", 2)
    with pytest.raises(ConfigError, match="same N"):
        merge_runs([shards[0], two[1]], tmp_path / "m4")
    whole = tmp_path / "whole"
    run_suite(EchoModel(), ToySuite(size=3), [LevelMetric()], whole, RunOptions(use_cache=False))
    with pytest.raises(ConfigError, match="not a shard"):
        merge_runs([whole], tmp_path / "m5")
    store = RunStore(shards[2])
    store.db  # noqa: B018 - open it
    store.set_info("status", "running")
    store.close()
    with pytest.raises(ConfigError, match=r"not finished.*--resume"):
        merge_runs(shards, tmp_path / "m6")


def test_a_shard_resumes_only_as_the_same_shard(tmp_path):
    (first,) = _shard_runs(tmp_path, 1)
    with pytest.raises(StoreError, match="differs in \\['shard'\\]"):
        run_suite(
            NoisyEchoModel(noise=0.05),
            ToySuite(size=11),
            [LevelMetric(), SnrMetric()],
            first,
            RunOptions(use_cache=False, shard=(0, 2), resume=True),
        )


def test_cli_shards_and_merge_with_saved_audio(tmp_path):
    from gensr_bench.testing import invoke_cli

    common = ["--plugins-dir", str(TOY_PLUGINS), "run", "--suite", "test-toy", "--suite-option"]
    common += ["size=5", "--model", "test-noisy-echo", "--metrics", "test-level,test-snr"]
    common += ["--workers", "1", "--save-audio"]
    whole = invoke_cli([*common, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.stdout
    for index in range(2):
        part = invoke_cli([*common, "--shard", f"{index}/2", "--out", str(tmp_path / f"s{index}")])
        assert part.exit_code == 0, part.stdout
    merged = invoke_cli(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "merge",
            str(tmp_path / "s0"),
            str(tmp_path / "s1"),
            "--out",
            str(tmp_path / "merged"),
        ]
    )
    assert merged.exit_code == 0, merged.stdout
    assert "merged 2 shards: 5 utterances" in merged.stdout
    assert _comparable(tmp_path / "merged") == _comparable(tmp_path / "whole")
    wavs = sorted(p.name for p in (tmp_path / "merged" / "audio").glob("*.wav"))
    assert wavs == sorted(p.name for p in (tmp_path / "whole" / "audio").glob("*.wav"))
    assert len(wavs) == 5
    bad = invoke_cli([*common, "--shard", "2/2", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2
    assert "'2/2' is out of range" in bad.stdout + bad.stderr
    missing = invoke_cli(["merge", str(tmp_path / "s0"), "--out", str(tmp_path / "m")])
    assert missing.exit_code == 1
    assert "shard(s) 1/2 missing" in missing.stdout + missing.stderr


def test_merge_on_a_full_disk_says_so_and_a_rerun_with_overwrite_completes(tmp_path, monkeypatch):
    import errno
    import os
    import shutil

    from gensr_bench.errors import DiskFullError

    shards = _shard_runs(tmp_path, 2, save_audio=True)
    copied = [0]
    real_copy2 = shutil.copy2

    def copy2_until_full(source, destination, **kwargs):
        if copied[0] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        copied[0] += 1
        return real_copy2(source, destination, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy2_until_full)
    with pytest.raises(DiskFullError) as caught:
        merge_runs(shards, tmp_path / "merged")
    assert caught.value.folder == str(tmp_path / "merged" / "audio")
    assert "rerun the merge with --overwrite" in str(caught.value)
    monkeypatch.undo()  # space freed
    merge_runs(shards, tmp_path / "merged", overwrite=True)
    merge_runs(shards, tmp_path / "fresh")
    assert _comparable(tmp_path / "merged") == _comparable(tmp_path / "fresh")
    assert len(list((tmp_path / "merged" / "audio").glob("*.wav"))) == 11


class _ReturnsValue(LevelMetric):
    """Returns the value given as option ``value`` for every utterance (any type)."""

    name = "test-returns"
    accepted_options = ("value",)

    def score_batch(self, restorations, utterances):
        return [{"level_db": self.options["value"]} for _ in restorations]


@pytest.mark.parametrize(
    "value",
    ["4.5", True, False, np.bool_(True), None, [1.0], np.array([2.0]), b"3"],
    ids=["str", "true", "false", "numpy-bool", "none", "list", "array", "bytes"],
)
def test_a_value_that_is_not_a_real_number_is_an_error_naming_metric_and_type(value):
    processor = BatchProcessor(EchoModel(), [_ReturnsValue(value=value)])
    ((scored, cached),) = processor.process([(0, noisy_utterance("x", 1.0))], seed=0)
    assert scored.scores["level_db"] is None
    error = scored.errors["level_db"]
    assert error.startswith("test-returns: ")
    assert f"type {type(value).__name__} " in error
    assert cached == {}  # a refused value is never cached


@pytest.mark.parametrize(
    "value", [3, 2.5, np.int64(3), np.int8(-2), np.float32(2.5), np.float64(-1.25)]
)
def test_python_and_numpy_ints_and_floats_are_scores(value):
    processor = BatchProcessor(EchoModel(), [_ReturnsValue(value=value)])
    ((scored, _),) = processor.process([(0, noisy_utterance("x", 1.0))], seed=0)
    assert scored.errors == {}
    assert scored.scores["level_db"] == float(value)
    assert type(scored.scores["level_db"]) is float


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while the folder was read
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited: this container's init may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists processes from /proc")
def test_workers_exit_when_the_run_is_killed(tmp_path):
    env = {**os.environ, "GENSR_BENCH_CACHE_DIR": str(tmp_path / "cache")}
    args = ["run", "--model", "test-echo", "--suite", "test-toy", "--suite-option", "size=40"]
    args += ["--metrics", "test-level", "--metric-option", "test-level.delay=0.5"]
    args += ["--metric-option", f'test-level.setup_log="{tmp_path}"', "--workers", "2"]
    args += ["--batch-size", "1", "--no-cache", "--out", str(tmp_path / "run")]
    run = _cli(args, env)
    children: set[int] = set()
    try:
        log = tmp_path / "setup.log"
        deadline = time.monotonic() + 120
        # until both workers are busy with their metric, so each holds its model and metrics
        while time.monotonic() < deadline and run.poll() is None:
            children |= _children(run.pid)  # the workers and multiprocessing's resource tracker
            if log.exists() and len(log.read_text().split()) >= 2:
                break
            time.sleep(0.05)
        children |= _children(run.pid)
        workers = {int(pid) for pid in log.read_text().split()}
        assert len(workers) == 2 and workers <= children, (workers, children)
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_alive, children)):
            time.sleep(0.1)
        survivors = {pid for pid in children if _alive(pid)}
        assert not survivors, f"processes of the killed run still alive 10 s later: {survivors}"
    finally:
        run.kill()
        run.wait()
        for pid in children:  # never leave orphans behind, even when the test fails
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_components_that_cannot_reach_workers_are_a_clear_error():
    class Unpicklable(LevelMetric):  # defined in a function: no module can import it
        name = "test-unpicklable"

    utterances = [noisy_utterance(f"u{i}", 0.5, 10.0, seed=i) for i in range(2)]
    with pytest.raises(GensrError, match="cannot be sent to worker processes") as info:
        list(evaluate(EchoModel(), utterances, [Unpicklable()], workers=2))
    assert "--workers 1" in str(info.value) and "Unpicklable" in str(info.value)


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni \
avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu sse2
"""


def test_cpu_info_names_the_model_and_its_numeric_instruction_sets() -> None:
    cpu = cpu_info(CPUINFO)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["flags"] == sorted(cpu["flags"])
    assert {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"} <= set(cpu["flags"])
    assert not {"fpu", "sse2", "sha_ni"} & set(cpu["flags"])  # no bearing on float rounding


def test_cpu_info_does_not_import_torch_for_its_capability(monkeypatch) -> None:
    import torch

    assert cpu_info(CPUINFO)["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    monkeypatch.delitem(sys.modules, "torch")
    assert cpu_info(CPUINFO)["torch_capability"] is None
    assert "torch" not in sys.modules


def test_cpu_info_without_proc_cpuinfo_falls_back_to_the_platform(monkeypatch) -> None:
    import platform

    monkeypatch.setattr(platform, "processor", lambda: "x86_64")
    cpu = cpu_info("")
    assert cpu["model"] == "x86_64" and cpu["flags"] == []


def test_provenance_records_the_cpu_and_the_models_waveform_tolerance() -> None:
    class Declared(EchoModel):
        waveform_tolerance = 2.5e-7

    provenance = collect_provenance(None, Declared(), ToySuite(size=1), [], seed=0)
    assert provenance["components"]["model"]["waveform_tolerance"] == 2.5e-7
    cpu = provenance["machine"]["cpu"]
    assert set(cpu) == {"model", "flags", "torch_capability"}
    assert isinstance(cpu["flags"], list) and all(isinstance(f, str) for f in cpu["flags"])
    if Path("/proc/cpuinfo").is_file():
        assert cpu["model"] == cpu_info()["model"] and cpu["model"]
    undeclared = collect_provenance(None, EchoModel(), ToySuite(size=1), [], seed=0)
    assert undeclared["components"]["model"]["waveform_tolerance"] is None


class _Interrupted(Exception):
    """Stands for any error after the run has started scoring."""


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, _Interrupted])
def test_an_interrupted_run_closes_its_score_cache_and_store(tmp_path, monkeypatch, interrupt):
    import gensr_bench.runner as runner_module
    import gensr_bench.store as store_module

    caches: list[ScoreCache] = []
    stores: list[RunStore] = []

    class RecordedCache(ScoreCache):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            caches.append(self)

    class RecordedStore(RunStore):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(runner_module, "ScoreCache", RecordedCache)
    monkeypatch.setattr(store_module, "RunStore", RecordedStore)
    seen = []

    def stop_after_the_first(scored):
        seen.append(scored)
        raise interrupt("stopped mid-run")

    with pytest.raises(interrupt):
        run_suite(
            EchoModel(),
            ListSuite([noisy_utterance(f"u{i}", 1.0, seed=i) for i in range(4)]),
            [LevelMetric()],
            tmp_path / "run",
            RunOptions(batch_size=1, cache_path=str(tmp_path / "cache.sqlite")),
            on_output=stop_after_the_first,
        )
    assert len(seen) == 1
    (cache,), (store,) = caches, stores
    assert cache._db is None and store._db is None  # both connections closed
    # The utterance committed before the interruption stays, and the cache holds its score.
    assert RunStore(tmp_path / "run").count() == 1
    with ScoreCache(tmp_path / "cache.sqlite") as reopened:
        assert len(reopened.db.execute("SELECT key FROM scores").fetchall()) == 1
