"""Whole solves with scipy's ``solve_ivp``: the Jacobian strategies a scipy user has, side by side.

Strategies: ``default`` (dense finite differences; small n only), ``jac_sparsity`` (colored
finite differences with the exact pattern, hand-fed), ``stiffasd`` (``jac=stiffasd.jac(rhs)``)
and ``stiffasd+lu`` (the same with ``method=stiffasd.scipy.BDF`` / ``Radau``: the fixed-pattern
LU). stiffasd's walls include its detection, coloring and compilation (*prepare*). Strategies
run in turns in one process, best of several.

* ``problems``: every problem of `stiffasd.problems` at a small size, BDF and Radau, with the
  error against a tight Radau reference.
* ``brusselator``: the 2D Brusselator from n = 512 to 32768, BDF.
* ``breakeven``: where stiffasd's one-time setup pays for itself: setup (cold, and warm from
  JAX's persistent compilation cache in another process) against the time saved on a solve.
* ``arrowhead``: the globally coupled reservoir problem (one dense row and column) up to
  n = 20001, BDF, each wall split into right-hand side, Jacobian, LU and the solver's loop.
* ``scipy_lu``: `stiffasd.scipy.BDF` / `Radau` against scipy's own solvers with the same exact
  Jacobian (CPU time, LU time), on problems whose Newton matrices pivot (FitzHugh-Nagumo) and
  on those where the fixed nested-dissection ordering pays.
* ``work_precision``: error against wall time across tolerances (2D Brusselator, N = 16), and
  the figure ``docs/benchmarks/work_precision.png``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
from scipy.integrate import solve_ivp

import stiffasd
from benchmarks._harness import Part, figure, in_child, ratio, save_figure, spread, table
from benchmarks.problems import PROBLEMS, make
from stiffasd import scipy as stiffasd_scipy
from stiffasd._compare import FULL_STACK, LABELS, compare_solve_ivp, warm_up

RTOL, ATOL = 1e-6, 1e-8
SMALL = {
    "brusselator_2d": dict(N=16),
    "gray_scott_2d": dict(N=16, t_span=(0.0, 1000.0)),
    "allen_cahn_3d": dict(N=10),
    "advection_diffusion_reaction_2d": dict(N=24),
    "robertson_diffusion_2d": dict(N=10),
    "reservoir_exchange": dict(n_cells=300),
    "flame_1d": dict(N=250),
}


def reference(prob) -> np.ndarray:
    """Final state of a tight Radau solve (rtol 1e-10, atol 1e-12) with stiffasd's Jacobian."""
    sol = solve_ivp(
        prob.numpy_rhs(), prob.t_span, prob.y0, method="Radau", args=prob.args,
        rtol=1e-10, atol=1e-12, jac=stiffasd.jac(prob.rhs),
    )  # fmt: skip
    if not sol.success:
        raise RuntimeError(f"reference solve failed for {prob.name}: {sol.message}")
    return sol.y[:, -1]


def _error(y, ref) -> float:
    return float(np.max(np.abs(np.ravel(y) - ref) / np.maximum(np.abs(ref), 1.0)))


def _compare(prob, method, *, default: bool, repeat: int, ref=None, **tol) -> list[dict]:
    """Rows of one interleaved comparison, with speed-ups (and errors against ``ref``)."""
    strategies = ["default"] * default + ["jac_sparsity", "stiffasd", FULL_STACK]
    recs = compare_solve_ivp(prob, strategies, method=method, repeat=repeat, **tol)
    by = {r.strategy: r.wall for r in recs}
    rows = []
    for r in recs:
        d = dict(r.as_dict(), problem=prob.name, repeat=repeat)
        d["speedup_vs_jac_sparsity"] = by["jac_sparsity"] / r.wall
        if default:
            d["speedup_vs_default"] = by["default"] / r.wall
        if ref is not None:
            d["error"] = _error(r.y_final, ref)
        rows.append(d)
        print(f"[solve_ivp] {prob.name} {method} {r.strategy} {r.wall:.3f} s", flush=True)
    return rows


