"""Plugins stand alone: no first-party plugin imports another plugin's module.

The rule (DESIGN.md section 3): a *plugin* is a module under ``plugins/`` that registers
something, i.e. defines a ``@hookimpl`` function (``gensr_register_*`` and the other hooks) or
is named by a ``gensr_bench`` entry point; a package whose ``__init__`` registers (a folder per
model family, such as ``models/generative/``) is one plugin together with every module inside
it. Every other module is *shared*: it registers nothing and is a public helper any plugin may
use (``common/*``, ``metrics/_util.py``, ``suites/generated.py``...). A module may import

- any shared module, and
- modules of its own plugin (the modules of its package plugin, or itself),

and nothing else under ``plugins/``: a helper that two plugins need lives in a shared module,
never in a sibling plugin, so a plugin can be disabled, replaced or moved without breaking
another. Imports are read from the source with ``ast`` (those inside functions too), relative
imports resolved against the importing module's package.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = ROOT / "plugins"
PACKAGE = "gensr_bench_plugins"


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. gensr_bench_plugins.metrics.nisqa
    path: str  # relative to the plugins folder, for messages
    is_package: bool
    tree: ast.Module


def discover(plugins_dir: Path, package: str = PACKAGE) -> dict[str, Module]:
    """Every Python module under ``plugins_dir``, by its dotted name in ``package``."""
    modules = {}
    for path in sorted(plugins_dir.rglob("*.py")):
        parts = list(path.relative_to(plugins_dir).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join([package, *parts])
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        relative = path.relative_to(plugins_dir).as_posix()
        modules[name] = Module(name, relative, is_package, tree)
    return modules


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id == "hookimpl"
    return isinstance(target, ast.Attribute) and target.attr == "hookimpl"


def registers(module: Module) -> bool:
    """Whether ``module`` defines a ``@hookimpl`` function (at any depth)."""
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_hookimpl(decorator) for decorator in node.decorator_list)
        for node in ast.walk(module.tree)
    )


def entry_point_modules(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    """The modules named by ``gensr_bench`` entry points in ``pyproject``."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    entry_points = data.get("project", {}).get("entry-points", {}).get("gensr_bench", {})
    return {value.split(":")[0].strip() for value in entry_points.values()}


def plugin_owners(modules: dict[str, Module], entry_points: set[str]) -> dict[str, str]:
    """Module name -> the plugin it belongs to, for the modules that belong to one."""
    roots = {name for name, module in modules.items() if registers(module) or name in entry_points}
    owners = {}
    for name in modules:
        # The outermost registering package wins: its modules are one plugin.
        candidates = [root for root in roots if name == root or name.startswith(root + ".")]
        candidates = [root for root in candidates if root == name or modules[root].is_package]
        if candidates:
            owners[name] = min(candidates, key=len)
    return owners


def imported_modules(module: Module, modules: dict[str, Module]) -> set[str]:
    """The modules under the plugins package that ``module`` imports, resolved."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    found = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from pkg import name``: a submodule when one exists, else an attribute of pkg.
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # ``import a.b.c`` names the deepest known module.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module.name:
                found.add(target)
    return found


def violations(modules: dict[str, Module], entry_points: set[str]) -> list[str]:
    """One line per import of another plugin's module."""
    owners = plugin_owners(modules, entry_points)
    problems = []
    for name, module in sorted(modules.items()):
        for target in sorted(imported_modules(module, modules)):
            owner = owners.get(target)
            if owner is not None and owner != owners.get(name):
                problems.append(
                    f"plugins/{module.path}: {name} imports {target}, a module of the plugin "
                    f"{owner}; move what it needs into a shared module (one that registers "
                    f"nothing, e.g. {PACKAGE}.common) and import it from there"
                )
    return problems


def test_no_plugin_imports_another_plugin() -> None:
    modules = discover(PLUGINS_DIR)
    entry_points = entry_point_modules()
    assert f"{PACKAGE}.metrics.nisqa" in plugin_owners(modules, entry_points)
    assert violations(modules, entry_points) == []


def test_every_entry_point_names_a_module_that_registers() -> None:
    """The rule's two definitions of a plugin agree for the first-party plugins."""
    modules = discover(PLUGINS_DIR)
    for name in entry_point_modules():
        if name.startswith(PACKAGE + "."):
            assert name in modules, name
            assert registers(modules[name]), f"entry point {name} registers no hook"


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


HOOK = (
    "from gensr_bench import hookimpl\n\n@hookimpl\ndef gensr_register_metrics():\n    return []\n"
)


@pytest.mark.parametrize(
    ("importer", "statement", "allowed"),
    [
        # The old layout: log_mel took NISQA's filterbank from the nisqa plugin.
        ("features/log_mel.py", "from gensr_bench_plugins.metrics.nisqa import mel", False),
        ("metrics/wavlm.py", "from .nisqa import mel", False),
        ("metrics/wavlm.py", "from . import nisqa", False),
        ("features/log_mel.py", "import gensr_bench_plugins.metrics.nisqa", False),
        # A module inside a package plugin is that plugin: it may not reach into another.
        ("models/family/data.py", "from ...metrics.nisqa import mel", False),
        # Shared modules are fine, from anywhere; so are a package plugin's own modules.
        ("features/log_mel.py", "from gensr_bench_plugins.common.mel import mel", True),
        ("metrics/wavlm.py", "from ..common import mel", True),
        ("metrics/wavlm.py", "from ._util import check", True),
        ("models/family/__init__.py", "from .data import pairs", True),
        ("models/family/data.py", "from .nets import net", True),
    ],
)
def test_the_rule_on_a_synthetic_tree(
    tmp_path: Path, importer: str, statement: str, allowed: bool
) -> None:
    for relative in ("__init__.py", "common/__init__.py", "metrics/__init__.py"):
        _write(tmp_path, relative, "")
    _write(tmp_path, "common/mel.py", "def mel():\n    pass\n")
    _write(tmp_path, "metrics/_util.py", "def check():\n    pass\n")
    _write(tmp_path, "metrics/nisqa.py", "def mel():\n    pass\n\n" + HOOK)
    _write(tmp_path, "models/family/__init__.py", HOOK)
    _write(tmp_path, "models/family/nets.py", "def net():\n    pass\n")
    _write(tmp_path, "models/family/data.py", "def pairs():\n    pass\n")
    target = tmp_path / importer
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    body = HOOK if importer.endswith(("log_mel.py", "wavlm.py")) else ""
    _write(tmp_path, importer, f"{statement}\n{existing}{body}")
    problems = violations(discover(tmp_path), entry_points=set())
    assert (problems == []) == allowed, problems
