"""Tests of gensr_bench.registry: indexing the register hooks, duplicates, unknown names.

Plugins are registered directly on a GensrPluginManager (no entry points), so the tests do not
depend on which first-party plugins are installed.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gensr_bench import hookimpl
from gensr_bench.errors import DuplicateNameError, PluginError, UnknownNameError
from gensr_bench.interfaces import Metric
from gensr_bench.plugins import DISABLE_ENV, PLUGINS_DIR_ENV, GensrPluginManager, get_plugin_manager
from gensr_bench.registry import Registries, Registry
from gensr_bench.testing import (
    EchoModel,
    LevelMetric,
    ListSuite,
    SnrMetric,
    write_plugin_file,
)


class PesqLike(LevelMetric):
    """Test metric named like a real one, for the suggestions in unknown-name messages."""

    name = "pesq"
    outputs = ("pesq_wb", "pesq_nb")


class OptInMetric(LevelMetric):
    """Test metric that is only used when asked for by name."""

    name = "opt-in"
    outputs = ("opt_in",)
    default = False


def plugin(**hooks: Callable[[], Any]) -> types.SimpleNamespace:
    """A plugin object whose attributes are the given hook implementations."""
    return types.SimpleNamespace(**{name: hookimpl(func) for name, func in hooks.items()})


def manager(**plugins: types.SimpleNamespace) -> GensrPluginManager:
    pm = GensrPluginManager()
    for name, obj in plugins.items():
        pm.register(obj, name=name)
    return pm


def metrics_plugin(*classes: type) -> types.SimpleNamespace:
    return plugin(gensr_register_metrics=lambda: list(classes))


@pytest.fixture
def registries() -> Registries:
    pm = manager(
        core=metrics_plugin(LevelMetric, SnrMetric, OptInMetric),
        extra=metrics_plugin(PesqLike),
        things=plugin(
            gensr_register_models=lambda: [EchoModel],
            gensr_register_suites=lambda: [ListSuite],
        ),
    )
    return Registries.from_plugins(pm)


def test_registries_index_classes_by_name_with_their_plugin(registries: Registries) -> None:
    assert registries.metrics.names() == ["opt-in", "pesq", "test-level", "test-snr"]
    assert registries.models.names() == ["test-echo"]
    assert registries.suites.names() == ["test-list"]
    assert registries.metrics.get("test-snr") is SnrMetric
    assert registries.metrics.entry("pesq").plugin == "extra"
    assert "test-level" in registries.metrics and "nope" not in registries.metrics
    assert len(registries.metrics) == 4
    assert [e.name for e in registries.metrics] == registries.metrics.names()


def test_create_passes_options(registries: Registries) -> None:
    model = registries.models.create("test-echo", gain=0.5)
    assert isinstance(model, EchoModel)
    assert model.options == {"gain": 0.5}


def test_an_empty_registry_says_none_are_registered() -> None:
    metrics = Registry.from_plugins(GensrPluginManager(), "metrics")
    assert len(metrics) == 0
    with pytest.raises(UnknownNameError, match=r"Available: \(none registered\)"):
        metrics.get("pesq")


def test_a_hook_answering_none_registers_nothing() -> None:
    pm = manager(quiet=plugin(gensr_register_metrics=lambda: None))
    assert Registry.from_plugins(pm, "metrics").names() == []


def test_duplicate_names_name_both_plugins() -> None:
    class OtherLevel(LevelMetric):
        """Another metric that claims the name test-level."""

    pm = manager(first=metrics_plugin(LevelMetric), second=metrics_plugin(OtherLevel))

    with pytest.raises(DuplicateNameError) as info:
        Registry.from_plugins(pm, "metrics")

    message = str(info.value)
    assert "metric name 'test-level' is registered twice" in message
    assert "'first'" in message and "'second'" in message
    assert "OtherLevel" in message and "LevelMetric" in message
    assert DISABLE_ENV in message  # says how to fix it
    assert isinstance(info.value, PluginError)


def test_the_same_class_from_two_plugins_is_a_duplicate_too() -> None:
    pm = manager(a=metrics_plugin(SnrMetric), b=metrics_plugin(SnrMetric))
    with pytest.raises(DuplicateNameError) as info:
        Registry.from_plugins(pm, "metrics")
    assert "plugin 'a'" in str(info.value) and "plugin 'b'" in str(info.value)


def test_unknown_name_suggests_close_matches_and_lists_available(registries: Registries) -> None:
    with pytest.raises(UnknownNameError) as info:
        registries.metrics.get("pesqq")
    assert str(info.value) == (
        "Unknown metric 'pesqq'. Did you mean: pesq? Available: opt-in, pesq, test-level, test-snr"
    )


def test_unknown_name_without_close_matches(registries: Registries) -> None:
    with pytest.raises(UnknownNameError) as info:
        registries.models.create("zzz")
    assert str(info.value) == "Unknown model 'zzz'. Available: test-echo"


@pytest.mark.parametrize(
    "returned",
    [
        [LevelMetric()],  # an instance, not a class
        ["test-level"],
        [EchoModel],  # a class of the wrong kind
        [object],
    ],
)
def test_a_hook_returning_something_other_than_metric_classes(returned: list[Any]) -> None:
    pm = manager(sloppy=plugin(gensr_register_metrics=lambda: returned))

    with pytest.raises(PluginError) as info:
        Registry.from_plugins(pm, "metrics")

    message = str(info.value)
    assert "'sloppy'" in message
    assert "gensr_register_metrics" in message
    assert "gensr_bench.interfaces.Metric" in message


@pytest.mark.parametrize("bad_name", ["Level", "two words", "-dash-first", "", None, 3])
def test_a_class_with_an_invalid_name(bad_name: object) -> None:
    bad = type("BadName", (LevelMetric,), {"name": bad_name})
    pm = manager(sloppy=metrics_plugin(bad))

    with pytest.raises(PluginError) as info:
        Registry.from_plugins(pm, "metrics")

    message = str(info.value)
    assert "BadName" in message and "'sloppy'" in message
    assert repr(bad_name) in message
    assert not isinstance(info.value, DuplicateNameError)


def test_a_class_without_a_name() -> None:
    class Nameless(Metric):
        """A metric that forgot its name."""

        def score_batch(self, restorations: Any, utterances: Any) -> list[dict[str, float]]:
            return []

    pm = manager(sloppy=metrics_plugin(Nameless))
    with pytest.raises(PluginError, match=r"Nameless.*invalid name None"):
        Registry.from_plugins(pm, "metrics")


def test_resolve_metrics_defaults_to_the_default_metrics(registries: Registries) -> None:
    assert registries.resolve_metrics(None) == [PesqLike, LevelMetric, SnrMetric]
    assert registries.resolve_metrics([]) == [PesqLike, LevelMetric, SnrMetric]


def test_resolve_metrics_by_metric_name_and_output_name(registries: Registries) -> None:
    assert registries.resolve_metrics(["opt-in"]) == [OptInMetric]
    assert registries.resolve_metrics(["pesq_nb"]) == [PesqLike]
    assert registries.resolve_metrics(["snr_db", "level_db"]) == [SnrMetric, LevelMetric]


def test_resolve_metrics_keeps_order_without_duplicates(registries: Registries) -> None:
    names = ["test-snr", "pesq_wb", "snr_db", "pesq", "pesq_nb", "opt-in", "test-snr"]
    assert registries.resolve_metrics(names) == [SnrMetric, PesqLike, OptInMetric]


def test_resolve_metrics_rejects_unknown_names(registries: Registries) -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown metric 'pesqq'\. Did you mean: pesq\?"):
        registries.resolve_metrics(["test-snr", "pesqq"])


def test_registries_from_a_local_plugin_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGINS_DIR_ENV, raising=False)
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    path = write_plugin_file(
        tmp_path,
        """
        from gensr_bench import hookimpl
        from gensr_bench.testing import EchoModel, LevelMetric, ToySuite

        @hookimpl
        def gensr_register_metrics():
            return [LevelMetric]

        @hookimpl
        def gensr_register_models():
            return [EchoModel]

        @hookimpl
        def gensr_register_suites():
            return [ToySuite]
        """,
    )

    registries = Registries.from_plugins(
        get_plugin_manager(plugins_dirs=[tmp_path], entry_points=False)
    )

    assert registries.metrics.entry("test-level").plugin == f"local.{path.stem}"
    assert registries.models.names() == ["test-echo"]
    assert registries.suites.names() == ["test-toy"]


def test_models_resolve_through_the_hook_and_plugins_suggest_other_names() -> None:
    """``gensr_resolve_model`` serves unregistered names; ``gensr_suggest_names`` adds a line."""

    def resolve(name: str) -> type | None:
        return type("Prefixed", (EchoModel,), {"name": name}) if name.startswith("pre:") else None

    pm = manager(
        things=plugin(gensr_register_models=lambda: [EchoModel]),
        prefixed=types.SimpleNamespace(
            gensr_resolve_model=hookimpl(resolve),
            gensr_suggest_names=hookimpl(
                lambda kind: ["pre:X (a prefixed model)"] if kind == "models" else []
            ),
        ),
    )
    models = Registry.from_plugins(pm, "models")
    assert models.get("pre:abc").name == "pre:abc"
    assert models.entry("pre:abc").plugin == "(resolved)"
    with pytest.raises(UnknownNameError) as info:
        models.get("test-ecko")
    assert str(info.value) == (
        "Unknown model 'test-ecko'. Did you mean: test-echo? Available: test-echo\n"
        "Also: pre:X (a prefixed model); see `gensr-bench ls models`"
    )
    suites = Registry.from_plugins(pm, "suites")
    assert suites.suggestions() == []
    with pytest.raises(UnknownNameError) as info:
        suites.get("pre:abc")  # a model resolver does not serve suites
    assert "\n" not in str(info.value)
