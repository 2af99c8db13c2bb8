"""Suites over local paired data: generic layouts, AnyEnhance and VoiceFixer test sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile

from gensr_bench.data import DATA_ENV, MissingDataError
from gensr_bench.errors import ConfigError
from gensr_bench.testing import (
    add_noise,
    check_suite_conformance,
    invoke_cli,
    run_rows,
    voiced_signal,
)
from gensr_bench_plugins.suites import paired
from gensr_bench_plugins.suites.paired import (
    CCMusicGSR,
    LibriVoxGSR,
    VoiceFixerDeclip,
    VoiceFixerDenoise,
    VoiceFixerDerev,
    VoiceFixerGSR,
    VoiceFixerSR,
)


def write_wav(path: Path, rate: int = 16000, seed: int = 0, noisy: bool = False) -> Path:
    audio = voiced_signal(0.5, rate, seed)
    if noisy:
        audio = add_noise(audio, 5.0, seed + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio.samples, rate)
    return path


def clean_noisy_tree(root: Path, names: tuple[str, ...] = ("a", "b", "c")) -> Path:
    for i, name in enumerate(names):
        write_wav(root / "clean" / f"{name}.wav", seed=i)
        write_wav(root / "noisy" / f"{name}.wav", seed=i, noisy=True)
    return root


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)


# ----------------------------------------------------------------------------- generic layouts


def test_clean_noisy_pairs_by_name(tmp_path: Path) -> None:
    root = clean_noisy_tree(tmp_path / "set")
    write_wav(root / "noisy" / "sub" / "d.wav", seed=3, noisy=True)
    write_wav(root / "clean" / "sub" / "d.wav", seed=3)
    utts = list(LibriVoxGSR(root=str(root)))
    assert [u.id for u in utts] == ["a", "b", "c", "sub-d"]
    for utt in utts:
        assert utt.error is None and utt.degraded is not None and utt.reference is not None
        assert utt.degraded.sample_rate == utt.reference.sample_rate == 16000
        assert len(utt.degraded.samples) == 8000
        assert utt.meta["degradation"] == "gsr"
    assert utts[3].meta["file"] == "noisy/sub/d.wav"
    assert len(LibriVoxGSR(root=str(root))) == 4
    assert len(LibriVoxGSR(limit=2, root=str(root))) == 2


def test_found_under_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_noisy_tree(tmp_path / "ccmusic-gsr")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    suite = CCMusicGSR()
    assert suite.full_size() == 3
    assert suite.root() == tmp_path / "ccmusic-gsr"


def test_native_rate_kept(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_wav(root / "noisy" / "x.wav", rate=22050, noisy=True)
    write_wav(root / "clean" / "x.wav", rate=22050)
    (utt,) = list(LibriVoxGSR(root=str(root)))
    assert utt.degraded is not None and utt.degraded.sample_rate == 22050


def test_noisy_only_folder_has_no_references(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_wav(root / "noisy" / "x.wav", noisy=True)
    suite = LibriVoxGSR(root=str(root))
    (utt,) = list(suite)
    assert utt.reference is None and utt.error is None
    assert suite.verify().ok


def test_metadata_jsonl(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_wav(root / "audio" / "n1.wav", noisy=True)
    write_wav(root / "audio" / "c1.wav")
    write_wav(root / "audio" / "n2.wav", seed=2, noisy=True)
    lines = [
        {"id": "one", "noisy": "audio/n1.wav", "clean": "audio/c1.wav", "transcript": "hi there"},
        {"id": "two", "noisy": "audio/n2.wav", "clean": None, "snr": 5, "speaker": "s2"},
    ]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    one, two = list(LibriVoxGSR(root=str(root)))
    assert (one.id, one.transcript) == ("one", "hi there")
    assert one.reference is not None
    assert two.reference is None and two.transcript is None
    assert two.meta["snr"] == 5 and two.meta["speaker"] == "s2"
    assert two.meta["degradation"] == "gsr"
    assert LibriVoxGSR(root=str(root)).verify().ok


def test_metadata_csv(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_wav(root / "n1.wav", noisy=True)
    write_wav(root / "c1.wav")
    write_wav(root / "n2.wav", seed=2, noisy=True)
    (root / "metadata.csv").write_text(
        'id,noisy,clean,transcript,genre\nu1,n1.wav,c1.wav,"hello, world",folk\nu2,n2.wav,,,pop\n'
    )
    u1, u2 = list(CCMusicGSR(root=str(root)))
    assert u1.transcript == "hello, world" and u1.reference is not None
    assert u1.meta["genre"] == "folk"
    assert u2.reference is None and u2.transcript is None and u2.meta["genre"] == "pop"


def test_metadata_duplicate_id_and_missing_key(tmp_path: Path) -> None:
    root = tmp_path / "set"
    root.mkdir()
    (root / "metadata.jsonl").write_text(
        '{"id": "x", "noisy": "a.wav"}\n{"id": "x", "noisy": "b.wav"}\n'
    )
    with pytest.raises(ConfigError, match="more than once"):
        LibriVoxGSR(root=str(root)).full_size()
    (root / "metadata.jsonl").write_text('{"noisy": "a.wav"}\n')
    with pytest.raises(ConfigError, match="'id'"):
        LibriVoxGSR(root=str(root)).full_size()


def test_missing_tree_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(MissingDataError) as info:
        list(LibriVoxGSR())
    text = str(info.value)
    assert "librivox-gsr" in text and "metadata.jsonl" in text and "noisy/" in text
    assert "not public" in text and "AnyEnhance" in text and "synth-gsr" in text
    with pytest.raises(MissingDataError, match="ALL_GSR"):
        VoiceFixerGSR(root=str(tmp_path / "absent")).full_size()


def test_folder_without_layout(tmp_path: Path) -> None:
    (tmp_path / "set").mkdir()
    with pytest.raises(MissingDataError, match="noisy/"):
        LibriVoxGSR(root=str(tmp_path / "set")).full_size()


def test_unknown_option() -> None:
    with pytest.raises(ConfigError, match="root"):
        LibriVoxGSR(size=3)


def test_verify_names_missing_and_unpaired(tmp_path: Path) -> None:
    root = clean_noisy_tree(tmp_path / "set")
    assert LibriVoxGSR(root=str(root)).verify().ok
    (root / "clean" / "b.wav").unlink()
    write_wav(root / "clean" / "stray.wav")
    report = LibriVoxGSR(root=str(root)).verify()
    assert not report.ok
    assert report.suite == "librivox-gsr" and report.root == str(root)
    assert report.expected == 3 and report.found == 3
    assert any("noisy/b.wav" in m and "clean/b.wav" in m for m in report.missing)
    assert report.unpaired == ["clean/stray.wav"]


def test_verify_metadata_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_wav(root / "n1.wav", noisy=True)
    write_wav(root / "extra.wav")
    (root / "metadata.jsonl").write_text(
        '{"id": "u1", "noisy": "n1.wav", "clean": "gone.wav"}\n{"id": "u2", "noisy": "lost.wav"}\n'
    )
    suite = LibriVoxGSR(root=str(root))
    report = suite.verify()
    assert report.found == 0 and report.expected == 2
    assert any("gone.wav" in m for m in report.missing)
    assert any("lost.wav" in m for m in report.missing)
    assert report.unpaired == ["extra.wav"]
    u1, u2 = list(suite)
    assert u1.error is not None and "gone.wav" in u1.error
    assert u2.error is not None and "lost.wav" in u2.error


def test_unreadable_file_gives_error_utterance(tmp_path: Path) -> None:
    root = clean_noisy_tree(tmp_path / "set")
    (root / "noisy" / "b.wav").write_bytes(b"not audio at all")
    utts = {u.id: u for u in LibriVoxGSR(root=str(root))}
    assert utts["a"].error is None
    assert utts["b"].degraded is None
    assert utts["b"].error is not None and "b.wav" in utts["b"].error


def test_fingerprint_follows_content(tmp_path: Path) -> None:
    root = clean_noisy_tree(tmp_path / "set")
    first = LibriVoxGSR(root=str(root)).fingerprint()
    assert first == LibriVoxGSR(root=str(root)).fingerprint()
    assert first != CCMusicGSR(root=str(root)).fingerprint()
    write_wav(root / "clean" / "a.wav", seed=9)
    assert LibriVoxGSR(root=str(root)).fingerprint() != first


def test_generic_conformance(tmp_path: Path) -> None:
    root = clean_noisy_tree(tmp_path / "set", ("a", "b", "c", "d"))
    first = check_suite_conformance(LibriVoxGSR(root=str(root)))
    assert len(first) == 3


# ----------------------------------------------------------------------------- VoiceFixer

VF = 44100


def voicefixer_tree(root: Path) -> Path:
    for n in (1, 2):
        write_wav(root / "ALL_GSR" / "simulated" / f"{n}_simulated.wav", VF, n, noisy=True)
        write_wav(root / "ALL_GSR" / "target" / f"{n}_clean.wav", VF, n)
    write_wav(root / "ALL_GSR" / "target" / "3_clean.wav", VF, 3)  # unpaired
    for ratio in ("0.1", "0.25", "0.5"):
        write_wav(root / "DECLI" / ratio / "p232_001.wav", VF, 1, noisy=True)
    write_wav(root / "DECLI" / "GroundTruth" / "p232_001_mic1.wav", VF, 1)
    vd = root / "DENOISE" / "vd_test"
    for name in ("p232_001", "p257_002"):
        write_wav(vd / "noisy_testset_wav" / f"{name}.wav", VF, 4, noisy=True)
        write_wav(vd / "clean_testset_wav" / f"{name}.wav", VF, 4)
    for cutoff in ("1000", "4000", "12000"):
        write_wav(root / "SR" / "cheby1" / cutoff / "p232_001_mic1.wav", VF, 5, noisy=True)
    write_wav(root / "SR" / "GroundTruth" / "p232_001_mic1.wav", VF, 5)
    write_wav(root / "DEREV" / "Reverb_Speech" / "p232_001_mic1.wav", VF, 6, noisy=True)
    write_wav(root / "DEREV" / "GroundTruth" / "p232_001_mic1.wav", VF, 6)
    return root


def test_voicefixer_gsr_pairs_by_number(tmp_path: Path) -> None:
    root = voicefixer_tree(tmp_path / "voicefixer")
    suite = VoiceFixerGSR(root=str(root))
    utts = list(suite)
    assert [u.id for u in utts] == ["1_simulated", "2_simulated"]
    for utt in utts:
        assert utt.error is None and utt.reference is not None and utt.degraded is not None
        assert utt.degraded.sample_rate == utt.reference.sample_rate == 44100
        assert utt.meta["degradation"] == "gsr" and utt.meta["task"] == "gsr"
    report = suite.verify()
    assert report.unpaired == ["ALL_GSR/target/3_clean.wav"] and not report.missing
    (root / "ALL_GSR" / "target" / "2_clean.wav").unlink()
    report = VoiceFixerGSR(root=str(root)).verify()
    assert any("2_simulated.wav" in m for m in report.missing)


def test_voicefixer_tasks(tmp_path: Path) -> None:
    root = voicefixer_tree(tmp_path / "vf")
    declip = list(VoiceFixerDeclip(root=str(root)))
    assert [u.meta["clip_ratio"] for u in declip] == [0.1, 0.25, 0.5]
    assert {u.meta["degradation"] for u in declip} == {"clipping"}
    assert all(u.reference is not None for u in declip)
    assert len({u.id for u in declip}) == 3
    assert VoiceFixerDeclip(root=str(root)).verify().ok

    denoise = list(VoiceFixerDenoise(root=str(root)))
    assert [u.id for u in denoise] == ["p232_001", "p257_002"]
    assert all(u.meta["task"] == "denoise" and u.reference is not None for u in denoise)

    sr = list(VoiceFixerSR(root=str(root)))
    assert [u.meta["cutoff_hz"] for u in sr] == [1000, 4000, 12000]
    assert all(u.meta["filter"] == "cheby1" and u.reference is not None for u in sr)
    assert VoiceFixerSR(root=str(root)).verify().ok

    (derev,) = list(VoiceFixerDerev(root=str(root)))
    assert derev.meta["degradation"] == "reverb" and derev.reference is not None


def test_voicefixer_shared_folder_under_data_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voicefixer_tree(tmp_path / "voicefixer")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert VoiceFixerSR().full_size() == 3
    assert VoiceFixerGSR().root() == tmp_path / "voicefixer"


@pytest.mark.parametrize(
    "cls", [VoiceFixerGSR, VoiceFixerDeclip, VoiceFixerDenoise, VoiceFixerSR, VoiceFixerDerev]
)
def test_voicefixer_conformance(tmp_path: Path, cls: type[paired.PairedDirSuite]) -> None:
    root = voicefixer_tree(tmp_path / "vf")
    suite = cls(root=str(root))
    assert suite.sample_rate == 44100
    check_suite_conformance(suite, limit=2)


def test_registered() -> None:
    suites = paired.gensr_register_suites()
    names = [s.name for s in suites]
    assert len(set(names)) == len(names) == 8
    expected = {"paired", "librivox-gsr", "ccmusic-gsr", "voicefixer-gsr", "voicefixer-sr"}
    assert expected <= set(names)
    assert all(s.description() for s in suites)


def test_paired_reads_any_folder_given_as_root(tmp_path) -> None:
    from gensr_bench.audio import write_audio
    from gensr_bench.testing import noisy_utterance

    for i in range(3):
        utt = noisy_utterance(f"u{i}", 1.0, seed=i)
        write_audio(tmp_path / "noisy" / f"u{i}.wav", utt.degraded)
        write_audio(tmp_path / "clean" / f"u{i}.wav", utt.reference)
    suite = paired.PairedDirSuite(root=str(tmp_path))
    utterances = check_suite_conformance(suite, limit=3)
    assert [u.id for u in utterances] == ["u0", "u1", "u2"]
    assert all(u.reference is not None for u in utterances)


# ----------------------------------------------------------------------------- files not read

needs_mp3 = pytest.mark.skipif(
    "MP3" not in soundfile.available_formats(),
    reason=f"the installed libsndfile {soundfile.__libsndfile_version__} cannot decode MP3 "
    "(needs 1.1 or later)",
)


def write_mp3(path: Path, seed: int, noisy: bool = False) -> Path:
    audio = voiced_signal(0.5, 16000, seed)
    if noisy:
        audio = add_noise(audio, 5.0, seed + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio.samples, 16000, format="MP3")
    return path


def folder_of_twenty(root: Path) -> Path:
    """18 WAV pairs, an MP3 pair, a hidden WAV, a text file and a hidden folder: 41 files."""
    clean_noisy_tree(root, tuple(f"u{i:02d}" for i in range(18)))
    write_mp3(root / "noisy" / "m.mp3", 40, noisy=True)
    write_mp3(root / "clean" / "m.mp3", 40)
    write_wav(root / "noisy" / ".hidden.wav", seed=41, noisy=True)
    (root / "noisy" / "x.txt").write_text("notes")
    (root / ".cache").mkdir()
    (root / ".cache" / "y.wav").write_bytes(b"")
    return root


def without_mp3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make soundfile report the formats of a libsndfile older than 1.1 (no MP3)."""
    formats = {k: v for k, v in soundfile.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(soundfile, "available_formats", lambda: formats)


@needs_mp3
def test_mp3_pairs_are_read_and_every_other_file_is_listed_with_why(tmp_path: Path) -> None:
    root = folder_of_twenty(tmp_path / "set")
    suite = paired.PairedDirSuite(root=str(root))
    utts = {u.id: u for u in suite}
    assert len(utts) == 19
    mp3 = utts["m"]
    assert mp3.error is None and mp3.degraded is not None and mp3.reference is not None
    assert mp3.meta["file"] == "noisy/m.mp3"
    assert mp3.degraded.duration >= 0.5  # the decoder adds the encoder's padding, never less
    report = suite.verify()
    assert report.ok and report.found == report.expected == 19
    assert suite.ignored_files() == [
        (".cache/", "hidden folder"),
        ("noisy/.hidden.wav", "hidden file"),
        ("noisy/x.txt", "not an audio file this suite reads (.wav, .flac, .ogg, .mp3)"),
    ]


def test_mp3_is_listed_as_ignored_where_libsndfile_cannot_decode_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = clean_noisy_tree(tmp_path / "set")
    (root / "noisy" / "m.mp3").write_bytes(b"ID3 not decoded here")
    without_mp3(monkeypatch)
    suite = LibriVoxGSR(root=str(root))
    assert [u.id for u in suite] == ["a", "b", "c"]
    ((path, why),) = suite.ignored_files()
    assert path == "noisy/m.mp3"
    assert "MP3" in why and soundfile.__libsndfile_version__ in why and "1.1" in why


def test_metadata_layout_lists_files_it_names_nowhere(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_wav(root / "n1.wav", noisy=True)
    write_wav(root / "c1.wav")
    write_wav(root / "stray.wav")
    (root / "README.md").write_text("my set")
    (root / "metadata.jsonl").write_text('{"id": "u1", "noisy": "n1.wav", "clean": "c1.wav"}\n')
    suite = LibriVoxGSR(root=str(root))
    assert suite.verify().unpaired == ["stray.wav"]  # audio no pair uses: reported, not ignored
    assert [path for path, _ in suite.ignored_files()] == ["README.md"]


def test_a_linked_folder_is_listed_as_not_followed(tmp_path: Path) -> None:
    root = clean_noisy_tree(tmp_path / "set")
    write_wav(tmp_path / "elsewhere" / "d.wav", noisy=True)
    (root / "noisy" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    suite = LibriVoxGSR(root=str(root))
    assert suite.full_size() == 3
    assert suite.ignored_files() == [("noisy/more/", "link to a folder, not followed")]


def test_voicefixer_lists_what_its_task_folder_holds_besides_the_layout(tmp_path: Path) -> None:
    root = voicefixer_tree(tmp_path / "vf")
    assert VoiceFixerDeclip(root=str(root)).ignored_files() == []
    write_wav(root / "DECLI" / "loose.wav", VF, 7, noisy=True)
    (root / "DECLI" / "0.1" / "list.csv").write_text("x")
    (root / "SR" / "notes.txt").write_text("other task")
    assert VoiceFixerDeclip(root=str(root)).ignored_files() == [
        ("DECLI/0.1/list.csv", "not an audio file this suite reads (.wav, .flac, .ogg, .mp3)"),
        ("DECLI/loose.wav", "audio outside the folders the suite's layout pairs"),
    ]
    assert [p for p, _ in VoiceFixerSR(root=str(root)).ignored_files()] == ["SR/notes.txt"]


@needs_mp3
def test_cli_suite_verify_and_run_list_every_ignored_file(tmp_path: Path) -> None:
    root = folder_of_twenty(tmp_path / "set")
    verify = invoke_cli(["suite", "verify", "paired", "--suite-option", f"root={root}"])
    assert verify.exit_code == 0, verify.stdout + verify.stderr
    assert "paired: 19/19 pairs found" in verify.stdout
    assert "ignored 2 file(s) and 1 folder(s) in its data folder:" in verify.stdout
    lines = verify.stdout.splitlines()
    assert "    .cache/: hidden folder" in lines
    assert "    noisy/.hidden.wav: hidden file" in lines
    assert any(line.startswith("    noisy/x.txt: not an audio file") for line in lines)

    out = tmp_path / "run"
    args = ["run", "--suite", "paired", "--suite-option", f"root={root}", "--model", "identity"]
    run = invoke_cli([*args, "--metrics", "si-sdr", "--workers", "1", "--out", str(out)])
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "note: the suite ignored 2 file(s) and 1 folder(s)" in run.stdout
    assert "    noisy/.hidden.wav: hidden file" in run.stdout.splitlines()
    scored = {row[0]: row[2] for row in run_rows(out)}
    assert len(scored) == 19 and scored["m"]["si_sdr"] is not None
