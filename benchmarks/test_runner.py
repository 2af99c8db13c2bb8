"""Throughput of the runner with all default metrics (identity model, cold cache)."""

from __future__ import annotations

import pytest
from _bench import record_throughput

from gensr_bench.runner import RunOptions, run_suite
from gensr_bench.testing import ListSuite


@pytest.mark.parametrize("workers", [1, 2])
def test_runner_default_metrics(benchmark, registries, speech, tmp_path, workers):
    utterances, seconds = speech
    model = registries.models.create("identity")
    metrics = [registries.metrics.create(n) for n in registries.metrics.names()]
    metrics = [m for m in metrics if m.default]
    rounds = iter(range(100))

    def run():
        out = tmp_path / f"run{next(rounds)}"
        options = RunOptions(workers=workers, use_cache=False)
        return run_suite(model, ListSuite(utterances), metrics, out, options)

    result = benchmark.pedantic(run, rounds=2, iterations=1)
    assert result.n_utterances == len(utterances)
    assert all(s.n_scored == len(utterances) for s in result.summaries)
    record_throughput(benchmark, seconds)
    benchmark.extra_info["metrics"] = ",".join(m.name for m in metrics)
