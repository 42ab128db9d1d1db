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

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import scipy.io

from benchmarks._harness import ROOT, Part, table
from stiffasd import SparsityPattern, check_coloring, color
from stiffasd.coloring._api import BEST_ORDERS

DATA = Path(__file__).resolve().parent / "data" / "lp_ken_11.mtx.gz"

#: ColPack's published counts on lp_ken_11 (column / row partial distance-2 coloring)
PUBLISHED = {
    "column": dict(
        natural=130, largest_first=128, smallest_last=125, incidence_degree=124,
        dynamic_largest_first=122,
    ),
    "row": dict(
        natural=5, largest_first=4, smallest_last=4, incidence_degree=4, dynamic_largest_first=5
    ),
}  # fmt: skip


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall seconds over ``repeat`` calls, the CPU seconds of that call, the result."""
    best, cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if dt < best:
            best, cpu = dt, dc
    return best, cpu, out


def banded(n: int, half: int) -> SparsityPattern:
    i = np.repeat(np.arange(n), 2 * half + 1)
    j = i + np.tile(np.arange(-half, half + 1), n)
    ok = (j >= 0) & (j < n)
    return SparsityPattern.from_coo((n, n), i[ok], j[ok])


def laplacian_2d(N: int) -> SparsityPattern:
    x, y = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    rows, cols = [], []
    for dx, dy in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
        xx, yy = x + dx, y + dy
        ok = ((xx >= 0) & (xx < N) & (yy >= 0) & (yy < N)).ravel()
        rows.append((x * N + y).ravel()[ok])
        cols.append((xx * N + yy).ravel()[ok])
    return SparsityPattern.from_coo((N * N, N * N), np.concatenate(rows), np.concatenate(cols))


def arrowhead(n: int) -> SparsityPattern:
    i = np.arange(n)
    rows = np.concatenate([i, np.zeros(n, int), i])
    cols = np.concatenate([i, i, np.zeros(n, int)])
    return SparsityPattern.from_coo((n, n), rows, cols)


def _colors(r) -> str:
    if r.ncolors_row and r.ncolors_column:
        return f"{r.ncolors} ({r.ncolors_column}+{r.ncolors_row})"
    return str(r.ncolors)


def _warm():
    for kw in (dict(order="best"), dict(structure="symmetric", order="best")):
        color(arrowhead(20), **kw)
    color(arrowhead(20), structure="symmetric", decompression="substitution")


def run_ken11(quick: bool) -> dict:
    with gzip.open(DATA, "rb") as f:
        p = SparsityPattern.from_scipy(scipy.io.mmread(f, spmatrix=False))
    _warm()
    orders = BEST_ORDERS[:2] if quick else BEST_ORDERS
    rows = []
    cases = [(part, dict(partition=part), 1 if quick else 3) for part in ("column", "row")]
    cases += [
        (f"bidirectional/{dec}", dict(partition="bidirectional", decompression=dec), 1)
        for dec in ("direct", "substitution")
    ]
    for problem, kw, repeat in cases:
        for order in orders:
            t, _, r = _timed(partial(color, p, order=order, **kw), repeat)
            check_coloring(p, r)
            pub = PUBLISHED.get(problem, {}).get(order)
            rows.append(dict(problem=problem, order=order, colors=_colors(r), published=pub, s=t))
    return {"rows": rows}


def render_ken11(p: dict) -> str:
    rows = [
        [r["problem"], r["order"], r["colors"], r["published"] or "", f"{1e3 * r['s']:.1f}"]
        for r in p["rows"]
    ]
    return table(
        "lp_ken_11 (14694 x 21349, 49058 nonzeros): colors per order against ColPack's published "
        "counts (bidirectional: total (column + row colors)); time of one coloring.",
        ["problem", "order", "colors", "ColPack", "time [ms]"],
        rows,
    )


def run_scale(quick: bool) -> dict:
    n, N, na, repeat = (10**4, 100, 1000, 1) if quick else (10**6, 1000, 10**4, 3)
    _warm()
    cases = []
    band = banded(n, 2)
    for order in ("natural", "largest_first", "smallest_last", "saturation_degree"):
        cases.append((f"banded n={n}, 5 nnz/row", band, "column", dict(order=order), repeat))
    lap = laplacian_2d(N)
    for dec, name in (("direct", "star"), ("substitution", "acyclic")):
        for order in ("natural", "largest_first", "smallest_last"):
            kw = dict(structure="symmetric", order=order, decompression=dec)
            cases.append((f"2D Laplacian n={N * N}", lap, name, kw, repeat))
    arrow = arrowhead(na)
    for name, kw in (
        ("column", dict(partition="column")),
        ("bidirectional/direct", dict(partition="bidirectional", order="random")),
        ("bidirectional/substitution", dict(partition="bidirectional", decompression="substitution")),
    ):  # fmt: skip
        cases.append((f"arrowhead n={na}", arrow, name, kw, 1))
    rows = []
    for case, pat, problem, kw, reps in cases:
        pat.csc_indices  # noqa: B018 - the pattern's cached CSC arrays, built once per pattern
        t, cpu, r = _timed(partial(color, pat, **kw), reps)
        check_coloring(pat, r)
        order = kw.get("order", "natural")
        rows.append(dict(case=case, problem=problem, order=order, colors=_colors(r), s=t, cpu_s=cpu))  # fmt: skip
    return {"rows": rows}


def render_scale(p: dict) -> str:
    rows = [[r["case"], r["problem"], r["order"], r["colors"], f"{r['s']:.3f}", f"{r['cpu_s']:.3f}"] for r in p["rows"]]  # fmt: skip
    return table(
        "Colorings at scale, best of repeats after compilation: wall and CPU seconds (the "
        "kernels are serial; on a shared machine the wall time is inflated by the load).",
        ["case", "problem", "order", "colors", "wall [s]", "CPU [s]"],
        rows,
    )


_STARTUP = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from stiffasd import SparsityPattern, color
out = {"import": time.perf_counter() - t0}
d = np.eye(30, dtype=bool); d[0, :] = True; d[:, 0] = True; d[5, 7] = d[7, 5] = True
p = SparsityPattern.from_dense(d)
for name, kw in [("column (natural)", {}), ("column (all orders)", dict(order="best")),
                 ("symmetric star", dict(structure="symmetric")),
                 ("symmetric acyclic", dict(structure="symmetric", decompression="substitution")),
                 ("bidirectional", dict(partition="bidirectional", order="best"))]:
    t = time.perf_counter(); color(p, **kw); out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def run_startup(quick: bool) -> dict:
    res = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        labels = ("cached",) if quick else ("cold (compile)", "cached")
        if quick:  # a filled cache: the user's own (no compilation in a quick run)
            env.pop("NUMBA_CACHE_DIR")
        for label in labels:
            proc = subprocess.run(
                [sys.executable, "-c", _STARTUP], env=env, capture_output=True, text=True,
                check=True, cwd=ROOT,
            )  # fmt: skip
            res[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"runs": res}


def render_startup(p: dict) -> str:
    runs = p["runs"]
    steps = list(next(iter(runs.values())))
    rows = [[s, *(f"{runs[k][s]:.2f}" for k in runs)] for s in steps]
    return table(
        "First calls in a fresh process on a 30 x 30 pattern [s]: with an empty numba cache "
        "(the kernels compile) and with the cache that run filled (they load).",
        ["step", *runs],
        rows,
    )


PARTS = {
    "ken11": Part("lp_ken_11 against ColPack", run_ken11, render_ken11),
    "scale": Part("Speed at scale", run_scale, render_scale),
    "startup": Part("numba start-up", run_startup, render_startup),
}
