"""Tests of gensr_bench.audio: decoding, encoding, resampling, mix-down and validation."""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from gensr_bench import audio as audio_ops
from gensr_bench.errors import AudioDecodeError, AudioError, AudioValidationError, DiskFullError
from gensr_bench.records import Audio
from gensr_bench.testing import noisy_utterance, voiced_signal


def sine(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> Audio:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return Audio(amplitude * np.sin(2 * np.pi * freq * t), sample_rate)


def dominant_frequency(audio: Audio) -> float:
    spectrum = np.abs(np.fft.rfft(audio.samples * np.hanning(len(audio.samples))))
    freqs = np.fft.rfftfreq(len(audio.samples), 1 / audio.sample_rate)
    return float(freqs[np.argmax(spectrum)])


def middle(samples: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """The samples without the first and last ``fraction``: resampler edge effects differ."""
    cut = int(len(samples) * fraction)
    return samples[cut : len(samples) - cut]


# --- reading and writing ------------------------------------------------------------------


def test_wav_float_round_trip_is_exact(tmp_path: Path) -> None:
    original = voiced_signal(0.5, 16000, seed=1)
    path = tmp_path / "nested" / "x.wav"  # parent folders are created

    audio_ops.write_audio(path, original)
    decoded = audio_ops.read_audio(path)

    assert soundfile.info(str(path)).subtype == "FLOAT"
    assert decoded.sample_rate == 16000
    np.testing.assert_array_equal(decoded.samples, original.samples)


def test_flac_round_trip_within_16_bit_quantisation(tmp_path: Path) -> None:
    original = voiced_signal(0.5, 22050, seed=2)
    path = tmp_path / "x.flac"

    audio_ops.write_audio(path, original)
    decoded = audio_ops.read_audio(path)

    assert soundfile.info(str(path)).format == "FLAC"
    assert decoded.sample_rate == 22050
    assert decoded.samples.dtype == np.float32
    assert len(decoded.samples) == len(original.samples)
    np.testing.assert_allclose(decoded.samples, original.samples, atol=1.5 / 2**15)


def test_read_audio_mixes_stereo_down_to_the_channel_mean(tmp_path: Path) -> None:
    left = voiced_signal(0.25, 16000, seed=1).samples
    right = voiced_signal(0.25, 16000, seed=2).samples
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([left, right], axis=1), 16000, subtype="FLOAT")

    decoded = audio_ops.read_audio(path)

    assert decoded.samples.ndim == 1
    np.testing.assert_allclose(decoded.samples, (left + right) / 2, atol=1e-7)


def test_read_audio_resamples_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    audio_ops.write_audio(path, sine(440, 0.5, 16000))

    decoded = audio_ops.read_audio(path, sample_rate=8000)

    assert decoded.sample_rate == 8000
    assert len(decoded.samples) == 4000
    assert dominant_frequency(decoded) == pytest.approx(440, abs=2)


def test_read_audio_of_a_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioDecodeError, match="not found") as info:
        audio_ops.read_audio(path)
    assert str(path) in str(info.value)


def test_read_audio_of_a_non_audio_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n" * 20)
    with pytest.raises(AudioDecodeError) as info:
        audio_ops.read_audio(path)
    message = str(info.value)
    assert str(path) in message
    assert "ffmpeg" in message  # says how to fix it


# --- undecoded datasets.Audio cells ----------------------------------------------------------


def wav_bytes(audio: Audio) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.samples, audio.sample_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def test_decode_audio_cell_decodes_the_bytes_exactly_at_their_rate() -> None:
    audio = sine(440.0, 0.1, 22050)
    got = audio_ops.decode_audio_cell({"bytes": wav_bytes(audio), "path": "ignored.wav"})
    assert got == audio and got.samples.dtype == np.float32


def test_decode_audio_cell_mixes_stereo_bytes_down_to_mono() -> None:
    stereo = np.stack([np.full(100, 0.25), np.full(100, 0.75)], axis=1).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 8000, format="WAV", subtype="FLOAT")
    got = audio_ops.decode_audio_cell({"bytes": buffer.getvalue(), "path": None})
    np.testing.assert_array_equal(got.samples, np.full(100, 0.5, dtype=np.float32))


