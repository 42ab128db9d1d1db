"""The package's import graph has no cycle, and imports flow one way between the stages.

The graph is read from the source with `ast` (no import is executed): every ``import`` and
``from ... import`` of a stiffasd module, at module level and inside functions alike (a deferred
import is still a dependency; deferring it only hides a cycle). ``from .pkg import name`` counts
as an edge to the submodule ``pkg.name`` when that module exists, else to ``pkg`` itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "stiffasd"

#: Stages, bottom to top: a module may import its own stage and the ones below, never above.
#: Modules not listed here (new ones) are held to the no-cycle rule only.
LAYERS = (
    ("stiffasd.errors", "stiffasd._cache"),
    ("stiffasd.pattern",),
    ("stiffasd.detect", "stiffasd.coloring", "stiffasd.linalg", "stiffasd.problems"),
    ("stiffasd._verify",),
    ("stiffasd._jacobian", "stiffasd._hessian"),
    ("stiffasd.lineax",),  # lineax / optimistix glue, used by the diffrax adapter
    ("stiffasd._ode", "stiffasd.scipy", "stiffasd.diffrax", "stiffasd.sundae", "stiffasd._compare"),
    ("stiffasd",),
    ("stiffasd.cli",),
)


def modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` for every module of the package."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the package's own modules."""
    mods = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}

    def add(src: str, target: str, names: list[str]) -> None:
        for name in names:
            if f"{target}.{name}" in mods:
                graph[src].add(f"{target}.{name}")
            elif target in mods:
                graph[src].add(target)

    for name, (path, is_pkg) in mods.items():
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    target = ".".join(base + (node.module.split(".") if node.module else []))
                elif node.module and node.module.split(".")[0] == PACKAGE:
                    target = node.module
                else:
                    continue
                add(name, target, [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in mods:
                        graph[name].add(a.name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path ``[a, b, ..., a]``, or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def _stage(module: str) -> int | None:
    """Layer index of ``module``: the longest listed prefix decides."""
    best, level = -1, None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    return level


def test_graph_sees_module_and_function_level_imports():
    g = import_graph()
    assert "stiffasd.detect.interpreter" in g["stiffasd.detect._api"]  # module level
    assert "stiffasd.detect.rules.movement" in g["stiffasd.detect.rules.elementwise"]  # deferred
    assert "stiffasd.detect.rules.sparse" in g["stiffasd.detect.rules"]  # `from . import x`
    assert "stiffasd.coloring._cli" in g["stiffasd.coloring"]  # deferred, in a package
    # the cycle finder finds a planted cycle, deferred edge included
    planted = {k: set(v) for k, v in g.items()}
    planted["stiffasd.detect._sets"].add("stiffasd.detect.interpreter")
    cyc = find_cycle(planted)
    assert cyc is not None and cyc[0] == cyc[-1] and "stiffasd.detect._sets" in cyc


def test_no_import_cycle():
    cyc = find_cycle(import_graph())
    assert cyc is None, "import cycle: " + " -> ".join(cyc)


def test_imports_flow_up_the_stages():
    wrong = [
        f"{a} -> {b}"
        for a, targets in import_graph().items()
        for b in sorted(targets)
        if _stage(a) is not None and _stage(b) is not None and _stage(b) > _stage(a)
    ]
    assert not wrong, "imports against the stage order " + "; ".join(wrong)


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("stiffasd", ("lineax", "optimistix", "diffrax", "equinox", "sksundae")),
        ("stiffasd.lineax", ("optimistix", "diffrax")),
    ],
)
def test_optional_dependencies_are_imported_lazily(module, absent):
    # in a fresh interpreter: this process has imported them all already
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", f"import {module} imported {out.stdout.strip()}"
