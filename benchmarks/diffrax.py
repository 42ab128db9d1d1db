"""Whole solves with diffrax: ``stiffasd.diffrax.sparse(solver)`` against diffrax's dense default.

Every diffrax solve is compiled first (``jax.jit(...).lower().compile()``, timed apart: for
stiffasd it includes detection and coloring, which run while tracing); *run* is the best of
repeated runs of the compiled solve. scipy rows use ``jac=stiffasd.jac(rhs)`` with the
``stiffasd.scipy`` solvers, prepared before the clock starts.

* ``problems``: Kvaerno5 with a PID controller on small instances of three problems (small, so
  that the dense default finishes), errors against a tight solve_ivp Radau reference.
* ``brusselator``: Kvaerno5 on the 2D Brusselator, t in [0, 11.5], rtol 1e-3: the dense
  default (at n = 512), the direct sparse LU, GMRES with block Jacobi, and scipy's BDF.
* ``work_precision``: error against run time on the 2D Brusselator (N = 32) for Kvaerno5 with
  both chord iterations (``"converge"``, the default, and ``"diffrax"``) and scipy's BDF and
  Radau; the figure ``docs/benchmarks/diffrax_work_precision.png``.
* ``testset``: correct digits against run time on the stiff IVP test set (HIRES, ROBER, OREGO)
  for both chord iterations; the figure ``docs/benchmarks/diffrax_ivp_work_precision.png``.
* ``ensemble``: 16 solves split over 4 forced host devices by `stiffasd.sharding.shard_vmap`
  against ``jax.vmap`` (in a process of its own: forced devices exist only if set before JAX
  starts).
"""

from __future__ import annotations

import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

import stiffasd
import stiffasd.diffrax as sdx
from benchmarks._harness import (
    Part,
    best_of,
    compile_and_time,
    figure,
    in_devices,
    interleaved,
    peak_rss_mb,
    ratio,
    rel_diff,
    save_figure,
    table,
)
from benchmarks.problems import PROBLEMS, TESTSET, ensemble_problem, make
from benchmarks.solve_ivp import _error, reference
from stiffasd import scipy as stiffasd_scipy


def diffrax_solves(prob, solvers: dict, rtol, atol, *, repeat=1, rounds=0, dt0=None) -> dict:
    """Compile (timed apart) and run a diffrax solve of ``prob`` with each of ``solvers``
    (``PIDController(rtol, atol)``; dt0 by default 1e-4 of the time span): best of ``repeat``
    runs, each after `stiffasd.diffrax.reset_stats` (the counts of the last run kept); with
    ``rounds``, the compiled solves then take turns for as many more runs (`interleaved`).
    The linalg suite's solves come here too."""
    t0, t1 = prob.t_span
    term = diffrax.ODETerm(lambda t, y, a: prob.rhs(t, y, *a))
    ctrl = diffrax.PIDController(rtol=rtol, atol=atol)
    args = jnp.asarray(prob.y0), tuple(jnp.asarray(a) for a in prob.args)
    out, runs = {}, {}
    for name, solver in solvers.items():

        def solve(y0, args, solver=solver):
            sol = diffrax.diffeqsolve(
                term, solver, t0, t1, dt0 or 1e-4 * (t1 - t0), y0, args=args,
                stepsize_controller=ctrl, max_steps=200_000,
            )  # fmt: skip
            return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_rejected_steps"]

        compile_s, walls, (y1, steps, rejected) = compile_and_time(
            solve, *args, repeat=repeat, before=sdx.reset_stats
        )
        work = sdx.stats()
        out[name] = dict(
            compile_s=compile_s, run_s=min(walls), steps=int(steps), rejected=int(rejected),
            y1=np.asarray(y1), njev=work.get("jacobians"), nlu=work.get("factorizations"),
        )  # fmt: skip
        runs[name] = lambda s=solve: jax.jit(s)(*args)
        print(f"[{prob.name}] {name}: compile {compile_s:.1f} + run {min(walls):.2f} s", flush=True)
    for name, t in interleaved(runs, rounds=rounds, reps=1, min_time=0.0).items() if rounds else ():
        out[name]["run_s"] = min(out[name]["run_s"], t)
    return out


