"""Tests of gensr_bench.alignment.candidates: n samples per input through the runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gensr_bench.alignment.candidates import (
    CandidateModel,
    CandidateSuite,
    candidate_id,
    load_candidates,
)
from gensr_bench.audio import read_audio
from gensr_bench.errors import StoreError
from gensr_bench.runner import RunOptions, run_suite
from gensr_bench.store import RunStore
from gensr_bench.testing import EchoModel, LevelMetric, ListSuite, NoisyEchoModel, noisy_utterance


def _utts() -> list:
    return [noisy_utterance(f"u{i}", 0.3, seed=i) for i in range(2)]


def _run(tmp_path: Path, name: str, workers: int = 1, resume: bool = False) -> Path:
    out = tmp_path / name
    run_suite(
        CandidateModel(NoisyEchoModel(noise=0.01)),
        CandidateSuite(ListSuite(_utts()), 3),
        [LevelMetric()],
        out,
        RunOptions(
            seed=5, workers=workers, batch_size=2, use_cache=False, save_audio=True, resume=resume
        ),
    )
    return out


def test_candidate_k_is_candidate_k_of_model_sample(tmp_path: Path) -> None:
    out = _run(tmp_path, "c")
    grouped = load_candidates(out)
    assert sorted(grouped) == ["u0", "u1"]
    model = NoisyEchoModel(noise=0.01)
    for utt in _utts():
        entries = grouped[utt.id]
        assert [e["k"] for e in entries] == [0, 1, 2]
        assert [e["id"] for e in entries] == [candidate_id(utt.id, k) for k in range(3)]
        expected = model.sample([utt], 3, seed=5)[0]
        for entry, candidate in zip(entries, expected, strict=True):
            saved = read_audio(entry["audio"]).samples
            np.testing.assert_allclose(saved, candidate.audio.samples, atol=1e-6)
            assert entry["scores"]["level_db"] is not None and not entry["errors"]
        # The candidates differ from one another.
        levels = {round(e["scores"]["level_db"], 9) for e in entries}
        assert len(levels) == 3


def test_candidates_are_the_same_with_two_workers_and_after_resume(tmp_path: Path) -> None:
    one = load_candidates(_run(tmp_path, "w1"))
    two = load_candidates(_run(tmp_path, "w2", workers=2))
    assert {k: [e["scores"] for e in v] for k, v in one.items()} == {
        k: [e["scores"] for e in v] for k, v in two.items()
    }
    again = _run(tmp_path, "w1", resume=True)
    assert RunStore(again).count() == 6


def test_candidate_suite_needs_two_candidates_and_load_refuses_other_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 candidates"):
        CandidateSuite(ListSuite(_utts()), 1)
    with pytest.raises(StoreError, match="no candidate run"):
        load_candidates(tmp_path / "nothing")
    plain = tmp_path / "plain"
    run_suite(EchoModel(), ListSuite(_utts()), [LevelMetric()], plain, RunOptions(use_cache=False))
    with pytest.raises(StoreError, match="not a candidate run"):
        load_candidates(plain)


def test_candidate_run_config_names_the_model_and_candidate_count(tmp_path: Path) -> None:
    out = _run(tmp_path, "cfg")
    config = RunStore(out).get_info("config")
    assert config["model"]["name"] == "test-noisy-echo"
    assert config["suite"]["candidates"] == 3
    assert len(CandidateSuite(ListSuite(_utts()), 3)) == 6
