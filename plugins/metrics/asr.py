"""Word and character error rates of a restoration's pocketsphinx transcription (``wer``, ``cer``).

A content metric: the restoration is recognised by PocketSphinx 5 (the US-English acoustic
model, 3-gram language model and CMU dictionary that ship inside the ``pocketsphinx`` wheel,
decoded at 16 kHz) and the words are compared with a reference text by Levenshtein alignment:

    error rate = (substitutions + deletions + insertions) / number of reference tokens

over words (``wer``) or characters (``cer``), after both texts are normalised by
:func:`normalize_text`. The rate is 0 for a perfect transcription, 1.0 for an empty one, and can
exceed 1 when the recogniser inserts words. The counts of one alignment are available from
:func:`word_edits` / :func:`char_edits` (an :class:`EditCounts`).

**Which reference text.** Option ``reference_text``:

* ``"auto"`` (default): the utterance's ``transcript`` when it has one, otherwise the
  recognition of the utterance's clean reference audio. The second case measures how much the
  restoration changes what the recogniser hears (recogniser errors on the reference cancel
  out only partly), not absolute intelligibility;
* ``"transcript"``: always the transcript; an utterance without one is an error (``None``);
* ``"asr"``: always the recognition of the reference audio, even when a transcript exists.

The option is part of the metric's recorded configuration, so results say which was used.
The metric declares ``requires_reference = True`` (the ``auto`` and ``asr`` modes may need the
reference audio) and ``uses_transcript = True``, so the runner's score cache keys a result by the
output, the reference and the transcript.

**Text normalisation and alignment** live in the shared module ``text.py`` (its docstring gives
the rules; :func:`normalize_text`, :func:`word_edits`, :func:`char_edits` and the other names
are re-exported here).

**Not a preference metric on the synthetic suites.** PocketSphinx is a GMM-HMM recogniser
trained on human speech; on espeak-synthesised speech it is close to 100 % WER even on the
clean reference (measured on the first 20 clean ``synth-gsr`` references against their
transcripts: corpus WER 0.89, CER 0.67; no utterance below 0.61). Differences between
restorations are then recogniser noise, not intelligibility, so it must not be chosen as a
preference metric (or read as content preservation) on the synthetic suites; use it on recorded
human speech. It is therefore left out of the default metric set (``default = False``): ask for
it with ``--metrics wer,cer``.

Recognition is deterministic: the decoder's feature front end is reinitialised before every
utterance: without that, the same audio decoded after another utterance came out different
(the front end keeps state between utterances; turning its noise removal off did not help).
Float samples in [-1, 1] become 16-bit PCM by rounding ``x * 32767`` after clipping to
[-1, 1]. One decoder per process serves both metrics and keeps the last transcriptions by audio
content, so ``--metrics wer,cer`` recognises each output once, and candidates of one input
recognise their shared reference once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError, ConfigError, GensrError, MetricError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.weights import sha256_of

from ._util import check_batch, require_sound, samples_at

# The text normalisation and alignment live in the shared module text.py (whisper.py uses them
# too); they are imported here under their old names, which stay part of this module's API.
from .text import EditCounts as EditCounts
from .text import align as align
from .text import cardinal as cardinal
from .text import char_edits as char_edits
from .text import character_error_rate as character_error_rate
from .text import normalize_text as normalize_text
from .text import ordinal as ordinal
from .text import word_edits as word_edits
from .text import word_error_rate as word_error_rate

SAMPLE_RATE = 16000
#: Transcriptions kept per process, keyed by audio content hash.
TRANSCRIPTION_CACHE_SIZE = 1024
REFERENCE_TEXT_CHOICES = ("auto", "transcript", "asr")
_ALTERNATE_PRONUNCIATION = re.compile(r"\(\d+\)$")

# -- recognition -----------------------------------------------------------------------------


def to_pcm16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Float samples in [-1, 1] as 16-bit PCM: clipped, scaled by 32767 and rounded."""
    audio = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    return np.round(audio * 32767.0).astype(np.int16)


def clean_hypothesis(hypothesis: str) -> str:
    """Drop filler tokens (``<sil>``, ``[noise]``, ``++garbage++``) and ``(2)`` markers."""
    words = []
    for word in hypothesis.split():
        if word.startswith(("<", "[", "+")):
            continue
        words.append(_ALTERNATE_PRONUNCIATION.sub("", word))
    return " ".join(words)


