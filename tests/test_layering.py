"""The stage packages import each other only along ARCHITECTURE.md's arrows.

Every import counts, also one inside a function (the flow imports lazily): a package
that reaches past its arrows breaks the layering even where no import cycle shows it.
"""

from __future__ import annotations

import ast
from pathlib import Path

RECSYS = Path(__file__).resolve().parents[1] / "recsys"
SHARED = {"settings", "progress", "run_folder"}  # modules every package may use
# package -> the packages it may import (ARCHITECTURE.md draws the same arrows)
ALLOWED = {
    "datasets": set(),
    "ingest": {"datasets"},
    "store": {"datasets", "ingest"},
    "strategy": set(),
    "train": {"datasets", "store", "strategy"},
    "evaluate": {"store", "strategy", "train"},
    "serve": {"datasets", "ingest", "store", "strategy", "train"},
    "app": {"store"},
    "my_merlin_flow": {"evaluate", "store", "strategy", "train"},
}
NEVER = [("serve", "app"), ("train", "app"), ("train", "serve"), ("ingest", "train")]


def imported_packages(source: str) -> set[str]:
    """The recsys packages (or top-level modules) a module's source imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "recsys" and len(parts) > 1:
                found.add(parts[1])
            elif node.module == "recsys":
                found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("recsys.")}
    return found


def package_imports() -> dict[str, set[str]]:
    """Each package (or top-level module) of recsys/ -> what its modules import."""
    graph: dict[str, set[str]] = {}
    for path in RECSYS.rglob("*.py"):
        owner = path.relative_to(RECSYS).parts[0].removesuffix(".py")
        graph.setdefault(owner, set()).update(imported_packages(path.read_text()) - {owner})
    return graph


def test_every_package_imports_only_along_its_arrows() -> None:
    graph = package_imports()
    assert set(ALLOWED) | SHARED | {"__init__"} == set(graph), "a package without arrows"
    for package, allowed in ALLOWED.items():
        assert graph[package] - SHARED <= allowed, (package, graph[package] - SHARED - allowed)
    for package, forbidden in NEVER:
        assert forbidden not in allowed_closure(package), (package, forbidden)


def allowed_closure(package: str) -> set[str]:
    """Everything a package may reach through its arrows."""
    seen, todo = set(), [package]
    while todo:
        for reached in ALLOWED.get(todo.pop(), set()) - seen:
            seen.add(reached)
            todo.append(reached)
    return seen


def test_imports_inside_functions_count() -> None:
    source = "def later():\n    from recsys.app.inspector import x\n    import recsys.serve.app\n"
    assert imported_packages(source) == {"app", "serve"}
    assert imported_packages("from recsys import run_folder as rf\n") == {"run_folder"}