def run_problems(quick: bool) -> dict:
    warm_up()
    rows = []
    for name, kw in list(SMALL.items())[:1] if quick else SMALL.items():
        prob = PROBLEMS[name](**(dict(kw, N=6) if quick else kw))
        sj = stiffasd.jac(prob.rhs).prepare(prob.t_span[0], prob.y0, *prob.args)
        ref = reference(prob)
        for method in ("BDF", "Radau"):
            for d in _compare(prob, method, default=prob.n <= 600, repeat=1 if quick else 3, ref=ref, rtol=RTOL, atol=ATOL):  # fmt: skip
                d.update(passes=sj.ncolors, mode=sj.mode, nnz=sj.pattern.nnz)
                d.update(detect_s=sj.timings["detect"], color_s=sj.timings["color"])
                rows.append(d)
    return {"rtol": RTOL, "atol": ATOL, "rows": rows, "max_default_n": 600}


def _prepare_cell(d) -> str:
    if d["strategy"] not in ("stiffasd", FULL_STACK):
        return ""
    compile_s = max(d["prepare"] - d["detect_s"] - d["color_s"], 0.0)
    return f"{d['prepare']:.2f} ({d['detect_s']:.2f} / {d['color_s']:.2f} / {compile_s:.2f})"


def render_problems(p: dict) -> str:
    rows = [
        [
            d["problem"], d["n"], d["passes"], d["method"], LABELS[d["strategy"]],
            f"{d['wall']:.2f}", ratio(d.get("speedup_vs_default"), 1.0),
            ratio(d["speedup_vs_jac_sparsity"], 1.0, ".2f"), d["nfev"], d["njev"], d["nlu"],
            d["nsteps"], f"{d['error']:.1e}", _prepare_cell(d), f"{d['wall'] - d['prepare']:.2f}",
        ]
        for d in p["rows"]
    ]  # fmt: skip
    js = {(d["problem"], d["method"]): d["wall"] for d in p["rows"] if d["strategy"] == "jac_sparsity"}  # fmt: skip
    with_setup, without = (
        "; ".join(
            f"{LABELS[s]} " + spread([f(d) for d in p["rows"] if d["strategy"] == s], ".2f")
            for s in ("stiffasd", FULL_STACK)
        )  # fmt: skip
        for f in (
            lambda d: d["speedup_vs_jac_sparsity"],
            lambda d: js[d["problem"], d["method"]] / (d["wall"] - d["prepare"]),
        )
    )
    summary = (
        f"\n\nAgainst `jac_sparsity`, wall including the setup: {with_setup}. Without the setup "
        f"(*wall - prepare*): {without}."
    )
    return table(
        f"Whole solves (rtol={p['rtol']}, atol={p['atol']}), strategies in turns in one "
        "process, best of 3. *error*: max relative deviation (floor 1) of the final state from "
        "a Radau rtol=1e-10 reference. *prepare*: stiffasd's detection / coloring / "
        f"compilation, inside *wall*. The dense default only up to n = {p['max_default_n']}.",
        [
            "problem", "n", "passes", "method", "strategy", "wall [s]", "vs default",
            "vs jac_sparsity", "nfev", "njev", "nlu", "steps", "error",
            "prepare [s] (detect / color / compile)", "wall - prepare [s]",
        ],
        rows,
    ) + summary  # fmt: skip


def run_brusselator(quick: bool) -> dict:
    warm_up()
    rows = []
    for N in [6, 8] if quick else [16, 32, 64, 128]:
        prob = make("brusselator_2d", N)
        repeat = 1 if quick else {16: 5, 32: 5, 64: 3}.get(N, 2)
        for d in _compare(prob, "BDF", default=prob.n <= 2048, repeat=repeat, rtol=RTOL, atol=ATOL):  # fmt: skip
            rows.append(dict(d, N=N))
    return {"method": "BDF", "rtol": RTOL, "atol": ATOL, "rows": rows}