def scipy_solve(prob, method: str, rtol, atol, repeat: int) -> dict:
    """solve_ivp with the full stack (prepared and compiled before the clock starts)."""
    fun, jac = prob.numpy_rhs(), stiffasd.jac(prob.rhs)
    fun(prob.t_span[0], prob.y0, *prob.args)
    jac(prob.t_span[0], prob.y0, *prob.args)
    best, sol = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        sol = solve_ivp(
            fun, prob.t_span, prob.y0, method=getattr(stiffasd_scipy, method), args=prob.args,
            jac=jac, rtol=rtol, atol=atol,
        )  # fmt: skip
        best = min(best, time.perf_counter() - start)
    print(f"[{prob.name}] scipy {method}: run {best:.2f} s", flush=True)
    return dict(
        compile_s=None, run_s=best, steps=int(sol.t.size - 1), rejected=None,
        njev=int(sol.njev), nlu=int(sol.nlu), y1=sol.y[:, -1],
    )  # fmt: skip


#: The methods compared: a diffrax solver, or the name of a `stiffasd.scipy` method.
SOLVERS = {
    "dense": lambda: diffrax.Kvaerno5(),
    "sparse": lambda: sdx.sparse(diffrax.Kvaerno5()),
    "gmres": lambda: sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres", block_size=2),
    "Kvaerno5": lambda: sdx.sparse(diffrax.Kvaerno5()),  # iteration="converge", the default
    "Kvaerno5 (iteration=diffrax)": lambda: sdx.sparse(diffrax.Kvaerno5(), iteration="diffrax"),
    "scipy BDF": lambda: "BDF",
    "scipy Radau": lambda: "Radau",
}


def _solve(prob, name: str, rtol, atol, repeat: int, ref, /, dt0=1e-3, **row) -> dict:
    """One row: ``SOLVERS[name]`` on ``prob``, its ``error`` against ``ref``, and ``row``."""
    solver = SOLVERS[name]()
    if isinstance(solver, str):
        d = scipy_solve(prob, solver, rtol, atol, repeat)
    else:
        d = diffrax_solves(prob, {name: solver}, rtol, atol, repeat=repeat, dt0=dt0)[name]
    d.update(row, error=_error(d.pop("y1"), ref))
    return d


def _steps(d) -> str:
    return f"{d['steps']}" + ("" if d["rejected"] is None else f" ({d['rejected']})")


#: The work columns of the Brusselator tables (blank: none counted).
WORK = {"steps (rejected)": _steps, "Jacobians": lambda d: d["njev"] or "",
        "LU": lambda d: d["nlu"] or ""}  # fmt: skip


# ---------------------------------------------------------------------------------- problems
CASES = {
    "brusselator_2d": dict(N=12, t_span=(0.0, 2.0)),
    "reservoir_exchange": dict(n_cells=300, t_span=(0.0, 0.5)),
    "flame_1d": dict(N=80, t_span=(0.0, 1.0)),
}


def run_problems(quick: bool) -> dict:
    rtol, atol, repeat = 1e-5, 1e-7, 1 if quick else 3
    rows = []
    for name, kw in list(CASES.items())[:1] if quick else CASES.items():
        prob = PROBLEMS[name](**(dict(kw, N=6) if quick else kw))
        ref = reference(prob)
        rows += [
            _solve(prob, method, rtol, atol, repeat, ref, dt0=None, problem=prob.name, n=prob.n,
                   t_span=list(prob.t_span), strategy=label)
            for method, label in (("dense", "dense (diffrax default)"),
                                  ("sparse", "stiffasd.diffrax.sparse"))
        ]  # fmt: skip
        rows[-1]["speedup_vs_dense"] = rows[-2]["run_s"] / rows[-1]["run_s"]
    return {"rtol": rtol, "atol": atol, "repeats": repeat, "rows": rows}


def render_problems(p: dict) -> str:
    return table(
        f"diffrax `Kvaerno5` with `PIDController(rtol={p['rtol']}, atol={p['atol']})`: the dense "
        "default (dense `jacfwd` Jacobian, dense LU) against `stiffasd.diffrax.sparse(Kvaerno5())` "
        f"(sparse Jacobian, sparse LU). *run*: best of {p.get('repeats', 3)}; *error*: max "
        "relative deviation (floor 1) of the final state from a solve_ivp Radau rtol=1e-10 "
        "reference.",
        {"problem": "{problem}", "n": "{n}",
         "t span": lambda d: f"{d['t_span'][0]:g}..{d['t_span'][1]:g}", "strategy": "{strategy}",
         "compile [s]": "{compile_s:.1f}", "run [s]": "{run_s:.3f}",
         "run vs dense": "{speedup_vs_dense:.1fx}", "steps (rejected)": "{steps} ({rejected})",
         "error": "{error:.1e}"},
        p["rows"],
    )  # fmt: skip


