"""The coloring engine: color counts against published numbers, speed at scale, numba start-up.

* ``ken11``: lp_ken_11 (14694 x 21349, 49058 nonzeros; `benchmarks/data/`) with every order, as
  column, row and bidirectional coloring, against ColPack's published counts (Gebremedhin,
  Nguyen, Patwary, Pothen (2013), ACM TOMS 40(1), Tables VI-VII).
* ``scale``: a banded matrix (n = 10^6, 5 nonzeros per row), the 2D 5-point Laplacian at
  n = 10^6 (star and acyclic coloring) and an arrowhead at n = 10^4 (column against
  bicoloring): wall and CPU seconds, best of repeats.
* ``startup``: the first colorings of a fresh process, with an empty numba cache (compiling
  the kernels) and with the cache that run filled (loading them).

Every timed coloring is checked with `check_coloring` outside the timed region.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.io
import scipy.sparse as sp

from benchmarks._harness import ROOT, Part, table
from stiffasd import SparsityPattern, check_coloring, color
from stiffasd.coloring._api import BEST_ORDERS

#: ColPack's published counts on lp_ken_11 (column / row partial distance-2 coloring)
PUBLISHED = {
    "column": dict(natural=130, largest_first=128, smallest_last=125, incidence_degree=124,
                   dynamic_largest_first=122),
    "row": dict(natural=5, largest_first=4, smallest_last=4, incidence_degree=4,
                dynamic_largest_first=5),
}  # fmt: skip
#: the first colorings of the ``startup`` part, which warm the kernels up before timed colorings
STARTUP = {
    "column (natural)": {}, "column (all orders)": dict(order="best"),
    "symmetric star": dict(structure="symmetric"),
    "symmetric acyclic": dict(structure="symmetric", decompression="substitution"),
    "bidirectional": dict(partition="bidirectional", order="best"),
}  # fmt: skip


def arrowhead(n: int) -> SparsityPattern:
    i = np.arange(n)
    return SparsityPattern.from_coo((n, n), np.r_[i, 0 * i, i], np.r_[i, i, 0 * i])


def _colorings(cases: list) -> list[dict]:
    """One row per case ``(row, pattern, color keywords, repeat)`` after the kernels warmed up:
    ``row`` with the best wall seconds of ``repeat`` colorings, the CPU seconds of that one and the
    colors (bidirectional: total (column + row)); every result checked with `check_coloring`."""
    for kw in STARTUP.values():
        color(arrowhead(20), **kw)
    rows = []
    for row, pattern, kw, repeat in cases:
        pattern.csc_indices  # noqa: B018 - the pattern's cached CSC arrays, built before timing
        best = (np.inf, np.inf)
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            r = color(pattern, **kw)
            best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
        check_coloring(pattern, r)
        colors = f"{r.ncolors} ({r.ncolors_column}+{r.ncolors_row})"
        colors = colors if r.ncolors_row and r.ncolors_column else str(r.ncolors)
        order = kw.get("order", "natural")
        rows.append(row | dict(order=order, colors=colors, s=best[0], cpu_s=best[1]))
    return rows


def run_ken11(quick: bool) -> dict:
    p = SparsityPattern.from_scipy(scipy.io.mmread(ROOT / "benchmarks/data/lp_ken_11.mtx.gz"))
    cases = [(part, dict(partition=part), 1 if quick else 3) for part in ("column", "row")]
    cases += [(f"bidirectional/{dec}", dict(partition="bidirectional", decompression=dec), 1)
              for dec in ("direct", "substitution")]  # fmt: skip
    return {"rows": _colorings([
        (dict(problem=prob, published=PUBLISHED.get(prob, {}).get(o)), p, dict(kw, order=o), r)
        for prob, kw, r in cases for o in (BEST_ORDERS[:2] if quick else BEST_ORDERS)
    ])}  # fmt: skip


def render_ken11(p: dict) -> str:
    return table(
        "lp_ken_11 (14694 x 21349, 49058 nonzeros): colors per order against ColPack's published "
        "counts (bidirectional: total (column + row colors)); time of one coloring.",
        {"problem": "{problem}", "order": "{order}", "colors": "{colors}", "ColPack": "{published}",
         "time [ms]": lambda r: f"{1e3 * r['s']:.1f}"},
        p["rows"],
    )  # fmt: skip


def run_scale(quick: bool) -> dict:
    n, N, na, repeat = (10**4, 100, 1000, 1) if quick else (10**6, 1000, 10**4, 3)
    band = SparsityPattern.from_scipy(sp.dia_array((np.ones((5, n)), np.arange(-2, 3)), (n, n)))
    tri = sp.dia_array((np.ones((3, N)), [-1, 0, 1]), (N, N))
    lap = SparsityPattern.from_scipy(sp.kronsum(tri, tri))  # the 2D 5-point Laplacian's pattern
    orders = ("natural", "largest_first", "smallest_last", "saturation_degree")
    cases = [(f"banded n={n}, 5 nnz/row", "column", band, dict(order=o), repeat) for o in orders]
    sym, bi, arrow = dict(structure="symmetric"), dict(partition="bidirectional"), arrowhead(na)
    cases += [
        (f"2D Laplacian n={N * N}", name, lap, dict(sym, order=o, decompression=dec), repeat)
        for dec, name in (("direct", "star"), ("substitution", "acyclic")) for o in orders[:3]
    ]  # fmt: skip
    arrows = {"column": dict(partition="column"), "bidirectional/direct": dict(bi, order="random"),
              "bidirectional/substitution": dict(bi, decompression="substitution")}  # fmt: skip
    cases += [(f"arrowhead n={na}", name, arrow, kw, 1) for name, kw in arrows.items()]
    return {"rows": _colorings([(dict(case=c, problem=prob), *rest) for c, prob, *rest in cases])}


def render_scale(p: dict) -> str:
    return table(
        "Colorings at scale, best of repeats after compilation: wall and CPU seconds (the "
        "kernels are serial; on a shared machine the wall time is inflated by the load).",
        {"case": "{case}", "problem": "{problem}", "order": "{order}", "colors": "{colors}",
         "wall [s]": "{s:.3f}", "CPU [s]": "{cpu_s:.3f}"},
        p["rows"],
    )  # fmt: skip


_STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
from stiffasd import SparsityPattern, color
out = {"import": time.perf_counter() - t0}
i = list(range(30))  # a 30 x 30 arrowhead and two more entries
p = SparsityPattern.from_coo((30, 30), i + [0] * 30 + i + [5, 7], i + i + [0] * 30 + [7, 5])
for name, kw in json.loads(sys.argv[1]).items():
    t = time.perf_counter(); color(p, **kw); out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def run_startup(quick: bool) -> dict:
    cmd = [sys.executable, "-c", _STARTUP, json.dumps(STARTUP)]
    with tempfile.TemporaryDirectory() as cache:  # quick: the user's own cache (no compilation)
        env = os.environ | {"PYTHONPATH": str(ROOT)} | ({} if quick else {"NUMBA_CACHE_DIR": cache})
        # in turn: the first run fills the empty cache, the second loads from it
        labels = ("cached",) if quick else ("cold (compile)", "cached")
        runs = {k: subprocess.check_output(cmd, env=env, cwd=ROOT, text=True) for k in labels}
    return {"runs": {k: json.loads(out.splitlines()[-1]) for k, out in runs.items()}}


def render_startup(p: dict) -> str:
    return table(  # a row per step, a column per run
        "First calls in a fresh process on a 30 x 30 pattern [s]: with an empty numba cache "
        "(the kernels compile) and with the cache that run filled (they load).",
        {"step": str}
        | {label: lambda step, run=run: f"{run[step]:.2f}" for label, run in p["runs"].items()},
        list(next(iter(p["runs"].values()))),
    )  # fmt: skip


PARTS = {
    "ken11": Part("lp_ken_11 against ColPack", run_ken11, render_ken11),
    "scale": Part("Speed at scale", run_scale, render_scale),
    "startup": Part("numba start-up", run_startup, render_startup),
}