def test_decode_audio_cell_reads_a_path_when_bytes_are_none(tmp_path: Path) -> None:
    audio = sine(440.0, 0.1, 16000)
    soundfile.write(str(tmp_path / "a.wav"), audio.samples, audio.sample_rate, subtype="FLOAT")
    assert audio_ops.decode_audio_cell({"bytes": None, "path": str(tmp_path / "a.wav")}) == audio
    assert audio_ops.decode_audio_cell({"bytes": None, "path": "a.wav"}, base_dir=tmp_path) == audio
    # Empty bytes count as none: the path is read.
    assert audio_ops.decode_audio_cell({"bytes": b"", "path": "a.wav"}, "x", tmp_path) == audio
    with pytest.raises(AudioDecodeError, match=r"neither bytes nor a path"):
        audio_ops.decode_audio_cell({"bytes": None, "path": None})
    with pytest.raises(AudioDecodeError, match=r"row 3 chosen"):
        audio_ops.decode_audio_cell({"bytes": b"not audio", "path": None}, what="row 3 chosen")


def test_decode_audio_cell_errors_name_the_cell_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match=r"^row 1 'noisy' is empty"):
        audio_ops.decode_audio_cell(None, "row 1 'noisy'")
    with pytest.raises(AudioDecodeError, match=r"row 1 'noisy' is not an audio cell \(got str\)"):
        audio_ops.decode_audio_cell("a.wav", "row 1 'noisy'")  # type: ignore[arg-type]
    with pytest.raises(AudioDecodeError, match=r"row 2.*ffmpeg"):
        audio_ops.decode_audio_cell({"bytes": b"not audio", "path": None}, "row 2")
    with pytest.raises(AudioDecodeError, match=r"row 2.*: rebuild it$"):
        audio_ops.decode_audio_cell({"bytes": b"not audio"}, "row 2", fix="rebuild it")
    with pytest.raises(AudioDecodeError, match=r"^row 4: audio file not found") as info:
        audio_ops.decode_audio_cell({"bytes": None, "path": "gone.wav"}, "row 4", tmp_path)
    assert str(tmp_path / "gone.wav") in str(info.value)


def test_to_mono() -> None:
    mono = np.array([0.1, 0.2], dtype=np.float64)
    assert audio_ops.to_mono(mono).dtype == np.float32
    np.testing.assert_allclose(audio_ops.to_mono(np.array([[1.0, 0.0], [0.5, 0.5]])), [0.5, 0.5])
    with pytest.raises(AudioValidationError, match=r"\(2, 2, 2\)"):
        audio_ops.to_mono(np.zeros((2, 2, 2)))


# --- resampling ---------------------------------------------------------------------------


def test_resample_round_trip_keeps_frequency_and_amplitude() -> None:
    tone = sine(1000, 1.0, 16000, amplitude=0.5)

    up = audio_ops.resample(tone, 48000)
    back = audio_ops.resample(up, 16000)

    assert (up.sample_rate, len(up.samples)) == (48000, 48000)
    assert (back.sample_rate, len(back.samples)) == (16000, 16000)
    for audio in (up, back):
        assert dominant_frequency(audio) == pytest.approx(1000, abs=1.5)
        amplitude = np.sqrt(2) * np.sqrt(np.mean(middle(audio.samples).astype(np.float64) ** 2))
        assert amplitude == pytest.approx(0.5, rel=1e-3)
    np.testing.assert_allclose(middle(back.samples), middle(tone.samples), atol=1e-3)


def test_resample_agrees_with_scipy_resample_poly() -> None:
    """scipy's polyphase filter is an independent reference for a band-limited signal."""
    tone = sine(1000, 0.5, 16000, amplitude=0.5)

    ours = audio_ops.resample(tone, 48000).samples
    reference = resample_poly(tone.samples.astype(np.float64), 3, 1)

    assert len(ours) == len(reference)
    np.testing.assert_allclose(middle(ours), middle(reference), atol=2e-3)


def test_resample_falls_back_to_scipy_without_soxr(monkeypatch: pytest.MonkeyPatch) -> None:
    tone = sine(1000, 0.5, 16000)
    with_soxr = audio_ops.resample(tone, 48000)
    monkeypatch.setitem(sys.modules, "soxr", None)  # makes `import soxr` raise ImportError

    without = audio_ops.resample(tone, 48000)

    assert without.sample_rate == 48000
    assert without.samples.dtype == np.float32
    np.testing.assert_allclose(middle(without.samples), middle(with_soxr.samples), atol=2e-3)