# ------------------------------------------------------------------------------- Brusselator
BRUSSELATOR = [
    (16, ["dense", "sparse", "gmres", "scipy BDF"], 2), (32, ["sparse", "gmres", "scipy BDF"], 2),
    (64, ["sparse", "gmres", "scipy BDF"], 2), (128, ["sparse", "scipy BDF"], 1),
]  # fmt: skip


def run_brusselator(quick: bool) -> dict:
    rtol, atol, rows = 1e-3, 1e-6, []
    for N, methods, repeat in [(6, ["gmres", "scipy BDF"], 1)] if quick else BRUSSELATOR:
        prob = make("brusselator_2d", N)
        ref = scipy_solve(prob, "Radau", 1e-8, 1e-10, 1)["y1"]
        group = [
            dict(_solve(prob, m, rtol, atol, repeat, ref, N=N, n=prob.n, method=m, repeat=repeat),
                 peak_rss_mb=peak_rss_mb())
            for m in methods
        ]  # fmt: skip
        for d in group[1:] if methods[0] == "dense" else []:
            d["speedup_vs_dense"] = group[0]["run_s"] / d["run_s"]
        rows += group
    return {"rtol": rtol, "atol": atol, "rows": rows}


def render_brusselator(p: dict) -> str:
    return table(
        f"Kvaerno5 on the 2D Brusselator, t in [0, 11.5], rtol={p['rtol']}, atol={p['atol']}, "
        "dt0 = 1e-3. *dense*: diffrax's default; *sparse*: `stiffasd.diffrax.sparse(Kvaerno5())` "
        "(its default `AutoLU`: the compiled `JaxLU` for small systems on a CPU, SuperLU in a host "
        "callback for larger ones); *gmres*: the same with `linear_solver=\"gmres\", "
        "block_size=2`; *scipy BDF*: solve_ivp with `stiffasd.scipy.BDF` and `stiffasd.jac`, same "
        "tolerances. *run*: best of *runs*. *error*: max relative deviation (floor 1) from a Radau "
        "rtol=1e-8 reference. *Jacobians*, *LU*: the sparse Jacobians and host LU factorizations "
        "that `stiffasd.diffrax.stats()` counts (blank: none; the compiled `JaxLU` factors inside "
        "the program). *peak RSS*: the process's largest resident set so far (compilation "
        "included).",
        {"N": "{N}", "n": "{n}", "method": "{method}", "runs": "{repeat}",
         "compile [s]": "{compile_s:.1f}", "run [s]": "{run_s:.2f}",
         "vs dense": "{speedup_vs_dense:.1fx}", **WORK, "error": "{error:.1e}",
         "peak RSS [MB]": "{peak_rss_mb:.0f}"},
        p["rows"],
    )  # fmt: skip


# ---------------------------------------------------------------------------- work-precision
def _equal_error_ratio(row, curve) -> float | None:
    """Run time of ``row`` over the ``curve``'s run time at the same error (log-log linear
    interpolation of the curve; None outside its range)."""
    pts = sorted((r["error"], r["run_s"]) for r in curve)
    le, lt = np.log([e for e, _ in pts]), np.log([t for _, t in pts])
    x = np.log(row["error"])
    if not le.min() <= x <= le.max():
        return None
    return row["run_s"] / float(np.exp(np.interp(x, le, lt)))


SCIPY = ("scipy BDF", "scipy Radau")


def run_work_precision(quick: bool) -> dict:
    N, rtols, repeat = (6, [1e-3], 1) if quick else (32, [1e-3, 1e-4, 1e-5, 1e-6], 2)
    prob = make("brusselator_2d", N)
    ref = scipy_solve(prob, "Radau", 1e-10, 1e-13, 1)["y1"]
    rows = [  # tolerance-major: the methods compared at one rtol run side by side
        _solve(prob, method, rtol, rtol * 1e-3, repeat, ref, method=method, rtol=rtol)
        for rtol in rtols
        for method in (*SCIPY, "Kvaerno5", "Kvaerno5 (iteration=diffrax)")
    ]
    for d in rows:
        for sm in SCIPY if d["method"] not in SCIPY else ():
            d[f"vs {sm}"] = _equal_error_ratio(d, [r for r in rows if r["method"] == sm])
    return {"N": N, "n": prob.n, "repeat": repeat, "rows": rows}


