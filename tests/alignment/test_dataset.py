"""Tests of gensr_bench.alignment.dataset: the DPO preference dataset on HuggingFace datasets."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile

from gensr_bench.alignment.dataset import (
    AUDIO_COLUMNS,
    PREFERENCE_COLUMNS,
    build_preference_dataset,
    export_to_hub,
    load_preference_dataset,
    rows_to_pairs,
    save_preference_dataset,
)
from gensr_bench.audio import decode_audio_cell
from gensr_bench.errors import AudioValidationError, ConfigError, StoreError
from gensr_bench.records import Audio, PreferencePair
from gensr_bench.testing import sine, tiny_preference_pairs

SHA = "ab" * 32


def build(pairs: list[PreferencePair], degraded: dict[str, Audio]) -> datasets.Dataset:
    return build_preference_dataset(pairs, degraded, model="test-model", checkpoint_sha256=SHA)


def with_awkward_scores(pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The first pair gets a failed (None) score, a negative zero, a tiny and a huge value."""
    first = replace(
        pairs[0],
        chosen_scores={**pairs[0].chosen_scores, "pesq_wb": None, "lsd": -0.0},
        rejected_scores={**pairs[0].rejected_scores, "pesq_wb": 1e-300, "sisdr": 1.2345e300},
    )
    return [first, *pairs[1:]]


def assert_pairs_equal(got: list[PreferencePair], expected: list[PreferencePair]) -> None:
    assert len(got) == len(expected)
    for new, old in zip(got, expected, strict=True):
        assert new.input_id == old.input_id
        assert new.criterion == tuple(old.criterion)
        for role in ("chosen", "rejected"):
            a, b = getattr(new, role), getattr(old, role)
            assert a.utterance_id == b.utterance_id
            assert a.model == b.model
            assert a.seed == b.seed
            assert a.meta == {}
            # Bit-exact float32 audio at the same rate (Audio.__eq__ compares the bytes).
            assert a.audio == b.audio
            assert a.audio.samples.dtype == np.float32
        for role in ("chosen_scores", "rejected_scores"):
            a_scores, b_scores = getattr(new, role), getattr(old, role)
            assert list(a_scores) == list(b_scores)  # same keys, same order
            for key, value in b_scores.items():
                if value is None:
                    assert a_scores[key] is None
                else:
                    assert a_scores[key] == value
                    assert math.copysign(1.0, a_scores[key]) == math.copysign(1.0, value)


def test_round_trip_through_disk_is_exact(tmp_path: Path):
    pairs, degraded = tiny_preference_pairs(n_inputs=2, pairs_per_input=2)
    pairs = with_awkward_scores(pairs)
    pairs[1] = replace(pairs[1], rejected=replace(pairs[1].rejected, seed=None))
    ds = build(pairs, degraded)
    assert len(ds) == 4
    saved = save_preference_dataset(ds, tmp_path / "prefs")
    assert saved == (tmp_path / "prefs").absolute()
    loaded = load_preference_dataset(saved)
    assert_pairs_equal(rows_to_pairs(loaded), pairs)
    # The in-memory dataset gives the same pairs as the saved one.
    assert_pairs_equal(rows_to_pairs(ds), pairs)
    # The prompt is the degraded input, bit for bit.
    for row in loaded:
        assert decode_audio_cell(row["prompt"]) == degraded[row["input_id"]]


def test_large_datasets_are_built_in_chunks_that_round_trip(tmp_path: Path):
    # One record batch per row here; at the default size a chunk stays far below Arrow's
    # 2-GiB limit of one binary chunk, which 8000 pairs of 5-s audio exceeded in one piece.
    pairs, degraded = tiny_preference_pairs(n_inputs=2, pairs_per_input=2)
    chunked = build_preference_dataset(
        pairs, degraded, model="test-model", checkpoint_sha256=SHA, chunk_bytes=1
    )
    assert chunked.data.column("chosen").num_chunks == len(pairs)
    assert build(pairs, degraded).data.column("chosen").num_chunks == 1
    loaded = load_preference_dataset(save_preference_dataset(chunked, tmp_path / "prefs"))
    assert_pairs_equal(rows_to_pairs(loaded), pairs)


