"""Tests of gensr_bench.alignment.pairs: unanimous preference pairs and their statistics.

Small cases are reasoned out by hand; random cases are checked against a brute-force oracle
written here from the rule itself (every ordered pair, every output, its own direction).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from gensr_bench.alignment.pairs import Candidate, pair_stats, unanimous_pairs
from gensr_bench.errors import ConfigError
from gensr_bench.records import Audio, PreferencePair, Restoration

#: dnsmos_ovrl and estoi: higher is better; lsd (log-spectral distance): lower is better.
DIRECTIONS = {"dnsmos_ovrl": True, "estoi": True, "lsd": False}


def candidate(
    k: int, uid: str = "utt-0", seed: int | None = None, **scores: float | None
) -> Candidate:
    """Candidate ``k`` of input ``uid``: audio unique to ``k`` (a constant of value ``k``)."""
    audio = Audio(np.full(32, 0.01 * k, dtype=np.float32), 16000)
    restoration = Restoration(uid, audio, "test-model", seed=k if seed is None else seed)
    return Candidate(restoration, dict(scores))


def as_indices(
    pairs: Sequence[PreferencePair], cands: Sequence[Candidate]
) -> list[tuple[int, int]]:
    """(chosen, rejected) as indices into ``cands`` (by identity of the restoration)."""
    index = {id(c.restoration): i for i, c in enumerate(cands)}
    return [(index[id(p.chosen)], index[id(p.rejected)]) for p in pairs]


def oracle(
    cands: Sequence[Candidate],
    criterion: Sequence[str],
    directions: Mapping[str, bool],
    margin: float = 0.0,
) -> set[tuple[int, int]]:
    """Every ordered (winner, loser) the rule allows, by brute force over ordered pairs."""
    out = set()
    for w, r in itertools.permutations(range(len(cands)), 2):
        ok = True
        for output in criterion:
            a, b = cands[w].scores.get(output), cands[r].scores.get(output)
            if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
                ok = False
                break
            better_by = a - b if directions[output] else b - a
            ok = ok and better_by > margin
        if ok:
            out.add((w, r))
    return out


# --------------------------------------------------------------------------- the rule


def test_a_winner_on_every_output_makes_one_pair() -> None:
    winner = candidate(0, dnsmos_ovrl=3.0, estoi=0.9, lsd=1.0)
    loser = candidate(1, dnsmos_ovrl=2.5, estoi=0.8, lsd=2.0)
    criterion = ["dnsmos_ovrl", "estoi", "lsd"]
    for order in ([winner, loser], [loser, winner]):
        pairs = unanimous_pairs(order, criterion, DIRECTIONS)
        assert len(pairs) == 1
        (pair,) = pairs
        assert pair.chosen is winner.restoration and pair.rejected is loser.restoration
        assert pair.input_id == "utt-0"
        assert pair.criterion == ("dnsmos_ovrl", "estoi", "lsd")
        assert pair.chosen_scores == winner.scores
        assert pair.rejected_scores == loser.scores


@pytest.mark.parametrize(
    "other",
    [
        {"dnsmos_ovrl": 3.0, "estoi": 0.8},  # tie on dnsmos_ovrl
        {"dnsmos_ovrl": 2.0, "estoi": 0.9},  # tie on estoi
        {"dnsmos_ovrl": 2.0, "estoi": 0.95},  # worse on one, better on the other
        {"dnsmos_ovrl": 3.5, "estoi": 0.5},  # better on one, worse on the other
        {"dnsmos_ovrl": 3.0, "estoi": 0.9},  # equal on both
    ],
)
def test_no_pair_when_any_output_ties_or_disagrees(other: dict[str, float]) -> None:
    base = candidate(0, dnsmos_ovrl=3.0, estoi=0.9)
    cands = [base, candidate(1, **other)]
    assert unanimous_pairs(cands, ["dnsmos_ovrl", "estoi"], DIRECTIONS) == []


def test_lower_is_better_outputs_are_respected() -> None:
    low_lsd = candidate(0, dnsmos_ovrl=3.0, lsd=1.0)
    high_lsd = candidate(1, dnsmos_ovrl=2.0, lsd=4.0)
    pairs = unanimous_pairs([high_lsd, low_lsd], ["dnsmos_ovrl", "lsd"], DIRECTIONS)
    assert as_indices(pairs, [low_lsd, high_lsd]) == [(0, 1)]
    # the single-output ablation on lsd alone picks the lower lsd as the winner
    alone = unanimous_pairs([high_lsd, low_lsd], ["lsd"], DIRECTIONS)
    assert as_indices(alone, [low_lsd, high_lsd]) == [(0, 1)]
    # read as higher-is-better, lsd disagrees with dnsmos_ovrl: no pair
    flipped = {**DIRECTIONS, "lsd": True}
    assert unanimous_pairs([low_lsd, high_lsd], ["dnsmos_ovrl", "lsd"], flipped) == []
    assert as_indices(
        unanimous_pairs([low_lsd, high_lsd], ["lsd"], flipped), [low_lsd, high_lsd]
    ) == [(1, 0)]


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, "missing"])
def test_a_missing_or_non_finite_score_never_pairs(bad: float | str | None) -> None:
    scores: dict[str, float | None] = {"dnsmos_ovrl": 4.5}
    if bad != "missing":
        scores["estoi"] = bad  # type: ignore[assignment]
    broken = candidate(0, **scores)  # best on dnsmos_ovrl, unusable on estoi
    middle = candidate(1, dnsmos_ovrl=3.0, estoi=0.9)
    worst = candidate(2, dnsmos_ovrl=2.0, estoi=0.5)
    cands = [broken, middle, worst]
    pairs = unanimous_pairs(cands, ["dnsmos_ovrl", "estoi"], DIRECTIONS)
    assert as_indices(pairs, cands) == [(1, 2)]
    # without estoi in the criterion the same candidate pairs as usual
    assert sorted(as_indices(unanimous_pairs(cands, ["dnsmos_ovrl"], DIRECTIONS), cands)) == [
        (0, 1),
        (0, 2),
        (1, 2),
    ]


def test_a_failed_output_outside_the_criterion_is_dropped_from_the_scores() -> None:
    winner = candidate(0, dnsmos_ovrl=3.0, lsd=None)
    loser = candidate(1, dnsmos_ovrl=2.0, lsd=1.0)
    (pair,) = unanimous_pairs([winner, loser], ["dnsmos_ovrl"], DIRECTIONS)
    assert pair.chosen_scores == {"dnsmos_ovrl": 3.0}
    assert pair.rejected_scores == {"dnsmos_ovrl": 2.0, "lsd": 1.0}


def test_scores_are_copied_not_shared() -> None:
    winner = candidate(0, dnsmos_ovrl=3.0)
    loser = candidate(1, dnsmos_ovrl=2.0)
    (pair,) = unanimous_pairs([winner, loser], ["dnsmos_ovrl"], DIRECTIONS)
    winner.scores["dnsmos_ovrl"] = 0.0  # type: ignore[index]
    assert pair.chosen_scores == {"dnsmos_ovrl": 3.0}


def test_no_self_pairs() -> None:
    best = candidate(0, dnsmos_ovrl=4.0)
    # the same candidate twice, and the same audio again (same seed) with other scores
    twin = Candidate(best.restoration, {"dnsmos_ovrl": 3.0})
    copy_of_best = Candidate(
        Restoration("utt-0", Audio(best.restoration.audio.samples.copy(), 16000), "test-model", 0),
        {"dnsmos_ovrl": 2.0},
    )
    worst = candidate(3, dnsmos_ovrl=1.0)
    pairs = unanimous_pairs([best, best, twin, copy_of_best, worst], ["dnsmos_ovrl"], DIRECTIONS)
    # each of the four copies of candidate 0's audio beats the worst candidate, and that is all
    assert [p.chosen_scores["dnsmos_ovrl"] for p in pairs] == [4.0, 4.0, 3.0, 2.0]
    for pair in pairs:
        assert pair.chosen.audio == best.restoration.audio
        assert pair.rejected is worst.restoration


def test_identical_audio_under_another_seed_makes_no_pair() -> None:
    first = candidate(0, dnsmos_ovrl=3.0)
    greedy_again = candidate(0, seed=7, dnsmos_ovrl=2.0)  # same output, another seed
    assert first.restoration.seed != greedy_again.restoration.seed
    assert unanimous_pairs([first, greedy_again], ["dnsmos_ovrl"], DIRECTIONS) == []


def test_min_margin_is_strict_and_per_output() -> None:
    a = candidate(0, dnsmos_ovrl=3.0, estoi=0.90)
    b = candidate(1, dnsmos_ovrl=2.5, estoi=0.85)  # a is better by 0.5 and by about 0.05
    criterion = ["dnsmos_ovrl", "estoi"]

    def n_pairs(margin: float | dict[str, float]) -> int:
        return len(unanimous_pairs([a, b], criterion, DIRECTIONS, min_margin=margin))

    assert n_pairs(0.0) == 1
    assert n_pairs(0.04) == 1
    assert n_pairs(0.06) == 0  # estoi's gap is below it
    assert n_pairs(0.5) == 0  # dnsmos_ovrl's gap equals it: not more than it
    assert n_pairs({"dnsmos_ovrl": 0.49, "estoi": 0.04}) == 1
    assert n_pairs({"dnsmos_ovrl": 0.5}) == 0
    assert n_pairs({"estoi": 0.06}) == 0
    assert n_pairs({"dnsmos_ovrl": 0.49}) == 1  # estoi left out: 0


@pytest.mark.parametrize(
    ("margin", "match"),
    [
        (-0.1, "finite number >= 0"),
        (math.nan, "finite number >= 0"),
        ({"estoi": -1.0}, "finite number >= 0"),
        ({"lsd": 0.1}, "does not use"),
    ],
)
def test_bad_margins_are_refused(margin: float | dict[str, float], match: str) -> None:
    cands = [candidate(0, dnsmos_ovrl=3.0, estoi=0.9), candidate(1, dnsmos_ovrl=2.0, estoi=0.8)]
    with pytest.raises(ConfigError, match=match):
        unanimous_pairs(cands, ["dnsmos_ovrl", "estoi"], DIRECTIONS, min_margin=margin)


@pytest.mark.parametrize("seed", range(6))
def test_pairs_agree_with_a_brute_force_oracle(seed: int) -> None:
    rng = random.Random(seed)
    values = [round(0.5 * k, 1) for k in range(6)]  # coarse values make ties frequent
    cands = []
    for k in range(7):
        scores: dict[str, float | None] = {
            name: rng.choice(values) for name in ("dnsmos_ovrl", "estoi", "lsd")
        }
        if rng.random() < 0.15:
            scores[rng.choice(sorted(scores))] = rng.choice([None, math.nan])
        cands.append(candidate(k, **scores))
    margin = rng.choice([0.0, 0.5])
    total = 0
    for size in (1, 2, 3):
        for criterion in itertools.combinations(sorted(DIRECTIONS), size):
            pairs = unanimous_pairs(cands, criterion, DIRECTIONS, min_margin=margin)
            found = as_indices(pairs, cands)
            assert len(found) == len(set(found))
            assert set(found) == oracle(cands, criterion, DIRECTIONS, margin)
            assert all(p.criterion == criterion for p in pairs)
            total += len(pairs)
    assert total > 0  # the comparison is not vacuous


def test_more_outputs_in_the_criterion_never_add_pairs() -> None:
    rng = random.Random(1)
    cands = [candidate(k, **{name: rng.uniform(0.0, 1.0) for name in DIRECTIONS}) for k in range(8)]
    together = set(as_indices(unanimous_pairs(cands, list(DIRECTIONS), DIRECTIONS), cands))
    assert together  # with 8 candidates some pair wins on all three
    for output in DIRECTIONS:
        alone = set(as_indices(unanimous_pairs(cands, [output], DIRECTIONS), cands))
        assert together < alone  # the ablation on one output keeps strictly more pairs


def test_a_bare_string_criterion_is_one_output() -> None:
    cands = [candidate(0, dnsmos_ovrl=3.0), candidate(1, dnsmos_ovrl=2.0)]
    (pair,) = unanimous_pairs(cands, "dnsmos_ovrl", DIRECTIONS)
    assert pair.criterion == ("dnsmos_ovrl",)


def test_no_candidates_no_pairs() -> None:
    assert unanimous_pairs([], ["dnsmos_ovrl"], DIRECTIONS) == []


# --------------------------------------------------------------------------- max_pairs


def ordered_candidates(n: int) -> list[Candidate]:
    """``n`` candidates, each better than the next on every output: n (n - 1) / 2 pairs."""
    return [
        candidate(k, dnsmos_ovrl=4.0 - 0.25 * k, estoi=1.0 - 0.05 * k, lsd=1.0 + 0.5 * k)
        for k in range(n)
    ]


def test_max_pairs_keeps_the_largest_minimum_normalised_margin() -> None:
    # dnsmos_ovrl spans 2 (0..2), lsd spans 100 (0..100). Minimum normalised margins:
    # (c0, c3) 1; (c0, c2) min(1.5/2, 50/100) = 0.5; (c1, c3) min(1/2, 95/100) = 0.5;
    # (c1, c2) and (c2, c3) 0.25; (c0, c1) min(1/2, 5/100) = 0.05. So three pairs keep (c0, c3),
    # (c0, c2), (c1, c3); a cap on raw-unit margins would keep (c0, c1) (min(1, 5) = 1, found
    # before (c1, c3) with min(1, 95) = 1) in place of (c1, c3).
    cands = [
        candidate(0, dnsmos_ovrl=2.0, lsd=0.0),
        candidate(1, dnsmos_ovrl=1.0, lsd=5.0),
        candidate(2, dnsmos_ovrl=0.5, lsd=50.0),
        candidate(3, dnsmos_ovrl=0.0, lsd=100.0),
    ]
    criterion = ["dnsmos_ovrl", "lsd"]
    everything = unanimous_pairs(cands, criterion, DIRECTIONS)
    assert len(everything) == 6
    spread = {"dnsmos_ovrl": 2.0, "lsd": 100.0}

    def strength(w: int, r: int) -> float:
        return min(
            abs(cands[w].scores[o] - cands[r].scores[o]) / spread[o]  # type: ignore[operator]
            for o in criterion
        )

    for cap in range(1, 7):
        kept = as_indices(unanimous_pairs(cands, criterion, DIRECTIONS, max_pairs=cap), cands)
        assert len(kept) == cap
        weakest_kept = min(strength(w, r) for w, r in kept)
        dropped = set(as_indices(everything, cands)) - set(kept)
        assert all(strength(w, r) <= weakest_kept for w, r in dropped)
        # returned in the order they were found, whatever the cap
        assert kept == [p for p in as_indices(everything, cands) if p in kept]
    three = as_indices(unanimous_pairs(cands, criterion, DIRECTIONS, max_pairs=3), cands)
    assert three == [(0, 2), (0, 3), (1, 3)]


def test_max_pairs_breaks_ties_by_candidate_order() -> None:
    # one output at 0, 1, 2, 3 (higher better): (3, 0) has margin 3, (3, 1) and (2, 0) 2, and
    # the three neighbours 1; the neighbour pair found first is (c1 beats c0)
    cands = [candidate(k, dnsmos_ovrl=float(k)) for k in range(4)]
    kept = as_indices(unanimous_pairs(cands, ["dnsmos_ovrl"], DIRECTIONS, max_pairs=4), cands)
    assert sorted(kept) == [(1, 0), (2, 0), (3, 0), (3, 1)]
    reordered = cands[::-1]  # now (c3 beats c2) is the neighbour pair found first
    kept = as_indices(
        unanimous_pairs(reordered, ["dnsmos_ovrl"], DIRECTIONS, max_pairs=4), reordered
    )
    assert sorted(kept) == [(0, 1), (0, 2), (0, 3), (1, 3)]


def test_max_pairs_random_is_deterministic_for_a_seed() -> None:
    cands = ordered_candidates(8)
    criterion = ["dnsmos_ovrl", "estoi", "lsd"]
    everything = as_indices(unanimous_pairs(cands, criterion, DIRECTIONS), cands)
    assert len(everything) == 28

    def draw(seed: int) -> list[tuple[int, int]]:
        pairs = unanimous_pairs(
            cands, criterion, DIRECTIONS, max_pairs=5, selection="random", seed=seed
        )
        return as_indices(pairs, cands)

    draws = [draw(seed) for seed in range(5)]
    for seed, drawn in enumerate(draws):
        assert drawn == draw(seed)
        assert len(drawn) == 5 and set(drawn) <= set(everything)
        assert drawn == [p for p in everything if p in drawn]  # in the order found
    assert len({tuple(d) for d in draws}) > 1  # the seed matters


def test_max_pairs_above_the_count_keeps_everything() -> None:
    cands = ordered_candidates(4)
    criterion = ["dnsmos_ovrl"]
    everything = unanimous_pairs(cands, criterion, DIRECTIONS)
    for selection in ("margin", "random"):
        kept = unanimous_pairs(
            cands, criterion, DIRECTIONS, max_pairs=6, selection=selection, seed=3
        )
        assert kept == everything


@pytest.mark.parametrize("cap", [0, -1, 1.5, True, "3"])
def test_max_pairs_must_be_a_positive_integer(cap: object) -> None:
    with pytest.raises(ConfigError, match="max_pairs must be a positive integer"):
        unanimous_pairs(ordered_candidates(3), ["estoi"], DIRECTIONS, max_pairs=cap)  # type: ignore[arg-type]


def test_an_unknown_selection_is_refused() -> None:
    with pytest.raises(ConfigError, match="selection must be one of margin, random"):
        unanimous_pairs(ordered_candidates(3), ["estoi"], DIRECTIONS, selection="best")


# --------------------------------------------------------------------------- ground truth


def clean_reference(**scores: float | None) -> Candidate:
    return Candidate(
        Restoration("utt-0", Audio(np.full(32, 0.5, dtype=np.float32), 16000), "reference"),
        dict(scores),
    )


def test_ground_truth_is_never_a_winner_by_default() -> None:
    cands = ordered_candidates(4)
    reference = clean_reference(dnsmos_ovrl=5.0, estoi=1.0, lsd=0.0)  # beats everyone
    criterion = ["dnsmos_ovrl", "estoi", "lsd"]
    with_reference = unanimous_pairs(cands, criterion, DIRECTIONS, reference=reference)
    assert with_reference == unanimous_pairs(cands, criterion, DIRECTIONS)
    assert len(with_reference) == 6
    assert all(reference.restoration not in (p.chosen, p.rejected) for p in with_reference), (
        "the reference took part in a model pair"
    )


def test_ground_truth_wins_every_pair_in_the_ablation() -> None:
    cands = ordered_candidates(3)
    cands.append(candidate(9, dnsmos_ovrl=None))  # unscored: the ablation consults no metric
    cands.append(candidate(10, dnsmos_ovrl=9.9, estoi=1.0, lsd=0.0))  # even one "better" than it
    reference = clean_reference(dnsmos_ovrl=4.5, lsd=None)
    pairs = unanimous_pairs(
        cands, ["dnsmos_ovrl"], DIRECTIONS, reference=reference, winner="ground-truth"
    )
    assert len(pairs) == len(cands)
    assert [p.rejected for p in pairs] == [c.restoration for c in cands]
    for pair in pairs:
        assert pair.chosen is reference.restoration
        assert pair.criterion == ("ground-truth",)
        assert pair.chosen_scores == {"dnsmos_ovrl": 4.5}
        assert pair.input_id == "utt-0"


def test_the_ablation_skips_a_candidate_identical_to_the_reference() -> None:
    reference = clean_reference(dnsmos_ovrl=4.5)
    copy_of_reference = Candidate(
        Restoration("utt-0", reference.restoration.audio, "test-model", 0), {"dnsmos_ovrl": 4.0}
    )
    cands = [candidate(1, dnsmos_ovrl=3.0), copy_of_reference, reference]
    pairs = unanimous_pairs(
        cands, ["dnsmos_ovrl"], DIRECTIONS, reference=reference, winner="ground-truth"
    )
    assert [p.rejected for p in pairs] == [cands[0].restoration]


def test_the_ablation_caps_deterministically() -> None:
    cands = ordered_candidates(6)
    reference = clean_reference()

    def rejected(**options: object) -> list[int]:
        pairs = unanimous_pairs(
            cands,
            [],
            DIRECTIONS,
            reference=reference,
            winner="ground-truth",
            **options,  # type: ignore[arg-type]
        )
        assert all(p.chosen is reference.restoration for p in pairs)
        return [r for _, r in as_indices(pairs, [reference, *cands])]

    assert rejected(max_pairs=2) == [1, 2]  # "margin" selection: the first candidates
    drawn = rejected(max_pairs=3, selection="random", seed=4)
    assert drawn == rejected(max_pairs=3, selection="random", seed=4)
    assert len(drawn) == 3 and drawn == sorted(drawn) and set(drawn) <= set(range(1, 7))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"winner": "ground-truth"}, "needs the input's clean reference"),
        (
            {"winner": "ground-truth", "reference": "ref", "min_margin": 0.1},
            "min_margin has no meaning",
        ),
        ({"winner": "reference"}, "winner must be one of model, ground-truth"),
    ],
)
def test_bad_ground_truth_options_are_refused(options: dict[str, object], match: str) -> None:
    if options.get("reference") == "ref":
        options["reference"] = clean_reference(dnsmos_ovrl=4.0)
    with pytest.raises(ConfigError, match=match):
        unanimous_pairs(ordered_candidates(2), ["dnsmos_ovrl"], DIRECTIONS, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- errors


def test_an_unknown_criterion_output_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        unanimous_pairs(ordered_candidates(2), ["dnsmos_ovrl", "dnsmos_ovlr"], DIRECTIONS)
    message = str(info.value)
    assert "'dnsmos_ovlr'" in message
    assert "known outputs: dnsmos_ovrl, estoi, lsd" in message


def test_an_empty_or_repeated_criterion_is_refused() -> None:
    with pytest.raises(ConfigError, match="names no metric output"):
        unanimous_pairs(ordered_candidates(2), [], DIRECTIONS)
    with pytest.raises(ConfigError, match="lists estoi more than once"):
        unanimous_pairs(ordered_candidates(2), ["estoi", "lsd", "estoi"], DIRECTIONS)


def test_candidates_of_several_inputs_are_refused() -> None:
    cands = [candidate(0, dnsmos_ovrl=3.0), candidate(1, uid="utt-1", dnsmos_ovrl=2.0)]
    with pytest.raises(ValueError, match="utt-0, utt-1"):
        unanimous_pairs(cands, ["dnsmos_ovrl"], DIRECTIONS)
    other_reference = Candidate(
        Restoration("utt-9", Audio(np.zeros(32, dtype=np.float32), 16000), "reference"), {}
    )
    with pytest.raises(ValueError, match="utt-0, utt-9"):
        unanimous_pairs(cands[:1], ["dnsmos_ovrl"], DIRECTIONS, reference=other_reference)


# --------------------------------------------------------------------------- pair_stats


def test_pair_stats_against_a_hand_count() -> None:
    # utt-0: 3 candidates in order (3 pairs); utt-1: 2 candidates (1 pair); utt-2: a tie (none)
    inputs = {
        "utt-0": [
            candidate(0, "utt-0", dnsmos_ovrl=3.0, lsd=1.0),
            candidate(1, "utt-0", dnsmos_ovrl=2.5, lsd=1.5),
            candidate(2, "utt-0", dnsmos_ovrl=1.5, lsd=4.0),
        ],
        "utt-1": [
            candidate(0, "utt-1", dnsmos_ovrl=2.0, lsd=None),
            candidate(1, "utt-1", dnsmos_ovrl=2.2, lsd=2.0),
        ],
        "utt-2": [
            candidate(0, "utt-2", dnsmos_ovrl=2.0, lsd=1.0),
            candidate(1, "utt-2", dnsmos_ovrl=2.0, lsd=3.0),
        ],
    }
    pairs = [
        pair
        for cands in inputs.values()
        for pair in unanimous_pairs(cands, ["dnsmos_ovrl"], DIRECTIONS)
    ]
    stats = pair_stats(pairs, ["dnsmos_ovrl", "lsd"], directions=DIRECTIONS)
    assert stats["pairs"] == 4
    assert stats["inputs"] == 2
    assert stats["pairs_per_input"] == 2.0
    # dnsmos_ovrl margins: 0.5, 1.5, 1.0 (utt-0) and 0.2 (utt-1)
    ovrl = stats["margins"]["dnsmos_ovrl"]
    assert ovrl["n"] == 4
    assert ovrl["mean"] == pytest.approx((0.5 + 1.5 + 1.0 + 0.2) / 4)
    assert ovrl["median"] == pytest.approx((0.5 + 1.0) / 2)
    assert ovrl["min"] == pytest.approx(0.2)
    # lsd (lower is better, so signed rejected - chosen): 0.5, 3.0, 2.5; utt-1 has no lsd
    lsd = stats["margins"]["lsd"]
    assert lsd["n"] == 3
    assert lsd["mean"] == pytest.approx(2.0)
    assert lsd["median"] == pytest.approx(2.5)
    assert lsd["min"] == pytest.approx(0.5)
    # without directions the margins are raw differences chosen - rejected
    raw = pair_stats(pairs, ["lsd"])["margins"]["lsd"]
    assert raw["min"] == pytest.approx(-3.0)
    assert raw["mean"] == pytest.approx(-statistics.fmean([0.5, 3.0, 2.5]))


def test_pair_stats_of_no_pairs() -> None:
    stats = pair_stats([], ["estoi"], directions=DIRECTIONS)
    assert stats["pairs"] == 0 and stats["inputs"] == 0
    assert stats["pairs_per_input"] is None
    assert stats["margins"]["estoi"] == {"n": 0, "mean": None, "median": None, "min": None}


def test_pair_stats_refuses_an_unknown_output() -> None:
    with pytest.raises(ConfigError, match=r"'pesq_wb'.*known outputs"):
        pair_stats([], ["pesq_wb"], directions=DIRECTIONS)
