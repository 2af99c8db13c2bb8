"""Measurement jitter of metric outputs, and the per-output margins of ``--min-margin auto``.

A metric is a noisy judge: the same speech, shifted by one sample or passed through a
resampler, gets a slightly different score. A preference pair whose winner is ahead by less
than that jitter on some output is a coin toss on that output. ``measure_jitter`` scores a
suite's degraded inputs as they are and after each :data:`PERTURBATIONS` (through the runner,
so the scores are exactly what ``run`` gives), and records per output the ``quantile`` of the
absolute score change; ``--min-margin auto`` then asks a winner to be ahead by more than that
on every criterion output (``margins_from_jitter``).

Perturbations (none changes what a listener hears):

* ``shift``: one sample of silence in front, the last sample dropped (a 62.5-us delay at
  16 kHz);
* ``resample``: to 44.1 kHz and back (band-limited interpolation round trip);
* ``dither``: white noise at -90 dBFS RMS added (below 16-bit quantisation noise).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gensr_bench import audio as audio_ops
from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import RestorationModel, item_seed
from gensr_bench.records import Audio, Restoration, Utterance

if TYPE_CHECKING:
    from gensr_bench.interfaces import Metric, Suite
    from gensr_bench.plugins import GensrPluginManager
    from gensr_bench.runner import RunOptions

#: What ``pairs jitter`` writes (and ``--jitter`` reads): its ``format`` field.
JITTER_FORMAT = "gensr-bench-jitter/1"
PERTURBATIONS = ("shift", "resample", "dither")
DITHER_RMS = 10 ** (-90 / 20)


def perturb(samples: np.ndarray, rate: int, kind: str, seed: int) -> np.ndarray:
    """``samples`` after one of :data:`PERTURBATIONS` (same length, same rate)."""
    if kind == "shift":
        return np.concatenate([np.zeros(1, samples.dtype), samples[:-1]])
    if kind == "resample":
        there = audio_ops.resample(Audio(samples, rate), 44100)
        back = audio_ops.resample(there, rate).samples
        out = np.zeros_like(samples)
        n = min(len(out), len(back))
        out[:n] = back[:n]
        return out
    if kind == "dither":
        noise = np.random.default_rng(seed).standard_normal(len(samples)) * DITHER_RMS
        return (samples + noise).astype(samples.dtype)
    raise ConfigError(f"unknown perturbation {kind!r}; one of {', '.join(PERTURBATIONS)}")


class PerturbedInput(RestorationModel):
    """Returns each utterance's degraded input, perturbed (``kind`` ``none``: unchanged).

    A measuring device for :func:`measure_jitter`, not a registered model.
    """

    name = "perturbed-input"
    paradigm = "dsp"
    accepted_options = ("kind", "sample_rate")
    waveform_tolerance = 0.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The suite's own rate (option ``sample_rate``, default 16 kHz): nothing is resampled.
        self.sample_rate = int(self.options.get("sample_rate", 16000))  # type: ignore[misc]

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        kind = str(self.options.get("kind", "none"))
        out = []
        for utt in batch:
            if utt.degraded is None:
                raise ConfigError(f"utterance {utt.id!r} has no degraded audio to perturb")
            samples = utt.degraded.samples
            if kind != "none":
                samples = perturb(samples, utt.degraded.sample_rate, kind, item_seed(seed, utt.id))
            out.append(
                Restoration(utt.id, Audio(samples, utt.degraded.sample_rate), self.name, seed)
            )
        return out


@dataclass(frozen=True)
class OutputJitter:
    """How much one metric output moves under the perturbations."""

    #: The ``quantile`` of ``|score(perturbed) - score(original)|`` over every perturbation
    #: and utterance: the margin ``--min-margin auto`` asks for.
    jitter: float
    #: The same quantile per perturbation.
    per_perturbation: Mapping[str, float]
    #: Utterance-perturbation pairs with both scores.
    n: int


def jitter_table(
    original: Mapping[str, Mapping[str, float | None]],
    perturbed: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    quantile: float = 0.95,
) -> dict[str, OutputJitter]:
    """Per output, the ``quantile`` of absolute score changes.

    ``original``: utterance id -> output -> score; ``perturbed``: perturbation -> the same.
    Pairs where either score is ``None`` are left out; an output with none left is left out.
    """
    if not 0 < quantile <= 1:
        raise ConfigError(f"quantile must be in (0, 1], got {quantile}")
    outputs = list(dict.fromkeys(o for scores in original.values() for o in scores))
    table = {}
    for output in outputs:
        changes: dict[str, list[float]] = {}
        for kind, by_utt in perturbed.items():
            for uid, scores in by_utt.items():
                a, b = original.get(uid, {}).get(output), scores.get(output)
                if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                    changes.setdefault(kind, []).append(abs(b - a))
        every = [v for values in changes.values() for v in values]
        if not every:
            continue
        table[output] = OutputJitter(
            jitter=float(np.quantile(every, quantile)),
            per_perturbation={k: float(np.quantile(v, quantile)) for k, v in changes.items()},
            n=len(every),
        )
    return table


def measure_jitter(
    run: Callable[[RestorationModel, Path], Mapping[str, Mapping[str, float | None]]],
    work_dir: Path,
    perturbations: Sequence[str] = PERTURBATIONS,
    quantile: float = 0.95,
    sample_rate: int = 16000,
) -> dict[str, OutputJitter]:
    """Score the original and every perturbed input with ``run(model, out_dir)`` (which runs
    the model on the suite with the metrics and returns id -> output -> score) and tabulate.

    Each run goes to ``work_dir/<kind>`` (``original`` for the unperturbed inputs).
    ``sample_rate``: the suite's rate (the inputs are perturbed at it).
    """
    unknown = sorted(set(perturbations) - set(PERTURBATIONS))
    if unknown or not perturbations:
        raise ConfigError(
            f"perturbations must be among {', '.join(PERTURBATIONS)}, got "
            f"{', '.join(perturbations) or 'none'}"
        )
    rate = {"sample_rate": sample_rate}
    original = run(PerturbedInput(kind="none", **rate), work_dir / "original")
    perturbed = {
        kind: run(PerturbedInput(kind=kind, **rate), work_dir / kind) for kind in perturbations
    }
    return jitter_table(original, perturbed, quantile)


def save_jitter(
    path: Path, table: Mapping[str, OutputJitter], source: Mapping[str, Any]
) -> dict[str, Any]:
    """Write the jitter file (``format``, ``source`` of the measurement, ``outputs``)."""
    document = {
        "format": JITTER_FORMAT,
        "source": dict(source),
        "outputs": {
            name: {"jitter": j.jitter, "per_perturbation": dict(j.per_perturbation), "n": j.n}
            for name, j in table.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def margins_from_jitter(path: Path, outputs: Sequence[str]) -> dict[str, float]:
    """The ``--min-margin auto`` margins of ``outputs``: each output's measured jitter.

    Raises:
        ConfigError: the file is not a jitter file, or lacks one of ``outputs`` (naming the
            command that measures it).
    """
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the jitter file {path} ({exc}); make one with `gensr-bench pairs "
            "jitter --suite SUITE --metrics ... --out FILE`"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != JITTER_FORMAT:
        raise ConfigError(
            f"{path} is not a jitter file (expected format {JITTER_FORMAT!r}); make one with "
            "`gensr-bench pairs jitter`"
        )
    measured = document.get("outputs") or {}
    missing = [o for o in outputs if o not in measured]
    if missing:
        raise ConfigError(
            f"the jitter file {path} has no measurement of {', '.join(missing)} (it has: "
            f"{', '.join(sorted(measured)) or 'none'}); measure them with `gensr-bench pairs "
            "jitter --metrics ...`, or give --min-margin as a number"
        )
    return {o: float(measured[o]["jitter"]) for o in outputs}


def suite_runner(
    suite: Suite,
    metrics: Sequence[Metric],
    options: RunOptions,
    pm: GensrPluginManager | None = None,
    on_run: Callable[[str], None] | None = None,
) -> Callable[[RestorationModel, Path], dict[str, dict[str, float | None]]]:
    """The ``run`` of :func:`measure_jitter`: ``run_suite`` of a model on ``suite`` with
    ``metrics`` and ``options`` (``options.resume`` continues earlier runs), returning each
    utterance's scores. ``on_run(label)`` is told which run starts."""
    from gensr_bench.runner import run_suite
    from gensr_bench.store import read_run

    def run(model: RestorationModel, out_dir: Path) -> dict[str, dict[str, float | None]]:
        if on_run is not None:
            on_run(out_dir.name)
        run_suite(model, suite, metrics, out_dir, options, pm)
        return {o.utterance_id: dict(o.scores) for o in read_run(out_dir).outputs}

    return run
