"""Every registered metric on degenerate audio, scored the way a run scores it.

Three signals stand in for a broken restoration: digital silence, a constant (DC) signal and a
single-sample click in silence. Each is scored as the restoration against a speech-like
reference, and, for the metrics that read the reference, as the reference of a speech-like
restoration. ``EXPECTED`` says, per metric, side and signal, whether a value is defined (a
finite number, no error) or not (``None`` plus an error whose reason is given), and why. A
metric that registers without an entry here fails ``test_the_table_covers_every_metric``.

Scores go through ``BatchProcessor.process`` (validation, peak limit, resampling, length
matching, the metric, the runner's value checks), so they are what a user's run records.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gensr_bench.plugins import get_plugin_manager
from gensr_bench.records import Audio, ScoredOutput, Utterance
from gensr_bench.registry import Registry
from gensr_bench.runner import BatchProcessor
from gensr_bench.testing import EchoModel, require_weights, tiny_wavlm_dir, voiced_signal
from gensr_bench.weights import WEIGHTS_ENV

SAMPLE_RATE = 16000
SECONDS = 2.0
TRANSCRIPT = "the birch canoe slid on the smooth planks"
SIGNALS = ("silence", "dc", "click")
#: "output": the signal is the restoration (reference: speech). "reference": the signal is the
#: reference of a speech restoration, without a transcript (only for intrusive metrics).
SIDES = ("output", "reference")


@dataclass(frozen=True)
class Outcome:
    """What a metric gives for one degenerate case: a finite value, or ``None`` plus an
    error matching ``reason`` (a regular expression)."""

    reason: str | None = None


DEFINED = Outcome()


def undefined(reason: str) -> Outcome:
    return Outcome(reason)


#: ``require_sound``'s three reasons (plugins/metrics/_util.py).
NO_SOUND = {
    "silence": undefined(r"is digital silence \(every sample is 0\)"),
    "dc": undefined(r"is a constant \(DC\) signal \(every sample is 0\.5\)"),
    "click": undefined(r"has only 0\.020 s of sound .* less than the 0\.1 s"),
}
ALL_DEFINED = dict.fromkeys(SIGNALS, DEFINED)

EXPECTED: dict[tuple[str, str], dict[str, Outcome]] = {
    # Learned ratings of any signal: the model's own (low) rating of silence, a constant or a
    # click is a real output, with no 0/0 or epsilon floor deciding it.
    ("dnsmos", "output"): ALL_DEFINED,
    ("nisqa", "output"): ALL_DEFINED,
    # DistillMOS divides by the peak: silence is 0/0; a constant or a click is rated.
    ("distillmos", "output"): {
        "silence": undefined(r"is digital silence"),
        "dc": DEFINED,
        "click": DEFINED,
    },
    # An output's error rate is defined whatever it sounds like: the recogniser's words for
    # it (none, or a spurious one) against the transcript, nearly every word lost.
    ("wer", "output"): ALL_DEFINED,
    ("cer", "output"): ALL_DEFINED,
    # Without a transcript the reference audio is transcribed: a reference without sound has
    # no words, so there is no text to compare with.
    ("wer", "reference"): NO_SOUND,
    ("cer", "reference"): NO_SOUND,
    # The same for Whisper: an output without sound gets no words (or a hallucinated phrase),
    # an error rate of about 1; a reference without sound has no words to compare with.
    ("whisper", "output"): ALL_DEFINED,
    ("whisper", "reference"): NO_SOUND,
    # Comparisons of two signals that the degenerate signal's lack of sound leaves to
    # epsilons and normalisations (PESQ's level alignment, STOI's envelope correlations,
    # LSD's log of zero power, embeddings and features of no speech).
    **{
        (name, side): NO_SOUND
        for name in (
            "pesq",
            "stoi",
            "estoi",
            "lsd",
            "speaker-sim",
            "speaker-sim-wavlm",
            "speechbertscore",
        )
        for side in SIDES
    },
    # SI-SDR projects the output onto the reference in exact arithmetic: an all-zero signal is
    # refused (-inf output, or nothing to project onto), a constant or a click scores very low
    # (about -50 dB against speech), an honest value.
    ("si-sdr", "output"): {
        "silence": undefined(r"silent \(all-zero\) output is -inf"),
        "dc": DEFINED,
        "click": DEFINED,
    },
    ("si-sdr", "reference"): {
        "silence": undefined(r"undefined for a silent \(all-zero\) reference"),
        "dc": DEFINED,
        "click": DEFINED,
    },
}

METRICS = Registry.from_plugins(get_plugin_manager(), "metrics")
CASES = [
    (entry.cls.name, side, signal)
    for entry in METRICS
    for side in SIDES
    if side == "output" or entry.cls.requires_reference
    for signal in SIGNALS
]


def degenerate(signal: str) -> Audio:
    samples = np.zeros(round(SECONDS * SAMPLE_RATE), dtype=np.float32)
    if signal == "dc":
        samples[:] = 0.5
    elif signal == "click":
        samples[len(samples) // 2] = 1.0
    return Audio(samples, SAMPLE_RATE)


def utterances() -> list[Utterance]:
    speech = voiced_signal(SECONDS, SAMPLE_RATE, seed=3)
    utts = []
    for signal in SIGNALS:
        # EchoModel restores an utterance to its degraded input: that is the output scored.
        utts.append(Utterance(f"output-{signal}", degenerate(signal), speech, TRANSCRIPT))
        utts.append(Utterance(f"reference-{signal}", speech, degenerate(signal), None))
    return utts


def _tiny_wavlm_options(xvector: bool, **extra: Any) -> Callable[[Path], dict[str, Any]]:
    def options(folder: Path) -> dict[str, Any]:
        return {"model": str(tiny_wavlm_dir(folder / "model", xvector=xvector)), **extra}

    return options


#: Options of the metrics whose weights are not bundled: the tiny random models their own
#: tests use (their numbers differ from the real models', their failures do not).
OPTIONS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "speechbertscore": _tiny_wavlm_options(False, layer=2),
    "speaker-sim-wavlm": _tiny_wavlm_options(True),
}


@pytest.fixture(scope="module")
def score_with(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], dict[str, ScoredOutput]]]:
    """``score_with(metric)``: every degenerate case's ScoredOutput by utterance id, scored
    once per metric through the runner's ``BatchProcessor``."""
    done: dict[str, dict[str, ScoredOutput]] = {}
    with pytest.MonkeyPatch.context() as patch:

        def score(name: str) -> dict[str, ScoredOutput]:
            if name not in done:
                cls = METRICS.get(name)
                # shared/weights/<metric>/ beside the checkout, as for NISQA's own tests;
                # skips (fails under CI=true) when a weight file is nowhere.
                for weight in cls.weight_files:
                    path = require_weights(weight, __file__, name)
                    patch.setenv(WEIGHTS_ENV, str(path.parent))
                make_options = OPTIONS.get(name)
                folder = tmp_path_factory.mktemp(name)
                metric = cls(**(make_options(folder) if make_options else {}))
                processor = BatchProcessor(EchoModel(), [metric])
                results = processor.process(list(enumerate(utterances())), seed=0)
                done[name] = {scored.utterance_id: scored for scored, _ in results}
            return done[name]

        yield score


