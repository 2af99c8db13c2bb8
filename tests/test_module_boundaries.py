"""Module boundaries of ``gensr_bench`` and ``plugins`` (gensr_bench_plugins), DESIGN section 3.

* A name that starts with one underscore is private to the module that defines it: no
  ``from X import _name`` from another module (dunder names such as ``__version__`` are fine).
  A helper that several modules need is public, under a name without the underscore.
* ``gensr_bench.cli`` is the face: nothing outside ``gensr_bench/cli/`` imports it, so the
  libraries never depend on the command line.

Every import statement counts, wherever it is: at module level, under ``if TYPE_CHECKING:``
and inside functions. Relative imports are resolved against the importing module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"gensr_bench": REPO / "gensr_bench", "gensr_bench_plugins": REPO / "plugins"}

#: Known crossings still to fix (none left); the test fails on any crossing not listed here.
PENDING_PRIVATE_IMPORTS: set[tuple[str, str]] = set()
#: ``gensr_bench.testing`` is the kit plugin authors test with; its command-line helpers
#: (runs.py) run
#: ``gensr_bench.cli.main`` (inside functions) the way a user would.
CLI_IMPORT_ALLOWED = {"gensr_bench.testing.runs"}


def modules(roots: dict[str, Path]) -> Iterator[tuple[str, Path]]:
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            yield ".".join([package, *parts]), path


def imports(module: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """Each import in ``path`` as (the module imported from, the names it imports).

    ``import a.b`` gives ``("a.b", [])``; ``from a import b, c`` gives ``("a", ["b", "c"])``.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([source] if source else []))
            yield source, [alias.name for alias in node.names]


def private_imports(roots: dict[str, Path]) -> set[tuple[str, str]]:
    """(importing module, ``source.name``) for each single-underscore name imported across."""
    found = set()
    for module, path in modules(roots):
        for source, names in imports(module, path):
            for name in names:
                if name.startswith("_") and not name.startswith("__") and source != module:
                    found.add((module, f"{source}.{name}"))
    return found


def imports_of(package: str, roots: dict[str, Path]) -> set[tuple[str, str]]:
    """(importing module, what it imports) for each import of ``package`` from outside it."""
    inside = package.split(".")
    found = set()
    for module, path in modules(roots):
        if module.split(".")[: len(inside)] == inside:
            continue
        for source, names in imports(module, path):
            targets = [source, *(f"{source}.{name}" for name in names)]
            for target in targets:
                if target.split(".")[: len(inside)] == inside:
                    found.add((module, target))
                    break
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    crossings = private_imports(ROOTS)
    unexpected = sorted(crossings - PENDING_PRIVATE_IMPORTS)
    assert not unexpected, "private names imported across modules (make them public): " + (
        ", ".join(f"{module} imports {name}" for module, name in unexpected)
    )


def test_nothing_outside_the_cli_package_imports_it() -> None:
    outside = imports_of("gensr_bench.cli", ROOTS)
    unexpected = sorted((m, t) for m, t in outside if m not in CLI_IMPORT_ALLOWED)
    assert not unexpected, "gensr_bench.cli imported from outside gensr_bench/cli/: " + (
        ", ".join(f"{module} imports {target}" for module, target in unexpected)
    )
    # The alignment commands are registered from inside the cli package.
    assert not any(m.startswith("gensr_bench.alignment") for m, _ in outside)


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return {"pkg": root}


def test_a_private_import_across_modules_is_found(tmp_path: Path) -> None:
    roots = write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "from pkg.a import __version__, public\n",
            "a.py": "__version__ = '1'\ndef public(): ...\ndef _private(): ...\n",
            "b.py": "def f():\n    from .a import _private\n",
            "sub/__init__.py": "",
            "sub/c.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from ..a import _private as p\n",
        },
    )
    assert private_imports(roots) == {
        ("pkg.b", "pkg.a._private"),
        ("pkg.sub.c", "pkg.a._private"),
    }
    (tmp_path / "pkg" / "b.py").write_text("from .a import public\n")
    (tmp_path / "pkg" / "sub" / "c.py").write_text("")
    assert private_imports(roots) == set()


def test_an_import_of_the_cli_from_outside_is_found(tmp_path: Path) -> None:
    roots = write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "cli/__init__.py": "from pkg.cli.toolkit import table\n",
            "cli/toolkit.py": "def table(): ...\n",
            "lib/__init__.py": "",
            "lib/x.py": "def f():\n    from ..cli import toolkit\n",
            "lib/y.py": "import pkg.cli.toolkit\n",
            "lib/z.py": "from pkg import cli\n",
            "lib/ok.py": "from pkg import lib\nimport pkg.client\n",
        },
    )
    assert imports_of("pkg.cli", roots) == {
        ("pkg.lib.x", "pkg.cli"),
        ("pkg.lib.y", "pkg.cli.toolkit"),
        ("pkg.lib.z", "pkg.cli"),
    }
