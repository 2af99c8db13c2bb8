"""Tests of gensr_bench.store: the per-run SQLite store, resume rules, score cache, exports."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from gensr_bench.errors import StoreError
from gensr_bench.records import MetricSummary, RunResult, ScoredOutput
from gensr_bench.store import CACHE_ENV, RUN_DB, RunStore, ScoreCache, write_exports
from gensr_bench.testing import scored_output

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
