"""Tests of gensr_bench.plugins: local plugin files, blocking, hook validation, plugin_infos.

Managers are built with ``entry_points=False`` (plus local plugin files written to tmp_path), so
these tests do not depend on which first-party plugins are installed and complete.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gensr_bench import plugins
from gensr_bench.errors import PluginError
from gensr_bench.plugins import (
    DISABLE_ENV,
    PLUGINS_DIR_ENV,
    GensrPluginManager,
    get_plugin_manager,
    plugin_infos,
)
from gensr_bench.testing import (
    LevelMetric,
    Row,
    invoke_cli,
    readme_code_block,
    run_rows,
    write_plugin_file,
)

#: A plugin that registers LevelMetric and records every run it sees.
RECORDING_PLUGIN = """
    from gensr_bench import hookimpl
    from gensr_bench.testing import LevelMetric

    __version__ = "2.5"
    SEEN = []

    @hookimpl
    def gensr_register_metrics():
        return [LevelMetric]

    @hookimpl
    def gensr_run_started(run):
        SEEN.append(run["run_id"])
"""

MISSPELT_HOOK = """
    from gensr_bench import hookimpl

    @hookimpl
    def gensr_register_metric():
        return []
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin managers read the environment: start every test without those variables."""
    monkeypatch.delenv(PLUGINS_DIR_ENV, raising=False)
    monkeypatch.delenv(DISABLE_ENV, raising=False)


def local_names(pm: GensrPluginManager) -> list[str]:
    """Names of the registered local plugins (a blocked name is listed with ``None``)."""
    return sorted(
        name
        for name, plugin in pm.list_name_plugin()
        if name.startswith("local.") and plugin is not None
    )


def test_a_local_plugin_file_is_loaded_and_its_hooks_are_called(tmp_path: Path) -> None:
    path = write_plugin_file(tmp_path, RECORDING_PLUGIN)

    pm = get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)

    name = f"local.{path.stem}"
    assert local_names(pm) == [name]
    assert pm.hook.gensr_register_metrics() == [[LevelMetric]]
    pm.hook.gensr_run_started(run={"run_id": "r1"})
    module = pm.get_plugin(name)
    assert module.SEEN == ["r1"]
    assert sys.modules[f"gensr_bench_local.{path.stem}"] is module  # importable by workers


def test_files_starting_with_an_underscore_are_not_plugins(tmp_path: Path) -> None:
    write_plugin_file(tmp_path, "raise RuntimeError('helper, not a plugin')", stem="_helpers")
    kept = write_plugin_file(tmp_path, RECORDING_PLUGIN)
    (tmp_path / "notes.txt").write_text("not python")

    pm = get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)

    assert local_names(pm) == [f"local.{kept.stem}"]


def test_plugins_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_plugin_file(tmp_path / "a", RECORDING_PLUGIN)
    second = write_plugin_file(tmp_path / "b", RECORDING_PLUGIN)
    monkeypatch.setenv(PLUGINS_DIR_ENV, f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")

    pm = get_plugin_manager(entry_points=False)

    assert local_names(pm) == sorted([f"local.{first.stem}", f"local.{second.stem}"])


def test_explicit_plugins_dirs_override_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = write_plugin_file(tmp_path / "env", RECORDING_PLUGIN)
    explicit = write_plugin_file(tmp_path / "cli", RECORDING_PLUGIN)
    monkeypatch.setenv(PLUGINS_DIR_ENV, str(from_env.parent))

    pm = get_plugin_manager(plugins_dirs=[explicit.parent], entry_points=False)

    assert local_names(pm) == [f"local.{explicit.stem}"]


def test_disable_env_blocks_a_local_plugin_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = write_plugin_file(tmp_path, RECORDING_PLUGIN)
    kept = write_plugin_file(tmp_path, RECORDING_PLUGIN)
    # a broken file can be disabled too: it is blocked before it is imported
    broken = write_plugin_file(tmp_path, "import no_such_module_for_gensr_tests")
    monkeypatch.setenv(DISABLE_ENV, f" local.{blocked.stem} ,local.{broken.stem}")

    pm = get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)

    assert local_names(pm) == [f"local.{kept.stem}"]
    assert pm.is_blocked(f"local.{blocked.stem}")
    assert f"gensr_bench_local.{broken.stem}" not in sys.modules


def test_disabled_argument_blocks_a_plugin(tmp_path: Path) -> None:
    path = write_plugin_file(tmp_path, RECORDING_PLUGIN)

    pm = get_plugin_manager(
        plugins_dirs=[tmp_path], disabled=[f"local.{path.stem}"], entry_points=False
    )

    assert local_names(pm) == []
    assert pm.hook.gensr_register_metrics() == []


def test_a_misspelt_hook_names_the_plugin_and_the_nearest_hook(tmp_path: Path) -> None:
    path = write_plugin_file(tmp_path, MISSPELT_HOOK)

    with pytest.raises(PluginError) as info:
        get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)

    message = str(info.value)
    assert f"'local.{path.stem}'" in message
    assert "gensr_register_metric'" in message
    assert "Did you mean: gensr_register_metrics?" in message
    assert "Known hooks:" in message


def test_a_hook_with_arguments_the_spec_lacks_is_a_plugin_error(tmp_path: Path) -> None:
    write_plugin_file(
        tmp_path,
        """
        from gensr_bench import hookimpl

        @hookimpl
        def gensr_run_started(run, colour):
            pass
        """,
    )
    with pytest.raises(PluginError, match="colour"):
        get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)


def test_a_plugin_file_that_fails_to_import_names_the_file(tmp_path: Path) -> None:
    path = write_plugin_file(tmp_path, "import no_such_module_for_gensr_tests")

    with pytest.raises(PluginError) as info:
        get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)

    message = str(info.value)
    assert str(path) in message
    assert "ModuleNotFoundError" in message
    assert f"gensr_bench_local.{path.stem}" not in sys.modules  # a fixed file can load later


def test_a_missing_plugins_dir_raises(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(PluginError, match="does not exist") as info:
        get_plugin_manager(plugins_dirs=[missing], entry_points=False)
    assert str(missing) in str(info.value)


def test_two_local_files_with_the_same_name_are_refused(tmp_path: Path) -> None:
    first = write_plugin_file(tmp_path / "a", RECORDING_PLUGIN, stem="same_stem_plugin")
    second = write_plugin_file(tmp_path / "b", RECORDING_PLUGIN, stem="same_stem_plugin")

    with pytest.raises(PluginError, match=r"same_stem_plugin\.py") as info:
        get_plugin_manager(plugins_dirs=[first.parent, second.parent], entry_points=False)
    assert str(first) in str(info.value) and str(second) in str(info.value)


def test_a_file_with_a_known_stem_in_another_folder_is_not_answered_from_cache(
    tmp_path: Path,
) -> None:
    source = 'from gensr_bench import hookimpl\nWHERE = "{}"\n'
    first = write_plugin_file(tmp_path / "a", source.format("a"), stem="cached_stem_plugin")
    second = write_plugin_file(tmp_path / "b", source.format("b"), stem="cached_stem_plugin")

    pm_a = get_plugin_manager(plugins_dirs=[first.parent], entry_points=False)
    pm_b = get_plugin_manager(plugins_dirs=[second.parent], entry_points=False)
    pm_a_again = get_plugin_manager(plugins_dirs=[first.parent], entry_points=False)

    assert pm_a.get_plugin("local.cached_stem_plugin").WHERE == "a"
    assert pm_b.get_plugin("local.cached_stem_plugin").WHERE == "b"
    assert pm_a_again.get_plugin("local.cached_stem_plugin").WHERE == "a"


def test_plugin_infos_list_hooks_source_and_version(tmp_path: Path) -> None:
    path = write_plugin_file(tmp_path, RECORDING_PLUGIN)
    quiet = write_plugin_file(tmp_path, "X = 1\n")
    pm = get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)
    pm.distributions["dist.plugin"] = ("gensr-bench-extra", "0.3")
    pm.register(types.SimpleNamespace(), name="dist.plugin")

    infos = {info.name: info for info in plugin_infos(pm)}

    recording = infos[f"local.{path.stem}"]
    assert recording.hooks == ("gensr_register_metrics", "gensr_run_started")
    assert recording.source == str(path)
    assert recording.version == "2.5"
    assert infos[f"local.{quiet.stem}"].hooks == ()
    assert infos[f"local.{quiet.stem}"].version == "local"
    assert (infos["dist.plugin"].source, infos["dist.plugin"].version) == (
        "gensr-bench-extra",
        "0.3",
    )
    names = [info.name for info in plugin_infos(pm)]
    assert names == sorted(names)


# --- entry points, with a fake installed distribution --------------------------------------


class FakeDistribution:
    def __init__(self, name: str, version: str, entry_points: list[EntryPoint]) -> None:
        self.metadata = {"name": name}
        self.version = version
        self.entry_points = entry_points


def install_fake_distribution(
    monkeypatch: pytest.MonkeyPatch, **entry_points: str
) -> FakeDistribution:
    dist = FakeDistribution(
        "gensr-bench-fake",
        "9.1",
        [EntryPoint(name, value, plugins.ENTRY_POINT_GROUP) for name, value in entry_points.items()]
        + [EntryPoint("unrelated", "no_such_module_for_gensr_tests", "console_scripts")],
    )

    def distributions(**_: Any) -> list[FakeDistribution]:
        return [dist]

    monkeypatch.setattr("importlib.metadata.distributions", distributions)
    return dist


def test_entry_point_plugins_are_registered_with_their_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_fake_distribution(monkeypatch, **{"fake.testing": "gensr_bench.testing"})

    pm = get_plugin_manager()

    assert pm.get_plugin("fake.testing") is sys.modules["gensr_bench.testing"]
    info = {i.name: i for i in plugin_infos(pm)}["fake.testing"]
    assert (info.source, info.version) == ("gensr-bench-fake", "9.1")


def test_an_entry_point_that_fails_to_import_says_how_to_disable_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_fake_distribution(monkeypatch, **{"fake.broken": "no_such_module_for_gensr_tests"})

    with pytest.raises(PluginError) as info:
        get_plugin_manager()

    message = str(info.value)
    assert "'fake.broken'" in message
    assert "gensr-bench-fake" in message
    assert f"{DISABLE_ENV}=fake.broken" in message


def test_a_disabled_entry_point_is_never_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_distribution(monkeypatch, **{"fake.broken": "no_such_module_for_gensr_tests"})
    monkeypatch.setenv(DISABLE_ENV, "fake.broken")

    pm = get_plugin_manager()

    assert pm.get_plugin("fake.broken") is None
    assert pm.is_blocked("fake.broken")


# --- local plugins in worker processes -----------------------------------------------------

README = Path(__file__).parents[1] / "README.md"
TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"

#: A local model plugin: a class only ``gensr_bench_local.<stem>`` defines.
LOCAL_MODEL = """
    import numpy as np
    from gensr_bench import RestorationModel, hookimpl
    from gensr_bench.records import Audio, Restoration

    class HalfEcho(RestorationModel):
        name, paradigm, sample_rate = "test-local-half-echo", "dsp", 16000

        def restore(self, batch, seed):
            return [
                Restoration(u.id, Audio(u.degraded.samples * np.float32(0.5), 16000), self.name)
                for u in batch
            ]

    @hookimpl
    def gensr_register_models():
        return [HalfEcho]
