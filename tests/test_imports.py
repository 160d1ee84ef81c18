"""The project's modules import each other without a cycle, counting the imports inside functions too.

A cycle hidden in a function body works until someone moves the import to the top of the file; this walks every
`import` / `from ... import` statement under `hiera/` (module level and nested, relative ones resolved), builds the
module graph, and fails naming each cycle. It reads the source only (nothing is imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hiera"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its `__init__.py`)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def project_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules (`hiera.a.b.f` -> `hiera.a.b` when f is a name)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # `from hiera.x import y`: y may be a submodule (hiera.x.y) or a name in hiera.x
                targets = [f"{base}.{a.name}" for a in node.names] or [base]
            for target in targets:
                if target.split(".")[0] != "hiera":
                    continue
                found = project_module(target, modules)
                if found and found != module:
                    graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_finds_a_planted_cycle():
    """The detector itself: a three-module ring and a self-contained pair are found, a chain is not a cycle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["d", "e"]]


def test_the_graph_sees_imports_inside_functions():
    """`hiera/train/loop.py` imports `hiera.mae` only inside a function body: the edge is in the graph."""
    graph = import_graph()
    assert "hiera.mae" in graph["hiera.train.loop"]
    assert "hiera.train.data" in graph["hiera.train.loop"]
    assert "hiera.data.real" in graph["hiera.train.data"]


def test_hiera_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (module sets that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )
