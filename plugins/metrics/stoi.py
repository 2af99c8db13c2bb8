"""STOI and extended STOI (ESTOI): intrusive intelligibility measures, via ``pystoi``.

The values are exactly ``pystoi.stoi(reference, restoration, 16000, extended=...)``, with two
differences: where pystoi gives up and returns 1e-5 with a warning (fewer than 30 STFT frames of
the 10-kHz-resampled reference remain after dropping frames 40 dB below the loudest, i.e. the
audio is too short or mostly silent), these metrics raise ``AudioValidationError`` instead, so
the runner records a failure rather than a made-up score; and a restoration or reference
without sound (digital silence, a constant, an isolated click: see ``require_sound``) is
refused too, where pystoi would give 0.0 for silence and 0.53 for a constant output.

pystoi's ESTOI adds noise of ``2.2e-16`` scale from numpy's *global* random generator while it
normalises, so two calls on the same audio differ in the 16th digit. To be deterministic the
metric seeds that generator with ``ESTOI_SEED`` for the call and restores the caller's state
afterwards: ESTOI equals pystoi's after ``np.random.seed(0)``, bit for bit. (Like any use of the
global generator this is not thread-safe; the runner parallelises with processes.)
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Utterance

from ._util import PairwiseMetric, require_signal

SAMPLE_RATE = 16000
#: What pystoi returns (with a RuntimeWarning) when it has too few frames to score.
PYSTOI_SENTINEL = 1e-5
#: pystoi needs 31 frames of 256 samples at a hop of 128 at 10 kHz (30 STFT frames remain after
#: silent-frame removal): 4097 samples, 0.4097 s, when no frame is silent.
MIN_SECONDS = 0.41
#: Seed of numpy's global generator while pystoi computes ESTOI (see the module docstring).
ESTOI_SEED = 0


def stoi(estimate: npt.ArrayLike, reference: npt.ArrayLike, extended: bool = False) -> float:
    """STOI (or ESTOI with ``extended=True``) of a 16-kHz ``estimate`` against ``reference``."""
    from pystoi import stoi as reference_stoi

    est = np.asarray(estimate)
    ref = np.asarray(reference)
    what = "ESTOI" if extended else "STOI"
    if est.shape != ref.shape:
        raise AudioValidationError(
            f"{what} needs the restoration and the reference to have the same length, got "
            f"{est.shape} and {ref.shape}; trim them first (gensr_bench.audio.match_lengths)"
        )
    require_signal(ref, "the reference", what.lower())
    rng_state = np.random.get_state()
    try:
        np.random.seed(ESTOI_SEED)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(reference_stoi(ref, est, SAMPLE_RATE, extended=extended))
    finally:
        np.random.set_state(rng_state)
    too_few_frames = any("Not enough STFT frames" in str(w.message) for w in caught)
    # The value test also catches the sentinel when another thread swallowed the warning.
    if too_few_frames or value == PYSTOI_SENTINEL:
        raise AudioValidationError(
            f"{what} cannot score this pair: fewer than 30 frames (384 ms at 10 kHz) of the "
            "reference remain after pystoi drops frames more than 40 dB below the loudest one; "
            "the audio is too short or mostly silent (pystoi would have returned 1e-5)"
        )
    return value


class Stoi(PairwiseMetric):
    """Short-time objective intelligibility (Taal et al. 2011) at 16 kHz, via pystoi."""

    name = "stoi"
    version = "1"
    higher_is_better = True
    sample_rate = SAMPLE_RATE
    outputs = ("stoi",)
    min_duration = MIN_SECONDS
    #: STOI correlates 384-ms band envelopes; for silence, a constant (no energy in any
    #: one-third-octave band) or a click those are zero, and pystoi's normalisation turns 0/0
    #: into 0 or into amplified rounding noise (a DC output scored 0.53).
    needs_sound = True
    #: Whether to compute the extended measure (ESTOI) instead.
    extended: ClassVar[bool] = False

    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        return {self.outputs[0]: stoi(estimate, reference, extended=self.extended)}


class Estoi(Stoi):
    """Extended STOI (Jensen & Taal 2016), robust to modulated noise, at 16 kHz, via pystoi."""

    name = "estoi"
    outputs = ("estoi",)
    extended = True


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Stoi, Estoi]