"""


def readme_metric(directory: Path) -> Path:
    """The README's third-party metric, unchanged, as a local plugin file in ``directory``."""
    source = readme_code_block(README, "# gensr_bench_loudness/__init__.py")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "loudness.py"
    path.write_text(source)
    return path


def toy_run(out: Path, workers: int, model: str, dirs: Sequence[Path] = ()) -> list[Row]:
    """``gensr-bench run`` of ``model`` on 4 toy utterances with the README metric; its rows."""
    args = [arg for d in dirs for arg in ("--plugins-dir", str(d))]
    args += ["run", "--suite", "test-toy", "--suite-option", "size=4", "--model", model]
    args += ["--metrics", "loudness-gap,test-level", "--no-cache", "--batch-size", "1"]
    result = invoke_cli([*args, "--workers", str(workers), "--out", str(out)])
    assert result.exit_code == 0, result.stdout + result.stderr
    return run_rows(out)


def assert_scored(rows: list[Row]) -> None:
    assert [row[0] for row in rows] == [f"toy-{i:03d}" for i in range(4)]
    for _, _, scores, errors, _ in rows:
        assert errors == {}
        assert isinstance(scores["loudness_gap_db"], float)
        assert isinstance(scores["level_db"], float)


def test_the_readme_metric_as_a_local_plugin_runs_on_two_workers(tmp_path: Path) -> None:
    plugin = readme_metric(tmp_path / "plugins")
    dirs = [TOY_PLUGINS, plugin.parent]

    one = toy_run(tmp_path / "one", 1, "test-echo", dirs)
    two = toy_run(tmp_path / "two", 2, "test-echo", dirs)

    assert_scored(two)
    assert two == one
    assert len({row[2]["loudness_gap_db"] for row in two}) > 1  # a real score per utterance