class Recognizer:
    """PocketSphinx with the wheel's US-English model, decoding whole 16-kHz utterances.

    ``transcribe`` is deterministic and independent of what was decoded before (see the module
    docstring). The last ``cache_size`` transcriptions are kept by audio content (0: none).
    Safe to share between threads.
    """

    def __init__(self, cache_size: int = TRANSCRIPTION_CACHE_SIZE) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise GensrError(
                "the wer and cer metrics need PocketSphinx; install it with "
                "`pip install pocketsphinx`"
            ) from exc
        # The defaults are the en-us acoustic model, en-us.lm.bin and cmudict-en-us.dict from
        # the wheel's model folder; loglevel FATAL keeps the decoder's INFO lines off stderr.
        self._decoder: Any = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    def config(self) -> dict[str, str]:
        """The model files the decoder loaded (acoustic model folder, LM, dictionary)."""
        return {key: str(self._decoder.config[key]) for key in ("hmm", "lm", "dict")}

    def transcribe(self, audio: Audio) -> str:
        """The recognised words of 16-kHz ``audio``, fillers removed ('' when none)."""
        if audio.sample_rate != SAMPLE_RATE:
            raise AudioValidationError(
                f"PocketSphinx's en-us model decodes {SAMPLE_RATE} Hz audio, got "
                f"{audio.sample_rate} Hz; resample it first (gensr_bench.audio.resample)"
            )
        key = audio.content_hash()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            decoder = self._decoder
            decoder.reinit_feat()  # forget the previous utterance's noise and CMN estimates
            decoder.start_utt()
            decoder.process_raw(to_pcm16(audio.samples).tobytes(), no_search=False, full_utt=True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            text = clean_hypothesis(hypothesis.hypstr) if hypothesis is not None else ""
            self._cache[key] = text
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return text


def model_files() -> dict[str, Path]:
    """The decoder's default model files, keyed ``pocketsphinx/<path in the model folder>``.

    Every file of the acoustic model folder (its README aside), the language model and the
    pronunciation dictionary: what ``Decoder(samprate=16000)`` loads.
    """
    try:
        import pocketsphinx
    except ImportError as exc:
        raise GensrError(
            "the wer and cer metrics need PocketSphinx; install it with `pip install pocketsphinx`"
        ) from exc
    config = pocketsphinx.Config()
    acoustic = Path(config["hmm"])
    paths = [p for p in sorted(acoustic.iterdir()) if p.is_file() and p.name != "README"]
    paths += [Path(config["lm"]), Path(config["dict"])]
    root = Path(pocketsphinx.get_model_path())
    files = {}
    for path in paths:
        if not path.is_file():
            raise GensrError(
                f"PocketSphinx model file {path} is missing; reinstall it "
                "(`pip install --force-reinstall pocketsphinx`)"
            )
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        files[f"pocketsphinx/{name}"] = path
    return files


@cache
def shared_recognizer() -> Recognizer:
    """The process's recogniser, created on first use (loading the model takes ~0.5 s)."""
    return Recognizer()


# -- metrics ---------------------------------------------------------------------------------


class _ErrorRateMetric(Metric):
    """Shared scoring of ``wer`` and ``cer``; subclasses pick the unit of alignment."""

    version = "1"
    higher_is_better = False
    requires_reference = True
    uses_transcript = True
    sample_rate = SAMPLE_RATE
    default = False
    accepted_options = ("reference_text",)
    #: "words" or "characters".
    unit: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        choice = self.options.get("reference_text", "auto")
        if choice not in REFERENCE_TEXT_CHOICES:
            raise ConfigError(
                f"{self.name}: option reference_text={choice!r} is not one of "
                f"{', '.join(REFERENCE_TEXT_CHOICES)}"
            )
        self.reference_text: str = choice
        self._recognizer: Recognizer | None = None

    def setup(self) -> None:
        if self._recognizer is None:
            self._recognizer = shared_recognizer()

    def reference_words(self, utterance: Utterance) -> str:
        """The text a restoration of ``utterance`` is compared with (see ``reference_text``)."""
        if self.reference_text != "asr" and utterance.transcript is not None:
            return utterance.transcript
        if self.reference_text == "transcript":
            raise MetricError(
                f"{self.name}: utterance {utterance.id!r} has no transcript and option "
                "reference_text='transcript' forbids recognising the reference instead; use "
                "reference_text='auto' for suites without transcripts"
            )
        if utterance.reference is None:
            raise MetricError(
                f"{self.name}: utterance {utterance.id!r} has neither a transcript nor a "
                "reference to recognise one from"
            )
        assert self._recognizer is not None
        audio = utterance.reference
        what = f"the reference of {utterance.id!r}"
        samples = samples_at(audio, SAMPLE_RATE, what, self.name)
        # What a recogniser makes of a reference without sound (silence, a constant, a click)
        # is no reference text: its words would be hallucinations, and the error rate of the
        # output against them an invented number.
        require_sound(samples, SAMPLE_RATE, what, self.name)
        return self._recognizer.transcribe(audio)

    def edits(self, reference: str, hypothesis: str) -> EditCounts:
        return (word_edits if self.unit == "words" else char_edits)(reference, hypothesis)

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()
        assert self._recognizer is not None
        output = self.outputs[0]
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            samples_at(
                restoration.audio, SAMPLE_RATE, f"the restoration of {utterance.id!r}", self.name
            )
            reference = self.reference_words(utterance)
            # Any output has a defined error rate, silence, a constant or a click included:
            # the recogniser's words for it (none, or a spurious one) against the reference
            # text, which loses about every reference word (WER about 1).
            hypothesis = self._recognizer.transcribe(restoration.audio)
            counts = self.edits(reference, hypothesis)
            if counts.reference_length == 0:
                raise MetricError(
                    f"{self.name}: the reference text of {utterance.id!r} is empty after "
                    f"normalisation ({reference!r}), so the error rate is undefined"
                )
            scores.append({output: counts.rate})
        return scores

    def weights_sha256(self) -> dict[str, str]:
        return {name: sha256_of(path) for name, path in model_files().items()}


class Wer(_ErrorRateMetric):
    """Word error rate of a PocketSphinx transcription (lower is better; not for espeak suites).

    Reference text: the utterance's transcript, else the recognition of its reference audio
    (option ``reference_text``; see the module docstring for this and the normalisation).
    PocketSphinx is near 100 % WER on espeak-synthesised speech even when it is clean, so this
    metric must not be used as a preference metric on the synthetic suites; it is off by
    default (``default = False``).
    """

    name = "wer"
    outputs = ("wer",)
    unit = "words"


class Cer(_ErrorRateMetric):
    """Character error rate of a PocketSphinx transcription (lower is better; not for espeak).

    Reference text: the utterance's transcript, else the recognition of its reference audio
    (option ``reference_text``; see the module docstring for this and the normalisation).
    PocketSphinx is near 100 % WER on espeak-synthesised speech even when it is clean, so this
    metric must not be used as a preference metric on the synthetic suites; it is off by
    default (``default = False``).
    """

    name = "cer"
    outputs = ("cer",)
    unit = "characters"


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Wer, Cer]
