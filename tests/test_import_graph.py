"""No import cycle among the modules of ``gensr_bench`` and ``plugins`` (gensr_bench_plugins).

The graph has an edge from a module to every first-party module it imports at import time:
module-level ``import`` / ``from ... import`` statements, including those under a module-level
``if`` or ``try``, but not those under ``if TYPE_CHECKING:`` (never executed) nor those inside
functions (run on first use, after every module has loaded). ``from package import name``
points at the submodule ``package.name`` when there is one, else at ``package``. Relative
imports are resolved. A cycle would make the import order matter (a half-initialised module
seen by its importer); the test names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"gensr_bench": REPO / "gensr_bench", "gensr_bench_plugins": REPO / "plugins"}


def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    found = {}
    for package, root in roots.items():
        for path in root.rglob("*.py"):
            parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements that run at import, descending into if/try (not TYPE_CHECKING)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                out += _statements(node.body) + _statements(node.orelse)
        elif isinstance(node, ast.Try):
            out += _statements(node.body) + _statements(node.orelse)
            for handler in node.handlers:
                out += _statements(handler.body)
        else:
            out.append(node)
    return out


def import_graph(roots: dict[str, Path]) -> dict[str, set[str]]:
    modules = module_files(roots)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _statements(ast.parse(path.read_text("utf-8")).body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            for target in targets:
                resolved = known(target)
                if resolved and resolved != module:
                    edges.add(resolved)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_project_has_no_import_cycle() -> None:
    graph = import_graph(ROOTS)
    assert "gensr_bench.runner" in graph and "gensr_bench_plugins.suites.piper" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_and_type_checking_imports_are_not_edges(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nfrom . import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
        "def f():\n    from pkg import a\n"
    )
    graph = import_graph({"pkg": pkg})
    assert graph["pkg.d"] == set()
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("def g():\n    import pkg.a\n")
    assert find_cycle(import_graph({"pkg": pkg})) is None
