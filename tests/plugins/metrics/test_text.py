"""text: normalisation (numbers as words, punctuation, apostrophes) and Levenshtein edit
counts (hand-computed, and against the textbook dynamic-programming distance)."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.errors import MetricError
from gensr_bench_plugins.metrics.text import (
    EditCounts,
    align,
    cardinal,
    char_edits,
    character_error_rate,
    normalize_text,
    ordinal,
    word_edits,
    word_error_rate,
)

# -- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  The   CAT\tsat.\n", "the cat sat"),
        ("Don't stop\u2014it's nine o\u2019clock.", "don't stop it's nine o'clock"),
        ("'Quoted' words, \"double\" too", "quoted words double too"),
        ("A well-known (and tested) idea; yes?", "a well known and tested idea yes"),
        ("Gate 42, row 7", "gate forty two row seven"),
        ("1,000 people and 3.5 cups", "one thousand people and three point five cups"),
        ("the 21st and the 3rd", "the twenty first and the third"),
        ("100% R&D", "one hundred percent r and d"),
        ("Caf\u00e9 na\u00efve", "caf\u00e9 na\u00efve"),
        ("?!...", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (105, "one hundred five"),
        (1995, "one thousand nine hundred ninety five"),
        (2_000_019, "two million nineteen"),
        (10**15, "one " + " ".join(["zero"] * 15)),
    ],
)
def test_cardinal(number: int, words: str) -> None:
    assert cardinal(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "first"), (2, "second"), (12, "twelfth"), (20, "twentieth"), (101, "one hundred first")],
)
def test_ordinal(number: int, words: str) -> None:
    assert ordinal(number) == words


# -- alignment -------------------------------------------------------------------------------


def test_exact_match_is_zero() -> None:
    counts = word_edits("the cat sat on the mat", "the cat sat on the mat")
    assert counts == EditCounts(hits=6, substitutions=0, deletions=0, insertions=0)
    assert counts.rate == 0.0
    assert character_error_rate("the cat", "the cat") == 0.0


def test_normalisation_removes_case_and_punctuation() -> None:
    assert word_error_rate("Hello, world! It's me.", "hello world it's me") == 0.0
    assert character_error_rate("Hello, World!", "HELLO WORLD") == 0.0


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected", "rate"),
    [
        ("the cat sat", "the bat sat", EditCounts(2, 1, 0, 0), 1 / 3),
        ("the cat sat on the mat", "the cat on the mat", EditCounts(5, 0, 1, 0), 1 / 6),
        ("the cat sat", "the big cat sat", EditCounts(3, 0, 0, 1), 1 / 3),
        ("yes", "yes yes yes", EditCounts(1, 0, 0, 2), 2.0),  # insertions can exceed 1
        ("a b c d", "a c d e", EditCounts(3, 0, 1, 1), 0.5),
        ("one two three four", "", EditCounts(0, 0, 4, 0), 1.0),
    ],
)
def test_word_edits_hand_computed(
    reference: str, hypothesis: str, expected: EditCounts, rate: float
) -> None:
    counts = word_edits(reference, hypothesis)
    assert counts == expected
    assert counts.reference_length == len(reference.split())
    assert counts.rate == pytest.approx(rate)


def test_mixed_edits_total() -> None:
    # a=a, b->x, c=c, d deleted (no hypothesis word lies between c and e), e=e, +f +g: 4 edits.
    counts = word_edits("a b c d e", "a x c e f g")
    assert counts.errors == 4 and counts.rate == pytest.approx(0.8)
    assert counts.hits + counts.substitutions + counts.deletions == 5
    assert counts.hits + counts.substitutions + counts.insertions == 6


def test_character_edits_count_spaces() -> None:
    assert char_edits("kitten", "sitting") == EditCounts(4, 2, 0, 1)  # the classic distance 3
    assert character_error_rate("kitten", "sitting") == pytest.approx(3 / 6)
    # "ab cd" -> "abcd": one deleted space over five characters.
    assert char_edits("ab cd", "abcd") == EditCounts(4, 0, 1, 0)


def test_digits_and_punctuation_match_the_spoken_words() -> None:
    # Whisper writes numbers as digits, with punctuation and capitals; transcripts spell them.
    spoken = "I have forty-two apples and three point five cups"
    assert word_error_rate(spoken, " I have 42 apples, and 3.5 cups.") == 0.0
    assert word_error_rate("It's the twenty first of May", "It\u2019s the 21st of May!") == 0.0


def test_empty_hypothesis_is_one() -> None:
    assert word_error_rate("a short sentence", "") == 1.0
    assert character_error_rate("a short sentence", "") == 1.0
    assert word_error_rate("a short sentence", "...") == 1.0  # nothing left after normalising


def test_empty_reference_is_undefined() -> None:
    with pytest.raises(MetricError, match="empty reference"):
        word_error_rate("", "anything")
    assert align([], []) == EditCounts(0, 0, 0, 0)


def textbook_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance by the full dynamic-programming table (the independent reference)."""
    table = np.zeros((len(reference) + 1, len(hypothesis) + 1), dtype=int)
    table[:, 0] = np.arange(len(reference) + 1)
    table[0, :] = np.arange(len(hypothesis) + 1)
    for i in range(1, len(reference) + 1):
        for j in range(1, len(hypothesis) + 1):
            table[i, j] = min(
                table[i - 1, j] + 1,
                table[i, j - 1] + 1,
                table[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]),
            )
    return int(table[-1, -1])


def test_edit_counts_agree_with_the_textbook_distance() -> None:
    rng = np.random.default_rng(0)
    vocabulary = ["a", "b", "c", "d", "e"]
    for _ in range(200):
        ref = list(rng.choice(vocabulary, size=int(rng.integers(0, 12))))
        hyp = list(rng.choice(vocabulary, size=int(rng.integers(0, 12))))
        counts = align(ref, hyp)
        assert counts.errors == textbook_distance(ref, hyp)
        assert counts.hits + counts.substitutions + counts.deletions == len(ref)
        assert counts.hits + counts.substitutions + counts.insertions == len(hyp)
