"""A third-party plugin package, installed with pip, is found through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = Path(__file__).parent / "fixtures" / "thirdparty"
TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"


def _pip_install(package: str, target: Path) -> None:
    """A real pip install of the package into its own folder (not into the test environment)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PACKAGES / package),
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def _gensr(args: list[str], site: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "GENSR_BENCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "gensr_bench.cli", "--plugins-dir", str(TOY_PLUGINS), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def loudness_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site-loudness")
    _pip_install("gensr-bench-loudness", site)
    return site


def test_installed_plugin_is_discovered_listed_and_runs(loudness_site: Path, tmp_path: Path):
    listed = _gensr(["ls", "metrics"], loudness_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "loudness-gap" in listed.stdout
    assert "Absolute loudness difference to the reference" in listed.stdout
    plugins = _gensr(["plugins"], loudness_site, tmp_path)
    assert "gensr-bench-loudness" in plugins.stdout and "0.2.0" in plugins.stdout
    run = _gensr(
        [
            "run",
            "--model",
            "test-echo",
            "--suite",
            "test-toy",
            "--limit",
            "3",
            "--metrics",
            "loudness-gap",
            "--workers",
            "1",
            "--out",
            "r",
        ],
        loudness_site,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "loudness_gap_db ↓" in run.stdout
    assert "3/3" in run.stdout


def test_misspelt_metric_name_suggests_the_right_one(loudness_site: Path, tmp_path: Path):
    run = _gensr(
        ["run", "--model", "test-echo", "--suite", "test-toy", "--metrics", "loudnes-gap"],
        loudness_site,
        tmp_path,
    )
    assert run.returncode == 2
    assert "Unknown metric 'loudnes-gap'. Did you mean: loudness-gap?" in run.stderr


def test_misspelt_hook_fails_loudly(tmp_path: Path):
    site = tmp_path / "site-typo"
    _pip_install("gensr-bench-typo", site)
    result = _gensr(["ls", "metrics"], site, tmp_path)
    assert result.returncode == 1
    assert "typo" in result.stderr
    assert "gensr_register_metric" in result.stderr
    assert "Did you mean: gensr_register_metrics?" in result.stderr


def test_readme_plugin_example_is_the_tested_package():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    marker = "# gensr_bench_loudness/__init__.py\n"
    start = readme.index(marker) + len(marker)
    snippet = readme[start : readme.index("```", start)]
    package = PACKAGES / "gensr-bench-loudness" / "gensr_bench_loudness" / "__init__.py"
    assert snippet == package.read_text()
