"""Seconds of compute per second of audio for every registered metric.

    python benchmarks/metric_speed.py --limit 10 [--metrics dnsmos,pesq]

Scores the first N utterances of `synth-gsr` (degraded audio against the reference, 16 kHz,
3-8 s each) with each metric in this process, one thread, after a warm-up call, and prints a
table. Metrics whose weights or models are missing are listed with the reason instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from tabulate import tabulate

from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registries
from gensr_bench.testing import as_restorations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--metrics", default=None, help="comma-separated; default: all")
    parser.add_argument("--suite", default="synth-gsr")
    opts = parser.parse_args()
    reg = Registries.from_plugins(get_plugin_manager())
    utterances = list(reg.suites.create(opts.suite, limit=opts.limit))
    audio_seconds = sum(u.degraded.duration for u in utterances if u.degraded is not None)
    names = opts.metrics.split(",") if opts.metrics else reg.metrics.names()
    rows = []
    for name in names:
        metric = reg.metrics.create(name)
        restorations = as_restorations(utterances)
        try:
            metric.setup()
            metric.score_batch(restorations[:1], utterances[:1])  # warm-up
            start = time.perf_counter()
            for restoration, utterance in zip(restorations, utterances, strict=True):
                metric.score_batch([restoration], [utterance])
            elapsed = time.perf_counter() - start
        except Exception as exc:  # report, do not stop: a missing model is a row, not a crash
            rows.append([name, "—", "—", f"not measured: {type(exc).__name__}: {exc}"[:90]])
            continue
        rows.append([name, f"{elapsed / audio_seconds:.4f}", f"{audio_seconds / elapsed:.1f}", ""])
    print(
        f"{len(utterances)} utterances of {opts.suite}, {audio_seconds:.1f} s of audio, "
        f"1 thread, {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    print(tabulate(rows, headers=["metric", "s compute / s audio", "x real time", "note"]))


if __name__ == "__main__":
    main()
