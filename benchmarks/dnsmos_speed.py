"""DNSMOS: the reference procedure (speechmos) vs gensr-bench's, side by side on the same clips.

    python benchmarks/dnsmos_speed.py --limit 12

Times, on the first ``--limit`` utterances of ``synth-gsr`` (one process, after a warm-up):

1. ``speechmos.dnsmos.run`` (Microsoft's procedure: every 9.01-s window at a 1-s hop of the
   clip looped to >= 9.01 s, one ONNX call per window, ONNX Runtime's default threads);
2. gensr-bench's ``dnsmos`` at 1 and 2 ONNX threads (each distinct window scored once);
3. gensr-bench's procedure with all distinct windows of a clip in one batched ONNX call;

and prints the windows the reference scores vs the distinct ones, each variant's time and its
largest difference from the reference (the numbers must stay the reference's).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registries
from gensr_bench_plugins.metrics import dnsmos as ours

KEYS = {"dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_ovrl": "ovrl_mos"}


def batched(audio: np.ndarray, models: ours.DnsmosModels) -> dict[str, float]:
    """Our procedure with every distinct window of the clip in one ONNX call per model."""
    n = audio.size
    length, starts = ours.window_plan(n)
    looped = np.tile(audio, length // n)
    offsets = [start % n for start in starts]
    distinct = sorted(set(offsets))
    windows = np.stack([looped[o : o + ours.WINDOW_SAMPLES] for o in distinct])
    raw = models.primary.run(None, {"input_1": windows})[0]
    features = np.stack([ours.p808_features(w) for w in windows])
    p808 = models.p808.run(None, {"input_1": features})[0]
    order = [distinct.index(o) for o in offsets]
    raw, p808 = raw[order], p808[order, 0]
    return {
        "dnsmos_sig": float(np.mean(ours.SIG_POLY(raw[:, 0]))),
        "dnsmos_bak": float(np.mean(ours.BAK_POLY(raw[:, 1]))),
        "dnsmos_ovrl": float(np.mean(ours.OVRL_POLY(raw[:, 2]))),
    }


def timed(fn, clips):
    fn(clips[0])  # warm-up
    start = time.perf_counter()
    out = [fn(c) for c in clips]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=12)
    opts = parser.parse_args()
    from speechmos import dnsmos as reference

    reg = Registries.from_plugins(get_plugin_manager())
    clips = []
    for utt in reg.suites.create("synth-gsr", limit=opts.limit):
        samples = utt.degraded.samples.astype(np.float32)
        clips.append(samples / max(1.0, float(np.abs(samples).max())))
    seconds = sum(c.size for c in clips) / ours.SAMPLE_RATE
    plans = [ours.window_plan(c.size) for c in clips]
    windows = sum(len(starts) for _, starts in plans)
    distinct = sum(
        len({s % c.size for s in starts}) for c, (_, starts) in zip(clips, plans, strict=True)
    )
    ref_time, ref = timed(lambda c: reference.run(c, sr=16000), clips)
    rows = [("speechmos reference (ORT default threads)", ref_time, 0.0)]
    one, two = ours.load_models(1), ours.load_models(2)
    for label, fn in (
        ("gensr-bench, 1 thread", lambda c: ours.dnsmos(c, one)),
        ("gensr-bench, 2 threads", lambda c: ours.dnsmos(c, two)),
        ("batched windows, 1 thread", lambda c: batched(c, one)),
    ):
        t, values = timed(fn, clips)
        pairs = zip(values, ref, strict=True)
        diff = max(abs(v[k] - r[KEYS[k]]) for v, r in pairs for k in KEYS)
        rows.append((label, t, diff))
    print(
        f"{len(clips)} synth-gsr clips, {seconds:.0f} s of audio, {os.cpu_count()} cores: "
        f"the reference scores {windows} windows, {distinct} of them distinct"
    )
    for label, t, diff in rows:
        print(
            f"  {label:<42} {t:6.2f} s  {ref_time / t:5.2f}x the reference  max |diff| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
