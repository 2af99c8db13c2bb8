"""The CLI toolkit: option parsing, tables, exit codes, the shared state, backend options."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.errors import (
    ConfigError,
)

if TYPE_CHECKING:
    from gensr_bench.plugins import GensrPluginManager
    from gensr_bench.registry import Registries, Registry

EXIT_ERROR = 1
EXIT_USAGE = 2
#: --seed of every command: refused at parse time outside numpy's legacy seed range (0 to
#: 2**32 - 1, also what torch and default_rng accept), so no seed fails after hours of work.
SEED = click.IntRange(min=0, max=2**32 - 1)


# -- helpers ----------------------------------------------------------------------------------
def parse_options(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse as JSON, else strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=what)
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def read_suite_config(path: str | None, names: Sequence[str]) -> dict[str, Any]:
    """Options for the suites ``names`` from a TOML or JSON file ``{suite: {option: value}}``.

    Later names win (a group's own entry, then the subset's); ``--suite-option`` wins over all.
    """
    if not path:
        return {}

    file = Path(path)
    try:
        text = file.read_text()
        if file.suffix.lower() == ".json":
            config = json.loads(text)
        else:
            import tomllib

            config = tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read suite config {file}: {exc}; expected TOML or JSON such as "
            '[dns]\nroot = "/data/DNS-Challenge"'
        ) from exc
    merged: dict[str, Any] = {}
    for name in names:
        section = config.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"suite config {file}: [{name}] must be a table of options")
        merged.update(section)
    return merged


def parse_metric_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for name_key, value in parse_options(pairs, "--metric-option").items():
        name, dot, key = name_key.partition(".")
        if not dot:
            raise click.BadParameter(
                f"expected METRIC.KEY=VALUE, got {name_key!r}", param_hint="--metric-option"
            )
        grouped.setdefault(name, {})[key] = value
    return grouped


def format_value(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_rows(summaries: Sequence[Any]) -> list[list[str]]:
    rows = []
    for s in summaries:
        ci = "—" if s.ci_low is None else f"[{format_value(s.ci_low)}, {format_value(s.ci_high)}]"
        arrow = "↑" if s.higher_is_better else "↓"
        rows.append([f"{s.output} {arrow}", format_value(s.mean), ci, f"{s.n_scored}/{s.n_total}"])
    return rows


def render_table(rows: list[list[str]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


class CliState:
    """What every command shares: the plugin manager and registries, built on first use."""

    def __init__(self, plugin_dirs: tuple[str, ...]) -> None:
        self.plugin_dirs = plugin_dirs
        #: The arguments ``main`` was called with (recorded in manifests); None outside it.
        self.argv: tuple[str, ...] | None = None
        self._pm: GensrPluginManager | None = None
        self._registries: Registries | None = None
        self._other: dict[str, Registry[Any]] = {}

    @property
    def pm(self) -> GensrPluginManager:
        if self._pm is None:
            from gensr_bench.plugins import get_plugin_manager

            self._pm = get_plugin_manager(self.plugin_dirs or None)
        return self._pm

    @property
    def registries(self) -> Registries:
        if self._registries is None:
            from gensr_bench.registry import Registries

            self._registries = Registries.from_plugins(self.pm)
        return self._registries

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of one kind (``registry.KINDS``: metrics, backends, features, ...),
        built once per command."""
        if kind in ("metrics", "models", "suites"):
            return getattr(self.registries, kind)
        if kind not in self._other:
            from gensr_bench.registry import Registry

            self._other[kind] = Registry.from_plugins(self.pm, kind)
        return self._other[kind]


pass_state = click.make_pass_decorator(CliState)


def backend_options(command: Any) -> Any:
    """``--backend`` and ``--backend-option``: where batches run (run, align)."""
    command = click.option(
        "--backend-option",
        multiple=True,
        metavar="KEY=VALUE",
        help="Option for the backend, e.g. address=auto for an existing Ray cluster.",
    )(command)
    return click.option(
        "--backend",
        default="local",
        show_default=True,
        help="Where batches run: local (this machine) or a registered backend such as ray.",
    )(command)


def make_backend(state: CliState, name: str, pairs: Sequence[str]) -> Any:
    """The registered backend ``name`` with its ``--backend-option`` values."""
    return state.registry("backends").create(name, **parse_options(pairs, "--backend-option"))


def device_option(command: Any) -> Any:
    """``--device``: where models, metrics and training run (run, align, train)."""
    from gensr_bench.devices import DEVICE_CHOICES

    return click.option(
        "--device",
        type=click.Choice(DEVICE_CHOICES),
        default="cpu",
        show_default=True,
        help="Where models, torch and ONNX metrics and training run: cpu, cuda, or auto "
        "(cuda when torch sees a GPU). Recorded in provenance; never part of the config.",
    )(command)
