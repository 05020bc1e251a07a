"""The import graph keeps the layers: no edge outside the allowed table, no cycle between modules.

Every module of the package is parsed with `ast` (imports inside functions and under TYPE_CHECKING
count: a late import is still a dependency) and mapped to its top-level package. The layers, bottom
up: errors, cache; configs, isa; contract; sim and hw (side by side); cosim; fpga; compiler (which sees
neither engine: it receives them as parameters); dse; cli.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tensorweave

ROOT = "tensorweave"
BASE = {"errors", "cache", "configs", "isa", "contract"}
# package -> the packages it may import (its own is always allowed).
ALLOWED: dict[str, set[str]] = {
    ROOT: set(),                                   # __init__.py: the version, nothing else
    "errors": set(),
    "cache": {"errors"},                          # the one cache: root, layout, atomic writes, locks
    "configs": {"errors"},
    "isa": {"errors", "configs"},
    "contract": {"errors", "configs", "isa"},
    "sim": BASE,
    "hw": BASE,
    "cosim": BASE | {"sim", "hw"},
    "fpga": BASE | {"sim", "hw", "cosim"},
    "compiler": BASE,
    "dse": BASE | {"sim", "hw", "cosim", "fpga", "compiler"},
    "cli": BASE | {"sim", "hw", "cosim", "fpga", "compiler", "dse"},
}
# Single modules a lower layer may import from a higher package: the ALU records, which the
# ISA's opcode table and the config's op list are made from.
ALLOWED_MODULES: dict[str, set[str]] = {
    "configs": {"tensorweave.contract.alu"},
    "isa": {"tensorweave.contract.alu"},
}


def package_modules(root: Path, name: str = ROOT) -> dict[str, Path]:
    """Module name -> file for every module under the package folder `root` (sub-packages: folders with __init__.py)."""
    found = {}
    for path in sorted(root.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file() and not path.name.startswith("."):
            found.update(package_modules(path, f"{name}.{path.name}"))
        elif path.suffix == ".py":
            found[name if path.name == "__init__.py" else f"{name}.{path.stem}"] = path
    return found


def _imported(module: str, path: Path, node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            yield f"{base}.{alias.name}"   # a submodule, or a name in `base` (resolved below)


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module -> {imported module of the package: line of the first such import}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(module, path, node):
                if target != ROOT and not target.startswith(ROOT + "."):
                    continue
                while target not in modules and "." in target:   # a name in a module: the module
                    target = target.rsplit(".", 1)[0]
                if target != module:
                    edges.setdefault(target, node.lineno)  # type: ignore[attr-defined]
        graph[module] = edges
    return graph


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def forbidden_edges(graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> list[str]:
    """Every edge from one package to another that `ALLOWED` / `ALLOWED_MODULES` do not list."""
    found = []
    for module, edges in graph.items():
        source = layer(module)
        for target, line in edges.items():
            into = layer(target)
            if into == source or into in ALLOWED.get(source, set()) or target in ALLOWED_MODULES.get(source, set()):
                continue
            found.append(f"{source} -> {into}: {module} imports {target} ({modules[module].name}:{line})")
    return found


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
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
                    components.append(sorted(component))
    return components


MODULES = package_modules(Path(tensorweave.__file__).parent)
GRAPH = import_graph(MODULES)


def test_every_package_is_in_the_table():
    assert {layer(m) for m in MODULES} == set(ALLOWED)
    assert len(MODULES) > 100 and "tensorweave.sim.functional" in MODULES and "tensorweave.hw.top" in MODULES


def test_no_import_crosses_the_layers():
    bad = forbidden_edges(GRAPH, MODULES)
    assert bad == [], "imports outside the allowed table:\n" + "\n".join(bad)


def test_the_compiler_imports_no_engine():
    bad = [e for e in forbidden_edges(GRAPH, MODULES) if e.startswith("compiler -> ")]
    assert bad == [], "the compiler imports engines:\n" + "\n".join(bad)


def test_no_import_cycle_between_modules():
    found = cycles(GRAPH)
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_find_a_forbidden_edge_and_a_cycle(tmp_path):
    """The scanner itself: relative imports, imports inside functions, names vs submodules, cycles."""
    package = tmp_path / ROOT
    for folder, files in {"sim": {"a.py": "from ..cosim.b import run\n", "c.py": "import tensorweave.sim.d\n",
                                  "d.py": "def f():\n    from . import c\n"},
                          "cosim": {"b.py": "from ..sim import a\n"},
                          "configs": {"x.py": "from ..contract.alu import ADD\nfrom ..contract.engine import E\n"},
                          "contract": {"alu.py": "", "engine.py": ""}}.items():
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
        for name, text in files.items():
            (package / folder / name).write_text(text)
    (package / "__init__.py").write_text("")
    modules = package_modules(package)
    graph = import_graph(modules)
    assert graph["tensorweave.sim.a"] == {"tensorweave.cosim.b": 1}
    assert graph["tensorweave.cosim.b"] == {"tensorweave.sim.a": 1}
    assert graph["tensorweave.sim.d"] == {"tensorweave.sim.c": 2}
    assert [e.split(":")[0] for e in forbidden_edges(graph, modules)] == ["configs -> contract", "sim -> cosim"]
    assert sorted(cycles(graph)) == [["tensorweave.cosim.b", "tensorweave.sim.a"],
                                     ["tensorweave.sim.c", "tensorweave.sim.d"]]
