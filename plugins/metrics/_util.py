"""Helpers shared by the built-in metrics: input checks and weight-file hashing.

Kept free of heavy imports so that importing a metric module stays cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_batch(
    metric: str, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
) -> None:
    """Raise ValueError unless the two sequences pair up one to one."""
    if len(restorations) != len(utterances):
        raise ValueError(
            f"{metric}: got {len(restorations)} restorations for {len(utterances)} utterances; "
            "score_batch needs one restoration per utterance, in the same order"
        )


def samples_at(audio: Audio, sample_rate: int | None, what: str, metric: str) -> npt.NDArray:
    """The samples of ``audio`` after checking its rate (``None``: any rate is accepted)."""
    if sample_rate is not None and audio.sample_rate != sample_rate:
        raise AudioValidationError(
            f"{metric}: {what} is at {audio.sample_rate} Hz but this metric scores at "
            f"{sample_rate} Hz; resample it first (gensr_bench.audio.resample)"
        )
    return audio.samples


def estimate_and_reference(
    restoration: Restoration, utterance: Utterance, sample_rate: int | None, metric: str
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The restoration's and the reference's samples, checked to share rate and length.

    With ``sample_rate=None`` the two must share whatever rate the reference has.
    """
    reference = utterance.reference
    if reference is None:
        raise AudioValidationError(
            f"{metric} needs a clean reference but utterance {utterance.id!r} has none; "
            "use a non-intrusive metric (e.g. dnsmos) for suites without references"
        )
    rate = reference.sample_rate if sample_rate is None else sample_rate
    ref = samples_at(reference, rate, f"the reference of {utterance.id!r}", metric)
    est = samples_at(restoration.audio, rate, f"the restoration of {utterance.id!r}", metric)
    if len(est) != len(ref):
        raise AudioValidationError(
            f"{metric}: the restoration of {utterance.id!r} has {len(est)} samples but its "
            f"reference has {len(ref)}; trim both to the same length first "
            "(gensr_bench.audio.match_lengths)"
        )
    return est, ref


def require_signal(samples: npt.NDArray, what: str, metric: str) -> None:
    """Raise when ``samples`` is digital silence, which the metric cannot score."""
    if not np.any(samples):
        raise AudioValidationError(
            f"{metric}: {what} is digital silence (every sample is 0), which {metric} cannot "
            "score; a silent output or reference has no defined value for this metric"
        )
