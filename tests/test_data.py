"""Data roots for official sets: --data-dir, GENSR_BENCH_DATA, explicit roots, messages."""

from __future__ import annotations

import pytest

from gensr_bench import data
from gensr_bench.cli import main
from gensr_bench.testing import write_plugin_file


@pytest.fixture()
def clean_roots(monkeypatch):
    monkeypatch.delenv("GENSR_BENCH_DATA", raising=False)
    monkeypatch.setattr(data, "_explicit_root", None)


def test_env_roots_are_searched_in_order(tmp_path, monkeypatch, clean_roots):
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "dns").mkdir(parents=True)
    monkeypatch.setenv("GENSR_BENCH_DATA", f"{first}:{second}")
    assert data.find_suite_dir("dns") == second / "dns"
    (first / "dns").mkdir(parents=True)
    assert data.find_suite_dir("dns") == first / "dns"
    assert data.find_suite_dir("other") is None


def test_explicit_dir_comes_first_and_reaches_the_environment(tmp_path, monkeypatch, clean_roots):
    (tmp_path / "x" / "dns").mkdir(parents=True)
    monkeypatch.setenv("GENSR_BENCH_DATA", str(tmp_path / "y"))
    data.set_data_dir(tmp_path / "x")
    assert data.data_roots()[0] == tmp_path / "x"
    assert str((tmp_path / "x").resolve()) in data.os.environ["GENSR_BENCH_DATA"]
    assert data.find_suite_dir("dns") == tmp_path / "x" / "dns"


def test_suite_option_root_overrides(tmp_path, clean_roots):
    assert data.find_suite_dir("dns", explicit=tmp_path) == tmp_path
    assert data.find_suite_dir("dns", explicit=tmp_path / "missing") is None


def test_missing_message_names_layout_source_stand_in_and_how(clean_roots):
    text = data.missing_data_message(
        "dns", "  datasets/test_set/...", "https://example.org/dns", "synth-dns", None
    )
    for part in (
        "'dns'",
        "datasets/test_set",
        "https://example.org/dns",
        "--suite synth-dns",
        "--data-dir",
        "GENSR_BENCH_DATA",
        "root=PATH",
    ):
        assert part in text


GROUP_PLUGIN = """
    from gensr_bench import hookimpl
    from gensr_bench.testing import ToySuite

    class ToyA(ToySuite):
        '''First part.'''
        name = "test-part-a"

    class ToyB(ToySuite):
        '''Second part.'''
        name = "test-part-b"

    class ToyGroup(ToySuite):
        '''Both parts.'''
        name = "test-group"
        subsets = ("test-part-a", "test-part-b")

    class Broken(ToySuite):
        '''Its third utterance cannot be loaded.'''
        name = "test-broken"

        def iter_utterances(self):
            from gensr_bench.records import Utterance
            for i, utt in enumerate(super().iter_utterances()):
                yield utt if i != 2 else Utterance(utt.id, None, error="gone.wav is missing")

    @hookimpl
    def gensr_register_suites():
        return [ToyA, ToyB, ToyGroup, Broken]

    @hookimpl
    def gensr_resolve_suite(name):
        if name.startswith("toy:"):
            return type("Resolved", (ToySuite,), {"name": name, "__doc__": "Resolved."})
        return None
"""


def test_group_suite_runs_each_subset_and_verify_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    plugins = tmp_path / "plugins"
    write_plugin_file(plugins, GROUP_PLUGIN)
    base = ["--plugins-dir", str(plugins)]
    code = main(
        [
            *base,
            "run",
            "--model",
            "identity",
            "--suite",
            "test-group",
            "--metrics",
            "si-sdr",
            "--workers",
            "1",
            "--limit",
            "2",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "identity on test-part-a: 2 utterances" in out
    assert "identity on test-part-b: 2 utterances" in out
    assert (tmp_path / "run" / "test-part-a" / "summary.json").exists()
    assert main([*base, "suite", "verify", "test-group"]) == 0
    assert "test-part-a: 8/8" in capsys.readouterr().out
    assert main([*base, "suite", "verify", "test-broken"]) == 1
    assert "missing: toy-002: gone.wav is missing" in capsys.readouterr().out
    assert (
        main(
            [
                *base,
                "run",
                "--model",
                "identity",
                "--suite",
                "toy:anything",
                "--metrics",
                "si-sdr",
                "--workers",
                "1",
                "--limit",
                "1",
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 0
    )
    assert "identity on toy:anything: 1 utterances" in capsys.readouterr().out