def render_brusselator(p: dict) -> str:
    rows = [
        [
            d["N"], d["n"], d["label"], d["repeat"], f"{d['wall']:.3f}", f"{d['prepare']:.3f}",
            d["nfev"], d["njev"], d["nlu"], ratio(d.get("speedup_vs_default"), 1.0),
            ratio(d["speedup_vs_jac_sparsity"], 1.0, ".2f"), f"{d['max_rel_diff']:.1e}",
        ]
        for d in p["rows"]
    ]  # fmt: skip
    return table(
        f"solve_ivp {p['method']} on the 2D Brusselator, t in [0, 11.5], rtol={p['rtol']}, "
        f"atol={p['atol']}; each strategy's fastest of *runs* runs, in turns. *max rel. diff*: "
        "from the final state of `stiffasd.jac`'s run.",
        [
            "N", "n", "strategy", "runs", "wall [s]", "prepare [s]", "nfev", "njev", "nlu",
            "vs default", "vs jac_sparsity", "max rel. diff",
        ],
        rows,
    )  # fmt: skip


# ------------------------------------------------------------------------------- break-even
BREAKEVEN = [
    *SMALL.items(),
    ("brusselator_2d", dict(N=32)),
    ("reservoir_exchange", dict(n_cells=1000)),
    ("flame_1d", dict(N=1000)),
]


def _breakeven_cases(quick: bool):
    return [("brusselator_2d", dict(N=6))] if quick else BREAKEVEN


def _setup_time(prob) -> float:
    """A fresh `stiffasd.jac` up to its first Jacobian: detection, coloring, compilation."""
    start = time.perf_counter()
    stiffasd.jac(prob.rhs)(prob.t_span[0], prob.y0, *prob.args)
    return time.perf_counter() - start


def warm_child(cache_dir: str, quick: bool) -> dict:
    """In a child process: setups with JAX's persistent compilation cache in ``cache_dir``."""
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    warm_up()
    out = {}
    for name, kw in _breakeven_cases(quick):
        prob = PROBLEMS[name](**kw)
        prob.numpy_rhs()(prob.t_span[0], prob.y0, *prob.args)
        out[prob.name] = min(_setup_time(prob) for _ in range(3))
    return out


