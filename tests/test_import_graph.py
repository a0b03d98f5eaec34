"""The s2sim modules import each other without cycles.

Every import counts, at module level and inside functions alike: a function-level import that closes a cycle
only hides it (the two modules still need each other). Imports under ``if TYPE_CHECKING:`` do not count (they
never run). Importing a submodule needs its parent package, which Python imports first; that edge is implicit
and not counted.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "s2sim"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file under ``package``."""
    out = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(module: str, path: Path, sources: set[str] | None = None) -> set[str]:
    """Absolute dotted names ``module`` imports anywhere in its source (``from a import b``: ``a.b`` and ``a``);
    ``sources`` collects the modules imported from (``a``, and ``import a.b``'s ``a.b``).
    """
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    sources = set() if sources is None else sources

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            sources.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            sources.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (a name is mapped to the module that defines it)."""
    files = module_files(package)

    def owner(name: str) -> str | None:
        if name in files:
            return name
        parent = name.rpartition(".")[0]
        # ``from pkg import attr``: the attribute lives in pkg; a compiled module (s2sim._core) has no .py file
        return parent if parent in files and not name.rpartition(".")[2].startswith("_") else None

    graph = {}
    for module, path in files.items():
        targets = {owner(name) for name in imported_names(module, path)}
        ancestors = {".".join(module.split(".")[:k]) for k in range(1, module.count(".") + 1)}
        graph[module] = {t for t in targets if t is not None and t != module and t not in ancestors}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n")
    (pkg / "d.py").write_text("from pkg import c\nfrom ._compiled import lib\n")
    graph = import_graph(pkg)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": set(), "pkg.d": {"pkg.c"}}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_every_import_of_an_s2sim_module_names_one_that_exists() -> None:
    """A function-level import moved with its function into a subpackage must be re-pointed (``.x`` -> ``..x``);
    it would otherwise fail only when the function runs.
    """
    files = module_files(PACKAGE)
    compiled = {f"s2sim.{p.name.split('.')[0]}" for p in PACKAGE.glob("_*.so")} | {"s2sim._core"}
    missing = []
    for module, path in files.items():
        sources: set[str] = set()
        imported_names(module, path, sources)
        missing += [f"{module} imports {s}" for s in sorted(sources)
                    if s.split(".")[0] == "s2sim" and s not in files and s not in compiled]
    assert not missing


def test_s2sim_has_no_import_cycles() -> None:
    graph = import_graph(PACKAGE)
    assert {"s2sim.snn", "s2sim.lowering", "s2sim.qat", "s2sim.quantize"} <= set(graph)
    assert "s2sim.lowering" in graph["s2sim.snn"]
    found = cycles(graph)
    if found:
        pytest.fail("import cycles among s2sim modules (move what both sides need into a module below them): " +
                    "; ".join(" <-> ".join(c) for c in found))
