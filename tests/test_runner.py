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

from gensr_bench.runner import (
    RunOptions,
    evaluate,
    run_suite,
)
from gensr_bench.store import RunStore, ScoreCache
from gensr_bench.testing import (
    EchoModel,
    LevelMetric,
    ListSuite,
    SnrMetric,
    ToySuite,
    noisy_utterance,
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


class _FolderEcho(EchoModel):
    """EchoModel that, like a model reading a folder of files, names the ones a run left out:
    here the ``a``..``e`` names that are not utterance ids of the run."""

    name = "test-folder-echo"

    def ignored_files(self, utterances):
        used = {uid for uid, _ in utterances}
        return [(f"{name}.wav", "unused") for name in "abcde" if name not in used]


def test_the_result_lists_the_files_the_model_ignored_over_every_session(tmp_path):
    utts = [noisy_utterance(uid, 0.5, seed=i) for i, uid in enumerate("abc")]
    options = RunOptions(use_cache=False)
    first = run_suite(_FolderEcho(), ListSuite(utts, limit=2), [LevelMetric()], tmp_path, options)
    assert first.model_ignored_files == (
        ("c.wav", "unused"),
        ("d.wav", "unused"),
        ("e.wav", "unused"),
    )
    resumed = run_suite(
        _FolderEcho(), ListSuite(utts, limit=2), [LevelMetric()], tmp_path,
        RunOptions(use_cache=False, resume=True),
    )  # fmt: skip
    assert resumed.model_ignored_files == first.model_ignored_files  # done ones count as used
    shard = run_suite(
        _FolderEcho(), ListSuite(utts), [LevelMetric()], tmp_path / "shard",
        RunOptions(use_cache=False, shard=(0, 2)),
    )  # fmt: skip
    assert shard.model_ignored_files == ()  # a shard cannot tell: the others hold the rest
    assert (
        run_suite(
            EchoModel(), ListSuite(utts), [LevelMetric()], tmp_path / "plain", options
        ).model_ignored_files
        == ()
    )
