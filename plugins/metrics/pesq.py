"""PESQ (ITU-T P.862): wide-band (P.862.2) and narrow-band (P.862.1) MOS-LQO at 16 kHz.

A thin layer over the ``pesq`` package (the ITU reference C code): the values are exactly
``pesq.pesq(16000, reference, restoration, mode)``. The library's own errors (audio shorter
than 1/4 s, no utterance detected in the reference) and the unhelpful ``ValueError`` it raises
on a silent restoration become ``AudioValidationError`` with a message that says what to fix.
A restoration or reference without sound (digital silence, a constant, an isolated click: see
``require_sound``) is refused before the C code runs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Utterance

from ._util import PairwiseMetric, require_signal

SAMPLE_RATE = 16000
#: The P.862 C code refuses buffers shorter than a quarter of a second.
MIN_SECONDS = 0.25
MODES = {"pesq_wb": "wb", "pesq_nb": "nb"}


def pesq(estimate: npt.ArrayLike, reference: npt.ArrayLike, mode: str = "wb") -> float:
    """PESQ MOS-LQO of a 16-kHz ``estimate`` against ``reference``; ``mode`` is 'wb' or 'nb'."""
    from pesq import PesqError
    from pesq import pesq as reference_pesq

    est = np.asarray(estimate)
    ref = np.asarray(reference)
    require_signal(ref, "the reference", "pesq")
    require_signal(est, "the restoration", "pesq")
    try:
        return float(reference_pesq(SAMPLE_RATE, ref, est, mode))
    except PesqError as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise AudioValidationError(
            f"PESQ ({mode}) cannot score this pair: {detail}. PESQ needs at least "
            f"{MIN_SECONDS} s of audio with audible speech in the reference"
        ) from exc
    except ValueError as exc:  # e.g. a NaN level inside the C code for near-silent audio
        raise AudioValidationError(
            f"PESQ ({mode}) failed on this pair ({exc}); the restoration or the reference is "
            "probably (near-)silent or has no speech activity"
        ) from exc


class Pesq(PairwiseMetric):
    """PESQ wide-band (P.862.2) and narrow-band (P.862.1) MOS-LQO at 16 kHz (intrusive)."""

    name = "pesq"
    version = "1"
    higher_is_better = True
    sample_rate = SAMPLE_RATE
    outputs = ("pesq_wb", "pesq_nb")
    min_duration = MIN_SECONDS
    #: A DC or click signal has no sound for PESQ's level and time alignment: the C code would
    #: amplify rounding noise to its fixed level and score that.
    needs_sound = True

    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        return {output: pesq(estimate, reference, mode) for output, mode in MODES.items()}


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Pesq]
