"""The alignment library's entry point: ``align(request, progress)`` without the command line.

A tiny random ar-small checkpoint aligned on 3 toy inputs x 3 candidates, scored by the toy
``test-level`` metric; the progress hooks are recorded in the order ``align`` calls them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gensr_bench.alignment.align import AlignProgress, AlignRequest, align, check_alignable
from gensr_bench.alignment.candidate_runs import CANDIDATES_DIR, PAIRS_DIR
from gensr_bench.alignment.pipeline import load_pairs, resolve_criterion
from gensr_bench.alignment.trainer import AlignConfig
from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import RestorationModel
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.records import PreferencePair, RunResult, ScoredOutput
from gensr_bench.registry import Registries
from gensr_bench.testing import EchoModel, LevelMetric, ToySuite
from gensr_bench_plugins.models.generative.testing import (
    tiny_generative_checkpoint,
    tiny_spectral_tokenizer,
)

INPUTS, CANDIDATES = 3, 3


class Recorder(AlignProgress):
    """Every hook call, in order, with what it was given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def message(self, text: str) -> None:
        self.events.append(("message", text))

    def candidates_started(self, total: int, done: int) -> None:
        self.events.append(("candidates_started", (total, done)))

    def candidate_scored(self, scored: ScoredOutput) -> None:
        self.events.append(("candidate_scored", scored.utterance_id))

    def candidates_finished(self, result: RunResult, directory: Path) -> None:
        self.events.append(("candidates_finished", (result.n_utterances, directory)))

    def pairs_ready(self, record: object, directory: Path, reused: bool) -> None:
        self.events.append(("pairs_ready", (directory, reused)))

    def training_step(self, step: int, total: int, loss: float) -> None:
        self.events.append(("training_step", (step, total)))

    def close(self) -> None:
        self.events.append(("close", None))

    def names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.events))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> RestorationModel:
    root = tmp_path_factory.mktemp("base")
    checkpoint = tiny_generative_checkpoint(root / "ar", "ar-small", tiny_spectral_tokenizer())
    registries = Registries.from_plugins(get_plugin_manager())
    return registries.models.create("ar-small", checkpoint=str(checkpoint))


def request(model: RestorationModel, out: Path, **changes: object) -> AlignRequest:
    fields: dict[str, object] = {
        "model": model,
        "suite": ToySuite(size=INPUTS, seconds=0.5),
        "criterion": resolve_criterion(["level_db"], [LevelMetric]),
        "out_dir": out,
        "n": CANDIDATES,
        "config": AlignConfig(steps=2, batch_size=2, log_every=1, warmup=0),
        **changes,
    }
    return AlignRequest(**fields)  # type: ignore[arg-type]


def test_align_reports_each_stage_in_order_and_returns_what_it_made(
    model: RestorationModel, tmp_path: Path
) -> None:
    out = tmp_path / "aligned"
    progress = Recorder()
    result = align(request(model, out), progress)

    total = INPUTS * CANDIDATES
    assert progress.events[0] == ("candidates_started", (total, 0))
    assert sum(name == "candidate_scored" for name, _ in progress.events) == total
    assert ("candidates_finished", (total, out / CANDIDATES_DIR)) in progress.events
    assert ("pairs_ready", (out / PAIRS_DIR, False)) in progress.events
    assert progress.events[-1] == ("close", None)
    assert progress.names() == [
        "candidates_started",
        "candidate_scored",
        "candidates_finished",
        "pairs_ready",
        "message",
        "training_step",
        "close",
    ]
    assert ("training_step", (2, 2)) in progress.events

    saved: list[PreferencePair] = load_pairs(out / PAIRS_DIR)
    assert result.pairs == len(saved) == result.pairs_record.stats["pairs"] > 0
    assert result.candidates is not None and result.candidates.n_utterances == total
    assert result.saved["alignment"]["steps_done"] == result.steps == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["base_model"] == model.name  # no spec given: the model's name
    assert manifest["pairs"]["total"] == result.pairs
    assert manifest["pairs"]["train_examples"] == result.train_examples


def test_align_resumed_reuses_the_candidates_and_the_pairs(
    model: RestorationModel, tmp_path: Path
) -> None:
    out = tmp_path / "aligned"
    first = align(request(model, out, config=AlignConfig(steps=1, batch_size=2)))
    progress = Recorder()
    again = align(
        request(model, out, config=AlignConfig(steps=2, batch_size=2), resume=True), progress
    )
    total = INPUTS * CANDIDATES
    assert ("candidates_started", (total, total)) in progress.events  # nothing sampled
    assert "candidate_scored" not in progress.names()
    assert ("pairs_ready", (out / PAIRS_DIR, True)) in progress.events
    assert again.pairs == first.pairs
    assert again.saved["alignment"]["steps_done"] == 2


def test_align_refuses_a_started_folder_and_a_model_without_likelihood(
    model: RestorationModel, tmp_path: Path
) -> None:
    out = tmp_path / "aligned"
    (out / PAIRS_DIR).mkdir(parents=True)
    progress = Recorder()
    with pytest.raises(ConfigError, match=r"already holds an alignment run .*--resume"):
        align(request(model, out), progress)
    assert progress.events == [("close", None)]  # nothing started, the hooks released

    with pytest.raises(ConfigError, match=r"cannot be aligned.*alignable models: ar-small"):
        check_alignable(EchoModel(), ["ar-small"])
    with pytest.raises(ConfigError, match="cannot be aligned"):
        align(request(EchoModel(), tmp_path / "echo"))


def test_a_criterion_metric_that_cannot_load_stops_align_before_sampling(
    model: RestorationModel, tmp_path: Path
) -> None:
    out = tmp_path / "aligned"
    broken = LevelMetric(setup_error="weights missing: put them in W")
    progress = Recorder()
    with pytest.raises(ConfigError, match=r"test-level.*weights missing: put them in W"):
        align(request(model, out, metrics=[broken]), progress)
    assert "candidates_started" not in progress.names()
    assert not (out / CANDIDATES_DIR).exists()
