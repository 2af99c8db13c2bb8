"""Where do a model's outputs differ between x86 CPUs? Emulated on one machine.

    python benchmarks/reproducibility/divergence.py --models fm-small,ar-small,mgm-small,wiener \
        --limit 4 --out /tmp/repro

Each setting runs in a fresh process with some of the instruction sets the numeric libraries
may use switched off (``ATEN_CPU_CAPABILITY`` for torch's vectorised kernels,
``ONEDNN_MAX_CPU_ISA`` for oneDNN's convolutions, ``MKL_ENABLE_INSTRUCTIONS`` / ``MKL_CBWR``
for MKL's GEMM and FFT, ``OMP_NUM_THREADS`` for a machine with fewer cores), as such a machine
would run. The process restores the first ``--limit`` utterances of ``synth-gsr`` with each
model (the generative ones in ``--dtype``; float32 is the code before issue 19) and saves the
intermediate tensors of every stage (random draws, network output of each sampling step, final
frames, Griffin-Lim input and output, waveform). The script then prints, per model and stage,
the largest absolute difference from the unrestricted setting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Name -> environment of each emulated CPU (the first is the reference).
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "onednn-sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "mkl-avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "mkl-sse42": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "mkl-cbwr": {"MKL_CBWR": "COMPATIBLE"},
    "threads-1": {"OMP_NUM_THREADS": "1"},
    "all-avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
}


def capture(model_name: str, limit: int, options: dict[str, Any], dtype: str) -> dict[str, Any]:
    """Restore the first ``limit`` synth-gsr utterances, recording every stage's tensors."""
    import numpy as np
    import torch

    from gensr_bench.plugins import get_plugin_manager
    from gensr_bench.registry import Registries
    from gensr_bench_plugins.models.generative import features as ft

    ft.SAMPLING_DTYPE = getattr(torch, dtype)
    registries = Registries.from_plugins(get_plugin_manager())
    suite = registries.suites.create("synth-gsr", limit=limit)
    model = registries.models.create(model_name, **options)
    utterances = list(suite)
    stages: dict[str, list[Any]] = {}

    def keep(stage: str, tensor: Any) -> None:
        value = tensor.detach().numpy() if isinstance(tensor, torch.Tensor) else tensor
        stages.setdefault(stage, []).append(np.array(value, dtype=np.float64, copy=True))

    net_step = 0
    originals: dict[str, Any] = {}
    if hasattr(model, "setup"):
        model.setup()
    net = getattr(model, "net", None)
    if net is not None:
        # Record the network's output at its first and last call (Euler / MaskGIT step, or
        # AR frame; all of them would take gigabytes for MGM) and the frames it returns.
        last: list[Any] = []

        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            nonlocal net_step
            if net_step == 0:
                keep("net_out[first step]", output)
            last[:] = [output]
            net_step += 1

        net.head.register_forward_hook(hook)
        generate = net.generate

        def recorded_generate(cond: Any, generator: Any, settings: Any) -> Any:
            nonlocal net_step
            net_step = 0
            state = generator.get_state()
            keep(
                "randn(first draw)", torch.randn(cond.shape, generator=generator, dtype=cond.dtype)
            )
            generator.set_state(state)
            frames = generate(cond, generator, settings)
            keep("net_out[last step]", last[0])
            keep("frames", frames)
            return frames

        net.generate = recorded_generate
        originals["griffin_lim"] = ft.griffin_lim

        def recorded_gl(magnitude: Any, phase_from: Any, length: int, iterations: int) -> Any:
            keep("gl_magnitude", magnitude)
            keep(
                "gl_first_istft",
                ft.istft(magnitude * torch.exp(1j * torch.angle(phase_from)), length),
            )
            wave = originals["griffin_lim"](magnitude, phase_from, length, iterations)
            keep("gl_output", wave)
            return wave

        ft.griffin_lim = recorded_gl
    timings = []
    for utt in utterances:
        start = time.perf_counter()
        (restored,) = model.restore([utt], seed=0)
        timings.append(time.perf_counter() - start)
        keep("waveform", restored.audio.samples)
    return {"stages": stages, "seconds": timings}


def worker(args: argparse.Namespace) -> None:
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = json.loads(args.options)
    for name in args.models.split(","):
        result = capture(name, args.limit, options, args.dtype)
        arrays = {
            f"{stage}|{i}": value
            for stage, values in result["stages"].items()
            for i, value in enumerate(values)
        }
        np.savez(out / f"{name}.npz", **arrays)
        (out / f"{name}.json").write_text(json.dumps({"seconds": result["seconds"]}))


