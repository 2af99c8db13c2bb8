"""Seconds of compute per second of audio for every registered metric.

    python benchmarks/metric_speed.py --limit 10 [--metrics dnsmos,pesq]

Scores the first N utterances of `synth-gsr` (degraded audio against the reference, 16 kHz,
3-8 s each) with each metric in this process, one thread, after a warm-up call, and prints a
table. Metrics whose weights or models are missing are listed with the reason instead.

With ``--random-hf``, `speechbertscore` and `speaker-sim-wavlm` run on randomly initialised
models of their default architectures (WavLM-Large; WavLM-Base-Plus with the x-vector head),
saved to a temporary folder: the scores are meaningless but the compute cost is the real one,
which is all this table reports. `wer`, `cer` and `whisper` keep transcriptions by audio
content: that memory is emptied after the warm-up call, so every utterance is decoded in the
timing (`wer` and `cer` share one recogniser, so `--metrics wer,cer` together cost about what
one of them does in a run).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from tabulate import tabulate

from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registries
from gensr_bench.testing import as_restorations


def random_wavlm_dir(directory: Path, *, large: bool, xvector: bool) -> Path:
    """Save a randomly initialised WavLM of a published architecture (for timing only)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector, WavLMModel

    if large:  # microsoft/wavlm-large
        config = WavLMConfig(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            conv_bias=True,
        )
    else:  # microsoft/wavlm-base-plus-sv
        config = WavLMConfig(use_weighted_layer_sum=xvector)
    torch.manual_seed(0)
    model = (WavLMForXVector if xvector else WavLMModel)(config).eval()
    model.save_pretrained(directory)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(directory)
    return directory


def forget_transcriptions(metric: object) -> None:
    """Empty the transcription memory of `wer`, `cer` or `whisper` (their recogniser is a
    ``CachingTranscriber``), so the next call decodes instead of looking a text up."""
    from gensr_bench_plugins.metrics.transcription import CachingTranscriber

    transcriber = getattr(metric, "_transcriber", None)
    if isinstance(transcriber, CachingTranscriber):
        transcriber.forget()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--metrics", default=None, help="comma-separated; default: all")
    parser.add_argument("--suite", default="synth-gsr")
    parser.add_argument(
        "--random-hf", action="store_true", help="time the WavLM metrics on random weights"
    )
    opts = parser.parse_args()
    options: dict[str, dict[str, str]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="gensr-speed-"))
    if opts.random_hf:
        options["speechbertscore"] = {
            "model": str(random_wavlm_dir(scratch / "large", large=True, xvector=False))
        }
        options["speaker-sim-wavlm"] = {
            "model": str(random_wavlm_dir(scratch / "sv", large=False, xvector=True))
        }
    reg = Registries.from_plugins(get_plugin_manager())
    utterances = list(reg.suites.create(opts.suite, limit=opts.limit))
    audio_seconds = sum(u.degraded.duration for u in utterances if u.degraded is not None)
    names = opts.metrics.split(",") if opts.metrics else reg.metrics.names()
    rows = []
    for name in names:
        metric = reg.metrics.create(name, **options.get(name, {}))
        restorations = as_restorations(utterances)
        try:
            metric.setup()
            metric.score_batch(restorations[:1], utterances[:1])  # warm-up
            forget_transcriptions(metric)
            start = time.perf_counter()
            for restoration, utterance in zip(restorations, utterances, strict=True):
                metric.score_batch([restoration], [utterance])
            elapsed = time.perf_counter() - start
        except Exception as exc:  # report, do not stop: a missing model is a row, not a crash
            rows.append([name, "—", "—", f"not measured: {type(exc).__name__}: {exc}"[:90]])
            continue
        note = "random weights: compute cost only" if name in options else ""
        rows.append(
            [name, f"{elapsed / audio_seconds:.4f}", f"{audio_seconds / elapsed:.1f}", note]
        )
    print(
        f"{len(utterances)} utterances of {opts.suite}, {audio_seconds:.1f} s of audio, "
        f"1 thread, {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    print(tabulate(rows, headers=["metric", "s compute / s audio", "x real time", "note"]))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
