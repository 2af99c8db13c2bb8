"""Shards: parsing i/N, round-robin selection, merging shard runs into the single run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gensr_bench.errors import ConfigError, StoreError
from gensr_bench.runner import (
    RunOptions,
    merge_runs,
    parse_shard,
    run_suite,
)
from gensr_bench.store import RunStore
from gensr_bench.testing import (
    EchoModel,
    LevelMetric,
    NoisyEchoModel,
    SnrMetric,
    ToySuite,
    run_rows,
)

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"


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
