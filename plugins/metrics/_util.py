"""Helpers shared by the built-in metrics: input checks, weight-file hashing,
``PairwiseMetric``, the base of the intrusive metrics that score each output on its own, and
for the model-based ones a reference-side cache (``ReferenceCache``) and
``output_and_reference`` (both signals at one rate, any lengths).

Kept free of heavy imports so that importing a metric module stays cheap.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import AudioValidationError
from gensr_bench.interfaces import Metric
from gensr_bench.records import Audio, Restoration, Utterance

V = TypeVar("V")


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


def check_same_shape(estimate: npt.NDArray, reference: npt.NDArray, metric_label: str) -> None:
    """Raise unless ``estimate`` and ``reference`` are 1-D signals of the same length.

    ``metric_label`` is the metric's name as it should read in the message (e.g. ``"LSD"``).
    """
    if estimate.shape != reference.shape or estimate.ndim != 1:
        raise AudioValidationError(
            f"{metric_label} needs two 1-D signals of the same length, got {estimate.shape} "
            f"and {reference.shape}; trim them first (gensr_bench.audio.match_lengths)"
        )


def require_signal(samples: npt.NDArray, what: str, metric: str) -> None:
    """Raise when ``samples`` is digital silence, which the metric cannot score."""
    if not np.any(samples):
        raise AudioValidationError(
            f"{metric}: {what} is digital silence (every sample is 0), which {metric} cannot "
            "score; a silent output or reference has no defined value for this metric"
        )


#: Length of the frames in which ``active_seconds`` looks for sound.
ACTIVITY_FRAME_SECONDS = 0.02
#: A frame this far below the signal's loudest frame counts as silent (pystoi's 40-dB rule).
ACTIVITY_RANGE_DB = 40.0
#: The least sound a comparison of two signals needs: five 20-ms frames. A single-sample click
#: has one active frame; digital silence and a constant (DC) signal have none.
MIN_ACTIVE_SECONDS = 0.1


def active_seconds(samples: npt.ArrayLike, sample_rate: int) -> float:
    """Seconds of ``samples`` in 20-ms frames that carry sound: frames whose variance (energy
    around the frame's own mean, so a DC offset is no sound) is non-zero and within
    ``ACTIVITY_RANGE_DB`` of the loudest frame's. A trailing partial frame counts as its length.
    """
    signal = np.asarray(samples, dtype=np.float64)
    if signal.size == 0:
        return 0.0
    frame = max(1, round(ACTIVITY_FRAME_SECONDS * sample_rate))
    starts = np.arange(0, signal.size, frame)
    lengths = np.diff(np.append(starts, signal.size))
    mean = np.add.reduceat(signal, starts) / lengths
    energy = np.maximum(np.add.reduceat(signal**2, starts) / lengths - mean**2, 0.0)
    # A constant frame has exactly no sound, whatever rounding the variance picked up.
    constant = np.maximum.reduceat(signal, starts) == np.minimum.reduceat(signal, starts)
    energy[constant] = 0.0
    loudest = float(energy.max())
    if loudest == 0.0:
        return 0.0
    active = (energy > 0) & (energy >= loudest * 10 ** (-ACTIVITY_RANGE_DB / 10))
    return float(lengths[active].sum()) / sample_rate


def require_sound(
    samples: npt.ArrayLike,
    sample_rate: int,
    what: str,
    metric: str,
    minimum: float = MIN_ACTIVE_SECONDS,
) -> None:
    """Raise ``AudioValidationError`` unless ``samples`` carry at least ``minimum`` seconds of
    sound (``active_seconds``).

    For a metric that compares a signal with another (or transcribes or embeds it), digital
    silence, a constant (DC) signal and an isolated click have no defined value: there is no
    sound to compare, and the number an implementation would return is set by its epsilons and
    normalisations, not by the audio.
    """
    signal = np.asarray(samples)
    if not np.any(signal):
        raise AudioValidationError(
            f"{metric}: {what} is digital silence (every sample is 0), which {metric} cannot "
            "score; a silent output or reference has no defined value for this metric"
        )
    if np.ptp(signal) == 0:
        raise AudioValidationError(
            f"{metric}: {what} is a constant (DC) signal (every sample is "
            f"{float(signal.flat[0])}), which carries no sound for {metric} to score; it has no "
            "defined value"
        )
    seconds = active_seconds(signal, sample_rate)
    if seconds < minimum:
        raise AudioValidationError(
            f"{metric}: {what} has only {seconds:.3f} s of sound (20-ms frames within "
            f"{ACTIVITY_RANGE_DB:.0f} dB of its loudest), less than the {minimum} s {metric} "
            "needs to score honestly; it is (near-)silence around an isolated click or burst"
        )


class PairwiseMetric(Metric):
    """Base of an intrusive metric that scores each restoration against its reference alone.

    Subclasses implement ``score_pair`` instead of ``score_batch``. ``score_batch`` checks that
    restorations and utterances pair up one to one (``check_batch``), then for each pair takes
    the restoration's and the reference's samples through ``estimate_and_reference`` at the
    class's ``sample_rate`` (``None``: whatever rate the reference has; the restoration must
    share it) and with the same number of samples, and returns the ``score_pair`` dicts in
    order. A missing reference, a wrong rate or a length mismatch raises
    ``AudioValidationError`` before ``score_pair`` is called, and so does a signal without
    sound when the class sets ``needs_sound``.
    """

    requires_reference: ClassVar[bool] = True
    #: Whether both signals must carry sound (``require_sound``): ``True`` for a metric that has
    #: no defined value on digital silence, a constant (DC) signal or an isolated click.
    needs_sound: ClassVar[bool] = False

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            est, ref = estimate_and_reference(restoration, utterance, self.sample_rate, self.name)
            if self.needs_sound:
                assert utterance.reference is not None  # estimate_and_reference checked it
                rate = self.sample_rate or utterance.reference.sample_rate
                require_sound(ref, rate, f"the reference of {utterance.id!r}", self.name)
                require_sound(est, rate, f"the restoration of {utterance.id!r}", self.name)
            scores.append(self.score_pair(est, ref, utterance))
        return scores

    @abstractmethod
    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        """The ``outputs`` of one restoration's samples against its reference's samples.

        ``estimate`` and ``reference`` are 1-D, at ``sample_rate`` (or the reference's own rate
        when that is ``None``) and of the same length; ``utterance`` is the one they belong to
        (for its id in messages, or as a cache key for reference-side work).
        """


@contextmanager
def torch_threads(threads: int = 1) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, restoring the caller's setting.

    The built-in torch metrics compute on one thread: results do not depend on the thread count
    (reductions differ in the last bit otherwise) and the runner parallelises across processes.
    """
    import torch

    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


