"""Sparse LU on fixed patterns: the compiled `JaxLU` against the host SuperLU (`FixedPatternLU`,
`DirectLU`), alone and inside diffrax solves, batched, and against splineax.

Every part runs in a fresh process pinned to one core, with one BLAS thread (``threadpoolctl``)
for JaxLU and SuperLU alike. One BLAS thread: JaxLU's CPU kernels call LAPACK through scipy's
OpenBLAS once per batch of small fronts, and a multithreaded BLAS wakes its threads for each
call (one measurement, unpinned, keeps the default threads). One core: both engines get the
same resources whatever the machine. (Concurrent batched LAPACK calls would block each other
in XLA's intra-op pool; `stiffasd.linalg.multifrontal` chains them, so unpinned runs finish.)

* ``factor_solve``: one factorization and one solve of the Newton matrix ``I - 0.1 J`` (state
  perturbed) of the 2D Brusselator and 3D Allen-Cahn: JaxLU (jit-compiled, compile timed
  apart) against SuperLU's numeric refactorization on the fixed pattern, with the plan's
  statistics and both relative errors against ``scipy.sparse.linalg.spsolve``.
* ``diffrax_backends``: Kvaerno5 on the 2D Brusselator with each ``linear_solver``.
* ``ensemble``: ``jax.vmap`` of whole Kvaerno5 solves over 64 values of the Brusselator's A
  with ``"jax"``, against a Python loop of ``"direct"`` solves and ``jax.vmap`` of ``"direct"``.
* ``peer``: splineax (asdex Jacobians, KLU through klujax) as diffrax's Newton linear solver
  against stiffasd's, in a Python environment that has splineax (``STIFFASD_PEER_PYTHON``).
"""

from __future__ import annotations

import os
import time
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve
from threadpoolctl import threadpool_limits

import stiffasd
import stiffasd.diffrax as sdx
from benchmarks._harness import (
    Part,
    compile_and_time,
    in_child,
    interleaved,
    ms,
    peak_rss_mb,
    ratio,
    rel_diff,
    table,
)
from benchmarks.diffrax import diffrax_solves
from benchmarks.problems import ensemble_problem, make
from stiffasd.linalg import AutoLU, FixedPatternLU, JaxLU, analyze, blas_threads, with_diagonal

NOTE = "Process pinned to one core; BLAS on one thread (threadpoolctl)"
GAMMA = 0.1
RTOL, ATOL, DT0 = 1e-3, 1e-6, 1e-3  # as the diffrax suite's Brusselator part
PEER_PYTHON = os.environ.get("STIFFASD_PEER_PYTHON", "/work/venv312/bin/python")