def render_work_precision(p: dict) -> str:
    def vs(key):  # blank for the scipy rows
        return lambda d: ratio(d[key], 1.0, ".2f") if key in d else ""

    return table(
        f"Work-precision on the 2D Brusselator, N = {p['N']} (n = {p['n']}), t in [0, 11.5], "
        "atol = rtol * 1e-3. *error*: max |y - ref| / max(|ref|, 1) at t1 against a "
        "`stiffasd.scipy.Radau` rtol=1e-10 solve. *Kvaerno5*: `stiffasd.diffrax.sparse` with "
        "the default chord iteration (`\"converge\"`) or diffrax's own (`iteration=\"diffrax\"`); "
        f"run time best of {p['repeat']}, compile apart. *vs scipy*: run time over the scipy "
        "method's time at the same error (log-log interpolation; blank outside its range). "
        "*Jacobians*, *LU*: as counted by `stiffasd.diffrax.stats()` or scipy (blank: none "
        "counted; the compiled `JaxLU` factors inside the program).",
        {"method": "{method}", "rtol": "{rtol:g}", "error": "{error:.2e}", "run [s]": "{run_s:.2f}",
         "compile [s]": "{compile_s:.1f}", **WORK, **{f"vs {sm}": vs(f"vs {sm}") for sm in SCIPY}},
        p["rows"],
    )  # fmt: skip


def plot_work_precision(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    for i, method in enumerate(dict.fromkeys(d["method"] for d in p["rows"])):
        pts = sorted((d["error"], d["run_s"]) for d in p["rows"] if d["method"] == method)
        style = "--o" if method.startswith("scipy") else "-s"
        ax.loglog(*zip(*pts, strict=True), style, color=f"C{i}", label=method)
    return save_figure(
        fig, ax, directory / "diffrax_work_precision.png",
        xlabel="error at t1 (max |y - ref| / max(|ref|, 1))",
        ylabel="run time [s] (diffrax: compile excluded)",
        title=f"2D Brusselator, N = {p['N']} (n = {p['n']})",
    )  # fmt: skip


# ------------------------------------------------------------------------------- IVP test set
def _testset_runs(rhs, args, y0, t1, dt0, ref, atol_scale, floor, iteration, rtols, repeat):
    """One compiled solve per iteration (rtol and atol traced), run at every tolerance."""
    solver = sdx.sparse(diffrax.Kvaerno5(), iteration=iteration)
    y0, args = jnp.asarray(y0, dtype=float), None if args is None else jnp.asarray(args)

    @jax.jit
    def run(rtol, atol):
        ctrl = diffrax.PIDController(rtol=rtol, atol=atol)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs), solver, 0.0, t1, dt0, y0, args=args, stepsize_controller=ctrl,
            max_steps=100_000,
        )  # fmt: skip
        return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_rejected_steps"]

    rows, ref = [], np.asarray(ref)
    for rtol in rtols:
        tol = (jnp.asarray(rtol), jnp.asarray(rtol * atol_scale))
        best = best_of(run, *tol, reps=repeat, min_time=0.0)[0]
        y, steps, rejected = run(*tol)
        err = np.max(np.abs(np.asarray(y) - ref) / np.maximum(np.abs(ref), floor))
        scd = float(-np.log10(err))
        rows.append(dict(rtol=rtol, scd=scd, run_s=best, steps=int(steps), rejected=int(rejected)))
    return rows


def run_testset(quick: bool) -> dict:
    rtols, repeat = ([1e-4], 1) if quick else ([1e-4, 1e-5, 1e-6, 1e-7, 1e-8], 3)
    out = {}
    for name in ["hires"] if quick else TESTSET:
        out[name] = {
            it: _testset_runs(*TESTSET[name], it, rtols, repeat) for it in ("converge", "diffrax")
        }
        print(f"[diffrax testset] {name}", flush=True)
    return {"repeat": repeat, "problems": out}


