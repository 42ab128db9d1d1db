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

import jax
import numpy as np
from scipy import integrate

import stiffasd
from benchmarks._harness import Part, figure, in_child, ratio, save_figure, spread, table
from benchmarks.problems import PROBLEMS, make
from stiffasd import scipy as stiffasd_scipy
from stiffasd._compare import FULL_STACK, LABELS, compare_solve_ivp, warm_up

RTOL, ATOL = 1e-6, 1e-8
SPARSE = ("jac_sparsity", "stiffasd", FULL_STACK)  # the strategies that use the exact pattern
SMALL = {
    "brusselator_2d": dict(N=16), "gray_scott_2d": dict(N=16, t_span=(0.0, 1000.0)),
    "allen_cahn_3d": dict(N=10), "advection_diffusion_reaction_2d": dict(N=24),
    "robertson_diffusion_2d": dict(N=10), "reservoir_exchange": dict(n_cells=300),
    "flame_1d": dict(N=250),
}  # fmt: skip
COUNTS = {"nfev": "{nfev}", "njev": "{njev}", "nlu": "{nlu}"}  # table columns: solver counters


def reference(prob) -> np.ndarray:
    """Final state of a tight Radau solve (rtol 1e-10, atol 1e-12) with stiffasd's Jacobian."""
    sol = integrate.solve_ivp(
        prob.numpy_rhs(), prob.t_span, prob.y0, method="Radau", args=prob.args,
        rtol=1e-10, atol=1e-12, jac=stiffasd.jac(prob.rhs),
    )  # fmt: skip
    if not sol.success:
        raise RuntimeError(f"reference solve failed for {prob.name}: {sol.message}")
    return sol.y[:, -1]


def _error(y, ref) -> float:
    return float(np.max(np.abs(np.ravel(y) - ref) / np.maximum(np.abs(ref), 1.0)))


def _compare(prob, method, *, default: bool, repeat: int, ref=None) -> list[dict]:
    """Rows of one interleaved comparison, with speed-ups (and errors against ``ref``)."""
    strategies = ["default"] * default + list(SPARSE)
    recs = compare_solve_ivp(prob, strategies, method=method, repeat=repeat, rtol=RTOL, atol=ATOL)
    by = {r.strategy: r.wall for r in recs}
    rows = []
    for r in recs:
        d = dict(r.as_dict(), problem=prob.name, repeat=repeat)
        d |= {f"speedup_vs_{s}": by[s] / r.wall for s in ("default", "jac_sparsity") if s in by}
        if ref is not None:
            d["error"] = _error(r.y_final, ref)
        rows.append(d)
        print(f"[solve_ivp] {prob.name} {method} {r.strategy} {r.wall:.3f} s", flush=True)
    return rows


def run_problems(quick: bool) -> dict:
    warm_up()  # before the detection and coloring timed here
    rows = []
    for name, kw in list(SMALL.items())[:1] if quick else SMALL.items():
        prob = PROBLEMS[name](**(dict(kw, N=6) if quick else kw))
        sj = stiffasd.jac(prob.rhs).prepare(prob.t_span[0], prob.y0, *prob.args)
        info = dict(passes=sj.ncolors, mode=sj.mode, nnz=sj.pattern.nnz)
        info.update(detect_s=sj.timings["detect"], color_s=sj.timings["color"])
        ref = reference(prob)
        for method in ("BDF", "Radau"):
            recs = _compare(prob, method, default=prob.n <= 600, repeat=1 if quick else 3, ref=ref)
            rows += [dict(d, **info) for d in recs]
    return {"rtol": RTOL, "atol": ATOL, "rows": rows, "max_default_n": 600}


def _prepare_cell(d) -> str:
    if d["strategy"] not in ("stiffasd", FULL_STACK):
        return ""
    compile_s = max(d["prepare"] - d["detect_s"] - d["color_s"], 0.0)
    return f"{d['prepare']:.2f} ({d['detect_s']:.2f} / {d['color_s']:.2f} / {compile_s:.2f})"


