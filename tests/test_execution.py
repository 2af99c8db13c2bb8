"""Execution: per-utterance failure isolation, value checks, resampling, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.errors import BatchRestorationError, GensrError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.runner import (
    BatchProcessor,
    evaluate,
)
from gensr_bench.testing import (
    EchoModel,
    LevelMetric,
    SnrMetric,
    noisy_utterance,
)

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"


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


def _cli(args, env, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "gensr_bench.cli", "--plugins-dir", str(TOY_PLUGINS), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


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


def test_metric_errors_name_the_metric_once() -> None:
    from gensr_bench.runner import prefixed

    assert prefixed("speaker-sim", "no speech") == "speaker-sim: no speech"
    assert prefixed("speaker-sim", "speaker-sim: no speech") == "speaker-sim: no speech"
    assert prefixed("speaker-sim", "speaker-sim: speaker-sim: x") == "speaker-sim: x"
    assert prefixed("pesq", "speaker-sim: x") == "pesq: speaker-sim: x"


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


class _PartlyMissing(EchoModel):
    """Restores every utterance but ``gone`` (as a folder of outputs missing one file would),
    counting its calls."""

    name = "test-partly"
    calls = 0

    def restore(self, batch, seed):
        type(self).calls += 1
        echoed = super().restore(batch, seed)
        outcomes = ["no file for 'gone'" if r.utterance_id == "gone" else r for r in echoed]
        if any(isinstance(o, str) for o in outcomes):
            raise BatchRestorationError(outcomes)
        return echoed


def test_a_batch_restoration_error_fails_its_utterances_only_without_a_retry():
    utts = [noisy_utterance(uid, 0.5, seed=i) for i, uid in enumerate(["a", "gone", "c"])]
    _PartlyMissing.calls = 0
    processor = BatchProcessor(_PartlyMissing(), [LevelMetric()])
    results = {s.utterance_id: s for s, _ in processor.process(list(enumerate(utts)), seed=0)}
    assert _PartlyMissing.calls == 1  # no utterance-by-utterance retry
    assert results["gone"].scores["level_db"] is None
    assert results["gone"].errors["level_db"] == "model 'test-partly' failed: no file for 'gone'"
    assert results["a"].scores["level_db"] is not None and not results["a"].errors
    assert results["c"].scores["level_db"] is not None
    error = BatchRestorationError(["x", "y", results_restoration(utts[0])])
    assert str(error) == "2 of 3 utterance(s) failed: x (and 1 more)"


def results_restoration(utt: Utterance) -> Restoration:
    assert utt.degraded is not None
    return Restoration(utt.id, utt.degraded, "test")
