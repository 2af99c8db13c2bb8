"""Component option handling: every registered component refuses an option it does not take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gensr_bench.errors import ConfigError, UnknownOptionError
from gensr_bench.interfaces import Component, Metric, item_seed
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.registry import KINDS, Registry
from gensr_bench.testing import invoke_cli

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"


def _registered() -> list[tuple[str, type[Component]]]:
    manager = get_plugin_manager()
    return [(kind, entry.cls) for kind in KINDS for entry in Registry.from_plugins(manager, kind)]


REGISTERED = _registered()


def test_the_registry_holds_every_kind_of_built_in_component() -> None:
    kinds = {kind for kind, _ in REGISTERED}
    assert kinds == set(KINDS)
    names = {cls.name for _, cls in REGISTERED}
    assert {"pesq", "stoi", "estoi", "dnsmos", "wiener", "identity", "synth-gsr", "local"} <= names


@pytest.mark.parametrize(
    "kind, cls", REGISTERED, ids=[f"{kind}:{cls.name}" for kind, cls in REGISTERED]
)
def test_every_registered_component_refuses_an_unknown_option(
    kind: str, cls: type[Component]
) -> None:
    with pytest.raises(UnknownOptionError) as raised:
        cls(bogus=1)
    message = str(raised.value)
    assert "bogus" in message and repr(cls.name) in message


def test_a_component_that_declares_nothing_takes_no_option() -> None:
    """The default: a new component cannot forget to refuse what it does not read."""

    class Quiet(Metric):
        """Declares no options."""

        name = "quiet"
        outputs = ("quiet",)

        def score_batch(self, restorations: Any, utterances: Any) -> list[dict[str, float]]:
            return [{"quiet": 0.5} for _ in restorations]

    assert Quiet().options == {}
    with pytest.raises(
        ConfigError, match=r"'quiet' has no option treshold; available options: \(none\)"
    ):
        Quiet(treshold=0.5)


def test_the_message_suggests_the_closest_option() -> None:
    class Tuned(Metric):
        """Declares one option."""

        name = "tuned"
        outputs = ("tuned",)
        accepted_options = ("threshold",)

        def score_batch(self, restorations: Any, utterances: Any) -> list[dict[str, float]]:
            return [{"tuned": 0.5} for _ in restorations]

    assert Tuned(threshold=0.2).options == {"threshold": 0.2}
    with pytest.raises(
        ConfigError,
        match=r"'tuned' has no option treshold; available options: threshold "
        r"\(did you mean threshold\?\)",
    ):
        Tuned(treshold=0.2)


@pytest.mark.parametrize(
    "kind, name, options",
    [
        ("metrics", "dnsmos", {"threads": 2}),
        ("metrics", "nisqa", {"threads": 1}),
        ("metrics", "wer", {"reference_text": "asr"}),
        ("metrics", "cer", {"reference_text": "transcript"}),
        ("metrics", "si-sdr", {"zero_mean": True, "eps": 1e-8}),
        ("metrics", "lsd", {"n_fft": 1024, "hop_length": 256, "eps": 1e-9}),
        ("metrics", "speechbertscore", {"model": "/path/to/dir", "layer": 2, "revision": "main"}),
        ("metrics", "speaker-sim-wavlm", {"model": "/path/to/dir", "revision": "main"}),
        ("models", "wiener", {"gain_rule": "wiener", "gain_floor_db": -15}),
        ("models", "fm-small", {"steps": 2, "smooth": 13, "gl_iterations": 1}),
        ("models", "ar-small", {"temperature": 0.4, "top_p": 0.5}),
        ("suites", "synth-gsr", {"size": 2, "seed": 1, "cache": False}),
        ("features", "log-mel", {"n_mels": 32, "with_std": True}),
        ("backends", "ray", {"address": "auto", "num_cpus": 1}),
    ],
)
def test_the_documented_options_are_still_accepted(
    kind: str, name: str, options: dict[str, Any]
) -> None:
    cls = dict((c.name, c) for k, c in REGISTERED if k == kind)[name]
    assert cls(**options).options == options


@pytest.mark.parametrize(
    "metric, option", [("pesq", "bogus"), ("stoi", "bogus"), ("estoi", "x"), ("dnsmos", "thread")]
)
def test_run_with_an_unknown_metric_option_is_a_usage_error(
    tmp_path: Path, metric: str, option: str
) -> None:
    args = ["--plugins-dir", str(TOY_PLUGINS), "run", "--suite", "test-toy", "--suite-option"]
    args += ["size=2", "--model", "test-echo", "--metrics", metric, "--workers", "1"]
    args += ["--metric-option", f"{metric}.{option}=1", "--out", str(tmp_path / "run")]
    result = invoke_cli(args)
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert f"{metric!r} has no option {option}" in output
    assert not (tmp_path / "run" / "run.sqlite").exists()  # refused before any work


@pytest.mark.parametrize(
    "flag, value, component",
    [
        ("--model-option", "bogus=1", "test-echo"),
        ("--suite-option", "bogus=1", "test-toy"),
        ("--model-option", "gain_rulez=wiener", "wiener"),
    ],
)
def test_run_with_an_unknown_model_or_suite_option_is_a_usage_error(
    tmp_path: Path, flag: str, value: str, component: str
) -> None:
    model = "wiener" if component == "wiener" else "test-echo"
    args = ["--plugins-dir", str(TOY_PLUGINS), "run", "--suite", "test-toy", "--suite-option"]
    args += ["size=2", "--model", model, "--metrics", "si-sdr", "--workers", "1"]
    args += [flag, value, "--out", str(tmp_path / "run")]
    result = invoke_cli(args)
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert value.split("=")[0] in output and component in output and flag in output
    assert not (tmp_path / "run" / "run.sqlite").exists()  # refused before any work


def test_item_seed_independent_of_batching():
    assert item_seed(3, "a") == item_seed(3, "a")
    assert item_seed(3, "a") != item_seed(4, "a")
    assert item_seed(3, "a") != item_seed(3, "b")
