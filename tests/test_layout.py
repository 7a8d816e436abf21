"""The tree shows the pipeline: no import cycles, and no stage imports a stage above it.

Imports are read with ``ast`` from the source (module level and inside functions alike: a lazy
import is still a dependency), so the test needs nothing imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

#: the pipeline, lowest stage first: a module may import its own stage and those before it.
#: ``base`` is the top-level errors/executor modules; ``api`` is the package root and api.py.
STAGES = [
    "base",
    "config",
    "data",
    "features",
    "models",
    "training",
    "evaluate",
    "forecasting",
    "tune",
    "api",
    "cli",
]
BASE = {"errors", "executor"}


def module_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules it imports}`` inside ``package`` (a folder under ``root``)."""
    files = sorted((root / package).rglob("*.py"))

    def name(f: Path) -> str:
        return ".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__")

    mods = {name(f): f for f in files}
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, f in mods.items():
        here = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs or [base]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[mod].update(t for t in targets if t in mods and t != mod)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def stage_of(module: str) -> str:
    """``cryptocast.features.table`` -> ``features``; top-level modules by their role."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("api", "__main__"):
        return "cli" if parts[-1] == "__main__" else "api"
    if parts[1] in BASE:
        return "base"
    return parts[1]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    rank = {s: i for i, s in enumerate(STAGES)}
    bad = []
    for mod, targets in sorted(edges.items()):
        for t in sorted(targets):
            if rank[stage_of(t)] > rank[stage_of(mod)]:
                bad.append(f"{mod} ({stage_of(mod)}) imports {t} ({stage_of(t)})")
    return bad


@pytest.mark.parametrize("package", ["cryptocast", "bench"])
def test_no_import_cycles(package: str) -> None:
    assert cycles(module_graph(REPO, package)) == []


def test_every_module_belongs_to_a_stage() -> None:
    unknown = {stage_of(m) for m in module_graph(REPO, "cryptocast")} - set(STAGES)
    assert not unknown, f"modules outside the stage packages: {unknown}; add them to STAGES"


def test_no_stage_imports_a_higher_one() -> None:
    assert upward_imports(module_graph(REPO, "cryptocast")) == []


def test_the_checks_catch_a_back_import(tmp_path: Path) -> None:
    """A deliberately added back-import (data -> features -> data) is a cycle and an upward import."""
    pkg = tmp_path / "cryptocast"
    for rel, text in {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/store.py": "from cryptocast.features.table import build\n",
        "features/__init__.py": "",
        "features/table.py": "def build():\n    from cryptocast.data import store\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    edges = module_graph(tmp_path, "cryptocast")
    assert cycles(edges) == [["cryptocast.data.store", "cryptocast.features.table"]]
    assert upward_imports(edges) == [
        "cryptocast.data.store (data) imports cryptocast.features.table (features)"
    ]
