"""What restoring in float64 costs: time per utterance of each generative model, float32 vs
float64, side by side in one process on the same utterances.

    python benchmarks/reproducibility/cost.py --models fm-small,ar-small,mgm-small --limit 4

``features.SAMPLING_DTYPE`` set to float32 runs exactly the code of before the change (the
script checks that its output equals the saved float32 outputs of ``divergence.py`` when given
``--check DIR``). The two precisions alternate per utterance, so load on the machine hits both
alike; the first utterance is restored once untimed (warm-up). One torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fm-small,ar-small,mgm-small")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--check", help="a divergence.py setting folder made with float32")
    args = parser.parse_args()

    import numpy as np
    import torch

    from gensr_bench.plugins import get_plugin_manager
    from gensr_bench.registry import Registries
    from gensr_bench_plugins.models.generative import features as ft

    torch.set_num_threads(1)
    registries = Registries.from_plugins(get_plugin_manager())
    utterances = list(registries.suites.create("synth-gsr", limit=args.limit))
    seconds_audio = sum(len(u.degraded.samples) for u in utterances if u.degraded) / 16000
    print(f"{len(utterances)} synth-gsr utterances, {seconds_audio:.1f} s of audio, 1 thread")
    for name in args.models.split(","):
        model = registries.models.create(name)
        model.setup()
        times: dict[str, list[float]] = {"float32": [], "float64": []}
        outputs: dict[str, list[np.ndarray]] = {"float32": [], "float64": []}
        for dtype in (torch.float32, torch.float64):  # warm-up
            ft.SAMPLING_DTYPE = dtype
            model.restore(utterances[:1], seed=0)
        for repeat in range(args.repeats):
            for utt in utterances:
                for dtype in (torch.float32, torch.float64):
                    ft.SAMPLING_DTYPE = dtype
                    start = time.perf_counter()
                    (out,) = model.restore([utt], seed=0)
                    times[str(dtype)[6:]].append(time.perf_counter() - start)
                    if repeat == 0:
                        outputs[str(dtype)[6:]].append(out.audio.samples)
        ft.SAMPLING_DTYPE = torch.float64
        mean = {k: sum(v) / len(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        diff = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(outputs["float32"], outputs["float64"], strict=True)
        )
        print(
            f"{name}: float32 {mean['float32']:.2f} s/utt (median {median['float32']:.2f}), "
            f"float64 {mean['float64']:.2f} s/utt (median {median['float64']:.2f}), "
            f"ratio {mean['float64'] / mean['float32']:.2f}; "
            f"largest |float64 - float32| sample {diff:.2e}"
        )
        if args.check:
            with np.load(Path(args.check) / f"{name}.npz") as saved:
                same = max(
                    float(np.max(np.abs(saved[f"waveform|{i}"] - out)))
                    for i, out in enumerate(outputs["float32"])
                )
            print(f"   float32 output vs {args.check}: largest |difference| {same:.2e}")


if __name__ == "__main__":
    main()
