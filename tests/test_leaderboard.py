"""Tests of gensr_bench.leaderboard and ``gensr-bench leaderboard add|list|build``.

Runs are tiny (``test-toy``: 6 utterances of 1 s, scored by the cheap test metrics) and made
through the real CLI with the toy plugins, like tests/test_regression.py. The browser test
drives headless Chromium; it fails (never skips) when Chromium is missing, saying how to
install it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gensr_bench.cli import load_run, main
from gensr_bench.leaderboard import (
    ENTRY_SCHEMA,
    SITE_MARKER,
    EntryError,
    add,
    build,
    load_entries,
    load_entry,
    load_reported,
    validate_entry,
)
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import Registry
from gensr_bench.regression import NOT_COMPARABLE, PASS, REGRESSION
from gensr_bench.testing import (
    LevelMetric,
    SnrMetric,
    headless_chromium,
    toy_cli_run,
    write_plugin_file,
)

REPO = Path(__file__).resolve().parents[1]
TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"
REPORTED = REPO / "leaderboard" / "reported"
XSS = "<script>alert(1)</script>"
#: What the toy metrics give, as the CLI reads it from the registry.
TOY_OUTPUTS = {
    cls.name: {o: cls.direction(o) for o in cls.outputs} for cls in (LevelMetric, SnrMetric)
}


def cli(*args: str) -> int:
    return main(["--plugins-dir", str(TOY_PLUGINS), *args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    noisy_ids = [f"toy-{i:03d}" for i in range(0, 6, 2)]
    return {
        "base": toy_cli_run(root / "base", TOY_PLUGINS, save_audio=True),
        "aligned": toy_cli_run(
            root / "aligned", TOY_PLUGINS, "test-noisy-echo", save_audio=True, ids=noisy_ids
        ),
        "quiet": toy_cli_run(root / "quiet", TOY_PLUGINS, gain=0.5),
        "quietest": toy_cli_run(root / "quietest", TOY_PLUGINS, gain=0.25),
    }


@pytest.fixture(scope="module")
def results(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four entries: a base, a model aligned from it, and two more (one named with a script)."""
    folder = tmp_path_factory.mktemp("leaderboard") / "results"
    assert (
        cli("leaderboard", "add", str(runs["base"]), "--results", str(folder), "--label", "echo")
        == 0
    )
    base_id = "test-echo--test-toy"
    add(runs["aligned"], folder, TOY_OUTPUTS, tag="dpo", base=base_id)
    add(runs["quiet"], folder, TOY_OUTPUTS, tag="quiet", label="a-quiet")
    add(runs["quietest"], folder, TOY_OUTPUTS, tag="xss", label=XSS)
    return folder


@pytest.fixture(scope="module")
def site(results: Path) -> Path:
    out = results.parent / "site"
    code = cli(
        "leaderboard",
        "build",
        "--out",
        str(out),
        "--results",
        str(results),
        "--reported",
        str(REPORTED),
    )
    assert code == 0
    return out


