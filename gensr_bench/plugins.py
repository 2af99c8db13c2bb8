"""Building the plugin manager: hook specs, entry points, local plugin files, blocking.

Built-in plugins and third-party ones load the same way, through the entry-point group
``gensr_bench``. Local plugin files (``--plugins-dir`` or ``GENSR_BENCH_PLUGINS_DIR``) are
imported as modules named ``gensr_bench_local.<stem>``. ``GENSR_BENCH_DISABLE_PLUGINS`` (comma
separated plugin names) blocks plugins before they load.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pluggy

from gensr_bench import hookspecs
from gensr_bench.errors import PluginError
from gensr_bench.hookspecs import PROJECT

ENTRY_POINT_GROUP = "gensr_bench"
PLUGINS_DIR_ENV = "GENSR_BENCH_PLUGINS_DIR"
DISABLE_ENV = "GENSR_BENCH_DISABLE_PLUGINS"
LOCAL_MODULE_PREFIX = "gensr_bench_local"


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its name, where it comes from, its version and the hooks it implements."""

    name: str
    source: str
    version: str
    hooks: tuple[str, ...]


def plugin_dirs_from_env(explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """Explicit plugin directories, else those in ``GENSR_BENCH_PLUGINS_DIR`` (os.pathsep list)."""
    if explicit:
        return [Path(p) for p in explicit]
    raw = os.environ.get(PLUGINS_DIR_ENV, "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def disabled_from_env() -> list[str]:
    return [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]


def _local_package() -> types.ModuleType:
    """The package that holds every local plugin module, created on first use.

    Pickling a class looks its module up with ``__import__``, which imports the parent package
    first; without a ``gensr_bench_local`` in ``sys.modules`` a local plugin's metric or model
    could not be sent to worker processes. The package has no folder of its own (an empty
    ``__path__``): its modules are only ever loaded by :func:`load_local_module`.
    """
    package = sys.modules.get(LOCAL_MODULE_PREFIX)
    if package is None:
        package = types.ModuleType(LOCAL_MODULE_PREFIX, "Local plugin files (--plugins-dir).")
        package.__path__ = []
        sys.modules[LOCAL_MODULE_PREFIX] = package
    return package


def load_local_module(path: Path) -> types.ModuleType:
    """Import one local plugin file under a stable module name (so worker processes can too)."""
    module_name = f"{LOCAL_MODULE_PREFIX}.{path.stem}"
    package = _local_package()
    cached = sys.modules.get(module_name)
    # Reuse the module only when it came from this very file: another folder's file with the
    # same stem must not be answered with a stale module.
    if cached is not None and Path(getattr(cached, "__file__", "")).resolve() == path.resolve():
        return cached
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import local plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(
            f"local plugin {path} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    setattr(package, path.stem, module)
    return module


def import_local_module(module_name: str, dirs: Sequence[str | Path]) -> types.ModuleType:
    """The local plugin module ``gensr_bench_local.<stem>``, loaded from ``<stem>.py`` in the
    first of ``dirs`` that holds it unless this process has it already.

    Worker processes call this while unpickling the run's model and metrics, so only the files
    the run uses are imported there (a file blocked with GENSR_BENCH_DISABLE_PLUGINS never is).
    """
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return loaded
    prefix, _, stem = module_name.partition(".")
    if prefix != LOCAL_MODULE_PREFIX or not stem or "." in stem:
        raise PluginError(
            f"{module_name!r} is not a local plugin module ({LOCAL_MODULE_PREFIX}.<stem>)"
        )
    for directory in dirs:
        path = Path(directory) / f"{stem}.py"
        if path.is_file():
            return load_local_module(path)
    searched = ", ".join(str(d) for d in dirs) or "none"
    raise PluginError(
        f"a worker needs the local plugin {module_name!r} but no plugin folder holds {stem}.py "
        f"(searched: {searched}); pass the folder the plugin was loaded from to the run "
        f"(--plugins-dir, {PLUGINS_DIR_ENV} or RunOptions.plugin_dirs)"
    )


def _local_plugin_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise PluginError(
                f"plugins directory {directory} does not exist; pass an existing folder to "
                f"--plugins-dir or fix {PLUGINS_DIR_ENV}"
            )
        files.extend(p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_"))
    return files


def _explain_validation(exc: pluggy.PluginValidationError, pm: pluggy.PluginManager) -> PluginError:
    known = sorted(n for n in dir(hookspecs) if n.startswith("gensr_"))
    text = str(exc)
    words = [w.strip("'\"") for w in text.replace(",", " ").split()]
    unknown = [w for w in words if w.startswith("gensr_") and w not in known]
    hint = ""
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        if close:
            hint = f" Did you mean: {close[0]}?"
    # Name the plugin as GENSR_BENCH_DISABLE_PLUGINS knows it ("local.<stem>", the entry-point
    # name), not only as pluggy's module repr; a plugin refused at register() has no name yet.
    name = pm.get_name(exc.plugin)
    label = repr(name) if name else repr(exc.plugin)
    return PluginError(f"plugin {label} is invalid: {text}.{hint} Known hooks: {', '.join(known)}")


class GensrPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        #: plugin name -> (distribution name, version)
        self.distributions: dict[str, tuple[str, str]] = {}


def get_plugin_manager(
    plugins_dirs: Sequence[str | Path] | None = None,
    disabled: Sequence[str] | None = None,
    entry_points: bool = True,
) -> GensrPluginManager:
    """A plugin manager with every hook spec, entry-point plugins and local plugin files loaded.

    Raises PluginError when a plugin fails to import or implements a hook that does not exist
    (``check_pending``), naming the plugin and the nearest valid hook.
    """
    pm = GensrPluginManager()
    for name in [*disabled_from_env(), *(disabled or [])]:
        pm.set_blocked(name)
    try:
        if entry_points:
            _load_entry_points(pm)
        for path in _local_plugin_files(plugin_dirs_from_env(plugins_dirs)):
            name = f"local.{path.stem}"
            if pm.is_blocked(name):
                continue
            if pm.has_plugin(name):
                raise PluginError(
                    f"two local plugin files are named {path.name}: "
                    f"{getattr(pm.get_plugin(name), '__file__', '?')} and {path}; "
                    "rename one (local plugins are named local.<file stem>)"
                )
            pm.register(load_local_module(path), name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise _explain_validation(exc, pm) from exc
    return pm


def _load_entry_points(pm: GensrPluginManager) -> None:
    from importlib.metadata import distributions

    seen: set[str] = set()
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                continue
            seen.add(ep.name)
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} (entry point {ep.value} of {dist.metadata['name']}) "
                    f"failed to import: {type(exc).__name__}: {exc}. Reinstall it, or disable it "
                    f"with {DISABLE_ENV}={ep.name}"
                ) from exc
            pm.register(plugin, name=ep.name)
            pm.distributions[ep.name] = (dist.metadata["name"], dist.version)


def plugin_infos(pm: GensrPluginManager) -> list[PluginInfo]:
    """Every registered plugin with its distribution, version and implemented hooks."""
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        if name in pm.distributions:
            source, version = pm.distributions[name]
        else:
            source = getattr(plugin, "__file__", None) or "local"
            version = str(getattr(plugin, "__version__", "local"))
        infos.append(PluginInfo(name=name, source=source, version=version, hooks=hooks))
    return sorted(infos, key=lambda info: info.name)