def render_testset(p: dict) -> str:
    def cell(it):  # correct digits, steps (rejected), run time of one iteration
        return lambda r: "{scd:.2f}, {steps} ({rejected}), {run_s:.3f}".format(**r[it])

    return table(
        "Kvaerno5 (`stiffasd.diffrax.sparse`, default linear solver) with "
        "`PIDController(rtol, atol = rtol * scale)` on the stiff IVP test set (Mazzia & "
        "Magherini): *scd* = correct digits at t1 against the test set's reference, steps "
        f"(rejected), run time [s] (best of {p['repeat']} compiled runs) for both chord "
        "iterations.",
        {"problem": "{problem}", "rtol": "{rtol:.0e}",
         '`"converge"`: scd, steps, s': cell("converge"),
         '`"diffrax"`: scd, steps, s': cell("diffrax")},
        [
            dict(problem=name.upper(), rtol=c["rtol"], converge=c, diffrax=d)
            for name, res in p["problems"].items()
            for c, d in zip(res["converge"], res["diffrax"], strict=True)
        ],
    )  # fmt: skip


def plot_testset(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    for i, (name, res) in enumerate(p["problems"].items()):
        for it, style in (("converge", "o-"), ("diffrax", "s--")):
            run_s, scd = ([r[k] for r in res[it]] for k in ("run_s", "scd"))
            label = f'{name.upper()}, iteration="{it}"'
            ax.semilogx(run_s, scd, style, color=f"C{i}", label=label)
    return save_figure(
        fig, ax, directory / "diffrax_ivp_work_precision.png", xlabel="run time [s]",
        ylabel="correct digits at t1 (scd)", title="Kvaerno5 on the stiff IVP test set",
    )  # fmt: skip


# ------------------------------------------------------------------------- sharded ensemble
DEVICES = 4


def ensemble_child(devices: int, t1: float, N: int) -> dict:
    """In a process with ``devices`` forced host devices: the ensemble split by `shard_vmap`
    against ``jax.vmap`` on one device."""
    from stiffasd.sharding import shard_vmap

    solve_one, params = ensemble_problem(t1, N)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("batch",))
    split, plain = shard_vmap(solve_one, mesh), jax.jit(jax.vmap(solve_one))
    fns = {"split": lambda: split(params), "jax_vmap": lambda: plain(params)}
    times = interleaved(fns, rounds=2, reps=1, min_time=0.0)
    (ys, steps), (yr, steps_r) = split(params), plain(params)
    return dict(
        devices=devices, t1=t1, N=N, n=2 * N * N, solves=len(params), max_rel_diff=rel_diff(ys, yr),
        steps=np.asarray(steps).tolist(), steps_equal=bool(np.array_equal(steps, steps_r)),
        split_s=times["split"], jax_vmap_s=times["jax_vmap"],
    )  # fmt: skip


def run_ensemble(quick: bool) -> dict:
    t1, N = (0.05, 6) if quick else (1.0, 16)
    return in_devices("benchmarks.diffrax:ensemble_child", DEVICES, t1, N)


def render_ensemble(e: dict) -> str:
    return table(
        f"{e['solves']} Brusselator solves (N = {e['N']}, n = {e['n']}, A from 3.0 to 3.8; "
        f"Kvaerno5, sparse Newton with GMRES, t in [0, {e['t1']:g}], rtol 1e-6) split over "
        f"{e['devices']} forced host devices by `shard_vmap`, against `jax.vmap` on one device; "
        "wall time of a compiled call, best of 2 in turns. The forced devices share the "
        "machine's cores: the times say what the split costs, not how it scales.",
        {"max rel. diff": "{max_rel_diff:.1e}",
         "equal steps": lambda e: "yes" if e["steps_equal"] else "no",
         "steps": lambda e: f"{min(e['steps'])}-{max(e['steps'])}", "split [s]": "{split_s:.2f}",
         "jax.vmap [s]": "{jax_vmap_s:.2f}",
         "vmap / split": lambda e: ratio(e["jax_vmap_s"], e["split_s"], ".2f")},
        [e],
    )  # fmt: skip


PARTS = {
    "problems": Part("Kvaerno5, dense against sparse", run_problems, render_problems),
    "brusselator": Part("2D Brusselator against n", run_brusselator, render_brusselator),
    "work_precision": Part(
        "Work-precision", run_work_precision, render_work_precision, plot_work_precision
    ),
    "testset": Part("Stiff IVP test set", run_testset, render_testset, plot_testset),
    "ensemble": Part("Sharded ensemble", run_ensemble, render_ensemble),
}