def _warm_setups(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:  # the first child fills it, the second measures
        return [in_child("benchmarks.solve_ivp:warm_child", cache, quick) for _ in range(2)][1]


def run_breakeven(quick: bool) -> dict:
    warm = _warm_setups(quick)
    warm_up()
    repeats, rows = 1 if quick else 3, []
    for name, kw in _breakeven_cases(quick):
        prob = PROBLEMS[name](**kw)
        for method in ("BDF", "Radau"):
            # every stiffasd run prepares afresh: its *prepare* is the cold setup
            by = {d["strategy"]: d for d in _compare(prob, method, default=False, repeat=repeats, rtol=RTOL, atol=ATOL)}  # fmt: skip
            js, cold = by["jac_sparsity"]["wall"], by["stiffasd"]["prepare"]
            row = dict(
                problem=prob.name, n=prob.n, method=method, jac_sparsity_s=js, setup_cold_s=cold,
                setup_warm_s=warm.get(prob.name, float("nan")),
            )  # fmt: skip
            for k, key in (("stiffasd", "stiffasd"), (FULL_STACK, "full")):
                solve = by[k]["wall"] - by[k]["prepare"]
                row[f"{key}_solve_s"] = solve
                row[f"{key}_saving_s"] = js - solve
                row[f"{key}_vs_js_cold"] = js / (cold + solve)
                row[f"{key}_vs_js_warm"] = js / (row["setup_warm_s"] + solve)
            rows.append(row)
    return {"rtol": RTOL, "atol": ATOL, "repeats": repeats, "rows": rows}


def render_breakeven(p: dict) -> str:
    rows = [
        [
            r["problem"], r["n"], r["method"], f"{r['jac_sparsity_s']:.3f}",
            f"{r['setup_cold_s']:.3f}", f"{r['setup_warm_s']:.3f}",
            f"{r['stiffasd_saving_s']:+.3f}", f"{r['full_saving_s']:+.3f}",
            f"{r['stiffasd_vs_js_cold']:.2f}x / {r['stiffasd_vs_js_warm']:.2f}x",
            f"{r['full_vs_js_cold']:.2f}x / {r['full_vs_js_warm']:.2f}x",
        ]
        for r in p["rows"]
    ]  # fmt: skip
    return table(
        f"Where stiffasd repays its setup (rtol={p['rtol']}, atol={p['atol']}). *setup*: a fresh "
        "`stiffasd.jac` up to its first Jacobian (detection, coloring, compilation); *cold*: "
        "in this process; *warm*: with JAX's persistent compilation cache filled by an earlier "
        "process. *saving*: `jac_sparsity`'s solve minus the prepared strategy's solve (best "
        f"of {p['repeats']}, in turns): with its setup a strategy is never slower than "
        "`jac_sparsity` exactly when saving > setup. *full stack*: `stiffasd.jac` + the "
        "`stiffasd.scipy` solver. Ratios > 1: stiffasd faster, setup included.",
        [
            "problem", "n", "method", "jac_sparsity [s]", "setup cold [s]", "setup warm [s]",
            "saving stiffasd.jac [s]", "saving full stack [s]",
            "stiffasd.jac vs js (cold / warm)", "full stack vs js (cold / warm)",
        ],
        rows,
    )  # fmt: skip


# -------------------------------------------------------------------------------- arrowhead
class _Split:
    """Seconds inside the right-hand side, the Jacobian and scipy's LU during one solve: wraps
    the callables solve_ivp receives and the factorization scipy's BDF calls."""

    def __init__(self):
        self.s = dict(rhs=0.0, jac=0.0, lu_factor=0.0, lu_solve=0.0)
        self._in_jac = False

    def wrap(self, key, fn):
        def timed(*a, **k):
            if key == "rhs" and self._in_jac:  # a finite-difference call: the Jacobian's time
                return fn(*a, **k)
            t0, self._in_jac = time.perf_counter(), key == "jac"
            try:
                return fn(*a, **k)
            finally:
                self._in_jac = False
                self.s[key] += time.perf_counter() - t0

        return timed

    def splu(self, orig):
        def factor(A, *a, **k):
            lu = self.wrap("lu_factor", orig)(A, *a, **k)
            return SimpleNamespace(solve=self.wrap("lu_solve", lu.solve))

        return factor


def _split_solve(prob, strategy, pattern):
    """One BDF solve with the wall split into right-hand side, Jacobian, LU and the rest."""
    import scipy.integrate._ivp.bdf as bdf

    split, fun = _Split(), prob.numpy_rhs()
    t0, y0, args = prob.t_span[0], prob.y0, prob.args
    fun(t0, y0, *args)  # compiled before the clock starts, for every strategy
    opts = dict(rtol=RTOL, atol=ATOL, args=args, method="BDF")
    start, prepare = time.perf_counter(), 0.0
    if strategy == "jac_sparsity":
        opts["jac_sparsity"] = pattern
    else:
        j = stiffasd.jac(prob.rhs)
        j(t0, y0, *args)  # detect, color, compile
        prepare = time.perf_counter() - start
        opts["jac"] = split.wrap("jac", j)
        if strategy == FULL_STACK:
            opts["method"] = stiffasd_scipy.BDF
    orig = bdf.splu, bdf.num_jac
    bdf.splu, bdf.num_jac = split.splu(orig[0]), split.wrap("jac", orig[1])
    try:
        sol = solve_ivp(split.wrap("rhs", fun), prob.t_span, y0, **opts)
    finally:
        bdf.splu, bdf.num_jac = orig
    wall = time.perf_counter() - start
    if strategy == FULL_STACK:
        st = stiffasd_scipy.last_lu_stats()
        split.s["lu_factor"], split.s["lu_solve"] = st.get("factor_s", 0.0), st.get("solve_s", 0.0)
    return sol, wall, prepare, split.s


def run_arrowhead(quick: bool) -> dict:
    warm_up()
    rows = []
    strategies = ("jac_sparsity", "stiffasd", FULL_STACK)
    for n_cells in [100] if quick else [1000, 3000, 10000, 20000]:
        prob = make("reservoir_exchange", n_cells)
        sj = stiffasd.jac(prob.rhs).prepare(prob.t_span[0], prob.y0, *prob.args)
        pattern = sj.pattern.to_scipy("csc")
        best: dict = {}
        for _ in range(1 if quick else 3):
            for s in strategies:  # in turns, so that load bursts hit all alike
                out = _split_solve(prob, s, pattern)
                if s not in best or out[1] < best[s][1]:
                    best[s] = out
        ref = best["stiffasd"][0].y[:, -1]
        for s in strategies:
            sol, wall, prepare, split = best[s]
            d = dict(
                problem=prob.name, n=prob.n, strategy=s, wall=wall, prepare=prepare,
                nfev=int(sol.nfev), njev=int(sol.njev), nlu=int(sol.nlu),
                steps=int(sol.t.size - 1), max_rel_diff=_error(sol.y[:, -1], ref),
                passes=sj.ncolors, **{f"{k}_s": v for k, v in split.items()},
            )  # fmt: skip
            d["rest_s"] = wall - prepare - sum(split.values())
            d["speedup_vs_jac_sparsity"] = best["jac_sparsity"][1] / wall
            d["speedup_vs_jac_sparsity_no_prepare"] = best["jac_sparsity"][1] / (wall - prepare)
            rows.append(d)
            print(f"[arrowhead] n={prob.n} {s} {wall:.2f} s", flush=True)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return {"rtol": RTOL, "atol": ATOL, "repeats": 1 if quick else 3, "blas_threads": blas, "rows": rows}  # fmt: skip


def render_arrowhead(p: dict) -> str:
    rows = [
        [
            d["n"], d["strategy"], f"{d['wall']:.2f}", ratio(d["speedup_vs_jac_sparsity"], 1.0),
            ratio(d["speedup_vs_jac_sparsity_no_prepare"], 1.0), f"{d['prepare']:.2f}",
            f"{d['rhs_s']:.2f}", f"{d['jac_s']:.2f} ({d['njev']})",
            f"{d['lu_factor_s']:.2f} ({d['nlu']})", f"{d['lu_solve_s']:.2f}",
            f"{d['rest_s']:.2f}", d["nfev"], d["steps"], f"{d['max_rel_diff']:.1e}",
        ]
        for d in p["rows"]
    ]  # fmt: skip
    return table(
        "reservoir_exchange (arrowhead Jacobian: one dense row and column), solve_ivp BDF, "
        f"rtol={p['rtol']}, atol={p['atol']}, t in [0, 2]; best of {p['repeats']} per strategy, "
        "in turns. *jac_sparsity*: colored finite differences with the exact pattern (n + 1 "
        "groups: the dense row makes every pair of columns conflict); *stiffasd*: "
        "`jac=stiffasd.jac(rhs)` (bicoloring); *stiffasd+lu*: plus `method=stiffasd.scipy.BDF`. "
        "The wall splits into stiffasd's one-time *prepare*, the right-hand side calls (for "
        "jac_sparsity those of the finite differences are in *Jacobian*), the Jacobians, the "
        "LU factorizations and solves, and the *rest* (scipy's Python step loop). BLAS threads: "
        f"{p['blas_threads']}.",
        [
            "n", "strategy", "wall [s]", "vs jac_sparsity", "vs jac_sparsity w/o prepare",
            "prepare [s]", "rhs [s]", "Jacobian [s] (njev)", "LU factor [s] (nlu)",
            "LU solve [s]", "rest [s]", "nfev", "steps", "max rel. diff",
        ],
        rows,
    )  # fmt: skip


# ---------------------------------------------------------------- against scipy's own solvers
SCIPY_LU = [
    ("fitzhugh_nagumo_2d", 32, "Radau"), ("fitzhugh_nagumo_2d", 32, "BDF"),
    ("brusselator_2d", 32, "Radau"), ("brusselator_2d", 32, "BDF"), ("gray_scott_2d", 32, "BDF"),
    ("reservoir_exchange", 1000, "BDF"),
]  # fmt: skip
VARIANTS = ("scipy", "stiffasd", "COLAMD")


def _lu_timed(base):
    """scipy's solver class, the seconds inside its ``lu`` / ``solve_lu`` hooks summed in
    ``lu_s``."""

    class Timed(base):
        lu_s = 0.0

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.lu, self.solve_lu = self._timed(self.lu), self._timed(self.solve_lu)

        @staticmethod
        def _timed(f):
            def timed(*x):
                t0 = time.perf_counter()
                try:
                    return f(*x)
                finally:
                    Timed.lu_s += time.perf_counter() - t0

            return timed

    return Timed


def run_scipy_lu(quick: bool) -> dict:
    import scipy.integrate as si

    warm_up()
    rounds, rows = 1 if quick else 2, []
    for name, size, method in [("brusselator_2d", 6, "BDF")] if quick else SCIPY_LU:
        prob = make(name, size)
        fun, jac, t0 = prob.numpy_rhs(), stiffasd.jac(prob.rhs), prob.t_span[0]
        fun(t0, prob.y0, *prob.args), jac(t0, prob.y0, *prob.args)
        row = dict(problem=prob.name, method=method, n=prob.n)
        for r in range(rounds):
            for v in VARIANTS[r % 3 :] + VARIANTS[: r % 3]:  # in turns, a new order each round
                solver = _lu_timed(getattr(si, method)) if v == "scipy" else getattr(stiffasd_scipy, method)  # fmt: skip
                extra = dict(ordering="COLAMD") if v == "COLAMD" else {}
                w, c = time.perf_counter(), time.process_time()
                sol = solve_ivp(fun, prob.t_span, prob.y0, method=solver, args=prob.args, jac=jac, rtol=RTOL, atol=ATOL, **extra)  # fmt: skip
                w, c = time.perf_counter() - w, time.process_time() - c
                st = stiffasd_scipy.last_lu_stats()
                lu = solver.lu_s if v == "scipy" else st["factor_s"] + st["solve_s"]
                for k, x in (("wall", w), ("cpu", c), ("lu", lu)):
                    row[f"{v}_{k}_s"] = min(row.get(f"{v}_{k}_s", np.inf), x)
                row[f"{v}_nlu"] = int(sol.nlu)
        print(f"[scipy_lu] {prob.name} {method} {row}", flush=True)
        rows.append(row)
    return {"rtol": RTOL, "atol": ATOL, "rounds": rounds, "rows": rows}


def render_scipy_lu(p: dict) -> str:
    rows = [
        [
            r["problem"], r["method"], r["n"], f"{r['scipy_nlu']} / {r['stiffasd_nlu']}",
            *(f"{r[f'{v}_{k}_s']:.2f}" for k in ("cpu", "lu", "wall") for v in VARIANTS),
            ratio(r["stiffasd_cpu_s"], r["scipy_cpu_s"], ".2f"),
            ratio(r["stiffasd_lu_s"], r["scipy_lu_s"], ".2f"),
        ]
        for r in p["rows"]
    ]  # fmt: skip
    summary = spread([r["stiffasd_cpu_s"] / r["scipy_cpu_s"] for r in p["rows"]], ".2f")
    return table(
        "`stiffasd.scipy.BDF` / `Radau` against scipy's own solver, the same exact Jacobian "
        f"(`stiffasd.jac`) for both, rtol={p['rtol']}, atol={p['atol']}; best of {p['rounds']} "
        "rounds in turns. *scipy*: SuperLU with COLAMD at every factorization; *stiffasd*: "
        'the fixed-pattern LU with `ordering="auto"`; *COLAMD*: the same with '
        '`ordering="COLAMD"` (computed once). *CPU*: the process\'s CPU time (all threads); *LU*: '
        "seconds inside factorizations and triangular solves. Ratios < 1: stiffasd faster.",
        [
            "problem", "method", "n", "nlu (scipy / stiffasd)",
            *(f"{k} {v} [s]" for k in ("CPU", "LU", "wall") for v in VARIANTS),
            "stiffasd / scipy, CPU", "stiffasd / scipy, LU",
        ],
        rows,
    ) + f"\n\nstiffasd / scipy, CPU time: {summary}."  # fmt: skip


# --------------------------------------------------------------------------- work-precision
def run_work_precision(quick: bool) -> dict:
    warm_up()
    prob = make("brusselator_2d", 6 if quick else 16)
    ref = reference(prob)
    rows = []
    repeats = 1 if quick else 3
    for method in ("BDF", "Radau"):
        for rtol in [1e-3, 1e-4] if quick else [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]:
            runs = [
                compare_solve_ivp(
                    prob,
                    ["default", "jac_sparsity", "stiffasd"],
                    method=method,
                    rtol=rtol,
                    atol=rtol * 1e-2,
                )  # fmt: skip
                for _ in range(repeats)
            ]
            for i in range(3):
                r = min((run[i] for run in runs), key=lambda r: r.wall)
                walls = [run[i].wall for run in runs]
                rows.append(dict(r.as_dict(), rtol=rtol, error=_error(r.y_final, ref), walls=walls))
    return {"problem": prob.name, "n": prob.n, "repeats": repeats, "rows": rows}


def render_work_precision(p: dict) -> str:
    rows = [
        [
            d["method"], f"{d['rtol']:.0e}", LABELS[d["strategy"]], f"{d['wall']:.2f}",
            " / ".join(f"{w:.2f}" for w in d["walls"]), f"{d['wall'] - d['prepare']:.2f}",
            f"{d['error']:.1e}", d["nfev"], d["njev"], d["nlu"], d["nsteps"],
        ]
        for d in p["rows"]
    ]  # fmt: skip
    return table(
        f"Work-precision, {p['problem']} (n = {p['n']}), atol = rtol / 100. *error*: max "
        "relative deviation (floor 1) from a Radau rtol=1e-10 reference; *wall*: best of "
        f"{p['repeats']} runs in turns, stiffasd's preparation included (*wall - prepare* "
        "leaves it out: it is paid once per right-hand side).",
        [
            "method", "rtol", "strategy", "wall [s] (best)", "wall [s] (all runs)",
            "wall - prepare [s]", "error", "nfev", "njev", "nlu", "steps",
        ],
        rows,
    )  # fmt: skip


def plot_work_precision(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    markers = {"default": "o", "jac_sparsity": "s", "stiffasd": "D"}
    for method, style in (("BDF", "-"), ("Radau", "--")):
        for strategy, marker in markers.items():
            pts = [d for d in p["rows"] if d["method"] == method and d["strategy"] == strategy]
            if not pts:
                continue
            err = [max(d["error"], 1e-16) for d in pts]
            line = ax.loglog([d["wall"] for d in pts], err, marker + style, label=f"{method}: {LABELS[strategy]}")  # fmt: skip
            if strategy == "stiffasd":
                ax.loglog(
                    [d["wall"] - d["prepare"] for d in pts], err, marker + ":",
                    color=line[0].get_color(), alpha=0.5, mfc="none",
                    label=f"{method}: stiffasd without its one-time preparation",
                )  # fmt: skip
    return save_figure(
        fig, ax, directory / "work_precision.png",
        xlabel=f"wall time of the whole solve [s] (best of {p['repeats']})",
        ylabel="error at t_end (max rel.)", title=f"Work-precision: {p['problem']}, n = {p['n']}",
    )  # fmt: skip


PARTS = {
    "problems": Part("Every problem, BDF and Radau", run_problems, render_problems),
    "brusselator": Part("2D Brusselator against n", run_brusselator, render_brusselator),
    "breakeven": Part("Where the setup pays for itself", run_breakeven, render_breakeven),
    "arrowhead": Part("Global coupling (arrowhead)", run_arrowhead, render_arrowhead),
    "scipy_lu": Part("Against scipy's own BDF and Radau", run_scipy_lu, render_scipy_lu),
    "work_precision": Part(
        "Work-precision", run_work_precision, render_work_precision, plot_work_precision
    ),
}
