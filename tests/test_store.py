"""Tests of gensr_bench.store: the per-run SQLite store, resume rules, score cache, exports."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gensr_bench import store as store_module
from gensr_bench.errors import DiskFullError, StoreError
from gensr_bench.records import MetricSummary, RunResult, ScoredOutput
from gensr_bench.runner import RunOptions, run_suite
from gensr_bench.store import (
    CACHE_ENV,
    RUN_DB,
    RunStore,
    ScoreCache,
    read_run,
    write_exports,
)
from gensr_bench.testing import (
    CliResult,
    EchoModel,
    LevelMetric,
    ListSuite,
    invoke_cli,
    run_rows,
    scored_output,
    tiny_utterances,
)

CONFIG: dict[str, Any] = {
    "model": "test-echo",
    "suite": "test-toy",
    "metrics": ("test-level", "test-snr"),  # a tuple comes back from JSON as a list
    "seed": 0,
}


def rich_output(index: int) -> ScoredOutput:
    """An output using every field, with a failed score."""
    return ScoredOutput(
        utterance_id=f"utt-{index}",
        index=index,
        scores={"level_db": -10.5 - index, "snr_db": None},
        errors={"snr_db": "reference is missing"},
        meta={"degradation": "noise", "snr_db": 5.0},
        flags={"peak_normalised_gain": 0.5, "cached": ["test-level"]},
        timings={"restore": 0.01, "test-level": 0.002},
    )


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    run = RunStore(tmp_path / "run")
    run.create(CONFIG, resume=False, overwrite=False)
    return run


def test_round_trip_returns_outputs_in_index_order(store: RunStore) -> None:
    written = [rich_output(i) for i in (2, 0, 3, 1)]
    for output in written:
        store.write(output)

    read = list(store.outputs())

    assert [o.index for o in read] == [0, 1, 2, 3]
    assert read == sorted(written, key=lambda o: o.index)
    assert store.count() == 4
    assert store.done_ids() == {"utt-0", "utt-1", "utt-2", "utt-3"}
    assert (store.out_dir / RUN_DB).is_file()


def test_create_records_the_config(store: RunStore) -> None:
    assert store.get_info("config") == {**CONFIG, "metrics": ["test-level", "test-snr"]}
    assert store.get_info("schema") == 1
    assert store.get_info("nothing") is None


def test_writing_an_utterance_again_replaces_it(store: RunStore) -> None:
    store.write(scored_output(0, {"level_db": 1.0}))
    store.write(scored_output(0, {"level_db": 2.0}))
    assert store.count() == 1
    assert [o.scores for o in store.outputs()] == [{"level_db": 2.0}]


def test_resume_with_the_same_config_keeps_finished_utterances(store: RunStore) -> None:
    store.write(rich_output(0))
    store.write(rich_output(1))
    store.close()

    resumed = RunStore(store.out_dir)
    resumed.create(dict(CONFIG), resume=True, overwrite=False)

    assert resumed.done_ids() == {"utt-0", "utt-1"}
    resumed.write(rich_output(2))
    assert [o.index for o in resumed.outputs()] == [0, 1, 2]


def test_an_existing_run_is_refused_without_resume(store: RunStore) -> None:
    store.write(rich_output(0))
    store.close()

    with pytest.raises(StoreError) as info:
        RunStore(store.out_dir).create(CONFIG, resume=False, overwrite=False)

    message = str(info.value)
    assert str(store.out_dir) in message
    assert "1 utterances scored" in message
    assert "--resume" in message and "--overwrite" in message
    assert RunStore(store.out_dir).count() == 1  # nothing was lost


def test_resume_with_a_different_config_names_the_differing_keys(store: RunStore) -> None:
    store.close()
    changed = {**CONFIG, "model": "other", "seed": 1, "limit": 4}

    with pytest.raises(StoreError) as info:
        RunStore(store.out_dir).create(changed, resume=True, overwrite=False)

    message = str(info.value)
    assert "['limit', 'model', 'seed']" in message
    assert "'suite'" not in message and "'metrics'" not in message
    assert "--overwrite" in message


def test_overwrite_replaces_an_existing_run(store: RunStore) -> None:
    store.write(rich_output(0))
    store.close()
    changed = {**CONFIG, "seed": 7}

    replaced = RunStore(store.out_dir)
    replaced.create(changed, resume=False, overwrite=True)

    assert replaced.count() == 0
    assert replaced.get_info("config")["seed"] == 7


def test_reading_a_folder_without_a_store_explains_itself(tmp_path: Path) -> None:
    missing = RunStore(tmp_path / "empty")
    assert not missing.exists()
    with pytest.raises(StoreError, match=r"no results store at .*--out folder"):
        list(missing.outputs())


def _is_closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return True
    return False


def test_a_run_store_closes_when_its_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="mid-run"), RunStore(tmp_path / "run") as store:
        store.create(CONFIG, resume=False, overwrite=False)
        store.write(rich_output(0))
        connection = store.db
        raise RuntimeError("mid-run")
    assert _is_closed(connection)
    assert RunStore(tmp_path / "run").count() == 1  # what was written before stays


def test_closing_a_run_store_twice_is_harmless(store: RunStore) -> None:
    connection = store.db
    with store:
        pass
    store.close()
    assert _is_closed(connection)
    assert store.count() == 0  # a closed store opens again when used


def _finished_run(tmp_path: Path, n: int = 3) -> Path:
    out = tmp_path / "finished"
    run_suite(
        EchoModel(),
        ListSuite(tiny_utterances(n)),
        [LevelMetric()],
        out,
        RunOptions(use_cache=False),
    )
    return out


def _recording_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    opened: list[sqlite3.Connection] = []
    connect = store_module._connect

    def recording(path: Path, **kwargs: Any) -> sqlite3.Connection:
        opened.append(connect(path, **kwargs))
        return opened[-1]

    monkeypatch.setattr(store_module, "_connect", recording)
    return opened


def test_read_run_reads_a_finished_run_and_closes_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _finished_run(tmp_path)
    with RunStore(out) as store:
        expected = list(store.outputs())
        config = store.get_info("config")
    opened = _recording_connections(monkeypatch)

    run = read_run(out)

    assert opened and all(_is_closed(c) for c in opened)
    assert run.out_dir == out
    assert run.config == config
    assert run.status == "finished"
    assert run.count == 3
    assert list(run.outputs) == expected
    assert [o.index for o in run.outputs] == [0, 1, 2]
    assert run.provenance is not None and "gensr_bench_version" in run.provenance
    assert run.sessions is not None and len(run.sessions) == 1


def test_read_run_without_outputs_only_counts_them(tmp_path: Path) -> None:
    run = read_run(_finished_run(tmp_path, n=2), outputs=False)
    assert run.outputs == ()
    assert run.count == 2
    assert run.status == "finished"


def test_read_run_of_an_unfinished_run_has_no_status(store: RunStore) -> None:
    store.write(rich_output(0))
    run = read_run(store.out_dir)
    assert run.status is None
    assert run.config is not None and run.config["seed"] == 0
    assert run.outputs == (rich_output(0),)


def test_read_run_of_a_folder_without_a_run_explains_itself(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no results store at .*--out folder"):
        read_run(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()  # reading creates nothing


# --- the score cache ----------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> ScoreCache:
    return ScoreCache(tmp_path / "cache" / "scores.sqlite")


def test_cache_get_and_put(cache: ScoreCache) -> None:
    key = ScoreCache.key("test-snr|1||16000", "out-hash", "ref-hash")
    assert cache.get(key) is None

    cache.put_many({key: {"snr_db": 12.5}})
    cache.put_many({})  # a no-op

    assert cache.get(key) == {"snr_db": 12.5}
    cache.close()
    assert ScoreCache(cache.path).get(key) == {"snr_db": 12.5}  # persisted


def test_a_score_cache_closes_when_its_block_raises_and_closing_twice_is_harmless(
    cache: ScoreCache,
) -> None:
    with pytest.raises(KeyboardInterrupt), cache:
        cache.put_many({"a": {"v": 1.0}})
        connection = cache.db
        raise KeyboardInterrupt
    assert _is_closed(connection)
    cache.close()
    with cache:
        assert cache.get("a") == {"v": 1.0}  # a closed cache opens again when used


def test_cache_key_changes_with_each_component() -> None:
    base = ("test-snr|1||16000", "a" * 64, "b" * 64)
    keys = {
        ScoreCache.key(*base),
        ScoreCache.key("test-snr|2||16000", base[1], base[2]),
        ScoreCache.key(base[0], "c" * 64, base[2]),
        ScoreCache.key(base[0], base[1], "c" * 64),
        ScoreCache.key(base[0], base[1], None),
    }
    assert len(keys) == 5
    assert ScoreCache.key(*base) == ScoreCache.key(*base)


def test_pickling_a_cache_drops_the_connection_and_still_works(cache: ScoreCache) -> None:
    key = ScoreCache.key("m", "o", None)
    cache.put_many({key: {"v": 1.0}})
    assert cache._db is not None

    clone = pickle.loads(pickle.dumps(cache))

    assert clone._db is None
    assert clone.path == cache.path
    assert clone.get(key) == {"v": 1.0}
    clone.put_many({ScoreCache.key("m", "o2", None): {"v": 2.0}})
    assert cache.get(ScoreCache.key("m", "o2", None)) == {"v": 2.0}  # the original still works


def test_cache_location_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "from-env"))
    assert ScoreCache().path == tmp_path / "from-env" / "scores.sqlite"


# --- exports ------------------------------------------------------------------------------


def test_write_exports_writes_summary_and_scores(store: RunStore) -> None:
    for index in (1, 0):
        store.write(rich_output(index))
    result = RunResult(
        run_id="run-1",
        config=CONFIG,
        provenance={"gensr_bench": "0.1.0"},
        summaries=(
            MetricSummary("level_db", -11.0, -11.4, -10.6, 2, 2, True),
            MetricSummary("snr_db", None, None, None, 0, 2, True),
        ),
        n_utterances=2,
    )

    summary_path, scores_path = write_exports(store, result)

    summary = json.loads(summary_path.read_text())
    assert summary["run_id"] == "run-1"
    assert summary["n_utterances"] == 2
    assert summary["config"]["metrics"] == ["test-level", "test-snr"]
    assert summary["summaries"][1] == {
        "output": "snr_db",
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "n_scored": 0,
        "n_total": 2,
        "higher_is_better": True,
    }
    lines = [json.loads(line) for line in scores_path.read_text().splitlines()]
    assert [line["utterance_id"] for line in lines] == ["utt-0", "utt-1"]
    assert lines[0]["scores"] == {"level_db": -10.5, "snr_db": None}
    assert lines[0]["errors"] == {"snr_db": "reference is missing"}
    assert sorted(p.name for p in store.out_dir.iterdir() if "tmp" in p.name) == []


def _open_cache_and_write(path: str, start: float, index: int) -> str:
    while time.time() < start:  # every process opens the new file at the same moment
        time.sleep(0.0005)
    cache = ScoreCache(path)
    cache.put_many({f"key-{index}": {"v": float(index)}})
    value = cache.get(f"key-{index}")
    cache.close()
    return json.dumps(value)


def test_cache_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    import concurrent.futures as cf
    import multiprocessing

    for round_ in range(3):
        path = str(tmp_path / f"round{round_}" / "scores.sqlite")
        with cf.ProcessPoolExecutor(6, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(time.sleep, 0).result()
            start = time.time() + 2.0
            futures = [pool.submit(_open_cache_and_write, path, start, i) for i in range(6)]
            values = [json.loads(f.result()) for f in futures]
        assert values == [{"v": float(i)} for i in range(6)]


# --- a full disk ----------------------------------------------------------------------------

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"
NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullAfter:
    """A SQLite connection that fails as a full disk does once ``rows`` more rows went in."""

    def __init__(self, connection: sqlite3.Connection, rows: int) -> None:
        self.connection, self.rows = connection, rows

    def _spend(self, sql: str) -> None:
        if sql.lstrip().upper().startswith("INSERT"):
            if self.rows <= 0:
                raise sqlite3.OperationalError("database or disk is full")
            self.rows -= 1

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._spend(sql)
        return self.connection.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._spend(sql)
        return self.connection.executemany(sql, *args)

    def __enter__(self) -> Any:
        return self.connection.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.connection.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


def test_a_full_disk_while_writing_a_row_raises_disk_full_and_keeps_earlier_rows(
    store: RunStore,
) -> None:
    store.write(rich_output(0))
    store.write(rich_output(1))
    store._db = FullAfter(store.db, rows=0)  # type: ignore[assignment]
    with pytest.raises(DiskFullError) as caught:
        store.write(rich_output(2))
    error = caught.value
    assert isinstance(error, StoreError) and error.folder == str(store.out_dir)
    message = str(error)
    assert str(store.out_dir) in message and "disk is full" in message and "--resume" in message
    assert "\n" not in message
    with pytest.raises(DiskFullError):
        store.set_info("status", "finished")
    store.close()
    reopened = RunStore(store.out_dir)
    assert [o.utterance_id for o in reopened.outputs()] == ["utt-0", "utt-1"]
    assert next(reopened.outputs()) == rich_output(0)
    assert reopened.get_info("status") is None
    reopened.close()


def test_other_sqlite_errors_are_not_called_a_full_disk(store: RunStore) -> None:
    class Locked(FullAfter):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("database is locked")

    store._db = Locked(store.db, rows=0)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.write(rich_output(0))


def test_a_full_disk_under_the_score_cache_names_it_and_the_ways_around(
    cache: ScoreCache,
) -> None:
    cache.put_many({"a": {"v": 1.0}})
    cache._db = FullAfter(cache.db, rows=0)  # type: ignore[assignment]
    with pytest.raises(DiskFullError) as caught:
        cache.put_many({"b": {"v": 2.0}})
    assert caught.value.folder == str(cache.path.parent)
    assert "--no-cache" in str(caught.value) and CACHE_ENV in str(caught.value)
    cache.close()
    assert ScoreCache(cache.path).get("a") == {"v": 1.0}


def test_a_full_disk_while_exporting_keeps_the_previous_exports(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(rich_output(0))
    result = RunResult("run-1", CONFIG, {}, (), 1)
    summary_path, scores_path = write_exports(store, result)
    before = summary_path.read_text(), scores_path.read_text()
    store.write(rich_output(1))

    class FullHandle(io.StringIO):
        def write(self, text: str) -> int:
            raise NO_SPACE

    real_open = Path.open

    def open_full(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return FullHandle() if "w" in mode else real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_full)
    with pytest.raises(DiskFullError, match="disk is full") as caught:
        write_exports(store, RunResult("run-1", CONFIG, {}, (), 2))
    monkeypatch.undo()
    assert caught.value.folder == str(store.out_dir)
    assert (summary_path.read_text(), scores_path.read_text()) == before
    assert [p.name for p in store.out_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_disk_full_error_crosses_process_boundaries_whole() -> None:
    error = DiskFullError("/runs/x", "No space left on device", "rerun it")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.folder == "/runs/x" and again.retry == "rerun it"


def _toy_run(out: Path, *extra: str, size: int = 8) -> list[str]:
    return [
        *("--plugins-dir", str(TOY_PLUGINS), "run", "--suite", "test-toy"),
        *("--suite-option", f"size={size}", "--model", "test-echo"),
        *("--metrics", "test-level,test-snr", "--workers", "1", "--batch-size", "1"),
        *("--no-cache", "--out", str(out), *extra),
    ]


def _assert_one_line_disk_full(result: CliResult, folder: Path) -> None:
    assert result.exit_code == 1, result.stdout + result.stderr
    printed = result.stdout + result.stderr
    assert "Traceback" not in printed
    (line,) = [line for line in printed.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot write to {folder}")
    assert "the disk is full" in line and "--resume" in line


@pytest.mark.parametrize("where", ["store", "audio"])
def test_run_on_a_full_disk_says_so_and_resume_gives_the_same_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """ENOSPC injected at the lowest write (the SQLite connection, the audio file's bytes)."""
    reference = tmp_path / "reference"
    assert invoke_cli(_toy_run(reference, "--save-audio")).exit_code == 0
    out = tmp_path / "full"
    if where == "store":
        real_connect = store_module._connect

        def connect(path: Path, **kwargs: Any) -> Any:
            connection = real_connect(path, **kwargs)
            return FullAfter(connection, rows=6) if path.name == RUN_DB else connection

        monkeypatch.setattr(store_module, "_connect", connect)
    else:
        real_write_bytes = Path.write_bytes
        budget = [3]

        def write_bytes(path: Path, data: Any) -> int:
            if path.parent == out / "audio":
                if budget[0] == 0:
                    raise NO_SPACE
                budget[0] -= 1
            return real_write_bytes(path, data)

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
    _assert_one_line_disk_full(
        invoke_cli(_toy_run(out, "--save-audio")), out / "audio" if where == "audio" else out
    )
    monkeypatch.undo()  # space freed
    kept = run_rows(out)
    assert 0 < len(kept) < 8
    assert invoke_cli(_toy_run(out, "--save-audio", "--resume")).exit_code == 0
    assert run_rows(out) == run_rows(reference)
    assert all(row in run_rows(out) for row in kept)
    assert len(list((out / "audio").glob("*.wav"))) == 8
    assert list((out / "audio").glob(".tmp-*")) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted at ``tmp_path/small`` (needs root and mount permission)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("save_audio", [False, True], ids=["rows", "audio"])
def test_run_on_a_real_full_disk_resumes_to_the_same_scores(
    tmp_path: Path, small_disk: Path, save_audio: bool
) -> None:
    extra = ("--save-audio",) if save_audio else ()
    # An utterance adds 64 KiB of audio, or a 4 KiB page to the write-ahead log: both fill it.
    size = 12 if save_audio else 100
    reference = tmp_path / "reference"
    assert invoke_cli(_toy_run(reference, *extra, size=size)).exit_code == 0
    out = small_disk / "run"
    failed = invoke_cli(_toy_run(out, *extra, size=size))
    _assert_one_line_disk_full(failed, out / "audio" if save_audio else out)
    kept = run_rows(out)  # the store is readable on the full disk
    assert 0 < len(kept) < size
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    resumed = invoke_cli(_toy_run(out, *extra, "--resume", size=size))
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    rows = run_rows(out)
    assert rows == run_rows(reference)
    assert all(row in rows for row in kept)
