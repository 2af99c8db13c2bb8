"""The ray backend on a local 2-worker Ray cluster: scores identical to the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from gensr_bench.alignment.candidates import CandidateModel, CandidateSuite, load_candidates
from gensr_bench.errors import ConfigError
from gensr_bench.runner import LocalBackend, RunOptions, run_suite
from gensr_bench.store import RunStore
from gensr_bench.testing import (
    LevelMetric,
    NoisyEchoModel,
    SnrMetric,
    ToySuite,
    run_rows,
)
from gensr_bench_plugins.backends.ray import RayBackend

TOY_PLUGINS = Path(__file__).parents[2] / "fixtures" / "toy_plugins"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster of 2 CPUs for the module (the backend then uses it as it is)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _evaluate(out: Path, backend, workers: int, level=None, **options) -> Path:
    run_suite(
        NoisyEchoModel(noise=0.05),
        ToySuite(size=10),
        [level or LevelMetric(), SnrMetric()],
        out,
        RunOptions(
            workers=workers, backend=backend, **{"use_cache": False, "batch_size": 3, **options}
        ),
    )
    return out


def test_ray_gives_the_scores_of_the_local_backend(tmp_path, ray_cluster):
    local = _evaluate(tmp_path / "local", LocalBackend(), 1)
    on_ray = _evaluate(tmp_path / "ray", RayBackend(), 2)
    assert run_rows(on_ray) == run_rows(local)
    assert len(run_rows(on_ray)) == 10
    summary = json.loads((on_ray / "summary.json").read_text())
    assert summary["provenance"]["sessions"][-1]["backend"] == "ray"
    assert ray_cluster.is_initialized()  # a cluster the backend did not start is left running


def test_ray_returns_saved_audio_to_the_caller(tmp_path, ray_cluster):
    local = _evaluate(tmp_path / "local", LocalBackend(), 1, save_audio=True)
    on_ray = _evaluate(tmp_path / "ray", RayBackend(), 2, save_audio=True)
    for output in RunStore(on_ray).outputs():
        assert "_collected_audio" not in output.flags
        name = output.flags["audio"]
        # Compare samples: libsndfile's PEAK chunk holds a time stamp, so the bytes differ.
        ours, rate = soundfile.read(on_ray / "audio" / name, dtype="float32")
        theirs, _ = soundfile.read(local / "audio" / name, dtype="float32")
        assert rate == 16000 and len(ours) == 16000
        np.testing.assert_array_equal(ours, theirs)


def test_ray_scores_alignment_candidates_like_the_local_backend(tmp_path, ray_cluster):
    def candidates(out: Path, backend, workers: int) -> dict:
        run_suite(
            CandidateModel(NoisyEchoModel(noise=0.05)),
            CandidateSuite(ToySuite(size=3), 4),
            [LevelMetric(), SnrMetric()],
            out,
            RunOptions(use_cache=False, workers=workers, backend=backend, save_audio=True),
        )
        return {
            source: [(c["id"], c["k"], c["scores"], Path(c["audio"]).name) for c in group]
            for source, group in load_candidates(out).items()
        }

    assert candidates(tmp_path / "ray", RayBackend(), 2) == candidates(
        tmp_path / "local", LocalBackend(), 1
    )


def test_ray_loads_each_metric_once_per_worker(tmp_path, ray_cluster):
    level = LevelMetric(setup_log=str(tmp_path))
    _evaluate(tmp_path / "run", RayBackend(), 2, level=level, batch_size=1)
    pids = (tmp_path / "setup.log").read_text().split()
    # 10 batches of one utterance on 2 actors: two setups, one in each actor's process.
    assert len(pids) == 2
    assert len(set(pids)) == 2


def test_ray_reads_the_score_cache(tmp_path, ray_cluster):
    cache = tmp_path / "cache.sqlite"
    first = _evaluate(tmp_path / "a", RayBackend(), 2, use_cache=True, cache_path=str(cache))
    again = _evaluate(tmp_path / "b", RayBackend(), 2, use_cache=True, cache_path=str(cache))
    assert run_rows(again) == run_rows(first)
    flags = [o.flags.get("cached", []) for o in RunStore(again).outputs()]
    assert all(set(f) == {"test-level", "test-snr"} for f in flags)


def test_ray_option_errors_name_the_value(tmp_path):
    with pytest.raises(ConfigError, match="num_cpus must be a number, got 'many'"):
        _evaluate(tmp_path / "x", RayBackend(num_cpus="many"), 2)
    with pytest.raises(ConfigError, match="has no option"):
        RayBackend(adress="auto")
