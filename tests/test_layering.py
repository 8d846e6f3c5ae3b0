"""Layering of the package: each subpackage imports alone, and no cycle runs between the parts of omiti2v, so
every part sits on the parts below it and none imports a part above it.

Parts ("units"): each subpackage (omiti2v/<name>/) and each top-level module (omiti2v/<name>.py); imports
inside one unit are free. What counts as one unit depending on another, read from the source with `ast`:
- `import omiti2v.x`, `from omiti2v.x import y` and relative imports, wherever they stand: module level, inside
  functions and classes, under `if TYPE_CHECKING:`. A lazy import only defers a dependency, so it counts too:
  moving an import into a function does not break a cycle here.
- a string constant naming a module, `"omiti2v.judge"` or `"omiti2v.judge:run_judge"`: the registries that
  importlib and importlib.resources resolve at run time (the stage table, the command table, schemas).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "omiti2v"
NAMED = re.compile(r"(omiti2v(?:\.\w+)+)(?::\w+)?")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def imports_of(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported omiti2v module, line) for every import and module-naming string in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            yield source, node.lineno
            yield from ((f"{source}.{a.name}", node.lineno) for a in node.names if f"{source}.{a.name}" in MODULES)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (m := NAMED.fullmatch(node.value)):
            yield m.group(1), node.lineno


def import_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> the places ("omiti2v/x.py:12") that import it."""
    graph: dict[str, dict[str, list[str]]] = {}
    for module, path in MODULES.items():
        for target, line in imports_of(module, path):
            if target.split(".")[0] != "omiti2v" or unit(target) == unit(module):
                continue
            assert target in MODULES or target.rpartition(".")[0] in MODULES, f"{path}:{line}: no module {target}"
            graph.setdefault(unit(module), {}).setdefault(unit(target), []).append(f"{path.relative_to(REPO)}:{line}")
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """One cycle (its units in order, the first repeated last) per edge that closes one in a depth-first walk."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def describe(cycle: list[str], graph: dict[str, dict[str, list[str]]]) -> str:
    steps = [f"  {a} -> {b}   ({', '.join(graph[a][b])})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_no_import_cycle_between_the_parts_of_the_package():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles between parts of omiti2v:\n" + "\n".join(describe(c, graph) for c in found)


def test_the_scan_sees_lazy_relative_and_named_imports():
    """The rule above only holds if the scan sees what it claims to: a function-level relative import, a
    module-level absolute one and a module named in a registry string."""
    graph = import_graph()
    assert "omiti2v.generate" in graph["omiti2v.pipeline"]  # `from .generate import parallel` inside run_stages
    assert "omiti2v.paths" in graph["omiti2v.runs"]  # `from omiti2v.paths import ...`
    assert {"omiti2v.generate", "omiti2v.judge", "omiti2v.scorers", "omiti2v.summary"} <= set(graph["omiti2v.stages"])
    assert cycles({"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}}) == [["a", "b", "c", "a"]]


@pytest.mark.slow
def test_every_subpackage_imports_alone():
    """`python -c "import omiti2v.<name>"` in a fresh interpreter for each subpackage, all at once."""
    assert {"asm", "data", "generate", "judge", "report", "export", "leaderboard"} <= set(SUBPACKAGES)
    procs = {name: subprocess.Popen([sys.executable, "-c", f"import omiti2v.{name}"], cwd=REPO, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in SUBPACKAGES}
    failed = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        if proc.returncode:
            failed[name] = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
    assert not failed, failed


@pytest.mark.parametrize("name", ["report", "export"])
def test_tables_and_exports_sit_below_the_pipeline(name):
    """Reading results needs no orchestration: nothing below the tables (report) or the export reaches the
    pipeline, the generation or scoring stages, or the leaderboard that sits on top of both."""
    graph = import_graph()
    below: set[str] = set()
    todo = [f"omiti2v.{name}"]
    while todo:
        for nxt in graph.get(todo.pop(), {}):
            if nxt not in below:
                below.add(nxt)
                todo.append(nxt)
    assert not below & {"omiti2v.pipeline", "omiti2v.generate", "omiti2v.scorers", "omiti2v.leaderboard"}, below
