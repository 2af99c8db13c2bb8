"""Time to generate a built-in suite from nothing, side by side with its espeak counterpart.

    python benchmarks/suite_generation.py --suites piper-gsr,synth-gsr --size 150

Each suite is generated into an empty cache folder (a temporary ``GENSR_BENCH_CACHE_DIR``), in
this one process, one utterance after another (generation is single-threaded), and the script
prints per suite: the utterances, the seconds of audio, the wall time, the time per utterance
and per second of audio, and the ratio to the first suite. The cached read that follows (what a
second run of the suite costs) is timed too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registries


def measure(name: str, size: int) -> dict[str, float]:
    registries = Registries.from_plugins(get_plugin_manager())
    suite_class = registries.suites.get(name)
    start = time.perf_counter()
    seconds = 0.0
    count = 0
    for utterance in suite_class(size=size).iter_utterances():
        assert utterance.degraded is not None
        seconds += utterance.degraded.duration
        count += 1
    generate = time.perf_counter() - start
    start = time.perf_counter()
    for _ in suite_class(size=size).iter_utterances():
        pass
    cached = time.perf_counter() - start
    return {"n": count, "audio_s": seconds, "generate_s": generate, "cached_s": cached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="piper-gsr,synth-gsr")
    parser.add_argument("--size", type=int, default=150)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GENSR_BENCH_CACHE_DIR"] = cache
        for name in args.suites.split(","):
            rows.append((name, measure(name, args.size)))
    first = rows[0][1]["generate_s"]
    print(
        "| suite | utterances | audio | generation | per utterance | per s of audio "
        f"| vs {rows[0][0]} | cached read |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows:
        print(
            f"| `{name}` | {row['n']:.0f} | {row['audio_s']:.0f} s | {row['generate_s']:.0f} s "
            f"| {row['generate_s'] / row['n']:.2f} s | {row['generate_s'] / row['audio_s']:.3f} s "
            f"| {row['generate_s'] / first:.2f} | {row['cached_s']:.2f} s |"
        )


if __name__ == "__main__":
    main()
