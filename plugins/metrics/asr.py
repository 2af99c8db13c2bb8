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

**Text normalisation** (:func:`normalize_text`, applied to reference and hypothesis alike):

1. Unicode NFKC, then lowercase; typographic apostrophes (U+2019, U+2018, U+02BC)
   become ``'``.
2. Numbers become English words, as a cardinal: ``42`` -> ``forty two``, ``1,000`` -> ``one
   thousand``, ``3.5`` -> ``three point five``, ``21st`` -> ``twenty first``. A year reads as
   a cardinal too (``1995`` -> ``one thousand nine hundred ninety five``), which penalises a
   speaker who says "nineteen ninety five"; the built-in suites' sentences hold no digits.
   Digits joined to letters (``mp3``) are left as they are; leading zeros are dropped
   (``7:05`` -> ``seven five``).
3. ``%`` -> ``percent``, ``&`` -> ``and``.
4. Every other character that is not a letter, a digit or an apostrophe (punctuation,
   hyphens, symbols) becomes a space; apostrophes at the start or end of a word are dropped,
   word-internal ones kept (``don't``, ``o'clock``, ``grandmother's``: the CMU dictionary
   spells them so).
5. Whitespace is collapsed; words are the space-separated tokens. Characters for ``cer`` are
   those of the normalised text, single spaces between words included.

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
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
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

SAMPLE_RATE = 16000
#: Transcriptions kept per process, keyed by audio content hash.
TRANSCRIPTION_CACHE_SIZE = 1024
REFERENCE_TEXT_CHOICES = ("auto", "transcript", "asr")

# -- text normalisation ----------------------------------------------------------------------

_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?(?!\w)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_SYMBOLS = {"%": " percent ", "&": " and "}
_NOT_WORD = re.compile(r"[^\w\s']|_")
_ALTERNATE_PRONUNCIATION = re.compile(r"\(\d+\)$")


def cardinal(number: int) -> str:
    """English words for a non-negative integer: ``105`` -> ``one hundred five``.

    Numbers of a quadrillion or more are read digit by digit.
    """
    if number < 0:
        raise ValueError(f"cardinal() reads non-negative integers, got {number}")
    if number >= 10**15:
        return " ".join(_ONES[int(digit)] for digit in str(number))
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for scale, word in _SCALES:
        if number >= scale:
            head, rest = divmod(number, scale)
            return f"{cardinal(head)} {word}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")  # pragma: no cover


def ordinal(number: int) -> str:
    """English ordinal words: ``21`` -> ``twenty first``, ``100`` -> ``one hundredth``."""
    words = cardinal(number).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell_number(match: re.Match[str]) -> str:
    whole, fraction, suffix = match.group(1), match.group(2), match.group(3)
    number = int(whole.replace(",", ""))
    if suffix and fraction is None:
        return f" {ordinal(number)} "
    words = cardinal(number)
    if fraction is not None:
        words += " point " + " ".join(_ONES[int(digit)] for digit in fraction)
        if suffix:  # "3.5th" is not a number anyone writes; keep the suffix as a word
            words += f" {suffix}"
    return f" {words} "


def normalize_text(text: str) -> str:
    """Lowercase words separated by single spaces, as the module docstring's rules say."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    text = _NUMBER.sub(_spell_number, text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _NOT_WORD.sub(" ", text)
    stripped = (word.strip("'") for word in text.split())
    return " ".join(word for word in stripped if word)


# -- alignment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EditCounts:
    """The operations of one minimum-cost Levenshtein alignment of a hypothesis to a reference.

    Among alignments of equal cost the counts follow one fixed preference: a match or
    substitution first, then a deletion, then an insertion (the total is the same for all).
    """

    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def reference_length(self) -> int:
        """Number of reference tokens: hits + substitutions + deletions."""
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        """The edit distance: substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference_length; raises MetricError for an empty reference."""
        if self.reference_length == 0:
            raise MetricError(
                "the error rate is undefined for an empty reference text (no words to divide "
                "by); give the utterance a transcript, or a reference the recogniser hears words in"
            )
        return self.errors / self.reference_length


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> EditCounts:
    """Levenshtein-align two token sequences (unit costs) and count each kind of edit."""
    # Row k holds, for the first k reference tokens against every hypothesis prefix, the
    # alignment cost and its (hits, substitutions, deletions, insertions).
    previous = [(j, 0, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_token in enumerate(reference, start=1):
        current = [(i, 0, 0, i, 0)]
        for j, hyp_token in enumerate(hypothesis, start=1):
            cost, hit, sub, dele, ins = previous[j - 1]
            if ref_token == hyp_token:
                best = (cost, hit + 1, sub, dele, ins)
            else:
                best = (cost + 1, hit, sub + 1, dele, ins)
            cost, hit, sub, dele, ins = previous[j]
            if cost + 1 < best[0]:
                best = (cost + 1, hit, sub, dele + 1, ins)
            cost, hit, sub, dele, ins = current[j - 1]
            if cost + 1 < best[0]:
                best = (cost + 1, hit, sub, dele, ins + 1)
            current.append(best)
        previous = current
    _, hits, substitutions, deletions, insertions = previous[-1]
    return EditCounts(hits, substitutions, deletions, insertions)


def word_edits(reference: str, hypothesis: str) -> EditCounts:
    """Word-level edit counts of two texts after :func:`normalize_text`."""
    return align(normalize_text(reference).split(), normalize_text(hypothesis).split())


def char_edits(reference: str, hypothesis: str) -> EditCounts:
    """Character-level edit counts of two texts after :func:`normalize_text` (spaces count)."""
    return align(list(normalize_text(reference)), list(normalize_text(hypothesis)))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of ``hypothesis`` against ``reference`` (normalised texts)."""
    return word_edits(reference, hypothesis).rate


def character_error_rate(reference: str, hypothesis: str) -> float:
    """CER of ``hypothesis`` against ``reference`` (normalised texts, spaces included)."""
    return char_edits(reference, hypothesis).rate


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
