"""The plugin contract: every hook gensr-bench calls, typed and documented.

Implementations may accept fewer arguments than a spec names (pluggy passes only those asked
for). ``gensr_register_*`` hooks return lists of classes; all answers are collected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from gensr_bench.interfaces import (
        Backend,
        FeatureExtractor,
        Metric,
        Publisher,
        RestorationModel,
        Suite,
    )
    from gensr_bench.records import RunResult

PROJECT = "gensr_bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gensr_register_metrics() -> list[type[Metric]]:
    """Called once when the metric registry is built; return the Metric subclasses this plugin
    provides. Every plugin's answer is collected; a name registered twice is an error."""
    raise NotImplementedError


@hookspec
def gensr_register_models() -> list[type[RestorationModel]]:
    """Called once when the model registry is built; return the RestorationModel subclasses
    this plugin provides. Every plugin's answer is collected; duplicate names are an error."""
    raise NotImplementedError


@hookspec
def gensr_register_suites() -> list[type[Suite]]:
    """Called once when the suite registry is built; return the Suite subclasses this plugin
    provides. Every plugin's answer is collected; duplicate names are an error."""
    raise NotImplementedError


@hookspec(firstresult=True)
def gensr_resolve_suite(name: str) -> type[Suite] | None:
    """Called when a suite name is not registered, with that name (e.g. ``hf:user/set:test``);
    return a Suite class that serves it, or None. The first non-None answer wins."""


@hookspec(firstresult=True)
def gensr_resolve_model(name: str) -> type[RestorationModel] | None:
    """Called when a model name is not registered, with that name (e.g. ``outputs:runs/x``);
    return a RestorationModel class that serves it, or None. The first non-None answer wins."""


@hookspec
def gensr_suggest_names(kind: str) -> list[str]:
    """Called when a name of ``kind`` (``"models"``, ``"suites"``, ...) is unknown, and by
    ``gensr-bench ls KIND``, with that kind; return short phrases naming other ways to name a
    component of that kind that this plugin serves (e.g. ``"outputs:DIR (files made
    elsewhere)"``), or an empty list. Every plugin's answer is collected, in plugin order."""
    raise NotImplementedError


@hookspec
def gensr_register_commands(cli: click.Group) -> None:
    """Called once when the command line starts, with the top-level click group; add
    commands to it with ``cli.add_command``. Returns nothing."""


@hookspec
def gensr_run_started(run: dict[str, Any]) -> None:
    """Called when an evaluation run starts, with its configuration and provenance
    (a plain dict, read-only by convention). Returns nothing."""


@hookspec
def gensr_run_finished(run: dict[str, Any], result: RunResult) -> None:
    """Called when an evaluation run has finished and its summary is written, with the run's
    configuration and its RunResult. Returns nothing."""


@hookspec
def gensr_register_publishers() -> list[type[Publisher]]:
    """Called when ``gensr-bench leaderboard build`` looks up its ``--publisher``; return the
    :class:`~gensr_bench.interfaces.Publisher` subclasses this plugin provides (each with a
    ``name`` and ``publish(site_dir, options)``). Every plugin's answer is collected; a name
    registered twice is an error."""
    raise NotImplementedError


@hookspec
def gensr_register_backends() -> list[type[Backend]]:
    """Called when a run looks up its ``--backend``; return the
    :class:`~gensr_bench.interfaces.Backend` subclasses this plugin provides (each with a
    ``name`` and ``map_batches``). Every plugin's answer is collected; a name registered twice
    is an error."""
    raise NotImplementedError


@hookspec
def gensr_register_features() -> list[type[FeatureExtractor]]:
    """Called when ``gensr-bench pairs vectors`` looks up its ``--features``; return the
    :class:`~gensr_bench.interfaces.FeatureExtractor` subclasses this plugin provides (each
    with a ``name``, a ``sample_rate`` and ``extract(samples)``). Every plugin's answer is
    collected; a name registered twice is an error."""
    raise NotImplementedError