def one_core(target: str, *args):
    """``target(*args)`` (a function of this module) in this fresh process after pinning it to
    one core: before JAX starts its thread pools (see the module docstring)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    return globals()[target](*args)


def _pinned(target: str, *args, **kw):
    return in_child("benchmarks.linalg:one_core", target, *args, **kw)


# ------------------------------------------------------------------------------ factor_solve
def newton_matrix(prob, gamma: float = GAMMA):
    """Pattern (J's plus the diagonal) and CSC values of ``I - gamma J`` at a perturbed state."""
    y = prob.y0 + np.random.default_rng(1).uniform(0.05, 0.5, prob.n)
    sj = stiffasd.prepare_jacobian(prob.rhs, prob.t_span[0], y, *prob.args, argnums=1)
    full, src, diag = with_diagonal(sj.pattern)
    data = np.zeros(full.nnz)
    data[src] = -gamma * np.asarray(sj.data(prob.t_span[0], y, *prob.args))
    data[diag] += 1.0
    return full, data


FACTOR_CASES = [
    ("brusselator_2d", 32), ("brusselator_2d", 64), ("allen_cahn_3d", 16),
    ("brusselator_2d", 128), ("allen_cahn_3d", 24), ("brusselator_2d", 256),
]  # fmt: skip
CASE_TIMEOUT = 600  # seconds per case (compilation included); beyond it only the plan is kept
THREADED = ("brusselator_2d", 32)  # the case also timed with the default BLAS threads


def plan_row(name: str, N: int):
    prob = make(name, N)
    pattern, data = newton_matrix(prob)
    start = time.perf_counter()
    plan = analyze(pattern)
    row = dict(problem=name, N=N, n=prob.n, nnz=pattern.nnz, analyze_s=time.perf_counter() - start)
    keys = ("fronts", "levels", "max_front", "factor_entries", "flops", "padded_flops")
    return dict(row, **{k: plan.stats[k] for k in keys}), prob, pattern, data


def factor_case(name: str, N: int) -> dict:
    """One case of ``factor_solve`` (in a process pinned to one core)."""
    row, prob, pattern, data = plan_row(name, N)
    b = np.random.default_rng(0).standard_normal(prob.n)
    ref = spsolve(sp.csc_matrix((data, pattern.csc_indices, pattern.csc_indptr)), b)
    slu = FixedPatternLU(pattern.csc_indptr, pattern.csc_indices, prob.n)
    with threadpool_limits(1, "blas"):
        lu = JaxLU().bind(pattern)
        factor, solve, d, bj = lu.factor, lu.solve, jnp.asarray(data), jnp.asarray(b)
        row["compile_factor_s"], _, fac = compile_and_time(factor, d)
        row["compile_solve_s"], _, x = compile_and_time(solve, fac, bj)
        hf = slu.factor(data, 0.0, -1.0)  # the first factorization chooses the ordering
        fns = {
            "jax_factor": lambda: jax.jit(factor)(d),
            "slu_factor": lambda: slu.factor(data, 0.0, -1.0),
            "jax_solve": lambda: jax.jit(solve)(fac, bj),
            "slu_solve": lambda: hf.solve(b),
        }
        row.update({f"{k}_s": v for k, v in interleaved(fns, rounds=5, reps=3).items()})
    row.update(err_jax=rel_diff(x, ref), err_slu=rel_diff(hf.solve(b), ref), slu_fill=slu.fill)
    return dict(row, peak_rss_mb=peak_rss_mb())


def threaded_child(name: str, N: int) -> dict:
    """JaxLU's factorization with the BLAS's default threads against one, in turns (in a
    process of its own, not pinned)."""
    pattern, data = newton_matrix(make(name, N))
    factor, d = jax.jit(JaxLU().bind(pattern).factor), jnp.asarray(data)

    def limited():
        with threadpool_limits(1, "blas"):
            return factor(d)

    t = interleaved({"one": limited, "default": lambda: factor(d)}, rounds=3, reps=3)
    return dict(problem=name, N=N, blas_threads=blas_threads(), default_s=t["default"],
                one_s=t["one"], cores=len(os.sched_getaffinity(0)))  # fmt: skip


def run_factor_solve(quick: bool) -> dict:
    rows = []
    for name, N in [("brusselator_2d", 16)] if quick else FACTOR_CASES:
        try:
            rows.append(_pinned("factor_case", name, N, timeout=CASE_TIMEOUT))
        except RuntimeError as err:  # the plan is cheap: keep it, with the reason
            why = str(err).strip().splitlines()[-1][:300]
            rows.append(dict(plan_row(name, N)[0], skipped=f"{name} {N}: {why}"))
        r = rows[-1]
        print(f"[linalg] {name} N={N}: jax {ms(r.get('jax_factor_s'))} ms, superlu "
              f"{ms(r.get('slu_factor_s'))} ms", flush=True)  # fmt: skip
    out = {"gamma": GAMMA, "note": NOTE, "rows": rows}
    if not quick:
        out["threaded"] = in_child("benchmarks.linalg:threaded_child", *THREADED)
    return out


def render_factor_solve(p: dict) -> str:
    note = ""
    if "threaded" in p:
        t = p["threaded"]
        note = (
            f" With the BLAS's default {t['blas_threads']} threads ({t['cores']} cores, not "
            f"pinned), JaxLU's factorization at {t['problem']} {t['N']} took "
            f"{ms(t['default_s'])} ms against {ms(t['one_s'])} ms on one BLAS thread "
            f"({ratio(t['default_s'], t['one_s'])}), in turns."
        )
    skipped = {r["skipped"] for r in p["rows"] if "skipped" in r}
    note += "".join(f" Not measured: {why}." for why in sorted(skipped))

    def vs(kind):  # JaxLU's time over SuperLU's
        return lambda r: ratio(r.get(f"jax_{kind}_s"), r.get(f"slu_{kind}_s"), ".2f")

    return table(
        f"One factorization and one solve of the Newton matrix I - {p['gamma']} J (state "
        "perturbed) on one CPU core, BLAS on one thread. *JaxLU*: `JaxLU().bind(pattern)`, "
        "`factor` and `solve` jit-compiled (compile times: factor + solve, in s; the solve "
        "includes its backward-error check and refinement); *SuperLU*: `FixedPatternLU`'s "
        "numeric refactorization on the fixed pattern (METIS order) and its solve. Best of 15 "
        "calls in 5 interleaved rounds. *fill*: nnz(L+U) of JaxLU's fronts (amalgamation "
        "zeros included) and of SuperLU's factors; *flops*: one factorization's, with the "
        "padding of batched fronts as a ratio; *error*: max |x - x_spsolve| / max |x_spsolve|; "
        f"*peak RSS*: the process's largest resident set so far.{note}",
        {"problem N": "{problem} {N}", "n": "{n}", "nnz": "{nnz}", "fronts": "{fronts}",
         "max front": "{max_front}", "fill JaxLU": "{factor_entries:.3g}",
         "fill SuperLU": "{slu_fill:.3g}", "flops": "{flops:.2g}",
         "padded / flops": lambda r: f"{r['padded_flops'] / r['flops']:.2f}",
         "compile [s]": lambda r: "plan only" if "skipped" in r else
                        f"{r['compile_factor_s']:.1f} + {r['compile_solve_s']:.1f}",
         "JaxLU factor [ms]": "{jax_factor_s:ms}", "SuperLU factor [ms]": "{slu_factor_s:ms}",
         "factor JaxLU / SuperLU": vs("factor"), "JaxLU solve [ms]": "{jax_solve_s:ms}",
         "SuperLU solve [ms]": "{slu_solve_s:ms}", "solve JaxLU / SuperLU": vs("solve"),
         "error JaxLU / SuperLU": lambda r: "" if "skipped" in r else
                                  f"{r['err_jax']:.0e} / {r['err_slu']:.0e}",
         "peak RSS [MB]": "{peak_rss_mb:.0f}"},
        p["rows"],
    )  # fmt: skip


# ---------------------------------------------------------------------------- whole solves
def diffrax_backends(quick: bool) -> dict:
    jobs = [(6, ["direct", "jax"], 0)] if quick else [
        (32, ["direct", "jax", "auto", "gmres"], 2), (64, ["direct", "jax", "auto"], 1),
        (128, ["direct", "jax", "auto"], 0),
    ]  # fmt: skip
    rows = []
    with threadpool_limits(1, "blas"):
        for N, methods, rounds in jobs:
            prob = make("brusselator_2d", N)
            solvers = {m: sdx.sparse(diffrax.Kvaerno5(), linear_solver=m) for m in methods}
            res = diffrax_solves(prob, solvers, RTOL, ATOL, rounds=rounds, dt0=DT0)
            sj = stiffasd.prepare_jacobian(prob.rhs, 0.0, prob.y0, *prob.args, argnums=1)
            auto = f"auto ({type(AutoLU().choose(with_diagonal(sj.pattern)[0])).__name__})"
            rows += [dict(
                N=N, n=prob.n, linear_solver=auto if m == "auto" else m, runs=rounds + 1,
                **{k: r[k] for k in ("compile_s", "run_s", "steps", "rejected")},
                vs_direct=r["run_s"] / res["direct"]["run_s"],
                diff=rel_diff(r["y1"], res["direct"]["y1"]), peak_rss_mb=peak_rss_mb(),
            ) for m, r in res.items()]  # fmt: skip
    return {"rtol": RTOL, "atol": ATOL, "note": NOTE, "rows": rows}


def render_diffrax_backends(p: dict) -> str:
    return table(
        "Kvaerno5 on the 2D Brusselator, t in [0, 11.5], "
        f"`PIDController(rtol={p['rtol']}, atol={p['atol']})`, dt0 = 1e-3, with "
        "`stiffasd.diffrax.sparse(Kvaerno5(), linear_solver=...)`; one CPU core, BLAS on one "
        "thread. *auto* names the solver `AutoLU` chose. *run*: best of *runs* runs of the "
        "compiled solve, in turns; *vs direct*: run time over `\"direct\"`'s; *diff*: max "
        "|y(t1) - y_direct(t1)| / max |y_direct(t1)|.",
        {"N": "{N}", "n": "{n}", "linear_solver": "`{linear_solver}`", "runs": "{runs}",
         "compile [s]": "{compile_s:.1f}", "run [s]": "{run_s:.2f}",
         "vs direct": "{vs_direct:.2fx}", "steps (rejected)": "{steps} ({rejected})",
         "diff": "{diff:.0e}", "peak RSS [MB]": "{peak_rss_mb:.0f}"},
        p["rows"],
    )  # fmt: skip


# --------------------------------------------------------------------------------- ensemble
def ensemble(quick: bool) -> dict:
    N, members, t1, rtol = (8, 4, 0.1, 1e-5) if quick else (32, 64, 1.5, 1e-5)
    one, params = ensemble_problem(t1, N, members, "direct", rtol, rtol * 1e-2)
    vjax = jax.vmap(ensemble_problem(t1, N, members, "jax", rtol, rtol * 1e-2)[0])
    ps, vdirect = jnp.asarray(params), jax.vmap(one)
    with threadpool_limits(1, "blas"):
        c_one, _, _ = compile_and_time(one, ps[0])
        c_jax, w_jax, (y_jax, st_jax) = compile_and_time(vjax, ps)
        c_dir, w_dir, (y_dir, st_dir) = compile_and_time(vdirect, ps)

        def loop():
            return [jax.jit(one)(p) for p in ps]

        looped = loop()
        fns = {"vmap_jax": lambda: jax.jit(vjax)(ps), "loop_direct": loop,
               "vmap_direct": lambda: jax.jit(vdirect)(ps)}  # fmt: skip
        t = interleaved(fns, rounds=1, reps=1, min_time=0.0)
    t["vmap_jax"], t["vmap_direct"] = min(t["vmap_jax"], w_jax[0]), min(t["vmap_direct"], w_dir[0])
    y_loop = np.stack([np.asarray(y) for y, _ in looped])
    st_loop = np.asarray([int(s) for _, s in looped])
    return dict(
        N=N, n=y_loop.shape[1], members=members, t1=t1, rtol=rtol, times=t, note=NOTE,
        compile_s={"vmap_jax": c_jax, "loop_direct": c_one, "vmap_direct": c_dir},
        diff_jax=rel_diff(y_jax, y_loop), diff_direct=rel_diff(y_dir, y_loop),
        steps=[int(st_loop.min()), int(st_loop.max())],
        same_steps_jax=bool(np.array_equal(np.asarray(st_jax), st_loop)),
        same_steps_direct=bool(np.array_equal(np.asarray(st_dir), st_loop)),
    )  # fmt: skip


def render_ensemble(e: dict) -> str:
    t = e["times"]
    rows = [
        dict(label=label, compile_s=e["compile_s"][k], total=t[k], member=t[k] / e["members"],
             speedup=t["loop_direct"] / t[k], diff=diff, same="yes" if same else "no")
        for k, label, diff, same in (
            ("vmap_jax", '`jax.vmap`, `"jax"`', e["diff_jax"], e["same_steps_jax"]),
            ("loop_direct", 'Python loop, `"direct"`', 0.0, True),
            ("vmap_direct", '`jax.vmap`, `"direct"`', e["diff_direct"], e["same_steps_direct"]),
        )
    ]  # fmt: skip
    return table(
        f"{e['members']} Kvaerno5 solves of the 2D Brusselator (N = {e['N']}, n = {e['n']}), "
        f"A from 3.0 to 3.8, t in [0, {e['t1']:g}], rtol {e['rtol']:g}, atol "
        f"{e['rtol'] * 1e-2:g}; one CPU core, BLAS on one thread. The loop calls one compiled "
        "solve per member (compiled once). *total*: one run of the whole ensemble, best of 2 in "
        "turns (the loop: 1); *speed-up*: the loop's total over the row's; *diff*: max |y - "
        "y_loop| / max |y_loop| over all members; *same steps*: every member took as many "
        f"steps as in the loop ({e['steps'][0]} to {e['steps'][1]}).",
        {"ensemble": "{label}", "compile [s]": "{compile_s:.1f}", "total [s]": "{total:.2f}",
         "per member [ms]": "{member:ms}", "speed-up": "{speedup:.2fx}", "diff": "{diff:.0e}",
         "same steps": "{same}"},
        rows,
    )  # fmt: skip


# ------------------------------------------------------------------------------------- peer
def splineax_solver(prob, args):
    """diffrax's Kvaerno5 with splineax's KLU as its Newton linear solver: the operator diffrax
    builds (a `lineax.JacobianLinearOperator` of the stage equation, no tags) gets a splineax
    sparsity tag, colored by asdex from the stage function ``z - f(t, z)`` (pattern I + J)."""
    import equinox as eqx
    import lineax as lx
    import splineax as splx

    class Tagged(lx.AbstractLinearSolver):
        inner: lx.AbstractLinearSolver
        tag: object = eqx.field(static=True)

        def init(self, operator, options):
            tagged = lx.TaggedLinearOperator(operator, frozenset({self.tag}))
            return self.inner.init(tagged, options)

        def compute(self, state, vector, options):
            return self.inner.compute(state, vector, options)

        def transpose(self, state, options):
            return self.inner.transpose(state, options)

        def conj(self, state, options):
            return self.inner.conj(state, options)

        def assume_full_rank(self):
            return self.inner.assume_full_rank()

    y0 = jnp.asarray(prob.y0)
    tag = splx.sparsity_coloring_tag(lambda z, a: z - prob.rhs(0.0, z, *a), y0, args)
    solver = diffrax.Kvaerno5()
    return eqx.tree_at(lambda s: s.root_finder.linear_solver, solver, Tagged(splx.KLU(), tag))


def peer(quick: bool) -> dict:
    """In the environment with splineax: Kvaerno5 on the Brusselator with splineax's KLU and
    with stiffasd's ``"jax"`` and ``"direct"`` (diffrax's own chord iteration for all)."""
    import importlib.metadata as md

    rows = []
    with threadpool_limits(1, "blas"):
        for N in [6] if quick else [32, 64]:
            rounds, prob = 0 if quick else 2, make("brusselator_2d", N)
            start = time.perf_counter()
            args = tuple(jnp.asarray(a) for a in prob.args)
            solvers = {"splineax KLU": splineax_solver(prob, args)}
            setup_s = time.perf_counter() - start
            for m in ("direct", "jax"):
                solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver=m, iteration="diffrax")
                solvers[f"stiffasd {m}"] = solver
            res = diffrax_solves(prob, solvers, RTOL, ATOL, rounds=rounds, dt0=DT0)
            rows += [dict(
                N=N, n=prob.n, method=name, runs=rounds + 1,
                **{k: r[k] for k in ("compile_s", "run_s", "steps", "rejected")},
                setup_s=setup_s if name.startswith("splineax") else None,
                vs_peer=r["run_s"] / res["splineax KLU"]["run_s"],
                diff=rel_diff(r["y1"], res["stiffasd direct"]["y1"]),
            ) for name, r in res.items()]  # fmt: skip
    versions = {p: md.version(p) for p in ("splineax", "splineax-klujax", "asdex", "jax")}
    return {"rows": rows, "versions": versions, "note": NOTE}


