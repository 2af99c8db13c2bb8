"""Text normalisation and Levenshtein edit counts for the error-rate metrics.

Shared by the transcription metrics (``wer``/``cer`` with PocketSphinx in ``asr.py``,
``whisper_wer``/``whisper_cer`` in ``whisper.py``): both compare a recogniser's words with a
reference text by Levenshtein alignment,

    error rate = (substitutions + deletions + insertions) / number of reference tokens

over words (:func:`word_edits`) or characters (:func:`char_edits`), after both texts are
normalised by :func:`normalize_text`. The rate is 0 for a perfect transcription, 1.0 for an empty
one, and can exceed 1 when the recogniser inserts words. The counts of one alignment are an
:class:`EditCounts`.

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
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from gensr_bench.errors import MetricError

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
