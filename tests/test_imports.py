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
    """`hiera/bench/gpu_pass.py` imports `hiera.model.mae` only inside a function body: the edge is in the graph."""
    graph = import_graph()
    assert "hiera.model.mae" in graph["hiera.bench.gpu_pass"]
    assert "hiera.train.data" in graph["hiera.train.loop"]
    assert "hiera.data.real" in graph["hiera.train.data"]


# Modules allowed to import project modules inside a function, and why. Everything else imports at the top, so
# a module's dependencies are read off its first lines.
NESTED_ALLOWED = {
    "hiera.bench.gpu_pass": "a script for a bare GPU machine: each step imports what it runs, so one failing import "
    "fails that step and the others still measure",
    "hiera.demo": "matplotlib and pandas load only when the demo reports, not with the CLI",
    "hiera.cli.analysis": "matplotlib and pandas load only for `tables` and `plots`",
    "hiera.bench.official": "imports the official package (also named `hiera`) in its own interpreter",
    "hiera.launch.submit": "submitit only where jobs are made: the CLI also runs where it is not installed (the GPU "
    "machine of hiera.bench.gpu_pass, tests/test_gpu_pass.py)",
}


def nested_imports() -> dict[str, list[int]]:
    """Module -> line numbers of `hiera` imports inside a function body."""
    out: dict[str, list[int]] = {}
    for module, path in module_files().items():
        for fn in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                if any(n.split(".")[0] == "hiera" for n in names):
                    out.setdefault(module, []).append(node.lineno)
    return out


def test_project_imports_are_at_module_top_except_where_a_reason_is_given():
    found = {m: lines for m, lines in nested_imports().items() if m not in NESTED_ALLOWED}
    assert not found, f"imports of hiera modules inside functions (move them to the top): {found}"
    assert set(nested_imports()) >= {"hiera.bench.gpu_pass", "hiera.demo"}  # the walker sees nested imports at all


def test_hiera_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (module sets that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


# The layers, bottom up: a module may import its own layer and those below it, never one above.
LAYERS = {
    "hiera.model": {"hiera.env", "hiera.files", "hiera.model"},
    "hiera.data": {"hiera.env", "hiera.files", "hiera.model", "hiera.recipes", "hiera.data"},
    "hiera.records": {
        "hiera.env",
        "hiera.files",
        "hiera.model",
        "hiera.recipes",
        "hiera.train.config",
        "hiera.records",
    },
}


def test_lower_layers_never_import_upper_ones():
    graph = import_graph()
    wrong = []
    for module, targets in graph.items():
        for layer, allowed in LAYERS.items():
            if module == layer or module.startswith(layer + "."):
                wrong += [
                    f"{module} -> {t}" for t in targets if not any(t == a or t.startswith(a + ".") for a in allowed)
                ]
    assert not wrong, "imports against the layering (model < data < train; records read by analysis):\n" + "\n".join(
        wrong
    )