def run_peer(quick: bool) -> dict:
    """Here when splineax imports, else (full runs) in ``STIFFASD_PEER_PYTHON``."""
    try:
        import splineax  # noqa: F401

        return _pinned("peer", quick)
    except ImportError as err:
        here = f"splineax is not importable here ({type(err).__name__}: {err})"
    if quick or not os.path.exists(PEER_PYTHON):
        return {"rows": [], "skipped": f"{here}; set STIFFASD_PEER_PYTHON to a Python with it"}
    try:
        return dict(_pinned("peer", quick, python=PEER_PYTHON), python=PEER_PYTHON)
    except RuntimeError as err:
        return {"rows": [], "skipped": f"{here}; in {PEER_PYTHON}: {str(err)[-1500:]}"}


def render_peer(p: dict) -> str:
    if not p["rows"]:
        return f"Not measured: {p['skipped']}"
    versions = ", ".join(f"{k} {v}" for k, v in p["versions"].items())
    return table(
        "Kvaerno5 on the 2D Brusselator as in *diffrax_backends*, all with diffrax's own "
        "chord iteration (`VeryChord`; stiffasd with `iteration=\"diffrax\"`). *splineax KLU*: "
        "diffrax's Newton operator tagged with `splineax.sparsity_coloring_tag` of the stage "
        "function (asdex detection and coloring; *setup*) and solved by `splineax.KLU` "
        "(SuiteSparse KLU through klujax: analysis and factorization at each Jacobian, "
        f"solves reuse it). Measured in a Python environment of its own: {versions}; one CPU "
        "core, BLAS on one thread. *run*: best of *runs*, in turns; "
        "*vs splineax*: run time over splineax's; *diff*: max |y - y_direct| / max |y_direct| "
        "at t1.",
        {"N": "{N}", "n": "{n}", "method": "{method}", "setup [s]": "{setup_s:.2f}",
         "compile [s]": "{compile_s:.1f}", "run [s]": "{run_s:.2f}", "runs": "{runs}",
         "vs splineax": "{vs_peer:.2fx}", "steps (rejected)": "{steps} ({rejected})",
         "diff": "{diff:.0e}"},
        p["rows"],
    )  # fmt: skip


PARTS = {
    "factor_solve": Part("One factorization and solve", run_factor_solve, render_factor_solve),
    "diffrax_backends": Part("Kvaerno5 with each linear solver",
                             partial(_pinned, "diffrax_backends"), render_diffrax_backends),
    "ensemble": Part("Ensembles: vmap against a loop", partial(_pinned, "ensemble"),
                     render_ensemble),
    "peer": Part("splineax as diffrax's linear solver", run_peer, render_peer),
}  # fmt: skip
