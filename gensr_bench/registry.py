"""Name -> class indexes built from the ``gensr_register_*`` hooks.

The registry refuses two classes with the same name (naming both plugins) and answers an
unknown name with close matches and the list of available names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pluggy

from gensr_bench.errors import DuplicateNameError, PluginError, UnknownNameError
from gensr_bench.interfaces import (
    Backend,
    Component,
    FeatureExtractor,
    Metric,
    Publisher,
    RestorationModel,
    Suite,
)

C = TypeVar("C", bound=Component)

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")

#: kind -> (hook name, base class, singular noun for messages)
KINDS: dict[str, tuple[str, type[Component], str]] = {
    "metrics": ("gensr_register_metrics", Metric, "metric"),
    "models": ("gensr_register_models", RestorationModel, "model"),
    "suites": ("gensr_register_suites", Suite, "suite"),
    "publishers": ("gensr_register_publishers", Publisher, "publisher"),
    "backends": ("gensr_register_backends", Backend, "backend"),
    "features": ("gensr_register_features", FeatureExtractor, "feature extractor"),
}

#: kind -> the hook that serves names no plugin registered (``hf:<id>``, ``outputs:DIR``)
RESOLVERS: dict[str, str] = {
    "suites": "gensr_resolve_suite",
    "models": "gensr_resolve_model",
}


@dataclass(frozen=True)
class Entry(Generic[C]):
    """One registered class and the plugin that registered it."""

    name: str
    cls: type[C]
    plugin: str


class Registry(Generic[C]):
    """Registered classes of one kind (metrics, models, suites, ...), by ``name``."""

    def __init__(
        self, kind: str, entries: dict[str, Entry[C]], pm: pluggy.PluginManager | None = None
    ) -> None:
        self.kind = kind
        self.noun = KINDS[kind][2]
        self._entries = dict(sorted(entries.items()))
        self._pm = pm

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager, kind: str) -> Registry[Any]:
        """Call every plugin's ``gensr_register_<kind>`` hook and index the answers."""
        hook_name, base, noun = KINDS[kind]
        entries: dict[str, Entry[Any]] = {}
        caller = getattr(pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            returned = impl.function()
            for item in returned or []:
                if not (isinstance(item, type) and issubclass(item, base)):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} returned {item!r} from {hook_name}; "
                        f"expected subclasses of {base.__module__}.{base.__name__}"
                    )
                name = getattr(item, "name", None)
                if not isinstance(name, str) or not NAME_PATTERN.match(name):
                    raise PluginError(
                        f"{noun} class {item.__qualname__} from plugin {impl.plugin_name!r} has "
                        f"an invalid name {name!r}; use lowercase words separated by '-'"
                    )
                if name in entries:
                    first = entries[name]
                    raise DuplicateNameError(
                        f"{noun} name {name!r} is registered twice: by plugin "
                        f"{first.plugin!r} ({first.cls.__module__}.{first.cls.__qualname__}) "
                        f"and by plugin {impl.plugin_name!r} "
                        f"({item.__module__}.{item.__qualname__}); disable one with "
                        "GENSR_BENCH_DISABLE_PLUGINS or rename the class"
                    )
                entries[name] = Entry(name=name, cls=item, plugin=impl.plugin_name)
        return cls(kind, entries, pm)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[C]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> Entry[C]:
        if name in self._entries:
            return self._entries[name]
        resolver = RESOLVERS.get(self.kind)
        if resolver is not None and self._pm is not None:
            resolved = getattr(self._pm.hook, resolver)(name=name)
            if resolved is not None:
                return Entry(name=name, cls=resolved, plugin="(resolved)")
        raise UnknownNameError(self.unknown_message(name))

    def get(self, name: str) -> type[C]:
        """The class registered as ``name``; UnknownNameError with suggestions otherwise."""
        return self.entry(name).cls

    def create(self, name: str, **options: Any) -> C:
        return self.get(name)(**options)

    def suggestions(self) -> list[str]:
        """Other ways to name a component of this kind, as plugins describe them
        (``gensr_suggest_names``): name forms they resolve, or components to try first."""
        if self._pm is None:
            return []
        answers = self._pm.hook.gensr_suggest_names(kind=self.kind)
        return [phrase for answer in answers for phrase in answer or []]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        available = ", ".join(self.names()) or "(none registered)"
        message = f"Unknown {self.noun} {name!r}.{hint} Available: {available}"
        suggestions = self.suggestions()
        if suggestions:
            message += f"\nAlso: {'; '.join(suggestions)}; see `gensr-bench ls {self.kind}`"
        return message


@dataclass(frozen=True)
class Registries:
    """The three registries, built once from one plugin manager."""

    metrics: Registry[Metric]
    models: Registry[RestorationModel]
    suites: Registry[Suite]

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> Registries:
        return cls(
            metrics=Registry.from_plugins(pm, "metrics"),
            models=Registry.from_plugins(pm, "models"),
            suites=Registry.from_plugins(pm, "suites"),
        )

    def resolve_metrics(self, names: list[str] | None) -> list[type[Metric]]:
        """Metric classes for ``names``, each a metric name or one of a metric's outputs
        (``dnsmos_ovrl`` selects ``dnsmos``); ``None`` selects every default metric."""
        if not names:
            return [e.cls for e in self.metrics if e.cls.default]
        by_output = {out: e.cls for e in self.metrics for out in e.cls.outputs}
        chosen: list[type[Metric]] = []
        for name in names:
            cls_ = (
                self.metrics.get(name)
                if name in self.metrics or name not in by_output
                else (by_output[name])
            )
            if cls_ not in chosen:
                chosen.append(cls_)
        return chosen
