"""Error rates of a recogniser's transcription against a reference text: what ``wer``/``cer``
(PocketSphinx, ``asr.py``) and ``whisper`` (faster-whisper, ``whisper.py``) share.

Both metrics transcribe each restoration and compare the words with a reference text by the
edit counts of ``text.py`` (:func:`~gensr_bench_plugins.metrics.text.word_edits`,
:func:`~gensr_bench_plugins.metrics.text.char_edits`). They differ only in the recogniser, in
the verb their messages use for it ("recognising", "transcribing") and in which error rates
they report. This module holds the rest:

* :class:`TranscriptionErrorRate`, the base of both metrics: the option ``reference_text``
  (one of :data:`REFERENCE_TEXT_CHOICES`), the choice of the reference text
  (:meth:`~TranscriptionErrorRate.reference_words`) and the scoring loop;
* :class:`CachingTranscriber`, the base of both recognisers: the 16-kHz check and the bounded
  memory of transcriptions keyed by audio content, behind one lock.

**Which reference text.** Option ``reference_text``:

* ``"auto"`` (default): the utterance's ``transcript`` when it has one, otherwise the
  transcription of the utterance's clean reference audio by the metric's own recogniser;
* ``"transcript"``: always the transcript; an utterance without one is an error (``None``);
* ``"asr"``: always the transcription of the reference audio, even when a transcript exists.

A reference that must be transcribed but carries no sound (silence, a constant, a lone click)
is an error (``require_sound``): a recogniser's words for it would be hallucinations, and the
error rate of the output against them an invented number. Any *output* has a defined error
rate, and a reference text that is empty after normalisation is an error (nothing to divide by).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from gensr_bench.errors import AudioValidationError, ConfigError, MetricError
from gensr_bench.interfaces import Metric
from gensr_bench.records import Audio, Restoration, Utterance

from ._util import check_batch, require_sound, samples_at
from .text import EditCounts

#: The values of the option ``reference_text`` (see the module docstring).
REFERENCE_TEXT_CHOICES = ("auto", "transcript", "asr")
#: Transcriptions kept per process, keyed by audio content hash.
TRANSCRIPTION_CACHE_SIZE = 1024


class Transcriber(Protocol):
    """What a transcription metric needs of its recogniser."""

    def transcribe(self, audio: Audio) -> str:
        """The words heard in ``audio`` (at the metric's rate), '' when none."""
        ...


class CachingTranscriber(ABC):
    """A recogniser of whole utterances at ``sample_rate`` that keeps its last transcriptions.

    ``transcribe`` refuses audio at another rate, then answers from the memory of the last
    ``cache_size`` transcriptions (keyed by audio content; 0: none) or calls ``decode``. One
    lock guards the memory and the decoding (neither decoder may run twice at once), so an
    instance is safe to share between threads.
    """

    #: The rate the recogniser decodes.
    sample_rate: ClassVar[int] = 16000
    #: Who decodes what, to start the message for audio at another rate:
    #: ``f"{decodes} 16000 Hz audio, got 8000 Hz; ..."``.
    decodes: ClassVar[str]

    def __init__(self, cache_size: int = TRANSCRIPTION_CACHE_SIZE) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    def transcribe(self, audio: Audio) -> str:
        """The words heard in ``audio`` (as ``decode`` gives them), from memory when known."""
        if audio.sample_rate != self.sample_rate:
            raise AudioValidationError(
                f"{self.decodes} {self.sample_rate} Hz audio, got {audio.sample_rate} Hz; "
                "resample it first (gensr_bench.audio.resample)"
            )
        key = audio.content_hash()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            text = self.decode(audio)
            self._cache[key] = text
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return text

    def forget(self) -> None:
        """Empty the memory, so that the next ``transcribe`` of any audio decodes it."""
        with self._lock:
            self._cache.clear()

    @abstractmethod
    def decode(self, audio: Audio) -> str:
        """The words heard in ``audio`` ('' when none); ``audio`` is at ``sample_rate``.

        Called with the lock held, one call at a time.
        """


class TranscriptionErrorRate(Metric):
    """Base of a metric that scores error rates of a transcription against a reference text.

    ``score_batch`` transcribes each restoration with the recogniser that ``load_transcriber``
    gives (once, in ``setup``), takes the reference text from ``reference_words`` (option
    ``reference_text``) and returns the rate of each output's ``edit_counts``. Subclasses set
    ``name``, ``version``, ``outputs``, ``accepted_options`` (with ``reference_text``) and the
    verb of their messages, and implement ``load_transcriber`` and ``edit_counts``.
    """

    higher_is_better = False
    requires_reference = True
    uses_transcript = True
    sample_rate: ClassVar[int] = 16000
    default = False
    #: How messages say what the recogniser does to a reference without a transcript:
    #: "... forbids {verb_ing} the reference", "... a reference to {verb} one from".
    verb: ClassVar[str] = "transcribe"
    verb_ing: ClassVar[str] = "transcribing"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        choice = self.options.get("reference_text", "auto")
        if choice not in REFERENCE_TEXT_CHOICES:
            raise ConfigError(
                f"{self.name}: option reference_text={choice!r} is not one of "
                f"{', '.join(REFERENCE_TEXT_CHOICES)}"
            )
        self.reference_text: str = choice
        self._transcriber: Transcriber | None = None

    @abstractmethod
    def load_transcriber(self) -> Transcriber:
        """The recogniser this metric transcribes with (``setup`` calls it once)."""

    @abstractmethod
    def edit_counts(self, reference: str, hypothesis: str) -> dict[str, EditCounts]:
        """The edit counts of ``hypothesis`` against ``reference`` for each of ``outputs``."""

    def setup(self) -> None:
        if self._transcriber is None:
            self._transcriber = self.load_transcriber()

    def reference_words(self, utterance: Utterance) -> str:
        """The text a restoration of ``utterance`` is compared with (see ``reference_text``)."""
        if self.reference_text != "asr" and utterance.transcript is not None:
            return utterance.transcript
        if self.reference_text == "transcript":
            raise MetricError(
                f"{self.name}: utterance {utterance.id!r} has no transcript and option "
                f"reference_text='transcript' forbids {self.verb_ing} the reference instead; use "
                "reference_text='auto' for suites without transcripts"
            )
        if utterance.reference is None:
            raise MetricError(
                f"{self.name}: utterance {utterance.id!r} has neither a transcript nor a "
                f"reference to {self.verb} one from"
            )
        assert self._transcriber is not None  # score_batch called setup
        audio = utterance.reference
        what = f"the reference of {utterance.id!r}"
        samples = samples_at(audio, self.sample_rate, what, self.name)
        # What a recogniser makes of a reference without sound (silence, a constant, a click)
        # is no reference text: its words would be hallucinations, and the error rate of the
        # output against them an invented number.
        require_sound(samples, self.sample_rate, what, self.name)
        return self._transcriber.transcribe(audio)

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()
        assert self._transcriber is not None
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            what = f"the restoration of {utterance.id!r}"
            samples_at(restoration.audio, self.sample_rate, what, self.name)
            reference = self.reference_words(utterance)
            # Any output has a defined error rate, silence, noise, a constant or a click
            # included: the recogniser's words for it (none, or a spurious or hallucinated
            # phrase) against the reference text, which loses about every reference word.
            hypothesis = self._transcriber.transcribe(restoration.audio)
            counts = self.edit_counts(reference, hypothesis)
            if any(count.reference_length == 0 for count in counts.values()):
                raise MetricError(
                    f"{self.name}: the reference text of {utterance.id!r} is empty after "
                    f"normalisation ({reference!r}), so the error rate is undefined"
                )
            scores.append({output: count.rate for output, count in counts.items()})
        return scores
