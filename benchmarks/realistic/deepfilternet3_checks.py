"""Measurements behind the deepfilternet3 plugin's constants, on a suite's speech.

    python benchmarks/realistic/deepfilternet3_checks.py [--suite synth-dns-no-reverb] [--limit 8]

For the first ``--limit`` utterances (resampled to 48 kHz):
- the raw runtime's delay: the peak of the cross-correlation of its output with its input, on
  the clean reference and on the noisy input (expected: ``STREAM_DELAY``, 1440 samples);
- the delay left in the model's output (expected: 0);
- compute per second of audio (wall and CPU, state creation included);
- run-to-run determinism (largest |difference| between two runs);
- sensitivity: the largest output change when the input is perturbed by float32 rounding
  (relative 2**-24 noise), a stand-in for the kernel rounding differences between CPUs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from gensr_bench.audio import resample
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registries
from gensr_bench_plugins.models.deepfilternet3 import (
    HOP,
    SAMPLE_RATE,
    STREAM_DELAY,
    DeepFilterNet3,
)


def lag_of(output: npt.ArrayLike, source: npt.ArrayLike, max_lag: int) -> int:
    """The shift (in samples) by which ``output`` follows ``source``: the peak of their
    cross-correlation within +-max_lag."""
    from scipy.signal import correlate

    y = np.asarray(output, dtype=np.float64)
    x = np.asarray(source, dtype=np.float64)
    scores = correlate(y, x, mode="full", method="fft")  # index len(x) - 1 is lag 0
    zero = len(x) - 1
    return int(np.argmax(scores[zero - max_lag : zero + max_lag + 1])) - max_lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="synth-dns-no-reverb")
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args()
    suite = Registries.from_plugins(get_plugin_manager()).suites.create(
        args.suite, limit=args.limit
    )
    model = DeepFilterNet3()
    model.setup()
    runtime = model._runtime
    assert runtime is not None
    rng = np.random.default_rng(0)
    seconds = wall = cpu = 0.0
    worst_repeat = worst_perturbed = 0.0
    for utt in suite:
        assert utt.degraded is not None and utt.reference is not None
        noisy = resample(utt.degraded, SAMPLE_RATE).samples
        clean = resample(utt.reference, SAMPLE_RATE).samples
        n = len(noisy)
        frames = np.zeros(-(-n // HOP) * HOP + STREAM_DELAY, dtype=np.float32)
        frames[:n] = clean
        raw_clean = runtime.stream(frames)  # a whole number of hops: STREAM_DELAY is 3
        frames[:n] = noisy
        raw_noisy = runtime.stream(frames)
        start, start_cpu = time.perf_counter(), time.process_time()
        out = runtime.enhance(noisy)
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        seconds += n / SAMPLE_RATE
        again = runtime.enhance(noisy)
        worst_repeat = max(worst_repeat, float(np.max(np.abs(out - again))))
        jitter = noisy * (1 + rng.standard_normal(n).astype(np.float32) * np.float32(2**-24))
        perturbed = runtime.enhance(jitter.astype(np.float32))
        worst_perturbed = max(worst_perturbed, float(np.max(np.abs(out - perturbed))))
        print(
            f"{utt.id}: raw delay clean {lag_of(raw_clean, clean, 2400)}, "
            f"noisy {lag_of(raw_noisy, noisy, 2400)}; compensated output vs clean "
            f"{lag_of(out, clean, 2400)}, vs noisy {lag_of(out, noisy, 2400)}; "
            f"input changed by {float(np.max(np.abs(jitter - noisy))):.1e}"
        )
    print(
        f"{seconds:.1f} s of audio: {wall / seconds:.3f} s wall and {cpu / seconds:.3f} s CPU per "
        f"second of audio (a fresh state per utterance included)"
    )
    print(f"largest |difference| between two runs: {worst_repeat:.3g}")
    print(f"largest |difference| after a float32-rounding perturbation: {worst_perturbed:.3g}")


if __name__ == "__main__":
    main()