def test_a_local_model_plugin_runs_on_two_workers(tmp_path: Path) -> None:
    readme_metric(tmp_path / "metric")
    write_plugin_file(tmp_path / "model", LOCAL_MODEL)
    # relative folders: workers need not start where the caller stands
    dirs = [TOY_PLUGINS, Path(os.path.relpath(tmp_path / "metric")), tmp_path / "model"]

    one = toy_run(tmp_path / "one", 1, "test-local-half-echo", dirs)
    two = toy_run(tmp_path / "two", 2, "test-local-half-echo", dirs)
    echo = toy_run(tmp_path / "echo", 1, "test-echo", dirs)

    assert_scored(two)
    assert two == one
    halved = [row[2]["level_db"] for row in two]
    assert halved == pytest.approx([row[2]["level_db"] - 20 * np.log10(2) for row in echo])


def test_local_plugins_from_the_environment_run_on_two_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = readme_metric(tmp_path / "metric")
    model = write_plugin_file(tmp_path / "model", LOCAL_MODEL)
    # a broken file the run does not use, blocked as the README says, stays unimported
    broken = write_plugin_file(tmp_path / "metric", "raise RuntimeError('never imported')")
    dirs = [TOY_PLUGINS, plugin.parent, model.parent]
    monkeypatch.setenv(PLUGINS_DIR_ENV, os.pathsep.join(map(str, dirs)))
    monkeypatch.setenv(DISABLE_ENV, f"local.{broken.stem}")

    one = toy_run(tmp_path / "one", 1, "test-local-half-echo")
    two = toy_run(tmp_path / "two", 2, "test-local-half-echo")

    assert_scored(two)
    assert two == one


