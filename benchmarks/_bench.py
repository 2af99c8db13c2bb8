"""Helpers of the benchmarks (imported by the benchmark modules; see conftest.py)."""

from __future__ import annotations

from typing import Any


def record_throughput(benchmark: Any, audio_seconds: float) -> None:
    """Put seconds of audio per second (from the mean round) into the benchmark's extra_info."""
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["audio_seconds"] = round(audio_seconds, 2)
    benchmark.extra_info["audio_s_per_s"] = round(audio_seconds / mean, 3)
