"""Preference vectors: the closed-form mean cosines against brute force, the per-pair
vectors against features computed by hand, skipped pairs, and `gensr-bench pairs vectors`."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gensr_bench import FeatureExtractor
from gensr_bench.alignment.dataset import build_preference_dataset, save_preference_dataset
from gensr_bench.alignment.vectors import (
    PreferenceVectors,
    VectorSum,
    across_cosine,
    cosine_table,
    load_summary,
    mean_pairwise_cosine,
    preference_vectors,
    sample_indices,
    save_summary,
    unit_rows,
    within_cosine,
)
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.records import Audio
from gensr_bench.testing import invoke_cli, tiny_preference_pairs
from gensr_bench_plugins.features.log_mel import LogMel


def brute_cosine(a: np.ndarray, b: np.ndarray | None = None) -> float:
    def cos(x: np.ndarray, y: np.ndarray) -> float:
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))

    if b is None:
        values = [cos(a[i], a[j]) for i, j in itertools.permutations(range(len(a)), 2)]
    else:
        values = [cos(x, y) for x in a for y in b]
    return float(np.mean(values))


class Stats(FeatureExtractor):
    """RMS, peak and zero-crossing rate; raises on near-silence (to test skipped pairs)."""

    name = "test-stats"
    sample_rate = 8000

    def extract(self, samples: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        if rms < 1e-3:
            raise AudioValidationError("test-stats: near-silence")
        crossings = float(np.mean(np.abs(np.diff(np.signbit(samples).astype(int)))))
        return np.array([rms, float(np.max(np.abs(samples))), crossings])


def test_mean_cosines_equal_brute_force() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5)) + 0.5
    b = rng.normal(size=(4, 5))
    ua, keep_a = unit_rows(a)
    ub, _ = unit_rows(b)
    assert keep_a.all()
    assert mean_pairwise_cosine(ua) == pytest.approx(brute_cosine(a), abs=1e-12)
    assert mean_pairwise_cosine(ua, ub) == pytest.approx(brute_cosine(a, b), abs=1e-12)
    assert mean_pairwise_cosine(ub, ua) == pytest.approx(brute_cosine(a, b), abs=1e-12)


def test_mean_cosines_of_known_directions() -> None:
    same, _ = unit_rows(np.array([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]]))
    assert mean_pairwise_cosine(same) == pytest.approx(1.0)
    opposite, _ = unit_rows(np.array([[1.0, 0.0], [-3.0, 0.0]]))
    assert mean_pairwise_cosine(opposite) == pytest.approx(-1.0)
    assert mean_pairwise_cosine(np.eye(4)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(same, -same) == pytest.approx(-1.0)


def test_zero_rows_are_dropped_and_bad_input_named() -> None:
    units, keep = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 2.0]]))
    assert keep.tolist() == [True, False, True]
    np.testing.assert_allclose(units, [[0.6, 0.8], [0.0, 1.0]])
    with pytest.raises(ConfigError, match="NaN"):
        unit_rows(np.array([[np.nan, 1.0]]))
    with pytest.raises(ConfigError, match="at least 2"):
        mean_pairwise_cosine(units[:1])
    with pytest.raises(ConfigError, match="width 2 and 3"):
        mean_pairwise_cosine(units, np.ones((1, 3)))


def test_cosine_table_has_within_on_the_diagonal() -> None:
    rng = np.random.default_rng(1)
    groups = [
        PreferenceVectors(label, unit_rows(rng.normal(size=(n, 3)))[0], n)
        for label, n in (("ar", 5), ("fm", 6), ("one", 1))
    ]
    table = cosine_table(groups)
    assert table["ar"]["ar"] == pytest.approx(mean_pairwise_cosine(groups[0].units))
    assert table["ar"]["fm"] == pytest.approx(table["fm"]["ar"])
    assert table["ar"]["fm"] == pytest.approx(
        mean_pairwise_cosine(groups[0].units, groups[1].units)
    )
    assert table["one"]["one"] is None  # a single vector has no within mean
    assert table["one"]["ar"] is not None


def test_sums_give_the_same_means_as_the_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ar = PreferenceVectors("ar", unit_rows(rng.normal(size=(6, 4)) + 1.0)[0], 7, [(3, "why")])
    fm = PreferenceVectors("fm", unit_rows(rng.normal(size=(5, 4)))[0], 5)
    a, f = ar.summed(), fm.summed()
    assert (a.count, a.pairs, a.skipped) == (6, 7, [(3, "why")])
    assert within_cosine(a.count, a.unit_sum) == pytest.approx(brute_cosine(ar.units))
    assert across_cosine(a.count, a.unit_sum, f.count, f.unit_sum) == pytest.approx(
        brute_cosine(ar.units, fm.units)
    )
    assert cosine_table([a, f]) == cosine_table([ar, fm])

    path = save_summary(a, tmp_path / "s" / "ar.json", features={"name": "x"}, seed=4)
    loaded, features = load_summary(path)
    assert features == {"name": "x"}
    assert json.loads(path.read_text())["seed"] == 4
    assert (loaded.label, loaded.count, loaded.pairs, loaded.skipped) == (
        "ar",
        6,
        7,
        [(3, "why")],
    )
    np.testing.assert_allclose(loaded.unit_sum, a.unit_sum, rtol=1e-15)
    assert cosine_table([loaded, f]) == cosine_table([a, f])  # JSON keeps every float exactly


def test_bad_summaries_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="2 vectors"):
        within_cosine(1, np.ones(3))
    with pytest.raises(ConfigError, match="width 3 and 2"):
        across_cosine(1, np.ones(3), 1, np.ones(2))
    not_one = tmp_path / "other.json"
    not_one.write_text('{"a": 1}')
    with pytest.raises(ConfigError, match=r"other\.json is not a preference-vector summary"):
        load_summary(not_one)
    path = save_summary(
        VectorSum("m", 2, np.array([0.6, 0.8]), 2), tmp_path / "m.json", features={}
    )
    payload = json.loads(path.read_text())
    payload["unit_sum"] = [3.0, 4.0]  # norm 5 from 2 unit vectors: impossible
    path.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="changed by hand"):
        load_summary(path)
    del payload["vectors"]
    path.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="incomplete"):
        load_summary(path)


def test_sample_indices() -> None:
    assert sample_indices(5, None, 0) == [0, 1, 2, 3, 4]
    assert sample_indices(5, 9, 0) == [0, 1, 2, 3, 4]
    drawn = sample_indices(100, 10, 3)
    assert drawn == sorted(set(drawn)) and len(drawn) == 10
    assert drawn == sample_indices(100, 10, 3)
    assert drawn != sample_indices(100, 10, 4)


def test_vectors_are_chosen_minus_rejected_features() -> None:
    pairs, degraded = tiny_preference_pairs(2, 2, seconds=0.2)
    ds = build_preference_dataset(pairs, degraded, model="m", checkpoint_sha256=None)
    extractor = Stats()
    calls: list[int] = []
    group = preference_vectors(ds, extractor, "m", indices=[0, 2, 3], progress=calls.append)
    assert calls == [1, 1, 1] and group.pairs == 3 and group.skipped == []
    from gensr_bench.alignment.pipeline import at_rate

    expected = []
    for index in (0, 2, 3):
        chosen = extractor.extract(at_rate(pairs[index].chosen.audio, 8000).samples)
        rejected = extractor.extract(at_rate(pairs[index].rejected.audio, 8000).samples)
        expected.append(chosen - rejected)
    np.testing.assert_allclose(group.units, unit_rows(np.array(expected))[0], atol=1e-6)


def test_failed_and_zero_vectors_are_skipped_not_invented() -> None:
    pairs, degraded = tiny_preference_pairs(1, 3, seconds=0.2)
    quiet = pairs[1].rejected.audio
    silent = replace(pairs[1].rejected, audio=Audio(quiet.samples * 1e-5, quiet.sample_rate))
    pairs[1] = replace(pairs[1], rejected=silent)  # the extractor fails on it
    pairs[2] = replace(pairs[2], rejected=pairs[2].chosen)  # a zero vector
    ds = build_preference_dataset(pairs, degraded, model="m", checkpoint_sha256=None)
    group = preference_vectors(ds, Stats(), "m")
    assert len(group.units) == 1 and group.pairs == 3
    assert [row for row, _ in group.skipped] == [1, 2]
    assert "near-silence" in group.skipped[0][1]
    assert "identical" in group.skipped[1][1]


def test_extractor_of_changing_width_is_refused() -> None:
    class Growing(Stats):
        name = "test-growing"
        calls = 0

        def extract(self, samples: np.ndarray) -> np.ndarray:
            Growing.calls += 1
            return np.ones(Growing.calls)

    pairs, degraded = tiny_preference_pairs(1, 2, seconds=0.2)
    ds = build_preference_dataset(pairs, degraded, model="m", checkpoint_sha256=None)
    with pytest.raises(ConfigError, match=r"test-growing.*row 0"):
        preference_vectors(ds, Growing(), "m")


def _saved(tmp_path: Path, name: str, model: str, inputs: int) -> Path:
    pairs, degraded = tiny_preference_pairs(inputs, 2, seconds=0.3, model=model)
    ds = build_preference_dataset(pairs, degraded, model=model, checkpoint_sha256=None)
    return save_preference_dataset(ds, tmp_path / name)


def test_cli_prints_the_table_of_the_module(tmp_path: Path) -> None:
    first = _saved(tmp_path, "a", "ar-small", 2)
    second = _saved(tmp_path, "b", "fm-small", 3)
    result = invoke_cli(
        ["pairs", "vectors", str(first), str(second), "--features", "log-mel", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["features"]["name"] == "log-mel"
    assert [d["vectors"] for d in payload["datasets"]] == [4, 6]
    from gensr_bench.alignment.dataset import load_preference_dataset

    groups = [
        preference_vectors(load_preference_dataset(path), LogMel(), label)
        for path, label in ((first, "ar-small"), (second, "fm-small"))
    ]
    expected = cosine_table(groups)
    for row in ("ar-small", "fm-small"):
        for column in ("ar-small", "fm-small"):
            assert payload["mean_cosine"][row][column] == pytest.approx(expected[row][column])

    table = invoke_cli(["pairs", "vectors", str(first), str(first), "--max-pairs", "3"])
    assert table.exit_code == 0, table.stderr
    assert f"ar-small ({first})" in table.stdout  # repeated models are told apart by folder
    assert "3 vectors of 3 pairs read" in table.stdout


def test_cli_saved_summaries_stand_in_for_datasets(tmp_path: Path) -> None:
    first = _saved(tmp_path, "a", "ar-small", 2)
    second = _saved(tmp_path, "b", "fm-small", 3)
    saved = tmp_path / "summaries"
    direct = invoke_cli(
        ["pairs", "vectors", str(first), str(second), "--format", "json", "--save", str(saved)]
    )
    assert direct.exit_code == 0, direct.stderr
    assert sorted(p.name for p in saved.iterdir()) == ["ar-small.json", "fm-small.json"]
    # A summary and a dataset mix in one table, with the numbers of the datasets alone.
    mixed = invoke_cli(
        ["pairs", "vectors", str(saved / "ar-small.json"), str(second), "--format", "json"]
    )
    assert mixed.exit_code == 0, mixed.stderr
    expected, got = json.loads(direct.stdout), json.loads(mixed.stdout)
    assert [d["vectors"] for d in got["datasets"]] == [4, 6]
    for row in ("ar-small", "fm-small"):
        for column in ("ar-small", "fm-small"):
            assert got["mean_cosine"][row][column] == pytest.approx(
                expected["mean_cosine"][row][column], abs=1e-12
            )
    other = invoke_cli(["pairs", "vectors", str(saved / "ar-small.json"), "--features", "speaker"])
    assert other.exit_code != 0
    assert "ar-small.json sums" in other.stderr and "--features" in other.stderr


def test_cli_names_an_unknown_extractor(tmp_path: Path) -> None:
    first = _saved(tmp_path, "a", "ar-small", 1)
    result = invoke_cli(["pairs", "vectors", str(first), "--features", "log-mell"])
    assert result.exit_code != 0
    assert "log-mel" in result.stderr