def test_a_worker_missing_a_local_plugin_says_which_folder_to_pass(tmp_path: Path) -> None:
    module = plugins.load_local_module(write_plugin_file(tmp_path, LOCAL_MODEL))
    name = module.__name__

    with pytest.raises(PluginError) as info:
        plugins.import_local_module(f"{name}_gone", [tmp_path])

    assert f"{name.rpartition('.')[2]}_gone.py" in str(info.value)
    assert str(tmp_path) in str(info.value)
    assert "--plugins-dir" in str(info.value)
    assert plugins.import_local_module(name, []) is module  # loaded already: no folder needed


def test_the_readme_model_plugin_runs_as_a_local_plugin(tmp_path: Path) -> None:
    """The README's model plugin (`Evaluate your own model`), unchanged, halves the input."""
    source = readme_code_block(
        README, "# halve.py: a model plugin (gensr-bench --plugins-dir DIR run --model halve ...)"
    )
    plugin = write_plugin_file(tmp_path / "plugins", source)
    levels = {}
    for model in ("test-echo", "halve"):
        args = ["--plugins-dir", str(TOY_PLUGINS), "--plugins-dir", str(plugin.parent), "run"]
        args += ["--suite", "test-toy", "--suite-option", "size=2", "--model", model]
        args += ["--metrics", "test-level", "--workers", "1", "--no-cache"]
        result = invoke_cli([*args, "--out", str(tmp_path / model)])
        assert result.exit_code == 0, result.stdout + result.stderr
        levels[model] = [row[2]["level_db"] for row in run_rows(tmp_path / model)]
    drops = [h - e for h, e in zip(levels["halve"], levels["test-echo"], strict=True)]
    assert drops == pytest.approx([-6.0206] * 2, abs=1e-3)
