"""Recorded noise (noise_files.py) and the piper suites' ``noise_dir`` option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gensr_bench_plugins.suites import noise_files
from gensr_bench_plugins.suites.noise_files import NoiseFileError, load_noise, noise_folder
from gensr_bench_plugins.suites.piper import PARAMETERS, SYNTHETIC_NOISE_PARAMETERS, PiperGSR


def _write(path: Path, seconds: float, rate: int = 16000, scale: float = 0.1) -> Path:
    rng = np.random.default_rng(len(path.name))
    sf.write(str(path), scale * rng.standard_normal(int(seconds * rate)), rate)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path / "fan.wav", 3.0)
    _write(tmp_path / "street.flac", 1.5)
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def test_folder_lists_the_audio_files_sorted_and_hashed(folder: Path) -> None:
    files = noise_folder(folder)
    assert [f.name for f in files] == ["fan.wav", "street.flac"]
    assert all(len(f.sha256) == 64 for f in files)
    assert files[0].sha256 != files[1].sha256


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: _write(p / "a.wav", 2.0, rate=22050), r"22050 Hz, expected 16000 Hz.*resample"),
        (lambda p: _write(p / "a.wav", 0.5), r"lasts 0.50 s.*at least 1 s"),
        (lambda p: _write(p / "a.wav", 2.0, scale=0.0), r"silent"),
        (lambda p: (p / "a.wav").write_bytes(b"RIFF garbage"), r"cannot read noise file"),
    ],
    ids=["wrong-rate", "too-short", "silent", "unreadable"],
)
def test_a_bad_file_is_refused_with_its_name(tmp_path: Path, make, match: str) -> None:
    make(tmp_path)
    with pytest.raises(NoiseFileError, match=match) as caught:
        noise_folder(tmp_path)
    assert str(tmp_path / "a.wav") in str(caught.value)


def test_a_missing_file_or_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NoiseFileError, match="does not exist"):
        load_noise(tmp_path / "gone.wav")
    with pytest.raises(NoiseFileError, match="does not exist or is not a folder"):
        noise_folder(tmp_path / "nowhere")
    with pytest.raises(NoiseFileError, match=r"holds no \.wav or \.flac"):
        noise_folder(tmp_path)


def test_an_excerpt_repeats_a_short_recording_from_a_random_offset(folder: Path) -> None:
    street = noise_folder(folder)[1]  # 1.5 s
    samples = load_noise(street.path)
    excerpt = noise_files.noise_excerpt(street, 40000, np.random.default_rng(3))
    assert len(excerpt) == 40000
    offset = int(np.random.default_rng(3).integers(len(samples)))
    assert np.array_equal(excerpt[:100], samples[offset : offset + 100])
    assert np.array_equal(excerpt, np.tile(samples, 3)[offset : offset + 40000])


def test_the_suite_mixes_recordings_into_half_the_noisy_utterances(folder: Path) -> None:
    suite = PiperGSR(size=6, cache=False, noise_dir=str(folder))
    plain = PiperGSR(size=6, cache=False)
    assert suite.fingerprint() != plain.fingerprint()
    assert "noise_files" not in plain._content()
    recorded = 0
    for utterance in suite.iter_utterances():
        meta = utterance.meta
        assert set(PARAMETERS) <= set(meta)
        if meta["noise_type"] == "recorded":
            recorded += 1
            assert meta["noise_file"] in {"fan.wav", "street.flac"}
            assert meta["snr_db"] is not None
            assert all(meta[key] is None for key in SYNTHETIC_NOISE_PARAMETERS)
        else:
            assert meta["noise_file"] is None
    assert recorded >= 1  # seed 0: utterances 0, 2 and 3 draw a recording


def test_a_bad_noise_dir_fails_before_any_utterance(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav", 2.0, rate=48000)
    with pytest.raises(NoiseFileError, match="48000 Hz"):
        PiperGSR(size=2, noise_dir=str(tmp_path))