def test_resample_to_the_same_rate_is_a_no_op_and_empty_audio_stays_empty() -> None:
    tone = sine(1000, 0.1, 16000)
    assert audio_ops.resample(tone, 16000) is tone

    empty = audio_ops.resample(Audio(np.zeros(0), 16000), 8000)
    assert empty.sample_rate == 8000
    assert len(empty.samples) == 0


# --- validation ---------------------------------------------------------------------------


def test_validate_returns_usable_audio_unchanged() -> None:
    audio = voiced_signal(0.5)
    assert audio_ops.validate(audio, "output", min_duration=0.5) is audio


def test_validate_missing_and_empty() -> None:
    with pytest.raises(AudioValidationError, match=r"^reference is missing$"):
        audio_ops.validate(None, "reference")
    with pytest.raises(AudioValidationError, match=r"output of utt-3 is empty \(0 samples\)"):
        audio_ops.validate(Audio(np.zeros(0), 16000), "output of utt-3")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_rejects_non_finite_samples(bad: float) -> None:
    samples = np.zeros(100, dtype=np.float32)
    samples[[3, 50]] = bad
    with pytest.raises(AudioValidationError, match=r"^model output contains 2 NaN/Inf .* of 100"):
        audio_ops.validate(Audio(samples, 16000), "model output")


def test_validate_too_short_names_what_and_both_durations() -> None:
    short = Audio(np.full(1600, 0.1), 16000)
    with pytest.raises(AudioValidationError) as info:
        audio_ops.validate(short, "reference of utt-7", min_duration=0.25)
    message = str(info.value)
    assert "reference of utt-7" in message
    assert "0.100 s" in message
    assert "0.250 s" in message


def test_limit_peak_leaves_audio_within_full_scale_untouched() -> None:
    for samples in ([0.5, -0.25], [1.0, -0.3], [0.2, -1.0], []):
        audio = Audio(np.array(samples), 16000)
        limited, gain = audio_ops.limit_peak(audio)
        assert limited is audio
        assert gain == 1.0


def test_limit_peak_scales_to_a_peak_of_exactly_one() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        scale = rng.uniform(1.05, 50.0)
        samples = (rng.standard_normal(64) * scale).astype(np.float32)
        top = float(np.max(np.abs(samples)))

        limited, gain = audio_ops.limit_peak(Audio(samples, 16000))

        assert np.max(np.abs(limited.samples)) == 1.0  # exactly: never 1.0000001
        assert gain == pytest.approx(1.0 / top)
        np.testing.assert_allclose(limited.samples, samples * gain, rtol=1e-6, atol=1e-7)


def test_limit_peak_on_a_negative_peak_and_non_finite_audio() -> None:
    limited, gain = audio_ops.limit_peak(Audio(np.array([0.5, -4.0, 2.0]), 8000))
    np.testing.assert_array_equal(limited.samples, [0.125, -1.0, 0.5])
    assert gain == 0.25
    assert limited.sample_rate == 8000

    broken = Audio(np.array([0.5, np.inf]), 8000)  # left for validate() to report
    assert audio_ops.limit_peak(broken) == (broken, 1.0)


def test_match_lengths() -> None:
    long = Audio(np.arange(10, dtype=np.float32), 16000)
    short = Audio(np.arange(7, dtype=np.float32), 16000)

    first, second, dropped = audio_ops.match_lengths(long, short)
    assert dropped == 3
    np.testing.assert_array_equal(first.samples, np.arange(7))
    assert second == short

    first, second, dropped = audio_ops.match_lengths(short, long)
    assert (len(first.samples), len(second.samples), dropped) == (7, 7, 3)

    same = audio_ops.match_lengths(long, long)
    assert same == (long, long, 0)


def test_write_audio_gives_the_bytes_soundfile_writes(tmp_path: Path) -> None:
    audio = voiced_signal(0.25, 16000, seed=3)
    for name, subtype in (("a.wav", "FLOAT"), ("b.wav", "PCM_16"), ("c.flac", None)):
        audio_ops.write_audio(tmp_path / name, audio, **({"subtype": subtype} if subtype else {}))
        direct = tmp_path / f"direct-{name}"
        soundfile.write(str(direct), audio.samples, 16000, subtype=subtype)
        assert (tmp_path / name).read_bytes() == direct.read_bytes()