def compare(reference: Path, other: Path, model: str) -> dict[str, float]:
    """Largest absolute difference per stage (over utterances) of ``other`` from ``reference``."""
    import numpy as np

    with np.load(reference / f"{model}.npz") as a, np.load(other / f"{model}.npz") as b:
        worst: dict[str, float] = {}
        for key in a.files:
            stage = key.split("|")[0]
            diff = float(np.max(np.abs(a[key] - b[key]))) if a[key].size else 0.0
            worst[stage] = max(worst.get(stage, 0.0), diff)
    return worst


def score(root: Path, settings: list[str], model: str, limit: int) -> dict[str, Any]:
    """DNSMOS OVRL and ESTOI of each setting's waveforms, and their largest difference from
    the first setting's (the scale at which a leaderboard entry would notice)."""
    import numpy as np

    from gensr_bench.audio import limit_peak
    from gensr_bench.plugins import get_plugin_manager
    from gensr_bench.records import Audio, Restoration
    from gensr_bench.registry import Registries

    registries = Registries.from_plugins(get_plugin_manager())
    utterances = list(registries.suites.create("synth-gsr", limit=limit))
    metrics = [registries.metrics.create(name) for name in ("dnsmos", "estoi")]
    scores: dict[str, list[dict[str, float]]] = {}
    for setting in settings:
        with np.load(root / setting / f"{model}.npz") as data:
            # As the runner scores: an output beyond full scale is scaled to a peak of 1.
            waves = [data[f"waveform|{i}"].astype(np.float32) for i in range(len(utterances))]
            outputs = [
                Restoration(u.id, limit_peak(Audio(wave, 16000))[0], model, 0)
                for u, wave in zip(utterances, waves, strict=True)
            ]
        rows: list[dict[str, float]] = [{} for _ in utterances]
        for metric in metrics:
            for row, values in zip(rows, metric.score_batch(outputs, utterances), strict=True):
                row.update(values)
        scores[setting] = rows
    worst: dict[str, dict[str, float]] = {}
    for setting in settings[1:]:
        for key in ("dnsmos_ovrl", "estoi"):
            diffs = [
                abs(a[key] - b[key])
                for a, b in zip(scores[settings[0]], scores[setting], strict=True)
            ]
            worst.setdefault(setting, {})[key] = max(diffs)
    return {"scores": scores, "worst": worst}


def per_utterance(reference: Path, other: Path, model: str) -> list[float]:
    """Largest absolute waveform difference of each utterance."""
    import numpy as np

    with np.load(reference / f"{model}.npz") as a, np.load(other / f"{model}.npz") as b:
        keys = sorted((k for k in a.files if k.startswith("waveform|")), key=lambda k: int(k[9:]))
        return [float(np.max(np.abs(a[k] - b[k]))) for k in keys]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fm-small,ar-small,mgm-small,wiener")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--options", default="{}", help="model options (JSON)")
    parser.add_argument("--out", default="/tmp/gensr-repro")
    parser.add_argument(
        "--dtype",
        default="float64",
        help="features.SAMPLING_DTYPE of the generative models (float32: the code before)",
    )
    parser.add_argument("--score", action="store_true", help="also score DNSMOS and ESTOI")
    parser.add_argument("--reuse", action="store_true", help="compare saved runs only")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    root = Path(args.out)
    names = args.settings.split(",")
    for setting in [] if args.reuse else names:
        env = {**os.environ, **SETTINGS[setting]}
        cmd = [sys.executable, __file__, "--worker", "--models", args.models]
        cmd += ["--limit", str(args.limit), "--options", args.options, "--dtype", args.dtype]
        subprocess.run([*cmd, "--out", str(root / setting)], env=env, check=True)
    models = args.models.split(",")
    report: dict[str, Any] = {}
    for model in models:
        print(f"\n== {model} (max abs difference from {names[0]}, over {args.limit} utterances)")
        seconds = {
            s: json.loads((root / s / f"{model}.json").read_text())["seconds"] for s in names
        }
        for setting in names[1:]:
            worst = compare(root / names[0], root / setting, model)
            report.setdefault(model, {})[setting] = worst
            print(f"-- {setting}: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
            waves = per_utterance(root / names[0], root / setting, model)
            report[model][setting]["waveform_per_utterance"] = waves
            print("   waveform per utterance: " + ", ".join(f"{v:.1e}" for v in waves))
        if args.score:
            scored = score(root, names, model, args.limit)
            report.setdefault(model, {})["scores"] = scored
            for setting, worst in scored["worst"].items():
                print(
                    f"   {setting}: largest |diff| "
                    + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
                )
        for setting in names:
            mean = sum(seconds[setting]) / len(seconds[setting])
            print(f"   {setting}: {mean:.3f} s/utterance")
    (root / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
