"""The package's layering, counted: no import cycle, no import of a layer above.

The layer order is the one written in bnnbench's package docstring ("Layers, lowest first:");
run `python tests/test_layers.py` to print every offending import, or let pytest fail on one.
Every static import counts, also one inside a function: a lazy import still ties the modules.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bnnbench"


def layer_order() -> dict[str, int]:
    """{sub-package or top-level module: its layer}, parsed from the package docstring."""
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    line = re.search(r"Layers, lowest first:\s*(.+?)(?:\n\n|$)", doc, re.S).group(1)
    return {name.strip(): rank for rank, group in enumerate(" ".join(line.split()).split(" < "))
            for name in group.split(",")}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["bnnbench", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The bnnbench modules `name` imports (a name imported from a package counts as that
    package's module when there is one)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "bnnbench"}
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".") if is_package else name.split(".")[:-1]
            if node.level:
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "bnnbench":
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                out.add(full if full in known else source)
    return {m for m in out if m in known and m != name}


def layer_of(module: str, order: dict[str, int]) -> tuple[int, str]:
    """(layer, group): the facade `bnnbench` is above everything, as are the built-ins."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__", "binarizers"):
        return len(order), parts[-1]
    return order[parts[1]], parts[1]


def upward_imports() -> list[str]:
    order, found = layer_order(), modules()
    bad = []
    for name, path in sorted(found.items()):
        here, group = layer_of(name, order)
        for target in sorted(imports(name, path, set(found))):
            there, other = layer_of(target, order)
            if there > here or (there == here and other != group):
                bad.append(f"{name} (layer {here}, {group}) imports {target} (layer {there}, "
                           f"{other})")
    return bad


def cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    found = modules()
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    order = layer_order()
    tops = {name.split(".")[1] for name in modules() if name.count(".") >= 1}
    assert tops - set(order) - {"__main__", "binarizers"} == set()


def test_no_import_points_up_a_layer():
    assert upward_imports() == []


def test_no_import_cycle():
    assert cycles() == []


if __name__ == "__main__":
    problems = upward_imports()
    print("\n".join(problems) or "no import points up a layer")
    groups = cycles()
    print("\n".join(" <-> ".join(g) for g in groups) or "no import cycle")
    sys.exit(1 if problems or groups else 0)