def test_write_audio_on_a_full_disk_raises_disk_full_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_bytes = Path.write_bytes

    def write_half_then_fail(path: Path, data: bytes) -> int:
        real_write_bytes(path, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    target = tmp_path / "audio" / "x.wav"
    with pytest.raises(DiskFullError) as caught:
        audio_ops.write_audio(target, voiced_signal(0.1))
    assert caught.value.folder == str(target.parent)
    assert "disk is full" in str(caught.value) and "No space left" in str(caught.value)
    assert not target.exists()


def test_write_audio_passes_other_os_errors_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, data: bytes) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(PermissionError):
        audio_ops.write_audio(tmp_path / "x.wav", voiced_signal(0.1))


def test_write_audio_refuses_a_suffix_libsndfile_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"'\.xyz'"):
        audio_ops.write_audio(tmp_path / "x.xyz", voiced_signal(0.1))


# --- which files are audio -----------------------------------------------------------------


def test_audio_suffixes_follow_the_installed_libsndfile(monkeypatch: pytest.MonkeyPatch) -> None:
    has_mp3 = "MP3" in soundfile.available_formats()
    assert audio_ops.audio_suffixes() == (".wav", ".flac", ".ogg") + ((".mp3",) if has_mp3 else ())
    formats = {k: v for k, v in soundfile.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(soundfile, "available_formats", lambda: formats)
    assert audio_ops.audio_suffixes() == (".wav", ".flac", ".ogg")
    reason = audio_ops.skip_reason(Path("x.MP3"), audio_ops.audio_suffixes())
    assert reason is not None and "cannot decode" in reason and "1.1" in reason


def test_skip_reason() -> None:
    suffixes = (".wav", ".flac")
    assert audio_ops.skip_reason(Path("a/b.WAV"), suffixes) is None
    assert audio_ops.skip_reason(Path("a/._b.wav"), suffixes) == "hidden file"
    assert audio_ops.skip_reason(Path("b.txt"), suffixes) == (
        "not an audio file this suite reads (.wav, .flac)"
    )


def test_unread_files_lists_everything_not_read_with_why(tmp_path: Path) -> None:
    for rel in ("top.wav", "a/read.wav", "a/notes.txt", ".git/HEAD", ".keep/used.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "broken.wav").symlink_to(tmp_path / "gone.wav")
    read = {tmp_path / "a" / "read.wav", tmp_path / ".keep" / "used.wav"}
    assert audio_ops.unread_files([tmp_path], read, tmp_path, (".wav",), elsewhere="loose") == [
        (".git/", "hidden folder"),
        ("a/broken.wav", "not a regular file (a broken link?)"),
        ("a/notes.txt", "not an audio file this suite reads (.wav)"),
        ("link/", "link to a folder, not followed"),
        ("top.wav", "loose"),
    ]


# --- load_utterance -----------------------------------------------------------------------


def test_load_utterance_reads_both_files(tmp_path: Path) -> None:
    utt = noisy_utterance(seconds=0.25)
    assert utt.degraded is not None and utt.reference is not None
    audio_ops.write_audio(tmp_path / "noisy.wav", utt.degraded)
    audio_ops.write_audio(tmp_path / "clean.wav", utt.reference)

    loaded = audio_ops.load_utterance(
        "u1", tmp_path / "noisy.wav", tmp_path / "clean.wav", "hello", {"snr_db": 5}
    )

    assert loaded.error is None
    assert loaded.degraded == utt.degraded
    assert loaded.reference == utt.reference
    assert (loaded.id, loaded.transcript, dict(loaded.meta)) == ("u1", "hello", {"snr_db": 5})


@pytest.mark.parametrize("broken", ["degraded", "reference"])
def test_load_utterance_turns_an_unreadable_file_into_an_error(tmp_path: Path, broken: str) -> None:
    good = tmp_path / "good.wav"
    audio_ops.write_audio(good, voiced_signal(0.1))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF but not really")
    paths = {"degraded": good, "reference": good, broken: bad}

    utt = audio_ops.load_utterance("u2", paths["degraded"], paths["reference"], meta={"k": 1})

    assert utt.id == "u2"
    assert utt.degraded is None
    assert utt.error is not None and str(bad) in utt.error
    assert dict(utt.meta) == {"k": 1}


def test_load_utterance_of_a_missing_file(tmp_path: Path) -> None:
    utt = audio_ops.load_utterance("u3", tmp_path / "gone.flac")
    assert utt.degraded is None
    assert utt.error is not None and "gone.flac" in utt.error