def test_the_table_covers_every_metric() -> None:
    assert set(EXPECTED) == {(name, side) for name, side, _ in CASES}, (
        "add each registered metric to EXPECTED: output side always, reference side for "
        "metrics that read the reference"
    )
    assert all(set(row) == set(SIGNALS) for row in EXPECTED.values())


def test_the_signals_are_what_they_claim() -> None:
    silence, dc, click = (degenerate(s).samples for s in SIGNALS)
    assert not silence.any()
    assert np.ptp(dc) == 0 and dc[0] == 0.5
    assert np.count_nonzero(click) == 1 and click.max() == 1.0


@pytest.mark.parametrize(
    "name, side, signal", CASES, ids=[f"{name}-{side}-{signal}" for name, side, signal in CASES]
)
def test_degenerate_audio_gets_a_defined_value_or_none_with_a_reason(
    score_with: Callable[[str], dict[str, ScoredOutput]], name: str, side: str, signal: str
) -> None:
    expected = EXPECTED[(name, side)][signal]
    scored = score_with(name)[f"{side}-{signal}"]
    outputs = METRICS.get(name).outputs
    assert set(scored.scores) == set(outputs)
    if expected.reason is None:
        assert scored.errors == {}, f"{name} on {side} {signal}: {scored.errors}"
        for output in outputs:
            value = scored.scores[output]
            assert isinstance(value, float) and math.isfinite(value), (output, value)
    else:
        for output in outputs:
            assert scored.scores[output] is None, f"{name} invented {scored.scores[output]}"
            error = scored.errors[output]
            assert error.startswith(f"{name}: "), error
            assert re.search(expected.reason, error), error
