"""Side-by-side timings of `gensr-bench run`: cold vs warm cache, 1 vs N workers.

Runs the real command line on the same suite four times in one go and prints the ratios:

    python benchmarks/runner_ratios.py --model identity --suite synth-gsr --limit 40

1. cold, 1 worker   (empty score cache)
2. cold, N workers  (empty score cache)
3. warm, 1 worker   (every score cached by run 1)
4. warm, N workers

The suite is generated once beforehand (an untimed run scoring only si-sdr) and copied into
each cold cache, so the cold runs time restoration and scoring, not speech synthesis.

It also checks that the per-utterance scores of all four runs are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], cache: Path, out: Path) -> float:
    env = {**os.environ, "GENSR_BENCH_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "gensr_bench.cli", "run", *args, "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def _scores(out: Path) -> list[tuple[str, dict[str, float | None]]]:
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    return [(r["utterance_id"], r["scores"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="identity")
    parser.add_argument("--suite", default="synth-gsr")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--metrics", default=None, help="default: every default metric")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gensr-ratios-"))
    common = ["--model", opts.model, "--suite", opts.suite, "--limit", str(opts.limit)]
    if opts.metrics:
        common += ["--metrics", opts.metrics]
    suites_cache = work / "suite-cache"
    try:
        t = {}
        _run([*common, "--metrics", "si-sdr", "--workers", "1"], suites_cache, work / "o0")
        cold1, cold2 = work / "cold1", work / "cold2"
        for cache in (cold1, cold2):
            shutil.copytree(suites_cache / "suites", cache / "suites")
        t["cold, 1 worker"] = _run([*common, "--workers", "1"], cold1, work / "o1")
        t[f"cold, {opts.workers} workers"] = _run(
            [*common, "--workers", str(opts.workers)], cold2, work / "o2"
        )
        t["warm, 1 worker"] = _run([*common, "--workers", "1"], cold1, work / "o3")
        t[f"warm, {opts.workers} workers"] = _run(
            [*common, "--workers", str(opts.workers)], cold1, work / "o4"
        )
        same = (
            _scores(work / "o1")
            == _scores(work / "o2")
            == _scores(work / "o3")
            == _scores(work / "o4")
        )
        print(
            f"{opts.model} on {opts.suite}, {opts.limit} utterances, "
            f"metrics: {opts.metrics or 'defaults'}, {os.cpu_count()} cores"
        )
        for name, seconds in t.items():
            print(f"  {name:<20} {seconds:8.2f} s")
        names = list(t)
        print(f"  {opts.workers} workers vs 1 (cold): {t[names[0]] / t[names[1]]:.2f}x faster")
        print(f"  warm vs cold (1 worker):  {t[names[0]] / t[names[2]]:.1f}x faster")
        print(f"  warm vs cold ({opts.workers} workers): {t[names[1]] / t[names[3]]:.1f}x faster")
        print(f"  per-utterance scores identical across all four runs: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