def render_problems(p: dict) -> str:
    ours = {s: [d for d in p["rows"] if d["strategy"] == s] for s in SPARSE}
    js = {(d["problem"], d["method"]): d["wall"] for d in ours.pop("jac_sparsity")}

    def against_js(f):  # the spread of f(row) over each stiffasd strategy's rows
        return "; ".join(f"{LABELS[s]} " + spread(map(f, mine), ".2f") for s, mine in ours.items())

    with_setup = against_js(lambda d: d["speedup_vs_jac_sparsity"])
    without = against_js(lambda d: js[d["problem"], d["method"]] / (d["wall"] - d["prepare"]))
    caption = (
        f"Whole solves (rtol={p['rtol']}, atol={p['atol']}), strategies in turns in one process, "
        "best of 3. *error*: max relative deviation (floor 1) of the final state from a Radau "
        "rtol=1e-10 reference. *prepare*: stiffasd's detection / coloring / compilation, inside "
        f"*wall*. The dense default only up to n = {p['max_default_n']}."
    )
    columns = {
        "problem": "{problem}", "n": "{n}", "passes": "{passes}", "method": "{method}",
        "strategy": "{label}", "wall [s]": "{wall:.2f}", "vs default": "{speedup_vs_default:.1fx}",
        "vs jac_sparsity": "{speedup_vs_jac_sparsity:.2fx}", **COUNTS, "steps": "{nsteps}",
        "error": "{error:.1e}", "prepare [s] (detect / color / compile)": _prepare_cell,
        "wall - prepare [s]": lambda d: f"{d['wall'] - d['prepare']:.2f}",
    }  # fmt: skip
    return table(caption, columns, p["rows"]) + (
        f"\n\nAgainst `jac_sparsity`, wall including the setup: {with_setup}. Without the setup "
        f"(*wall - prepare*): {without}."
    )


def run_brusselator(quick: bool) -> dict:
    rows = []
    for N in [6, 8] if quick else [16, 32, 64, 128]:
        prob = make("brusselator_2d", N)
        repeat = 1 if quick else {16: 5, 32: 5, 64: 3}.get(N, 2)
        rows += [dict(d, N=N) for d in _compare(prob, "BDF", default=prob.n <= 2048, repeat=repeat)]
    return {"method": "BDF", "rtol": RTOL, "atol": ATOL, "rows": rows}


def render_brusselator(p: dict) -> str:
    caption = (
        f"solve_ivp {p['method']} on the 2D Brusselator, t in [0, 11.5], rtol={p['rtol']}, "
        f"atol={p['atol']}; each strategy's fastest of *runs* runs, in turns. *max rel. diff*: "
        "from the final state of `stiffasd.jac`'s run."
    )
    columns = {
        "N": "{N}", "n": "{n}", "strategy": "{label}", "runs": "{repeat}", "wall [s]": "{wall:.3f}",
        "prepare [s]": "{prepare:.3f}", **COUNTS, "vs default": "{speedup_vs_default:.1fx}",
        "vs jac_sparsity": "{speedup_vs_jac_sparsity:.2fx}", "max rel. diff": "{max_rel_diff:.1e}",
    }  # fmt: skip
    return table(caption, columns, p["rows"])


# ------------------------------------------------------------------------------- break-even
BREAKEVEN = {  # quick -> cases
    False: [*SMALL.items(), ("brusselator_2d", dict(N=32)),
            ("reservoir_exchange", dict(n_cells=1000)), ("flame_1d", dict(N=1000))],
    True: [("brusselator_2d", dict(N=6))],
}  # fmt: skip


def _setup(prob):
    """A fresh `stiffasd.jac` up to its first Jacobian (detection, coloring, compilation), and the
    seconds that took."""
    start, jac = time.perf_counter(), stiffasd.jac(prob.rhs)
    jac(prob.t_span[0], prob.y0, *prob.args)
    return jac, time.perf_counter() - start


