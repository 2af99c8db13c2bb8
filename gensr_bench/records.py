"""Plain frozen records that flow through the harness (DESIGN section 2).

Audio is always float32, mono, one-dimensional, with an explicit sample rate. Records carry no
behaviour beyond validation and small derived properties; reading and writing live elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Audio:
    """A mono float32 waveform and its sample rate in Hz."""

    samples: FloatArray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples)
        if samples.ndim != 1:
            raise ValueError(
                f"Audio samples must be one-dimensional (mono), got shape {samples.shape}; "
                "mix down with gensr_bench.audio.to_mono first."
            )
        if samples.dtype != np.float32 or not samples.flags.c_contiguous:
            samples = np.ascontiguousarray(samples, dtype=np.float32)
        object.__setattr__(self, "samples", samples)
        if int(self.sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def content_hash(self) -> str:
        """sha256 of the sample rate and the float32 samples: equal hashes mean equal audio."""
        digest = hashlib.sha256(str(self.sample_rate).encode())
        digest.update(b":")
        digest.update(self.samples.tobytes())
        return digest.hexdigest()

    # The generated dataclass __eq__ compares the sample arrays with ``==``, whose truth value
    # is ambiguous (ValueError), and its __hash__ hashes an unhashable array: compare the rate
    # and the exact float32 content instead, consistent with ``content_hash``.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Audio):
            return NotImplemented
        return (
            self.sample_rate == other.sample_rate
            and self.samples.shape == other.samples.shape
            and self.samples.tobytes() == other.samples.tobytes()
        )

    def __hash__(self) -> int:
        return hash((self.sample_rate, self.samples.tobytes()))


@dataclass(frozen=True)
class Utterance:
    """One input of a suite: degraded audio, optional reference, transcript and metadata.

    ``error`` is set (and ``degraded`` may be ``None``) when the suite could not load the input,
    for example an unreadable file; the runner then reports every metric as ``None`` with it.
    """

    id: str
    degraded: Audio | None
    reference: Audio | None = None
    transcript: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.degraded is None and self.error is None:
            raise ValueError(f"Utterance {self.id!r} has neither degraded audio nor an error")


@dataclass(frozen=True)
class Restoration:
    """A model's output for one utterance."""

    utterance_id: str
    audio: Audio
    model: str
    seed: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredOutput:
    """Every metric output for one restored utterance.

    ``scores`` maps each metric output name (``dnsmos_ovrl``, ``pesq_wb`` ...) to a float, or to
    ``None`` when it failed; ``errors`` then holds the reason under the same key.
    ``flags`` records what the runner did to the audio (e.g. peak normalisation).
    """

    utterance_id: str
    index: int
    scores: Mapping[str, float | None]
    errors: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    flags: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PreferencePair:
    """Two candidates for the same input: ``chosen`` beat ``rejected`` under ``criterion``."""

    input_id: str
    chosen: Restoration
    rejected: Restoration
    chosen_scores: Mapping[str, float]
    rejected_scores: Mapping[str, float]
    criterion: tuple[str, ...]


@dataclass(frozen=True)
class MetricSummary:
    """Aggregate of one metric output over a run (or a subset of it)."""

    output: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n_scored: int
    n_total: int
    higher_is_better: bool


#: The error an intrusive metric records on an utterance without a clean reference (after
#: the metric's name: ``"pesq: needs a reference, and this utterance has none"``).
NO_REFERENCE = "needs a reference, and this utterance has none"


@dataclass(frozen=True)
class FailedOutput:
    """One failed output of a run: the utterance, the output name and why it is ``None``."""

    utterance_id: str
    output: str
    message: str


@dataclass(frozen=True)
class RunNotes:
    """What a finished run has to say beyond its means, as data (the command line prints it).

    ``failed_utterances`` counts the utterances with a failed output other than an intrusive
    metric's missing reference; ``failures`` gives the first few of them (one output each).
    """

    peak_normalised: int = 0
    no_reference_metrics: tuple[str, ...] = ()
    failed_utterances: int = 0
    failures: tuple[FailedOutput, ...] = ()


@dataclass(frozen=True)
class GroupMeans:
    """The mean of each output over the utterances whose ``meta[key]`` is ``group``."""

    group: str
    n_utterances: int
    means: Mapping[str, float | None]


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run: its configuration, provenance and per-output summaries.

    Also the run's ``notes``, when a meta key was asked for (``RunOptions.by``), the
    ``breakdown`` of its means by that key, and ``model_ignored_files``: files the model was
    pointed at that no utterance of the run used, each ``(path, why)``
    (``RestorationModel.ignored_files``).
    """

    run_id: str
    config: Mapping[str, Any]
    provenance: Mapping[str, Any]
    summaries: tuple[MetricSummary, ...]
    n_utterances: int
    notes: RunNotes = RunNotes()
    breakdown: tuple[GroupMeans, ...] = ()
    model_ignored_files: tuple[tuple[str, str], ...] = ()
