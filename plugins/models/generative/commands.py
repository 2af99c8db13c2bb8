"""``gensr-bench train tokenizer``: fit the spectral tokenizer and check its round trip."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from gensr_bench.audio import limit_peak
from gensr_bench.interfaces import Metric
from gensr_bench.records import Audio, Restoration, Utterance

from .tokenizer import SpectralTokenizer, clean_frames, round_trip


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.mean(finite)), 3) if finite else None


def check_round_trip(
    tokenizer: SpectralTokenizer, utterances: Sequence[Utterance], metrics: Sequence[Metric]
) -> dict[str, dict[str, float | None]]:
    """Mean metric outputs of clean speech and of its round trips (own and degraded phase)."""
    from tqdm import tqdm

    rows: dict[str, dict[str, list[float | None]]] = {}
    for utt in tqdm(utterances, desc="round trip", unit="utt", file=sys.stderr):
        ref = utt.reference.samples
        versions = {
            "clean": ref,
            "round_trip": round_trip(tokenizer, ref),
            "round_trip_degraded_phase": round_trip(tokenizer, ref, utt.degraded.samples),
        }
        for label, samples in versions.items():
            # Scored as the runner scores outputs: beyond full scale, scaled to peak 1.0.
            audio, _ = limit_peak(Audio(np.asarray(samples, dtype=np.float32), 16000))
            restoration = Restoration(utt.id, audio, label)
            for metric in metrics:
                for key, value in metric.score_batch([restoration], [utt])[0].items():
                    rows.setdefault(label, {}).setdefault(key, []).append(value)
    return {label: {k: _mean(v) for k, v in cols.items()} for label, cols in rows.items()}


@click.command(name="tokenizer")
@click.option("--suite", required=True, help="Suite of clean training speech (its references).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--levels", type=click.IntRange(min=2), default=16, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--check-suite", default=None, help="Also report the round trip on this suite.")
@click.option("--check-limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--check-metrics", default="dnsmos,estoi", show_default=True, help="Metrics of the check."
)
@click.pass_context
def tokenizer_command(
    ctx: click.Context,
    suite: str,
    out: str,
    levels: int,
    limit: int,
    check_suite: str | None,
    check_limit: int,
    check_metrics: str,
) -> None:
    """Fit the per-bin spectral tokenizer of ar-small and mgm-small on a suite's clean speech."""
    from gensr_bench.runner import git_commit

    reg = ctx.find_root().obj.registries
    train_suite = reg.suites.create(suite, limit=limit)
    start = time.perf_counter()
    refs = [u.reference.samples for u in train_suite if u.reference is not None]
    tokenizer = SpectralTokenizer(levels).fit(clean_frames(refs))
    manifest: dict[str, Any] = {
        "training_command": " ".join(["gensr-bench", *sys.argv[1:]]),
        "suite": suite,
        "suite_fingerprint": train_suite.fingerprint(),
        "utterances": len(refs),
        "code": git_commit(),
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    if check_suite:
        metrics = [cls() for cls in reg.resolve_metrics(check_metrics.split(","))]
        test = [u for u in reg.suites.create(check_suite, limit=check_limit) if u.reference]
        manifest["check"] = {
            "suite": check_suite,
            "utterances": len(test),
            "means": check_round_trip(tokenizer, test, metrics),
        }
    tokenizer.save(Path(out), manifest)
    click.echo(f"tokenizer with {levels} levels per bin fitted on {len(refs)} utterances: {out}")
    if "check" in manifest:
        click.echo(json.dumps(manifest["check"]["means"], indent=2))