def test_fingerprint_follows_the_content():
    pairs, degraded = tiny_preference_pairs(n_inputs=2, pairs_per_input=2)
    first = build(pairs, degraded)._fingerprint
    assert build(pairs, degraded)._fingerprint == first
    changed = [replace(pairs[0], chosen_scores={"dnsmos_ovrl": 9.0, "estoi": 0.5}), *pairs[1:]]
    assert build(changed, degraded)._fingerprint != first
    louder = replace(pairs[0].chosen, audio=Audio(pairs[0].chosen.audio.samples * 0.5, 16000))
    assert build([replace(pairs[0], chosen=louder), *pairs[1:]], degraded)._fingerprint != first


def test_columns_follow_trl_and_store_criterion_model_and_hash():
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1, sample_rate=8000)
    ds = build(pairs, degraded)
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert ds.column_names == list(PREFERENCE_COLUMNS)
    row = ds[0]
    assert row["criterion"] == ["dnsmos_ovrl", "estoi"]
    assert row["model"] == "test-model"
    assert row["checkpoint_sha256"] == SHA
    assert row["sample_rate"] == 8000
    assert (row["input_id"], row["chosen_id"], row["rejected_id"]) == (
        "utt-0",
        "utt-0~c0",
        "utt-0~c1",
    )
    assert json.loads(row["chosen_scores"]) == dict(pairs[0].chosen_scores)
    no_hash = build_preference_dataset(pairs, degraded, model="m", checkpoint_sha256=None)
    assert no_hash[0]["checkpoint_sha256"] is None


def test_datasets_never_decodes_the_audio():
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    ds = build(pairs, degraded)
    for column in AUDIO_COLUMNS:
        feature = ds.features[column]
        assert isinstance(feature, datasets.Audio)
        assert feature.decode is False
        cell = ds[0][column]
        assert set(cell) == {"bytes", "path"}
        assert isinstance(cell["bytes"], bytes)
        info = soundfile.info(io.BytesIO(cell["bytes"]))
        assert (info.format, info.subtype, info.channels) == ("WAV", "FLOAT", 1)


def test_loading_casts_decoding_audio_columns_back_to_undecoded(tmp_path: Path):
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    decoding = build(pairs, degraded).cast_column("chosen", datasets.Audio(decode=True))
    decoding.save_to_disk(str(tmp_path / "decoding"))
    loaded = load_preference_dataset(tmp_path / "decoding")
    assert loaded.features["chosen"].decode is False
    assert_pairs_equal(rows_to_pairs(loaded), pairs)


def test_empty_pair_list_gives_an_empty_dataset_with_every_column():
    ds = build([], {})
    assert len(ds) == 0
    assert ds.column_names == list(PREFERENCE_COLUMNS)
    assert rows_to_pairs(ds) == []


def test_an_empty_dataset_round_trips_through_disk(tmp_path: Path):
    # A criterion no candidates agree on gives no pairs; the dataset must still load.
    save_preference_dataset(build([], {}), tmp_path / "empty")
    loaded = load_preference_dataset(tmp_path / "empty")
    assert len(loaded) == 0
    assert loaded.column_names == list(PREFERENCE_COLUMNS)


def test_missing_degraded_input_is_named():
    pairs, degraded = tiny_preference_pairs(n_inputs=2, pairs_per_input=1)
    del degraded["utt-1"]
    with pytest.raises(ConfigError, match=r"no degraded audio for input 'utt-1'"):
        build(pairs, degraded)


