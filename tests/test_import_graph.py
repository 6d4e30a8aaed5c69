"""No import cycles among rnnlab's modules (issue 18), counting imports inside functions too:
a cycle hidden in a function body still ties the two modules' code together."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(file: Path) -> str:
    parts = file.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """rnnlab module -> the rnnlab modules it imports (the package itself left out)."""
    modules = {module_name(f): f for f in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnnlab"):
                for alias in node.names:  # `from rnnlab import compare` names a module
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("rnnlab")}
        graph[name] = {m for m in found if m in modules and m not in (name, "rnnlab")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search with three colours)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_finder_sees_a_cycle_through_a_function_level_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_rnnlab_has_no_import_cycles():
    graph = import_graph()
    assert {"rnnlab.train", "rnnlab.linear", "rnnlab.record"} <= set(graph)
    assert "rnnlab.linear" in graph["rnnlab.train"]  # the dispatcher imports the baseline
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
