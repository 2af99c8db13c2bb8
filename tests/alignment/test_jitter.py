"""Tests of gensr_bench.alignment.jitter: perturbations, the jitter table, the jitter file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.alignment.jitter import (
    DITHER_RMS,
    JITTER_FORMAT,
    PerturbedInput,
    jitter_table,
    margins_from_jitter,
    measure_jitter,
    perturb,
    save_jitter,
)
from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import RestorationModel
from gensr_bench.testing import voiced_signal


def test_perturbations_keep_length_and_change_nothing_audible() -> None:
    clean = voiced_signal(1.0).samples
    shifted = perturb(clean, 16000, "shift", 0)
    assert shifted[0] == 0 and np.array_equal(shifted[1:], clean[:-1])
    round_trip = perturb(clean, 16000, "resample", 0)
    assert len(round_trip) == len(clean)
    # A band-limited round trip of speech: the error is far below the signal (> 40 dB).
    error = np.sqrt(np.mean((round_trip - clean)[100:-100] ** 2))
    assert error < 0.01 * np.sqrt(np.mean(clean**2))
    dithered = perturb(clean, 16000, "dither", 3)
    assert np.std(dithered - clean) == pytest.approx(DITHER_RMS, rel=0.05)
    assert np.array_equal(dithered, perturb(clean, 16000, "dither", 3))  # seeded
    with pytest.raises(ConfigError, match="unknown perturbation 'reverse'"):
        perturb(clean, 16000, "reverse", 0)


def test_jitter_is_the_quantile_of_absolute_changes_over_every_perturbation() -> None:
    original = {f"u{i}": {"a": float(i), "b": 1.0} for i in range(4)}
    perturbed = {
        "shift": {f"u{i}": {"a": i + 0.1 * i, "b": None} for i in range(4)},
        "dither": {f"u{i}": {"a": i - 0.5, "b": 1.5} for i in range(4)},
    }
    table = jitter_table(original, perturbed, quantile=1.0)
    # a: shift changes 0, .1, .2, .3 and dither .5 four times; the maximum is 0.5.
    assert table["a"].jitter == pytest.approx(0.5)
    assert table["a"].per_perturbation == pytest.approx({"shift": 0.3, "dither": 0.5})
    assert table["a"].n == 8
    assert table["b"].n == 4 and table["b"].jitter == pytest.approx(0.5)  # None left out
    median = jitter_table(original, perturbed, quantile=0.5)["a"].jitter
    assert median == pytest.approx(np.quantile([0, 0.1, 0.2, 0.3, 0.5, 0.5, 0.5, 0.5], 0.5))


def test_measure_jitter_runs_the_original_and_each_perturbation(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def run(model: RestorationModel, out_dir: Path) -> dict[str, dict[str, float | None]]:
        assert isinstance(model, PerturbedInput) and out_dir.parent == tmp_path
        kind = str(model.options["kind"])
        seen.append((kind, out_dir.name))
        return {"u": {"x": 1.0 if kind == "none" else 1.25}}

    table = measure_jitter(run, tmp_path, ["shift", "resample"])
    assert seen == [("none", "original"), ("shift", "shift"), ("resample", "resample")]
    assert table["x"].jitter == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="perturbations must be among"):
        measure_jitter(run, tmp_path, ["flip"])


def test_the_jitter_file_gives_the_margins_of_the_criterion(tmp_path: Path) -> None:
    table = jitter_table({"u": {"a": 1.0, "b": 2.0}}, {"shift": {"u": {"a": 1.2, "b": 2.0}}})
    path = tmp_path / "jitter.json"
    document = save_jitter(path, table, {"suite": "s"})
    assert json.loads(path.read_text()) == document and document["format"] == JITTER_FORMAT
    assert margins_from_jitter(path, ["a", "b"]) == pytest.approx({"a": 0.2, "b": 0.0})
    with pytest.raises(ConfigError, match=r"no measurement of c .*gensr-bench pairs jitter"):
        margins_from_jitter(path, ["a", "c"])
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="is not a jitter file"):
        margins_from_jitter(tmp_path / "other.json", ["a"])
    with pytest.raises(ConfigError, match="cannot read the jitter file"):
        margins_from_jitter(tmp_path / "missing.json", ["a"])
