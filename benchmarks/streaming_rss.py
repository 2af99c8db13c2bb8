"""Peak memory of `gensr-bench run` as the suite grows: it must stay flat (streaming).

    python benchmarks/streaming_rss.py --sizes 100 1000 --workers 1

Runs ``gensr-bench run --model identity --suite synth-gsr-train --limit N`` for each N in a
fresh process and reads the peak resident set size (``ru_maxrss``) of that process and its
workers, after an untimed run that generates the suite's audio (so synthesis is not measured).
Default metrics: ``si-sdr,lsd,estoi`` (cheap, so 1000 utterances take minutes; the runner's
streaming is what is measured). ``--metrics`` takes any list, e.g. all default metrics.
Prints each peak and the ratio of the largest size to the smallest.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
if done.returncode:
    sys.exit(done.stderr.decode()[-3000:])
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, self_kb)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--metrics", default="si-sdr,lsd,estoi")
    parser.add_argument("--suite", default="synth-gsr-train")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gensr-rss-"))
    base = [sys.executable, "-m", "gensr_bench.cli", "run", "--model", "identity"]
    base += ["--suite", opts.suite, "--no-cache", "--workers", str(opts.workers)]
    cli = [*base, "--metrics", opts.metrics]
    try:
        # Generate the suite's audio once (cached on disk), untimed and unmeasured.
        subprocess.run(
            [*base, "--metrics", "si-sdr", "--limit", str(max(opts.sizes)), "--out", work / "g"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peaks: dict[int, float] = {}
        for size in opts.sizes:
            cmd = [*cli, "--limit", str(size), "--out", str(work / f"run{size}")]
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, *cmd], check=True, capture_output=True, text=True
            ).stdout.split()
            seconds = time.perf_counter() - start
            peaks[size] = int(out[0]) / 1024  # KiB -> MiB (Linux reports ru_maxrss in KiB)
            print(f"  {size:>5} utterances: peak RSS {peaks[size]:7.1f} MiB  ({seconds:.0f} s)")
        small, large = min(opts.sizes), max(opts.sizes)
        print(
            f"{opts.suite}, metrics {opts.metrics}, {opts.workers} worker(s): peak RSS at "
            f"{large} / at {small} = {peaks[large] / peaks[small]:.3f} "
            f"({100 * (peaks[large] / peaks[small] - 1):+.1f}%)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
