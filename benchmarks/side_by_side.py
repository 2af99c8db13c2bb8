"""Side by side, in one run on the same files: a plain evaluation loop vs `gensr-bench run`.

    python benchmarks/side_by_side.py --limit 40 --workers 2

1. The first ``--limit`` utterances of ``synth-gsr`` are written once as ``noisy/`` + ``clean/``
   float WAV files (untimed).
2. (a) ``plain_loop.py`` scores every noisy file against its clean twin with the metric
   libraries called directly, one file after another, library defaults throughout.
3. (b) ``gensr-bench run --model identity --suite paired --suite-option root=DIR`` with the same
   metrics (all default metrics), four times: cold cache at 1 and N workers, then warm (every
   score cached) at 1 and N workers.

Every timing is the wall clock of a fresh process (imports and model loading included, as a
user waits for it). It prints each time, the ratios, and the largest difference between the
loop's and gensr-bench's value of each output (the numbers must agree).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def export_suite(name: str, limit: int, folder: Path) -> int:
    """Write the suite's degraded and clean audio as noisy/ and clean/ float WAV files."""
    import soundfile as sf

    from gensr_bench.plugins import get_plugin_manager
    from gensr_bench.registry import Registries

    suite = Registries.from_plugins(get_plugin_manager()).suites.create(name, limit=limit)
    seconds = 0.0
    for utt in suite:
        assert utt.degraded is not None and utt.reference is not None
        for sub, audio in (("noisy", utt.degraded), ("clean", utt.reference)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            sf.write(folder / sub / f"{utt.id}.wav", audio.samples, audio.sample_rate, "FLOAT")
        seconds += len(utt.degraded.samples) / utt.degraded.sample_rate
    return round(seconds)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()[-3000:]}")
    return seconds


CEILING = """
import sys, time
from pathlib import Path
import numpy as np, soundfile as sf
from gensr_bench_plugins.metrics import dnsmos
models = dnsmos.load_models(1)
clips = [sf.read(p, dtype="float32")[0] for p in sorted(Path(sys.argv[1]).glob("*.wav"))[:8]]
dnsmos.dnsmos(clips[0], models)
start = time.perf_counter()
for clip in clips:
    dnsmos.dnsmos(clip, models)
print(time.perf_counter() - start)
"""


def scaling_ceiling(folder: Path, workers: int, env: dict[str, str]) -> float:
    """How much more work ``workers`` busy processes get done than one on this machine.

    The same single-threaded DNSMOS work runs in one process alone, then in ``workers``
    processes at once; returns ``workers * alone / slowest``: the best speed-up any
    ``workers``-process run can reach here.
    """

    def launch() -> subprocess.Popen[str]:
        cmd = [sys.executable, "-c", CEILING, str(folder)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)

    alone = float(launch().communicate()[0])
    together = [launch() for _ in range(workers)]
    slowest = max(float(p.communicate()[0]) for p in together)
    return workers * alone / slowest


def run_scores(out: Path) -> dict[str, dict[str, float | None]]:
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    return {r["utterance_id"]: r["scores"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="synth-gsr")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gensr-side-by-side-"))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    try:
        audio_seconds = export_suite(opts.suite, opts.limit, work / "files")
        times: dict[str, float] = {}
        loop_out = work / "loop.json"
        times["plain loop"] = timed(
            [sys.executable, str(HERE / "plain_loop.py"), str(work / "files"), str(loop_out)], env
        )
        cli = [sys.executable, "-m", "gensr_bench.cli", "run", "--model", "identity"]
        cli += ["--suite", "paired", "--suite-option", f"root={work / 'files'}"]
        runs = {}
        for label, workers, cache in (
            ("cold, 1 worker", 1, "c1"),
            (f"cold, {opts.workers} workers", opts.workers, "c2"),
            ("warm, 1 worker", 1, "c1"),
            (f"warm, {opts.workers} workers", opts.workers, "c2"),
        ):
            out = work / f"run-{len(runs)}"
            run_env = {**env, "GENSR_BENCH_CACHE_DIR": str(work / cache)}
            times[label] = timed([*cli, "--workers", str(workers), "--out", str(out)], run_env)
            runs[label] = run_scores(out)
        ceiling = scaling_ceiling(work / "files" / "noisy", opts.workers, env)
        loop = json.loads(loop_out.read_text())
        first = next(iter(runs.values()))
        same_runs = all(scores == first for scores in runs.values())
        print(
            f"{opts.suite}: {opts.limit} utterances, {audio_seconds} s of audio; default metrics; "
            f"{os.cpu_count()} cores; {platform.processor() or platform.machine()}; "
            f"python {platform.python_version()}"
        )
        for label, seconds in times.items():
            print(f"  {label:<22} {seconds:8.1f} s   {audio_seconds / seconds:6.2f} s audio / s")
        base = times["plain loop"]
        print("ratios (plain loop time / gensr-bench time; > 1: gensr-bench is faster):")
        for label, seconds in list(times.items())[1:]:
            print(f"  {label:<22} {base / seconds:6.2f}x")
        print(
            f"this machine's ceiling: {opts.workers} busy processes do {ceiling:.2f}x the work "
            "of one (the same 1-thread DNSMOS work alone vs at once)"
        )
        overhead = times["cold, 1 worker"] / base - 1
        print(f"overhead of gensr-bench at 1 worker (cold) over the loop: {100 * overhead:+.1f}%")
        print(f"per-utterance scores identical across the four gensr-bench runs: {same_runs}")
        print("largest |loop - gensr-bench| per output (cold, 1 worker):")
        for output in next(iter(loop.values())):
            diffs = [
                abs(loop[uid][output] - value)
                for uid, scores in first.items()
                if (value := scores.get(output)) is not None and uid in loop
            ]
            print(f"  {output:<12} {max(diffs) if diffs else float('nan'):.2e}  (n={len(diffs)})")
    finally:
        if opts.keep:
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