class ReferenceCache(Generic[V]):
    """A small least-recently-used map for reference-side features or embeddings."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, computing and storing it when missing."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = compute()
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def output_and_reference(
    restoration: Restoration, utterance: Utterance, sample_rate: int, metric: str
) -> tuple[npt.NDArray, npt.NDArray]:
    """The restoration's and the reference's samples at ``sample_rate``, any lengths.

    For metrics that need no time alignment (features matched greedily, utterance
    embeddings). Raises AudioValidationError for a missing reference, a wrong rate, or a signal
    without sound (``require_sound``): the features of digital silence, a constant or a click
    are the encoder's biases, and matching them gives a number (a silent output's precision
    can be high where the reference pauses) that says nothing about the audio.
    """
    reference = utterance.reference
    if reference is None:
        raise AudioValidationError(
            f"{metric} needs a clean reference but utterance {utterance.id!r} has none; "
            "use a non-intrusive metric (e.g. dnsmos) for suites without references"
        )
    ref = samples_at(reference, sample_rate, f"the reference of {utterance.id!r}", metric)
    est = samples_at(restoration.audio, sample_rate, f"the restoration of {utterance.id!r}", metric)
    require_sound(ref, sample_rate, f"the reference of {utterance.id!r}", metric)
    require_sound(est, sample_rate, f"the restoration of {utterance.id!r}", metric)
    return est, ref
