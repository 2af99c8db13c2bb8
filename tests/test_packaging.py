"""The built wheel holds every module, template and checkpoint the checkout has, and every entry
point names a module inside it (a wheel once lacked gensr_bench/alignment/ while its entry point
named it, so a non-editable install could not load its plugins). The full install-and-run smoke
test is scripts/wheel_smoke.sh, which CI runs after the tests."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where each source folder lands in the installed tree.
INSTALLED_AS = {"gensr_bench": "gensr_bench", "plugins": "gensr_bench_plugins"}


def _source_files() -> list[str]:
    """Files git knows in the checkout (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (REPO / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[zipfile.ZipFile, str]:
    """The wheel built from a copy of the checkout, and what the build printed."""
    if shutil.which("git") is None:
        pytest.fail("the packaging test needs git to list the checkout's files")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    wheel_command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run(
        [sys.executable, "-m", *wheel_command, "-w", str(work / "dist"), "."],
        cwd=src,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (work / "dist").glob("gensr_bench-*.whl")
    return zipfile.ZipFile(path), built.stdout + built.stderr


def test_every_source_file_of_the_packages_is_in_the_wheel(wheel) -> None:
    archive, _ = wheel
    names = set(archive.namelist())
    expected = []
    for name in _source_files():
        top, _, rest = name.partition("/")
        if top in INSTALLED_AS and rest:
            expected.append(f"{INSTALLED_AS[top]}/{rest}")
    assert any(n.startswith("gensr_bench/alignment/") for n in expected)
    assert any(n.startswith("gensr_bench/templates/leaderboard/") for n in expected)
    assert any(n.endswith("model.pt") for n in expected)
    missing = sorted(set(expected) - names)
    assert not missing, f"files of the checkout missing from the wheel: {missing}"


def test_every_entry_point_names_a_module_in_the_wheel(wheel) -> None:
    archive, _ = wheel
    names = set(archive.namelist())
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(archive.read(entry_points).decode())
    targets = [value.split(":")[0] for value in parser["gensr_bench"].values()]
    assert "gensr_bench.cli.alignment_plugin" in targets
    absent = [
        t
        for t in targets
        if f"{t.replace('.', '/')}.py" not in names
        and f"{t.replace('.', '/')}/__init__.py" not in names
    ]
    assert not absent, f"entry points name modules the wheel lacks: {absent}"


def test_the_build_warns_of_no_package_left_out(wheel) -> None:
    _, log = wheel
    assert "absent from the `packages` configuration" not in log, log
