"""The DNS Challenge 2020 suites, on tiny trees in the official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from gensr_bench.data import MissingDataError
from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import Suite
from gensr_bench.runner import RunOptions, run_suite
from gensr_bench.testing import (
    EchoModel,
    SnrMetric,
    check_suite_conformance,
    noisy_utterance,
    voiced_signal,
)
from gensr_bench_plugins.suites import dns
from gensr_bench_plugins.suites.dns import (
    DNS,
    DNSNoReverb,
    DNSReal,
    DNSWithReverb,
    gensr_register_suites,
    parse_noisy_name,
)

SYNTH = Path("datasets") / "test_set" / "synthetic"
NOISY_NAMES = {
    3: "clnsp3_ceiling_fan_on_and_off_snr10_tl-25_fileid_3.wav",
    7: "clnsp1_train_69005_1_snr15_tl-21_fileid_7.wav",
    12: "clnsp52_amMeH4u6AO4_snr-5_tl-18_fileid_12.wav",
}


def _write(path: Path, samples: np.ndarray, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, rate, subtype="FLOAT")


def make_tree(root: Path) -> Path:
    """``root/dns`` with 3 pairs per synthetic subset (same names, different content)."""
    base = root / "dns"
    for offset, subset in ((0, "no_reverb"), (100, "with_reverb")):
        for key, noisy_name in NOISY_NAMES.items():
            utt = noisy_utterance(f"u{key}", seconds=0.5, snr_db=10.0, seed=key + offset)
            assert utt.degraded is not None and utt.reference is not None
            _write(
                base / SYNTH / subset / "clean" / f"clean_fileid_{key}.wav", utt.reference.samples
            )
            _write(base / SYNTH / subset / "noisy" / noisy_name, utt.degraded.samples)
    real = base / "datasets" / "test_set" / "real_recordings"
    for i, name in enumerate(["ms_realrec_headset_cafe_spk2_3", "audioset_realrec_printer_x"]):
        _write(real / f"{name}.wav", voiced_signal(0.5, seed=50 + i).samples)
    return base


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "data")


def test_registers_all_suites() -> None:
    names = {cls.name for cls in gensr_register_suites()}
    assert names == {"dns", "dns-no-reverb", "dns-with-reverb", "dns-real"}
    assert DNS.subsets == ("dns-no-reverb", "dns-with-reverb")


def test_parse_noisy_name() -> None:
    meta = parse_noisy_name("clnsp1_train_69005_1_snr15_tl-21_fileid_158")
    assert meta == {
        "fileid": 158,
        "snr_db": 15,
        "target_level_db": -21,
        "noise": "train_69005_1",
        "noise_class": "train",
    }
    fan = parse_noisy_name("ceiling_fan_on_and_off_snr-5_tl-25_fileid_7")
    assert (fan["noise_class"], fan["snr_db"], fan["target_level_db"]) == (
        "ceiling_fan_on_and_off",
        -5,
        -25,
    )
    bare = parse_noisy_name("noisy_fileid_3")
    assert bare["fileid"] == 3 and bare["snr_db"] is None and bare["noise_class"] is None


def test_pairs_load_from_their_own_subset(tree: Path) -> None:
    no_reverb = list(DNSNoReverb(root=str(tree)))
    with_reverb = list(DNSWithReverb(root=str(tree)))
    assert [u.id for u in no_reverb] == [f"dns-no-reverb-fileid_{k}" for k in (3, 7, 12)]
    assert [u.id for u in with_reverb] == [f"dns-with-reverb-fileid_{k}" for k in (3, 7, 12)]
    for offset, utts in ((0, no_reverb), (100, with_reverb)):
        for utt in utts:
            key = int(utt.meta["fileid"])
            expected = noisy_utterance("x", seconds=0.5, snr_db=10.0, seed=key + offset)
            assert utt.error is None and utt.degraded is not None and utt.reference is not None
            assert utt.degraded.sample_rate == utt.reference.sample_rate == 16000
            assert expected.degraded is not None and expected.reference is not None
            np.testing.assert_allclose(utt.degraded.samples, expected.degraded.samples)
            np.testing.assert_allclose(utt.reference.samples, expected.reference.samples)
    fan = no_reverb[0].meta
    assert fan["snr_db"] == 10 and fan["target_level_db"] == -25
    assert fan["noise_class"] == "ceiling_fan_on_and_off"
    assert fan["subset"] == "no_reverb" and fan["degradation"] == "noise"
    assert with_reverb[2].meta["snr_db"] == -5
    assert with_reverb[2].meta["degradation"] == "noise+reverb"
    assert with_reverb[1].meta["noise_class"] == "train"


def test_combined_suite_chains_both(tree: Path) -> None:
    suite = DNS(root=str(tree))
    ids = [u.id for u in suite]
    assert len(ids) == suite.full_size() == 6
    assert ids[0].startswith("dns-no-reverb-") and ids[-1].startswith("dns-with-reverb-")


def test_data_dir_and_env_lookup(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSR_BENCH_DATA", str(tree.parent))
    assert DNSNoReverb().full_size() == 3
    assert len(DNSNoReverb(limit=2)) == 2


def test_real_recordings(tree: Path) -> None:
    utts = list(DNSReal(root=str(tree)))
    assert [u.id for u in utts] == [
        "dns-real-audioset_realrec_printer_x",
        "dns-real-ms_realrec_headset_cafe_spk2_3",
    ]
    assert all(u.reference is None and u.meta["real"] for u in utts)
    assert DNSReal(root=str(tree)).verify().ok


@pytest.mark.parametrize("cls", [DNS, DNSNoReverb, DNSWithReverb, DNSReal])
def test_conformance(tree: Path, cls: type[Suite]) -> None:
    check_suite_conformance(cls(root=str(tree)), limit=2)


def test_missing_tree_names_layout_and_stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENSR_BENCH_DATA", str(tmp_path / "nowhere"))
    suite = DNSWithReverb()  # constructing never needs the data
    with pytest.raises(MissingDataError) as info:
        list(suite)
    text = str(info.value)
    assert "datasets/test_set/synthetic/with_reverb/noisy" in text
    assert "DNS-Challenge" in text and "interspeech2020/master" in text
    assert "synth-dns-with-reverb" in text
    assert str(tmp_path / "nowhere" / "dns") in text
    for call in (suite.full_size, suite.verify, suite.fingerprint):
        with pytest.raises(MissingDataError):
            call()


def test_partial_tree_names_missing_subfolder(tree: Path) -> None:
    import shutil

    shutil.rmtree(tree / SYNTH / "with_reverb")
    assert DNSNoReverb(root=str(tree)).full_size() == 3
    with pytest.raises(MissingDataError, match="with_reverb"):
        DNSWithReverb(root=str(tree)).full_size()


def test_unknown_option_rejected() -> None:
    with pytest.raises(ConfigError, match="root"):
        DNSNoReverb(size=3)


def test_verify_reports_missing_and_unpaired(tree: Path) -> None:
    folder = tree / SYNTH / "no_reverb"
    (folder / "noisy" / NOISY_NAMES[7]).unlink()
    _write(folder / "noisy" / "clnsp9_wind_1_snr5_tl-20_fileid_99.wav", np.zeros(800))
    report = DNSNoReverb(root=str(tree)).verify()
    assert not report.ok
    assert report.expected == 150 and report.found == 2
    assert any("fileid_7" in m and "clean_fileid_7.wav" in m for m in report.missing)
    assert "clean/clean_fileid_7.wav" in report.unpaired
    assert "noisy/clnsp9_wind_1_snr5_tl-20_fileid_99.wav" in report.unpaired
    assert [u.id for u in DNSNoReverb(root=str(tree))] == [
        "dns-no-reverb-fileid_3",
        "dns-no-reverb-fileid_12",
    ]
    combined = DNS(root=str(tree)).verify()
    assert combined.found == 5 and combined.expected == 300
    assert any(u.startswith("dns-no-reverb: ") for u in combined.unpaired)


def test_unreadable_file_becomes_error_utterance(tree: Path) -> None:
    (tree / SYNTH / "no_reverb" / "noisy" / NOISY_NAMES[3]).write_bytes(b"not audio")
    utts = list(DNSNoReverb(root=str(tree)))
    assert utts[0].error is not None and NOISY_NAMES[3] in utts[0].error
    assert utts[1].error is None
    assert any("unreadable" in m for m in DNSNoReverb(root=str(tree)).verify().missing)


def test_fingerprint_follows_content(tree: Path) -> None:
    before = DNSNoReverb(root=str(tree)).fingerprint()
    assert before == DNSNoReverb(root=str(tree)).fingerprint()
    assert before != DNSWithReverb(root=str(tree)).fingerprint()
    combined = DNS(root=str(tree)).fingerprint()
    _write(tree / SYNTH / "no_reverb" / "clean" / "clean_fileid_3.wav", np.zeros(8000))
    assert DNSNoReverb(root=str(tree)).fingerprint() != before
    assert DNS(root=str(tree)).fingerprint() != combined


def test_resamples_other_rates(tree: Path) -> None:
    folder = tree / SYNTH / "no_reverb"
    _write(folder / "clean" / "clean_fileid_3.wav", np.zeros(4000, np.float32), rate=8000)
    utt = next(iter(DNSNoReverb(root=str(tree))))
    assert utt.reference is not None and utt.reference.sample_rate == 16000
    assert any("8000 Hz" in n for n in DNSNoReverb(root=str(tree)).verify().notes)


@pytest.mark.parametrize("cls", [DNSNoReverb, DNSWithReverb])
def test_run_suite_per_subset(tree: Path, tmp_path: Path, cls: type[Suite]) -> None:
    result = run_suite(
        EchoModel(),
        cls(root=str(tree)),
        [SnrMetric()],
        tmp_path / "runs" / cls.name,
        RunOptions(workers=1, use_cache=False),
    )
    assert result is not None
    assert (tmp_path / "runs" / cls.name / "summary.json").is_file()


def test_cli_run_dns_reports_each_subset(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the installed ``suites.dns`` entry point, as a user runs it."""
    from gensr_bench.cli import main

    out = tmp_path / "cli-run"
    code = main(
        [
            "--data-dir",
            str(tree.parent),
            "run",
            "--model",
            "identity",
            "--suite",
            "dns",
            "--metrics",
            "si-sdr",
            "--workers",
            "1",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert (out / "dns-no-reverb" / "summary.json").is_file()
    assert (out / "dns-with-reverb" / "summary.json").is_file()
    assert "dns-no-reverb" in printed.out + printed.err
    assert "dns-with-reverb" in printed.out + printed.err


def test_module_docstring_mentions_layout() -> None:
    assert dns.__doc__ is not None and "interspeech2020/master" in dns.__doc__


def test_cli_missing_tree_exits_1_with_the_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gensr_bench.cli import main

    code = main(
        [
            "--data-dir",
            str(tmp_path / "empty"),
            "run",
            "--model",
            "identity",
            "--suite",
            "dns-no-reverb",
            "--metrics",
            "si-sdr",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "datasets/test_set/synthetic" in err and "synth-dns-no-reverb" in err


def test_cli_suite_verify_names_removed_and_unpaired_files(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gensr_bench.cli import main

    folder = tree / SYNTH / "no_reverb"
    (folder / "noisy" / NOISY_NAMES[7]).unlink()
    _write(folder / "noisy" / "clnsp9_wind_1_snr5_tl-20_fileid_99.wav", np.zeros(800))
    code = main(["suite", "verify", "dns-no-reverb", "--suite-option", f"root={tree}"])
    out = capsys.readouterr().out
    assert code == 1
    assert "dns-no-reverb: 2/150 pairs found" in out
    assert "unpaired: clean/clean_fileid_7.wav" in out
    assert "unpaired: noisy/clnsp9_wind_1_snr5_tl-20_fileid_99.wav" in out


def test_suite_config_file_points_at_the_tree(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gensr_bench.cli import main

    config = tmp_path / "suites.toml"
    config.write_text(f'[dns]\nroot = "{tree}"\n')
    assert main(["suite", "verify", "dns", "--suite-config", str(config)]) == 1  # 3 of 150
    assert "dns-with-reverb: 3/150 pairs found" in capsys.readouterr().out
    code = main(
        [
            "run",
            "--model",
            "identity",
            "--suite",
            "dns",
            "--suite-config",
            str(config),
            "--metrics",
            "si-sdr",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    assert "identity on dns-no-reverb: 3 utterances" in capsys.readouterr().out
    config.write_text("[dns\n")
    assert main(["suite", "verify", "dns", "--suite-config", str(config)]) == 1
    assert "cannot read suite config" in capsys.readouterr().err


def test_dns_real_runs_non_intrusive_metrics_and_says_so(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gensr_bench.cli import main

    code = main(
        [
            "--data-dir",
            str(tree.parent),
            "run",
            "--model",
            "identity",
            "--suite",
            "dns-real",
            "--metrics",
            "si-sdr,dnsmos",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "intrusive metrics (si-sdr) need a clean reference" in out
    assert "si_sdr ↑" in out and "0/" in out


def test_files_besides_the_wavs_are_listed_with_why(tree: Path) -> None:
    folder = tree / SYNTH / "no_reverb"
    _write(folder / "clean" / "._clean_fileid_3.wav", np.zeros(800))
    (folder / "noisy" / "list.txt").write_text("x")
    _write(folder / "noisy" / "extra" / "clnsp1_a_snr5_tl-20_fileid_50.wav", np.zeros(800))
    (folder / "noisy" / "clnsp1_a_snr5_tl-20_fileid_51.flac").write_bytes(b"fLaC")
    suite = DNSNoReverb(root=str(tree))
    assert suite.full_size() == 3  # the hidden fork is neither read nor a second fileid_3
    assert suite.verify().unpaired == []
    assert suite.ignored_files() == [
        ("clean/._clean_fileid_3.wav", "hidden file"),
        ("noisy/clnsp1_a_snr5_tl-20_fileid_51.flac", "not an audio file this suite reads (.wav)"),
        ("noisy/extra/clnsp1_a_snr5_tl-20_fileid_50.wav", "not in clean/ or noisy/"),
        ("noisy/list.txt", "not an audio file this suite reads (.wav)"),
    ]
    assert DNSWithReverb(root=str(tree)).ignored_files() == []
    assert DNS(root=str(tree)).ignored_files()[0] == (
        "no_reverb/clean/._clean_fileid_3.wav",
        "hidden file",
    )
    real = tree / "datasets" / "test_set" / "real_recordings"
    (real / "info.json").write_text("{}")
    _write(real / "sub" / "more.wav", np.zeros(800))
    listed = dict(DNSReal(root=str(tree)).ignored_files())
    assert set(listed) == {"info.json", "sub/more.wav"}
    assert "sub-folder" in listed["sub/more.wav"]


def test_cli_suite_verify_lists_ignored_files(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gensr_bench.cli import main

    (tree / SYNTH / "with_reverb" / "noisy" / "README").write_text("x")
    assert main(["suite", "verify", "dns", "--suite-option", f"root={tree}"]) == 1  # 3 of 150
    out = capsys.readouterr().out
    with_reverb = out[out.index("dns-with-reverb:") :]
    assert "ignored 1 file(s) in its data folder:" in with_reverb
    assert "    noisy/README: not an audio file this suite reads (.wav)" in with_reverb
    assert "ignored" not in out[: out.index("dns-with-reverb:")]