def test_mixed_sample_rates_are_refused_naming_the_ids():
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    odd = replace(pairs[0].rejected, audio=sine(300.0, 0.1, 8000))
    with pytest.raises(AudioValidationError, match=r"'utt-0~c1' at 8000 Hz") as caught:
        build([replace(pairs[0], rejected=odd)], degraded)
    assert "'utt-0' at 16000 Hz" in str(caught.value)
    degraded["utt-0"] = sine(200.0, 0.1, 22050)
    with pytest.raises(AudioValidationError, match=r"input 'utt-0' at 22050 Hz"):
        build(pairs, degraded)


def test_bad_score_value_is_refused():
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    bad = replace(pairs[0], chosen_scores={"dnsmos_ovrl": "high"})
    with pytest.raises(ConfigError, match=r"score 'dnsmos_ovrl' is 'high'"):
        build([bad], degraded)


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path):
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=2)
    target = save_preference_dataset(build(pairs[:1], degraded), tmp_path / "prefs")
    with pytest.raises(StoreError, match=r"not empty; refusing to overwrite"):
        save_preference_dataset(build(pairs, degraded), target)
    assert len(load_preference_dataset(target)) == 1
    # overwrite=True replaces it, even with a dataset memory-mapped from the same folder.
    save_preference_dataset(build(pairs, degraded), target, overwrite=True)
    reloaded = load_preference_dataset(target)
    assert len(reloaded) == 2
    save_preference_dataset(reloaded, target, overwrite=True)
    assert_pairs_equal(rows_to_pairs(load_preference_dataset(target)), pairs)
    # An empty existing folder is fine; no staging folders are left behind.
    (tmp_path / "empty").mkdir()
    save_preference_dataset(build(pairs, degraded), tmp_path / "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "prefs"]


def test_overwrite_never_deletes_a_folder_that_is_not_a_dataset(tmp_path: Path):
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match=r"holds no saved dataset"):
        save_preference_dataset(build(pairs, degraded), other, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"


def test_loading_a_missing_folder_names_it(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(StoreError, match=r"does not exist") as caught:
        load_preference_dataset(missing)
    assert str(missing) in str(caught.value)


def test_loading_a_folder_that_is_not_a_dataset_names_it(tmp_path: Path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(StoreError, match=r"not a saved preference dataset") as caught:
        load_preference_dataset(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_loading_another_dataset_names_the_folder_and_missing_columns(tmp_path: Path):
    other = datasets.Dataset.from_dict({"prompt": ["a"], "chosen": ["b"], "rejected": ["c"]})
    other.save_to_disk(str(tmp_path / "text-prefs"))
    with pytest.raises(StoreError, match=r"lacks the column\(s\) input_id, chosen_id") as caught:
        load_preference_dataset(tmp_path / "text-prefs")
    assert str(tmp_path / "text-prefs") in str(caught.value)
    with pytest.raises(ConfigError, match=r"not a preference dataset"):
        rows_to_pairs(other)


def test_rows_without_seed_columns_get_seed_zero():
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    ds = build(pairs, degraded).remove_columns(["chosen_seed", "rejected_seed"])
    (pair,) = rows_to_pairs(ds)
    assert (pair.chosen.seed, pair.rejected.seed) == (0, 0)
    assert pairs[0].rejected.seed == 1  # so 0 is not what was built


def test_export_to_hub_calls_push_to_hub(monkeypatch: pytest.MonkeyPatch):
    pairs, degraded = tiny_preference_pairs(n_inputs=1, pairs_per_input=1)
    ds = build(pairs, degraded)
    calls = []

    def fake_push(self, repo_id, **kwargs):
        calls.append((len(self), repo_id, kwargs))
        return "commit"

    monkeypatch.setattr(datasets.Dataset, "push_to_hub", fake_push)
    assert export_to_hub(ds, "user/prefs", token="t") == "commit"
    assert calls == [(1, "user/prefs", {"token": "t", "private": True, "commit_message": None})]
    with pytest.raises(ConfigError, match=r"repo_id"):
        export_to_hub(ds, " ")