def entry_dict(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


# -- entries ----------------------------------------------------------------------------------
def test_add_then_load_entry_gives_back_the_run(runs: dict[str, Path], results: Path) -> None:
    path = results / "test-echo--test-toy.json"
    config, outputs = load_entry(path)
    run_config, run_outputs = load_run(runs["base"])
    assert config == run_config
    # Timings are not kept in entries; everything else round-trips exactly.
    assert outputs == [dataclasses.replace(o, timings={}) for o in run_outputs]
    assert len(outputs) == 6 and all(o.flags.get("audio") for o in outputs)
    data = entry_dict(path)
    assert data["label"] == "echo" and data["model"]["paradigm"] == "dsp"
    assert data["summary"]["level_db"]["n_scored"] == 6
    assert data["metrics"][1]["outputs"] == [{"name": "snr_db", "higher_is_better": True}]
    summary = json.loads((runs["base"] / "summary.json").read_text())["summaries"]
    assert data["summary"]["snr_db"]["ci_low"] == next(
        s["ci_low"] for s in summary if s["output"] == "snr_db"
    )
    assert entry_dict(results / "test-noisy-echo--test-toy--dpo.json")["base"] == (
        "test-echo--test-toy"
    )


def test_add_refuses_to_overwrite_and_names_what_is_wrong(
    runs: dict[str, Path], results: Path, tmp_path: Path
) -> None:
    existing = results / "test-echo--test-toy.json"
    with pytest.raises(EntryError, match=re.escape(f"{existing} already exists")):
        add(runs["base"], results, TOY_OUTPUTS)
    copy_dir = tmp_path / "copy"
    path = add(runs["base"], copy_dir, TOY_OUTPUTS)
    before = path.read_text()
    assert add(runs["base"], copy_dir, TOY_OUTPUTS, overwrite=True) == path
    assert entry_dict(path)["utterances"] == json.loads(before)["utterances"]
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    with pytest.raises(EntryError, match=re.escape(f"{empty / 'results.sqlite'} does not exist")):
        add(empty, copy_dir, TOY_OUTPUTS)
    parent = runs["base"].parent
    with pytest.raises(EntryError, match=r"it holds runs in sub-folders .*base"):
        add(parent, copy_dir, TOY_OUTPUTS)
    with pytest.raises(EntryError, match="base entry 'nope' is not in"):
        add(runs["base"], copy_dir, TOY_OUTPUTS, tag="x", base="nope")
    with pytest.raises(EntryError, match=r"metric 'test-snr' .* is not registered"):
        add(runs["base"], copy_dir, {"test-level": {"level_db": True}}, tag="y")
    code = cli("leaderboard", "add", str(empty), "--results", str(copy_dir))
    assert code == 1


def test_an_unfinished_run_is_not_added(runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "unfinished"
    shutil.copytree(runs["quiet"], run)
    with sqlite3.connect(run / "results.sqlite") as db:
        db.execute("UPDATE run_info SET value = '\"running\"' WHERE key = 'status'")
    with pytest.raises(EntryError, match=r"is not finished .*--resume"):
        add(run, tmp_path / "results", TOY_OUTPUTS)


def test_schema_rejects_a_malformed_entry_with_a_clear_message(
    results: Path, tmp_path: Path
) -> None:
    good = entry_dict(results / "test-echo--test-toy.json")
    validate_entry(good)
    assert ENTRY_SCHEMA["properties"]["schema_version"] == {"const": 1}

    bad = copy.deepcopy(good)
    bad["model"]["name"] = 5
    del bad["added_at"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(EntryError) as info:
        load_entry(path)
    message = str(info.value)
    assert str(path) in message and "not a valid leaderboard entry" in message
    assert "at model.name: 5 is not of type 'string'" in message
    assert "'added_at' is a required property" in message

    bad = copy.deepcopy(good)
    bad["utterances"][2]["scores"]["level_db"] = "loud"
    with pytest.raises(EntryError, match=r"at utterances\[2\]\.scores\.level_db: 'loud'"):
        validate_entry(bad, "x.json")
    bad = copy.deepcopy(good)
    bad["utterances"][0]["scores"]["pesq"] = 1.0
    with pytest.raises(
        EntryError, match=r"utterances\[0\] scores undeclared output\(s\) \['pesq'\]"
    ):
        validate_entry(bad, "x.json")
    bad = copy.deepcopy(good)
    bad["utterances"].pop()
    with pytest.raises(EntryError, match="n_total is 6 but the entry holds 5 utterances"):
        validate_entry(bad, "x.json")

    with pytest.raises(EntryError, match="the file does not exist"):
        load_entry(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(EntryError, match="is not JSON"):
        load_entry(path)


def test_check_accepts_a_leaderboard_entry_as_baseline(
    runs: dict[str, Path], results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = str(results / "test-echo--test-toy.json")
    capsys.readouterr()
    assert cli("check", "--baseline", entry, "--candidate", str(runs["base"])) == PASS
    out = capsys.readouterr().out
    assert f"vs baseline {entry}" in out and "PASS" in out
    code = cli("check", "--baseline", entry, "--candidate", str(runs["quiet"]))
    assert code == REGRESSION and "level_db" in capsys.readouterr().out
    code = cli("check", "--baseline", str(tmp_path / "nope.json"), "--candidate", entry)
    assert code == NOT_COMPARABLE and "the file does not exist" in capsys.readouterr().err
    # An entry of a run's first 4 utterances is the baseline for a run with --limit 4.
    first4 = add(runs["base"], tmp_path, TOY_OUTPUTS, limit=4)
    assert first4.name == "test-echo--test-toy--first4.json"
    small = toy_cli_run(tmp_path / "small", TOY_PLUGINS, limit=4)
    assert cli("check", "--baseline", str(first4), "--candidate", str(small)) == PASS
    assert "+0.0000 [+0.0000, +0.0000]" in capsys.readouterr().out
    assert cli("check", "--baseline", entry, "--candidate", str(small)) == NOT_COMPARABLE


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        (("summary", "level_db", "mean"), float("nan"), "summary.level_db.mean: nan"),
        (("summary", "snr_db", "ci_high"), float("inf"), "summary.snr_db.ci_high: inf"),
        (("utterances", 3, "scores", "level_db"), -float("inf"), r"utterances\[3\]\.scores"),
        (("provenance", "machine", "cpu_count"), float("nan"), "provenance.machine.cpu_count"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_file_and_field(
    results: Path, tmp_path: Path, where: tuple[Any, ...], value: float, field: str
) -> None:
    bad = entry_dict(results / "test-echo--test-toy.json")
    parent = bad
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    path = tmp_path / "results" / "test-echo--test-toy--bad.json"
    path.parent.mkdir()
    # Python's json writes and reads NaN and Infinity; the entry must still be refused.
    path.write_text(json.dumps(bad))
    pattern = re.escape(str(path)) + r" is not a valid leaderboard entry: .*non-finite.*" + field
    with pytest.raises(EntryError, match=pattern):
        load_entry(path)
    with pytest.raises(EntryError, match=pattern):
        load_entries(path.parent)
    with pytest.raises(EntryError, match="non-finite"):
        validate_entry(bad, "x.json")
    # The site is not built from it, and `check` does not compare against it.
    out = tmp_path / "site"
    assert cli("leaderboard", "build", "--out", str(out), "--results", str(path.parent)) == 1
    assert not out.exists()
    good = results / "test-echo--test-toy.json"
    assert cli("check", "--baseline", str(path), "--candidate", str(good)) == NOT_COMPARABLE


def test_check_against_an_entry_names_the_cpus_it_was_made_on(
    runs: dict[str, Path], results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_dict(results / "test-echo--test-toy.json")
    entry["provenance"]["machine"]["cpu"] = {
        "model": "Intel(R) Xeon(R) Gold 6338",
        "flags": ["avx2", "avx512f", "fma"],
        "torch_capability": "AVX512",
    }
    entry["provenance"]["components"]["model"]["waveform_tolerance"] = 5e-4
    xeon = tmp_path / "xeon.json"
    xeon.write_text(json.dumps(entry))
    capsys.readouterr()
    assert cli("check", "--baseline", str(xeon), "--candidate", str(xeon)) == PASS
    assert "note: both runs on the same CPU: Intel(R) Xeon(R) Gold 6338" in capsys.readouterr().out
    epyc = copy.deepcopy(entry)
    epyc["provenance"]["machine"]["cpu"] = {"model": "AMD EPYC 7763", "flags": ["avx2", "fma"]}
    other = tmp_path / "epyc.json"
    other.write_text(json.dumps(epyc))
    assert cli("check", "--baseline", str(xeon), "--candidate", str(other)) == PASS
    out = capsys.readouterr().out
    assert "different CPUs: baseline Intel(R) Xeon(R) Gold 6338, candidate AMD EPYC 7763" in out
    assert "only the baseline's has avx512f" in out
    assert "waveform tolerance the model declares: 0.0005" in out
    # An entry made before CPUs were recorded, against a run folder: unknown, no crash.
    old = copy.deepcopy(entry)
    del old["provenance"]["machine"]["cpu"]
    del old["provenance"]["components"]["model"]["waveform_tolerance"]
    before = tmp_path / "old.json"
    before.write_text(json.dumps(old))
    assert (
        cli("check", "--baseline", str(before), "--candidate", str(other), "--format", "json")
        == PASS
    )
    machines = json.loads(capsys.readouterr().out)["machines"]
    assert machines["same_cpu"] is None and machines["baseline_cpu"] is None
    assert machines["candidate_cpu"]["model"] == "AMD EPYC 7763"
    assert machines["waveform_tolerance"] == {"baseline": None, "candidate": 5e-4}


# -- reported figures -------------------------------------------------------------------------
def test_reported_figures_load_with_their_citation() -> None:
    tables = load_reported(REPORTED)
    rows = [row for table in tables for row in table.rows]
    data_lines = [
        line
        for line in (REPORTED / "gensr-pref-2025.csv").read_text().splitlines()[1:]
        if line and not line.startswith("#")
    ]
    assert len(rows) == len(data_lines) - 1  # minus the header
    by_suite = {t.suite: t for t in tables}
    assert {"voicefixer-gsr", "dns-no-reverb", "dns-with-reverb"} <= set(by_suite)
    table = by_suite["voicefixer-gsr"]
    assert "Multi-Metric Preference Alignment" in table.citation
    assert table.columns == ("sig", "bak", "ovrl", "nisqa", "sbert", "sim")
    masksr = next(r for r in table.rows if r["model"] == "MaskSR")
    assert masksr["ovrl"] == pytest.approx(3.128) and masksr["nisqa"] is None


def test_a_reported_figure_that_is_not_a_number_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("# Someone 2024\nsuite,model,ovrl\ns,m,3.1\ns,n,high\n")
    with pytest.raises(EntryError, match=r"x.csv, line 4: ovrl='high' is not a number"):
        load_reported(tmp_path)


# -- the site ---------------------------------------------------------------------------------
def test_the_site_builds_from_the_repository_results(tmp_path: Path) -> None:
    results = REPO / "leaderboard" / "results"
    entries = load_entries(results)
    assert len(entries) >= 3
    for entry in entries:
        assert entry.path.stat().st_size < 1_000_000, f"{entry.path} is over 1 MB"
    report = build(results, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    for entry in entries:
        assert f'href="models/{entry.id}.html"' in index
        page = (tmp_path / "site" / "models" / f"{entry.id}.html").read_text()
        assert "95% CI" in page and entry.data["suite"]["fingerprint"] in page
    assert report.entries == len(entries) and report.charts >= 1
    assert all((tmp_path / "site" / "charts").glob("*.png"))
    assert (tmp_path / "site" / SITE_MARKER).exists()
    # Reported rows: all present, badged, and only in their own section after the measured one.
    measured, reported = index.split('id="reported"', 1)
    n_reported = sum(len(t.rows) for t in load_reported(REPORTED))
    assert "reported-row" not in measured
    assert reported.count('class="reported-row"') == n_reported == report.reported_rows
    assert "Multi-Metric Preference Alignment" in reported
    assert "http://" not in index and "https://" not in index  # nothing fetched from the web


def test_the_index_has_ci_deltas_and_a_paradigm_filter(site: Path) -> None:
    index = (site / "index.html").read_text()
    assert 'id="paradigm-filter"' in index and '<option value="dsp">' in index
    assert '<option value="mgm">' in index  # from the reported rows
    assert "Δ level_db" in index and "Δ snr_db" in index
    assert 'aligned from <a href="models/test-echo--test-toy.html">echo</a>' in index
    measured = index.split('id="reported"', 1)[0]
    assert measured.count("<tr data-paradigm=") == 4
    assert len(list((site / "charts").glob("*.png"))) == 2


def test_a_script_in_a_model_name_is_escaped(site: Path) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for page in (site / "index.html", site / "models" / "test-echo--test-toy--xss.html"):
        html = page.read_text()
        assert escaped in html
        assert XSS not in html
        # The only script element is the site's own local file.
        assert re.findall(r"<script[^>]*>", html) == [
            f'<script src="{"../" if page.parent.name == "models" else ""}assets/leaderboard.js">'
        ]


def test_model_pages_break_down_by_degradation_and_play_examples(site: Path) -> None:
    page = (site / "models" / "test-noisy-echo--test-toy--dpo.html").read_text()
    assert "By degradation" in page and "noise-high" in page and "noise-low" in page
    assert 'aligned from <a href="test-echo--test-toy.html">echo</a>' in page
    # degraded, base, this model, reference: each with audio and a spectrogram.
    assert page.count("<audio controls") == 3 * 4
    for ref in re.findall(r'src="\.\./(audio/[^"]+)"', page):
        assert (site / ref).is_file(), ref
    assert "<figcaption>base (echo)</figcaption>" in page
    quiet = (site / "models" / "test-echo--test-toy--quiet.html").read_text()
    assert "No audio was saved for this run" in quiet and "<audio" not in quiet


def test_entries_whose_names_differ_only_in_unsafe_characters_get_their_own_pages(
    results: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    for stem, label in (("a b", "first"), ("a_b", "second"), ("A_B", "third")):
        data = entry_dict(results / "test-echo--test-toy--quiet.json")
        (folder / f"{stem}.json").write_text(json.dumps({**data, "label": label}))
    build(folder, tmp_path / "site", examples=0)
    pages = sorted((tmp_path / "site" / "models").glob("*.html"))
    assert [p.name for p in pages] == ["A_B.html", "a_b-2.html", "a_b-3.html"]
    labels = {re.search(r'class="model-title">([^<]+)<', p.read_text())[1] for p in pages}
    assert labels == {"first", "second", "third"}


def test_build_refuses_a_folder_that_is_not_a_site_and_replaces_an_old_site(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "docs"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code = cli("leaderboard", "build", "--out", str(other), "--results", str(results))
    assert code == 1 and "refusing to replace it" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"
    out = tmp_path / "site"
    args = ["leaderboard", "build", "--out", str(out), "--results", str(results)]
    assert cli(*args, "--examples", "0") == 0
    (out / "stale.html").write_text("old")
    assert cli(*args, "--examples", "0") == 0
    assert not (out / "stale.html").exists() and (out / "index.html").exists()
    assert f"published with 'files': {(out / 'index.html').resolve().as_uri()}" in (
        capsys.readouterr().out
    )
    assert not list(tmp_path.glob(".site.building-*"))


def test_leaderboard_list_and_an_unknown_publisher(
    results: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    capsys.readouterr()
    assert cli("leaderboard", "list", "--results", str(results)) == 0
    out = capsys.readouterr().out
    assert "test-noisy-echo--test-toy--dpo" in out and "test-echo--test-toy" in out
    code = cli(
        "leaderboard",
        "build",
        "--out",
        str(tmp_path / "s"),
        "--results",
        str(results),
        "--publisher",
        "fils",
    )
    assert code == 2
    assert "Unknown publisher 'fils'. Did you mean: files?" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_publishers_come_from_the_hook(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry.from_plugins(get_plugin_manager(), "publishers")
    assert registry.entry("files").plugin == "publishers.files"
    plugins = tmp_path / "plugins"
    write_plugin_file(
        plugins,
        """
        from gensr_bench import hookimpl
        from gensr_bench import Publisher

        class Recorder(Publisher):
            \"\"\"Records what it was asked to publish.\"\"\"
            name = "recorder"

            def publish(self, site_dir, options):
                index = (site_dir / "index.html").exists()
                return f"recorded {site_dir.name} index={index} options={dict(options)}"

        @hookimpl
        def gensr_register_publishers():
            return [Recorder]
        """,
    )
    capsys.readouterr()
    code = main(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "--plugins-dir",
            str(plugins),
            "leaderboard",
            "build",
            "--out",
            str(tmp_path / "out"),
            "--results",
            str(results),
            "--examples",
            "0",
            "--publisher",
            "recorder",
            "--publish-option",
            "bucket=b1",
        ]
    )
    assert code == 0
    assert "published with 'recorder': recorded out index=True options={'bucket': 'b1'}" in (
        capsys.readouterr().out
    )
    code = cli(
        "leaderboard",
        "build",
        "--out",
        str(tmp_path / "o2"),
        "--results",
        str(results),
        "--examples",
        "0",
        "--publish-option",
        "x=1",
    )
    assert code == 1 and "publisher 'files' takes no options" in capsys.readouterr().err


# -- in a browser -----------------------------------------------------------------------------
def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _column(table: Any, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        row.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-sort")
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]


def test_the_site_in_headless_chromium(site: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with headless_chromium() as driver:
        driver.get((site / "index.html").as_uri())
        assert driver.title == "gensr-bench leaderboard"
        assert _severe(driver) == []
        table = driver.find_element(By.CSS_SELECTOR, "table.measured")
        headers = table.find_elements(By.CSS_SELECTOR, "thead th")
        names = [h.text for h in headers]
        model_col, snr_col = 0, names.index("snr_db ↑")

        labels = _column(table, model_col)
        assert labels[0] == "test-noisy-echo-dpo"  # best level_db first
        headers[model_col].find_element(By.TAG_NAME, "button").click()
        assert headers[model_col].get_attribute("aria-sort") == "ascending"
        resorted = _column(table, model_col)
        assert resorted == sorted(labels, key=str.lower) and resorted != labels

        button = headers[snr_col].find_element(By.TAG_NAME, "button")
        button.click()
        assert headers[snr_col].get_attribute("aria-sort") == "descending"
        values = [float(v) for v in _column(table, snr_col)]
        assert values == sorted(values, reverse=True)
        button.click()
        values = [float(v) for v in _column(table, snr_col)]
        assert values == sorted(values) and headers[snr_col].get_attribute("aria-sort") == (
            "ascending"
        )

        # The model named with a script is text on the page, and nothing ran.
        cell = next(c for c in table.find_elements(By.CSS_SELECTOR, "td.model") if "<" in c.text)
        assert XSS in cell.text
        with pytest.raises(NoAlertPresentException):
            _ = driver.switch_to.alert.text

        # The paradigm filter hides measured (dsp) rows and keeps reported AR rows.
        Select(driver.find_element(By.ID, "paradigm-filter")).select_by_value("ar")
        measured_rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert measured_rows and not any(r.is_displayed() for r in measured_rows)
        shown = [
            r for r in driver.find_elements(By.CSS_SELECTOR, "tr.reported-row") if r.is_displayed()
        ]
        assert shown and all(r.get_attribute("data-paradigm") == "ar" for r in shown)
        assert _severe(driver) == []

        driver.get((site / "models" / "test-noisy-echo--test-toy--dpo.html").as_uri())
        assert len(driver.find_elements(By.TAG_NAME, "audio")) == 12
        images = driver.find_elements(By.CSS_SELECTOR, ".clip img")
        assert images and all(
            driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images
        )
        assert _severe(driver) == []


def test_without_chromium_the_browser_helper_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(RuntimeError) as info, headless_chromium():
        pass
    message = str(info.value)
    assert "chromedriver: not found" in message
    assert "apt-get install -y chromium chromium-driver" in message


def test_a_full_disk_while_building_the_site_is_one_error_line(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Writers without their own disk-full handling still end in one line, not a traceback."""
    import errno

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    code = cli("leaderboard", "build", "--out", str(tmp_path / "site"), "--results", str(results))
    err = capsys.readouterr().err
    assert code == 1
    assert "the disk is full" in err and "index.html" in err and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], err