def warm_child(cache_dir: str, quick: bool) -> dict:
    """In a child process: setups with JAX's persistent compilation cache in ``cache_dir``."""
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    warm_up()
    out = {}
    for name, kw in BREAKEVEN[quick]:
        prob = PROBLEMS[name](**kw)
        prob.numpy_rhs()(prob.t_span[0], prob.y0, *prob.args)
        out[prob.name] = min(_setup(prob)[1] for _ in range(3))
    return out


def run_breakeven(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:  # the first child fills it, the second measures
        warm = [in_child("benchmarks.solve_ivp:warm_child", cache, quick) for _ in range(2)][1]
    repeats, rows = 1 if quick else 3, []
    for name, kw in BREAKEVEN[quick]:
        prob = PROBLEMS[name](**kw)
        for method in ("BDF", "Radau"):
            # every stiffasd run prepares afresh: its *prepare* is the cold setup
            by = {d["strategy"]: d for d in _compare(prob, method, default=False, repeat=repeats)}
            js = by["jac_sparsity"]["wall"]
            setup = {"cold": by["stiffasd"]["prepare"], "warm": warm.get(prob.name, float("nan"))}
            row = dict(problem=prob.name, n=prob.n, method=method, jac_sparsity_s=js)
            row |= {f"setup_{w}_s": s for w, s in setup.items()}
            for k, key in (("stiffasd", "stiffasd"), (FULL_STACK, "full")):
                solve = by[k]["wall"] - by[k]["prepare"]
                row.update({f"{key}_solve_s": solve, f"{key}_saving_s": js - solve})
                row |= {f"{key}_vs_js_{w}": js / (s + solve) for w, s in setup.items()}
            rows.append(row)
    return {"rtol": RTOL, "atol": ATOL, "repeats": repeats, "rows": rows}


def render_breakeven(p: dict) -> str:
    caption = (
        f"Where stiffasd repays its setup (rtol={p['rtol']}, atol={p['atol']}). *setup*: a fresh "
        "`stiffasd.jac` up to its first Jacobian (detection, coloring, compilation); *cold*: in "
        "this process; *warm*: with JAX's persistent compilation cache filled by an earlier "
        "process. *saving*: `jac_sparsity`'s solve minus the prepared strategy's solve (best of "
        f"{p['repeats']}, in turns): with its setup a strategy is never slower than `jac_sparsity` "
        "exactly when saving > setup. *full stack*: `stiffasd.jac` + the `stiffasd.scipy` solver. "
        "Ratios > 1: stiffasd faster, setup included."
    )
    columns = {
        "problem": "{problem}", "n": "{n}", "method": "{method}",
        "jac_sparsity [s]": "{jac_sparsity_s:.3f}", "setup cold [s]": "{setup_cold_s:.3f}",
        "setup warm [s]": "{setup_warm_s:.3f}",
        "saving stiffasd.jac [s]": "{stiffasd_saving_s:+.3f}",
        "saving full stack [s]": "{full_saving_s:+.3f}",
        "stiffasd.jac vs js (cold / warm)":
            "{stiffasd_vs_js_cold:.2f}x / {stiffasd_vs_js_warm:.2f}x",
        "full stack vs js (cold / warm)": "{full_vs_js_cold:.2f}x / {full_vs_js_warm:.2f}x",
    }  # fmt: skip
    return table(caption, columns, p["rows"])


# -------------------------------------------------------------------------------- arrowhead
def _timed_solve(prob, base, fun, **opts) -> dict:
    """One ``solve_ivp`` with a subclass of ``base`` (BDF or Radau, scipy's or `stiffasd.scipy`'s)
    that times itself: wall and CPU seconds, counters, the final state, and the seconds inside
    the right-hand side (``rhs_s``), the Jacobian (``jac_s``: the first one, taken in
    ``__init__``, and the finite-difference right-hand sides included), the LU factorizations
    and solves (``lu_factor_s``, ``lu_solve_s``: the solver's ``lu`` / ``solve_lu`` hooks;
    `stiffasd.scipy`'s solvers time their LU engine themselves, in ``lu_stats``, and those
    seconds stand for the hooks'). A call inside another timed call counts for the outer one."""
    s, busy, solvers = dict(rhs_s=0.0, jac_s=0.0, lu_factor_s=0.0, lu_solve_s=0.0), [], []

    def clock(key, fn):
        def timed(*a):
            if busy:
                return fn(*a)
            busy.append(time.perf_counter())  # the start, and the flag "inside a timed call"
            out = fn(*a)
            s[f"{key}_s"] += time.perf_counter() - busy.pop()
            return out

        return timed

    class Timed(base):
        def __init__(self, fun, *a, **k):
            super().__init__(clock("rhs", fun), *a, **k)
            self.lu, self.solve_lu = clock("lu_factor", self.lu), clock("lu_solve", self.solve_lu)
            solvers.append(self)

        def _validate_jac(self, jac, sparsity):
            jac, J = clock("jac", super()._validate_jac)(jac, sparsity)
            return clock("jac", jac), J

    opts |= dict(method=Timed, args=prob.args, rtol=RTOL, atol=ATOL)
    w, c = time.perf_counter(), time.process_time()
    sol = integrate.solve_ivp(fun, prob.t_span, prob.y0, **opts)
    w, c = time.perf_counter() - w, time.process_time() - c
    if st := getattr(solvers[-1], "lu_stats", None):
        s.update(lu_factor_s=st["factor_s"], lu_solve_s=st["solve_s"])
    return dict(
        wall=w, cpu=c, nfev=int(sol.nfev), njev=int(sol.njev), nlu=int(sol.nlu),
        steps=int(sol.t.size - 1), y=sol.y[:, -1], **s, rest_s=w - sum(s.values()),
    )  # fmt: skip


def _split_solve(prob, strategy, pattern) -> dict:
    """One BDF solve with the wall split into stiffasd's prepare, right-hand side, Jacobian, LU
    and the rest."""
    fun, t0, y0, args = prob.numpy_rhs(), prob.t_span[0], prob.y0, prob.args
    fun(t0, y0, *args)  # compiled before the clock starts, for every strategy
    jac, prepare = (None, 0.0) if strategy == "jac_sparsity" else _setup(prob)
    opts = {"jac_sparsity": pattern} if strategy == "jac_sparsity" else {"jac": jac}
    base = stiffasd_scipy.BDF if strategy == FULL_STACK else integrate.BDF
    d = _timed_solve(prob, base, fun, **opts)
    d["wall"] += prepare
    return dict(d, problem=prob.name, n=prob.n, strategy=strategy, prepare=prepare)


def run_arrowhead(quick: bool) -> dict:
    warm_up()  # before the preparations timed here
    rows, repeats = [], 1 if quick else 3
    for n_cells in [100] if quick else [1000, 3000, 10000, 20000]:
        prob = make("reservoir_exchange", n_cells)
        sj = stiffasd.jac(prob.rhs).prepare(prob.t_span[0], prob.y0, *prob.args)
        pattern = sj.pattern.to_scipy("csc")
        runs = [[_split_solve(prob, s, pattern) for s in SPARSE] for _ in range(repeats)]
        best = [min(same, key=lambda d: d["wall"]) for same in zip(*runs, strict=True)]  # in turns
        js, ref = best[0]["wall"], best[1]["y"]
        for d in best:
            d.update(passes=sj.ncolors, max_rel_diff=_error(d.pop("y"), ref))
            d["speedup_vs_jac_sparsity"] = js / d["wall"]
            d["speedup_vs_jac_sparsity_no_prepare"] = js / (d["wall"] - d["prepare"])
            rows.append(d)
            print(f"[arrowhead] n={prob.n} {d['strategy']} {d['wall']:.2f} s", flush=True)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return {"rtol": RTOL, "atol": ATOL, "repeats": repeats, "blas_threads": blas, "rows": rows}


def render_arrowhead(p: dict) -> str:
    caption = (
        "reservoir_exchange (arrowhead Jacobian: one dense row and column), solve_ivp BDF, "
        f"rtol={p['rtol']}, atol={p['atol']}, t in [0, 2]; best of {p['repeats']} per strategy, in "
        "turns. *jac_sparsity*: colored finite differences with the exact pattern (n + 1 groups: "
        "the dense row makes every pair of columns conflict); *stiffasd*: `jac=stiffasd.jac(rhs)` "
        "(bicoloring); *stiffasd+lu*: plus `method=stiffasd.scipy.BDF`. The wall splits into "
        "stiffasd's one-time *prepare*, the right-hand side calls (for jac_sparsity those of the "
        "finite differences are in *Jacobian*), the Jacobians, the LU factorizations and solves, "
        f"and the *rest* (scipy's Python step loop). BLAS threads: {p['blas_threads']}."
    )
    columns = {
        "n": "{n}", "strategy": "{strategy}", "wall [s]": "{wall:.2f}",
        "vs jac_sparsity": "{speedup_vs_jac_sparsity:.1fx}",
        "vs jac_sparsity w/o prepare": "{speedup_vs_jac_sparsity_no_prepare:.1fx}",
        "prepare [s]": "{prepare:.2f}", "rhs [s]": "{rhs_s:.2f}",
        "Jacobian [s] (njev)": "{jac_s:.2f} ({njev})",
        "LU factor [s] (nlu)": "{lu_factor_s:.2f} ({nlu})", "LU solve [s]": "{lu_solve_s:.2f}",
        "rest [s]": "{rest_s:.2f}", "nfev": "{nfev}", "steps": "{steps}",
        "max rel. diff": "{max_rel_diff:.1e}",
    }  # fmt: skip
    return table(caption, columns, p["rows"])


# ---------------------------------------------------------------- against scipy's own solvers
SCIPY_LU = [
    ("fitzhugh_nagumo_2d", 32, "Radau"), ("fitzhugh_nagumo_2d", 32, "BDF"),
    ("brusselator_2d", 32, "Radau"), ("brusselator_2d", 32, "BDF"), ("gray_scott_2d", 32, "BDF"),
    ("reservoir_exchange", 1000, "BDF"),
]  # fmt: skip
VARIANTS = ("scipy", "stiffasd", "COLAMD")


def run_scipy_lu(quick: bool) -> dict:
    rounds, rows = 1 if quick else 2, []
    for name, size, method in [("brusselator_2d", 6, "BDF")] if quick else SCIPY_LU:
        prob = make(name, size)
        fun, jac, t0 = prob.numpy_rhs(), stiffasd.jac(prob.rhs), prob.t_span[0]
        fun(t0, prob.y0, *prob.args), jac(t0, prob.y0, *prob.args)
        row = dict(problem=prob.name, method=method, n=prob.n)
        for r in range(rounds):
            for v in VARIANTS[r % 3 :] + VARIANTS[: r % 3]:  # in turns, a new order each round
                base = getattr(integrate if v == "scipy" else stiffasd_scipy, method)
                extra = {"ordering": "COLAMD"} if v == "COLAMD" else {}
                d = _timed_solve(prob, base, fun, jac=jac, **extra)
                d["lu"] = d["lu_factor_s"] + d["lu_solve_s"]
                for k in ("wall", "cpu", "lu"):
                    row[f"{v}_{k}_s"] = min(row.get(f"{v}_{k}_s", np.inf), d[k])
                row[f"{v}_nlu"] = d["nlu"]
        print(f"[scipy_lu] {prob.name} {method} {row}", flush=True)
        rows.append(row)
    return {"rtol": RTOL, "atol": ATOL, "rounds": rounds, "rows": rows}


def render_scipy_lu(p: dict) -> str:
    summary = spread([r["stiffasd_cpu_s"] / r["scipy_cpu_s"] for r in p["rows"]], ".2f")
    caption = (
        "`stiffasd.scipy.BDF` / `Radau` against scipy's own solver, the same exact Jacobian "
        f"(`stiffasd.jac`) for both, rtol={p['rtol']}, atol={p['atol']}; best of {p['rounds']} "
        "rounds in turns. *scipy*: SuperLU with COLAMD at every factorization; *stiffasd*: the "
        'fixed-pattern LU with `ordering="auto"`; *COLAMD*: the same with `ordering="COLAMD"` '
        "(computed once). *CPU*: the process's CPU time (all threads); *LU*: seconds inside "
        "factorizations and triangular solves. Ratios < 1: stiffasd faster."
    )
    columns = {
        "problem": "{problem}", "method": "{method}", "n": "{n}",
        "nlu (scipy / stiffasd)": "{scipy_nlu} / {stiffasd_nlu}",
        **{f"{k} {v} [s]": f"{{{v}_{k.lower()}_s:.2f}}"
           for k in ("CPU", "LU", "wall") for v in VARIANTS},
        "stiffasd / scipy, CPU": lambda r: ratio(r["stiffasd_cpu_s"], r["scipy_cpu_s"], ".2f"),
        "stiffasd / scipy, LU": lambda r: ratio(r["stiffasd_lu_s"], r["scipy_lu_s"], ".2f"),
    }  # fmt: skip
    return table(caption, columns, p["rows"]) + f"\n\nstiffasd / scipy, CPU time: {summary}."


# --------------------------------------------------------------------------- work-precision
MARKERS = {"default": "o", "jac_sparsity": "s", "stiffasd": "D"}  # the strategies compared


def run_work_precision(quick: bool) -> dict:
    prob = make("brusselator_2d", 6 if quick else 16)
    ref, repeats, rows = reference(prob), 1 if quick else 3, []
    for method in ("BDF", "Radau"):
        for rtol in [1e-3, 1e-4] if quick else [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]:
            tols = dict(method=method, rtol=rtol, atol=rtol * 1e-2)
            runs = [compare_solve_ivp(prob, list(MARKERS), **tols) for _ in range(repeats)]
            for recs in zip(*runs, strict=True):  # one strategy's runs, in turns with the others
                r = min(recs, key=lambda r: r.wall)
                err, walls = _error(r.y_final, ref), [x.wall for x in recs]
                rows.append(dict(r.as_dict(), rtol=rtol, error=err, walls=walls))
    return {"problem": prob.name, "n": prob.n, "repeats": repeats, "rows": rows}


def render_work_precision(p: dict) -> str:
    caption = (
        f"Work-precision, {p['problem']} (n = {p['n']}), atol = rtol / 100. *error*: max relative "
        f"deviation (floor 1) from a Radau rtol=1e-10 reference; *wall*: best of {p['repeats']} "
        "runs in turns, stiffasd's preparation included (*wall - prepare* leaves it out: it is "
        "paid once per right-hand side)."
    )
    columns = {
        "method": "{method}", "rtol": "{rtol:.0e}", "strategy": "{label}",
        "wall [s] (best)": "{wall:.2f}",
        "wall [s] (all runs)": lambda d: " / ".join(f"{w:.2f}" for w in d["walls"]),
        "wall - prepare [s]": lambda d: f"{d['wall'] - d['prepare']:.2f}", "error": "{error:.1e}",
        **COUNTS, "steps": "{nsteps}",
    }  # fmt: skip
    return table(caption, columns, p["rows"])


def plot_work_precision(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    for method, style in (("BDF", "-"), ("Radau", "--")):
        for strategy, marker in MARKERS.items():
            pts = [d for d in p["rows"] if d["method"] == method and d["strategy"] == strategy]
            walls, err = [d["wall"] for d in pts], [max(d["error"], 1e-16) for d in pts]
            line = ax.loglog(walls, err, marker + style, label=f"{method}: {LABELS[strategy]}")
            if strategy == "stiffasd":
                solve_s = [d["wall"] - d["prepare"] for d in pts]
                label = f"{method}: stiffasd without its one-time preparation"
                faded = dict(color=line[0].get_color(), alpha=0.5, mfc="none")
                ax.loglog(solve_s, err, marker + ":", label=label, **faded)
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
