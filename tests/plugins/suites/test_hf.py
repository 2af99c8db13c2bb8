"""``hf:<dataset>[:split]`` suites: resolution, column mapping, decoding, runs, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile

from gensr_bench.errors import ConfigError, GensrError
from gensr_bench.plugins import GensrPluginManager
from gensr_bench.records import Utterance
from gensr_bench.registry import Registries
from gensr_bench.runner import RunOptions, run_suite
from gensr_bench.testing import EchoModel, LevelMetric, SnrMetric, noisy_utterance
from gensr_bench_plugins.suites import hf

RATES = (16000, 8000, 22050)
TEXTS = ("the first one", "a second line", "and the third")


def make_utterances() -> list[Utterance]:
    return [
        noisy_utterance(f"u{i}", seconds=0.5 + 0.25 * i, sample_rate=rate, seed=i)
        for i, rate in enumerate(RATES)
    ]


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), samples, rate, subtype="FLOAT")
    return path


def build_dataset(directory: Path, utterances: list[Utterance], **extra: list[object]) -> Path:
    """A DatasetDict with one "test" split saved to ``directory / "ds"``: ``noisy`` cells hold
    the encoded bytes, ``clean`` cells only an absolute path (both forms must decode)."""
    wavs = directory / "wavs"
    wavs.mkdir()
    noisy, clean = [], []
    for utt in utterances:
        assert utt.degraded is not None and utt.reference is not None
        rate = utt.degraded.sample_rate
        n_path = write_wav(wavs / f"{utt.id}-noisy.wav", utt.degraded.samples, rate)
        c_path = write_wav(wavs / f"{utt.id}-clean.wav", utt.reference.samples, rate)
        noisy.append({"bytes": n_path.read_bytes(), "path": n_path.name})
        clean.append({"bytes": None, "path": str(c_path)})
    columns: dict[str, list[object]] = {
        "noisy": noisy,
        "clean": clean,
        "text": list(TEXTS[: len(utterances)]),
        "snr": [float(u.meta["snr_db"]) for u in utterances],
        **extra,
    }
    ds = datasets.Dataset.from_dict(columns)
    # cast_column converts the {bytes, path} structs without encoding (which needs torchcodec).
    ds = ds.cast_column("noisy", datasets.Audio()).cast_column("clean", datasets.Audio())
    out = directory / "ds"
    datasets.DatasetDict({"test": ds}).save_to_disk(str(out))
    return out


@pytest.fixture
def registries() -> Registries:
    pm = GensrPluginManager()
    pm.register(hf, name="suites.hf")
    return Registries.from_plugins(pm)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, list[Utterance]]:
    utts = make_utterances()
    return build_dataset(tmp_path, utts), utts


def test_parse_name(tmp_path: Path) -> None:
    assert hf.parse_name("hf:user/set") == ("user/set", None)
    assert hf.parse_name("hf:user/set:validation") == ("user/set", "validation")
    assert hf.parse_name(f"hf:{tmp_path}:train") == (str(tmp_path), "train")
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert hf.parse_name(f"hf:{odd}") == (str(odd), None)  # an existing dir is taken whole
    with pytest.raises(ConfigError):
        hf.parse_name("hf:")


def test_non_hf_names_are_not_resolved(registries: Registries) -> None:
    assert hf.gensr_resolve_suite("synth-gsr") is None
    with pytest.raises(GensrError, match="Unknown suite") as info:
        registries.suites.get("nothing-here")
    assert "Also: hf:<dataset id or saved folder>[:split]" in str(info.value)
    assert hf.gensr_suggest_names("models") == []


def test_local_dir_resolves_to_a_suite_with_audio_rates_and_text(
    registries: Registries, saved: tuple[Path, list[Utterance]]
) -> None:
    path, expected = saved
    name = f"hf:{path}"
    cls = registries.suites.get(name)
    assert cls.name == name
    suite = cls()
    assert suite.full_size() == len(suite) == 3
    assert suite.columns == {
        "degraded": "noisy",
        "reference": "clean",
        "transcript": "text",
        "id": None,
    }
    got = list(suite)
    assert [u.id for u in got] == ["000000", "000001", "000002"]
    for utt, want, text in zip(got, expected, TEXTS, strict=True):
        assert utt.error is None
        assert utt.degraded is not None and utt.reference is not None
        assert want.degraded is not None and want.reference is not None
        assert utt.degraded.sample_rate == utt.reference.sample_rate == want.degraded.sample_rate
        np.testing.assert_array_equal(utt.degraded.samples, want.degraded.samples)
        np.testing.assert_array_equal(utt.reference.samples, want.reference.samples)
        assert utt.transcript == text
        assert utt.meta["split"] == "test"
        assert utt.meta["snr"] == pytest.approx(want.meta["snr_db"])
    # Explicit split, limit, and a stable fingerprint that tracks the column mapping.
    same = registries.suites.get(f"{name}:test")(limit=2)
    assert len(same) == len(list(same)) == 2
    assert cls().fingerprint() == suite.fingerprint()
    swapped = cls(degraded="clean", reference="noisy")
    assert swapped.fingerprint() != suite.fingerprint()
    first = next(iter(swapped))
    assert first.degraded is not None and expected[0].reference is not None
    np.testing.assert_array_equal(first.degraded.samples, expected[0].reference.samples)
    # The dynamically made class pickles by name (worker processes rebuild it).
    again = pickle.loads(pickle.dumps(suite))
    assert again.name == name and again.fingerprint() == suite.fingerprint()


def test_id_column_and_options(tmp_path: Path, registries: Registries) -> None:
    path = build_dataset(tmp_path, make_utterances(), id=["a", "b", "c"], words=list(TEXTS))
    cls = registries.suites.get(f"hf:{path}")
    suite = cls(reference="none", transcript="words")
    utts = list(suite)
    assert [u.id for u in utts] == ["a", "b", "c"]
    assert all(u.reference is None for u in utts)
    assert [u.transcript for u in utts] == list(TEXTS)
    assert suite.config()["columns"]["reference"] is None


def test_runs_end_to_end(
    tmp_path: Path, registries: Registries, saved: tuple[Path, list[Utterance]]
) -> None:
    path, _ = saved
    suite = registries.suites.create(f"hf:{path}")
    result = run_suite(
        EchoModel(),
        suite,
        [SnrMetric(), LevelMetric()],
        tmp_path / "run",
        RunOptions(use_cache=False),
    )
    assert result.n_utterances == 3
    by_output = {s.output: s for s in result.summaries}
    assert by_output["snr_db"].n_scored == 3 and by_output["level_db"].n_scored == 3
    # The echo of the noisy input scores near its SNR (5 dB in noisy_utterance; resampling the
    # 22.05 kHz row to the metric's 16 kHz drops some of its white noise, so a little more).
    assert by_output["snr_db"].mean is not None and 4.5 < by_output["snr_db"].mean < 7.0
    assert result.config["suite"]["fingerprint"] == suite.fingerprint()


def test_unreadable_audio_gives_an_utterance_error(tmp_path: Path, registries: Registries) -> None:
    utts = make_utterances()
    path = tmp_path / "bad"
    path.mkdir()
    saved = build_dataset(path, utts)
    ds = datasets.load_from_disk(str(saved))["test"]
    broken = ds.cast_column("noisy", datasets.Audio(decode=False)).map(
        lambda row, i: (
            {"noisy": {"bytes": b"not audio", "path": None}} if i == 1 else {"noisy": row["noisy"]}
        ),
        with_indices=True,
    )
    out = tmp_path / "broken"
    datasets.DatasetDict({"test": broken}).save_to_disk(str(out))
    got = list(registries.suites.create(f"hf:{out}"))
    assert [u.error is None for u in got] == [True, False, True]
    assert got[1].degraded is None and "row 1" in (got[1].error or "")
    assert "'noisy'" in (got[1].error or "")


def test_unknown_hub_id_offline_gives_a_clear_error(
    registries: Registries, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    # datasets and huggingface_hub read the variable at import; patch what they cached.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cls = registries.suites.get("hf:nobody-gensr/no-such-set:test")
    with pytest.raises(GensrError) as info:
        cls()
    message = str(info.value)
    assert "nobody-gensr/no-such-set" in message
    assert "save_to_disk" in message and "offline" in message


def test_bad_column_lists_available_columns(
    registries: Registries, saved: tuple[Path, list[Utterance]]
) -> None:
    path, _ = saved
    cls = registries.suites.get(f"hf:{path}")
    with pytest.raises(ConfigError) as info:
        cls(degraded="nosuch")
    message = str(info.value)
    assert "'nosuch'" in message and "noisy, clean, text, snr" in message
    with pytest.raises(ConfigError, match="not audio"):
        cls(reference="text")
    with pytest.raises(ConfigError, match="no split 'train'"):
        registries.suites.get(f"hf:{path}:train")()


def test_cli_runs_a_dataset_saved_to_disk(
    saved: tuple[Path, list[Utterance]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The installed entry point resolves `hf:<dir>` on the command line, as a user runs it."""
    from gensr_bench.cli import main

    directory, utterances = saved
    code = main(
        [
            "run",
            "--model",
            "identity",
            "--suite",
            f"hf:{directory}",
            "--metrics",
            "si-sdr",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"identity on hf:{directory}: {len(utterances)} utterances" in out
    assert f"{len(utterances)}/{len(utterances)}" in out
