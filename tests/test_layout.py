"""The package's shape: short modules, algorithm files apart from their engine, and imports that never circle back
(type-checking imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

from sparse_maml.algorithms import REGISTRY

PACKAGE = Path(__file__).resolve().parents[1] / "sparse_maml"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The package modules ``path`` imports anywhere in its text (under TYPE_CHECKING too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("sparse_maml")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imported(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_circles():
    edges, state, circles = graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # A package's __init__ re-exporting its submodules is not a circle of modules: leave those edges out.
    real = [c for c in circles if not any(a.startswith(f"{b}.") or b.startswith(f"{a}.") for a, b in zip(c, c[1:]))]
    assert not real


def test_no_module_over_300_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long


def test_algorithms_top_level_holds_the_registry_and_one_file_per_algorithm():
    files = {p.stem for p in (PACKAGE / "algorithms").glob("*.py")} - {"__init__"}
    defining = {cls.__module__.rpartition(".")[2] for cls in REGISTRY.values()}
    assert files == defining
    assert (PACKAGE / "algorithms" / "engine" / "base.py").is_file()
