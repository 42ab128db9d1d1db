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

import os
import resource
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
    in_child,
    interleaved,
    ratio,
    save_figure,
    table,
)
from benchmarks.problems import PROBLEMS, TESTSET, ensemble_problem, make
from benchmarks.solve_ivp import _error, reference
from stiffasd import scipy as stiffasd_scipy


def diffrax_solve(prob, solver, rtol, atol, repeat: int, dt0=None) -> dict:
    """Compile and run one diffrax solve of ``prob`` (best of ``repeat`` runs)."""
    t0, t1 = prob.t_span
    term = diffrax.ODETerm(lambda t, y, a: prob.rhs(t, y, *a))
    ctrl = diffrax.PIDController(rtol=rtol, atol=atol)

    def solve(y0, args):
        sol = diffrax.diffeqsolve(
            term, solver, t0, t1, dt0 or 1e-4 * (t1 - t0), y0, args=args,
            stepsize_controller=ctrl, max_steps=200_000,
        )  # fmt: skip
        return sol.ys[-1], sol.stats

    y0, args = jnp.asarray(prob.y0), tuple(jnp.asarray(a) for a in prob.args)
    compile_s, walls, (y1, stats) = compile_and_time(
        solve, y0, args, repeat=repeat, before=sdx.reset_stats
    )
    work = sdx.stats()
    return dict(
        compile_s=compile_s, run_s=float(min(walls)), steps=int(stats["num_steps"]),
        rejected=int(stats["num_rejected_steps"]), y1=np.asarray(y1),
        njev=work.get("jacobians"), nlu=work.get("factorizations"),
    )  # fmt: skip


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
    return dict(
        compile_s=None, run_s=best, steps=int(sol.t.size - 1), rejected=None,
        njev=int(sol.njev), nlu=int(sol.nlu), y1=sol.y[:, -1],
    )  # fmt: skip


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
        for label, solver in (
            ("dense (diffrax default)", diffrax.Kvaerno5()),
            ("stiffasd.diffrax.sparse", sdx.sparse(diffrax.Kvaerno5())),
        ):
            d = diffrax_solve(prob, solver, rtol, atol, repeat)
            d.update(problem=prob.name, n=prob.n, t_span=list(prob.t_span), strategy=label)
            d["error"] = _error(d.pop("y1"), ref)
            rows.append(d)
            print(f"[diffrax] {prob.name} {label} {d['run_s']:.3f} s", flush=True)
        rows[-1]["speedup_vs_dense"] = rows[-2]["run_s"] / rows[-1]["run_s"]
    return {"rtol": rtol, "atol": atol, "repeats": repeat, "rows": rows}


def render_problems(p: dict) -> str:
    rows = [
        [
            d["problem"], d["n"], f"{d['t_span'][0]:g}..{d['t_span'][1]:g}", d["strategy"],
            f"{d['compile_s']:.1f}", f"{d['run_s']:.3f}", ratio(d.get("speedup_vs_dense"), 1.0),
            f"{d['steps']} ({d['rejected']})", f"{d['error']:.1e}",
        ]
        for d in p["rows"]
    ]  # fmt: skip
    return table(
        f"diffrax `Kvaerno5` with `PIDController(rtol={p['rtol']}, atol={p['atol']})`: the dense "
        "default (dense `jacfwd` Jacobian, dense LU) against `stiffasd.diffrax.sparse(Kvaerno5())` "
        f"(sparse Jacobian, sparse LU). *run*: best of {p.get('repeats', 3)}; *error*: max "
        "relative deviation (floor 1) of the final state from a solve_ivp Radau rtol=1e-10 "
        "reference.",
        [
            "problem", "n", "t span", "strategy", "compile [s]", "run [s]", "run vs dense",
            "steps (rejected)", "error",
        ],
        rows,
    )  # fmt: skip


# ------------------------------------------------------------------------------- Brusselator
def _brusselator_jobs(quick: bool):
    if quick:
        return [(6, ["gmres", "scipy BDF"], 1)]
    return [
        (16, ["dense", "sparse", "gmres", "scipy BDF"], 2),
        (32, ["sparse", "gmres", "scipy BDF"], 2),
        (64, ["sparse", "gmres", "scipy BDF"], 2),
        (128, ["sparse", "scipy BDF"], 1),
    ]


def run_brusselator(quick: bool) -> dict:
    rtol, atol = 1e-3, 1e-6
    solvers = {
        "dense": lambda: diffrax.Kvaerno5(),
        "sparse": lambda: sdx.sparse(diffrax.Kvaerno5()),
        "gmres": lambda: sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres", block_size=2),
    }
    rows = []
    for N, methods, repeat in _brusselator_jobs(quick):
        prob = make("brusselator_2d", N)
        ref = scipy_solve(prob, "Radau", 1e-8, 1e-10, 1)["y1"]
        for method in methods:
            if method.startswith("scipy"):
                d = scipy_solve(prob, method.split()[1], rtol, atol, repeat)
            else:
                d = diffrax_solve(prob, solvers[method](), rtol, atol, repeat, dt0=1e-3)
            d.update(N=N, n=prob.n, method=method, repeat=repeat, error=_error(d.pop("y1"), ref))
            d["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append(d)
            print(f"[diffrax] N={N} {method} {d['run_s']:.2f} s", flush=True)
        dense = [d for d in rows if d["N"] == N and d["method"] == "dense"]
        for d in rows:
            if dense and d["N"] == N and d is not dense[0]:
                d["speedup_vs_dense"] = dense[0]["run_s"] / d["run_s"]
    return {"rtol": rtol, "atol": atol, "rows": rows}


def render_brusselator(p: dict) -> str:
    rows = [
        [
            d["N"], d["n"], d["method"], d["repeat"],
            "" if d["compile_s"] is None else f"{d['compile_s']:.1f}", f"{d['run_s']:.2f}",
            ratio(d.get("speedup_vs_dense"), 1.0),
            f"{d['steps']}" + ("" if d["rejected"] is None else f" ({d['rejected']})"),
            d["njev"] or "", d["nlu"] or "", f"{d['error']:.1e}", f"{d['peak_rss_mb']:.0f}",
        ]
        for d in p["rows"]
    ]  # fmt: skip
    return table(
        f"Kvaerno5 on the 2D Brusselator, t in [0, 11.5], rtol={p['rtol']}, atol={p['atol']}, "
        "dt0 = 1e-3. *dense*: diffrax's default; *sparse*: `stiffasd.diffrax.sparse(Kvaerno5())` "
        "(its default `AutoLU`: the compiled `JaxLU` for small systems on a CPU, SuperLU in a "
        "host callback for larger ones); *gmres*: the same with `linear_solver=\"gmres\", block_size=2`; *scipy "
        "BDF*: solve_ivp with `stiffasd.scipy.BDF` and `stiffasd.jac`, same tolerances. *run*: "
        "best of *runs*. *error*: max relative deviation (floor 1) from a Radau rtol=1e-8 "
        "reference. *Jacobians*, *LU*: the sparse Jacobians and host LU factorizations that "
        "`stiffasd.diffrax.stats()` counts (blank: none; the compiled `JaxLU` factors inside the "
        "program). *peak RSS*: the process's largest resident set so far (compilation "
        "included).",
        [
            "N", "n", "method", "runs", "compile [s]", "run [s]", "vs dense",
            "steps (rejected)", "Jacobians", "LU", "error", "peak RSS [MB]",
        ],
        rows,
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


def run_work_precision(quick: bool) -> dict:
    N, rtols, repeat = (6, [1e-3], 1) if quick else (32, [1e-3, 1e-4, 1e-5, 1e-6], 2)
    prob = make("brusselator_2d", N)
    ref = scipy_solve(prob, "Radau", 1e-10, 1e-13, 1)["y1"]
    rows = []
    for rtol in rtols:  # tolerance-major: the methods compared at one rtol run side by side
        for method in ("scipy BDF", "scipy Radau", "Kvaerno5", "Kvaerno5 (iteration=diffrax)"):
            atol = rtol * 1e-3
            if method.startswith("scipy"):
                d = scipy_solve(prob, method.split()[1], rtol, atol, repeat)
            else:
                iteration = "diffrax" if "diffrax" in method else "converge"
                solver = sdx.sparse(diffrax.Kvaerno5(), iteration=iteration)
                d = diffrax_solve(prob, solver, rtol, atol, repeat, dt0=1e-3)
            d.update(method=method, rtol=rtol, error=_error(d.pop("y1"), ref))
            rows.append(d)
            print(f"[diffrax wp] rtol={rtol:g} {method} {d['run_s']:.2f} s", flush=True)
    for d in rows:
        for sm in ("scipy BDF", "scipy Radau"):
            if not d["method"].startswith("scipy"):
                d[f"vs {sm}"] = _equal_error_ratio(d, [r for r in rows if r["method"] == sm])
    return {"N": N, "n": prob.n, "repeat": repeat, "rows": rows}


def render_work_precision(p: dict) -> str:
    rows = [
        [
            d["method"], f"{d['rtol']:g}", f"{d['error']:.2e}", f"{d['run_s']:.2f}",
            "" if d["compile_s"] is None else f"{d['compile_s']:.1f}",
            f"{d['steps']}" + ("" if d["rejected"] is None else f" ({d['rejected']})"),
            d["njev"] or "", d["nlu"] or "",
            *(ratio(d.get(f"vs {sm}"), 1.0, ".2f") if f"vs {sm}" in d else "" for sm in ("scipy BDF", "scipy Radau")),  # fmt: skip
        ]
        for d in p["rows"]
    ]  # fmt: skip
    return table(
        f"Work-precision on the 2D Brusselator, N = {p['N']} (n = {p['n']}), t in [0, 11.5], "
        "atol = rtol * 1e-3. *error*: max |y - ref| / max(|ref|, 1) at t1 against a "
        "`stiffasd.scipy.Radau` rtol=1e-10 solve. *Kvaerno5*: `stiffasd.diffrax.sparse` with "
        "the default chord iteration (`\"converge\"`) or diffrax's own (`iteration=\"diffrax\"`); "
        f"run time best of {p['repeat']}, compile apart. *vs scipy*: run time over the scipy "
        "method's time at the same error (log-log interpolation; blank outside its range). "
        "*Jacobians*, *LU*: as counted by `stiffasd.diffrax.stats()` or scipy (blank: none "
        "counted; the compiled `JaxLU` factors inside the program).",
        [
            "method", "rtol", "error", "run [s]", "compile [s]", "steps (rejected)",
            "Jacobians", "LU", "vs scipy BDF", "vs scipy Radau",
        ],
        rows,
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
        rows.append(dict(rtol=rtol, scd=float(-np.log10(err)), run_s=best, steps=int(steps), rejected=int(rejected)))  # fmt: skip
    return rows


def run_testset(quick: bool) -> dict:
    rtols, repeat = ([1e-4], 1) if quick else ([1e-4, 1e-5, 1e-6, 1e-7, 1e-8], 3)
    out = {}
    for name in ["hires"] if quick else TESTSET:
        out[name] = {it: _testset_runs(*TESTSET[name], it, rtols, repeat) for it in ("converge", "diffrax")}  # fmt: skip
        print(f"[diffrax testset] {name}", flush=True)
    return {"repeat": repeat, "problems": out}


def render_testset(p: dict) -> str:
    def cell(r):
        return f"{r['scd']:.2f}, {r['steps']} ({r['rejected']}), {r['run_s']:.3f}"

    rows = [
        [name.upper(), f"{a['rtol']:.0e}", cell(a), cell(b)]
        for name, res in p["problems"].items()
        for a, b in zip(res["converge"], res["diffrax"], strict=True)
    ]
    return table(
        "Kvaerno5 (`stiffasd.diffrax.sparse`, default linear solver) with "
        "`PIDController(rtol, atol = rtol * scale)` on the stiff IVP test set (Mazzia & "
        "Magherini): *scd* = correct digits at t1 against the test set's reference, steps "
        f"(rejected), run time [s] (best of {p['repeat']} compiled runs) for both chord "
        "iterations.",
        ["problem", "rtol", '`"converge"`: scd, steps, s', '`"diffrax"`: scd, steps, s'],
        rows,
    )


def plot_testset(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    for i, (name, res) in enumerate(p["problems"].items()):
        for it, style in (("converge", "o-"), ("diffrax", "s--")):
            rows = res[it]
            ax.semilogx([r["run_s"] for r in rows], [r["scd"] for r in rows], style, color=f"C{i}", label=f'{name.upper()}, iteration="{it}"')  # fmt: skip
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
    times = interleaved({"split": lambda: split(params), "jax_vmap": lambda: plain(params)}, rounds=2, reps=1, min_time=0.0)  # fmt: skip
    (ys, steps), (yr, steps_r) = split(params), plain(params)
    diff = float(np.abs(np.asarray(ys) - np.asarray(yr)).max() / np.abs(np.asarray(yr)).max())
    return dict(
        devices=devices, t1=t1, N=N, n=2 * N * N, solves=len(params), max_rel_diff=diff,
        steps=np.asarray(steps).tolist(), steps_equal=bool(np.array_equal(steps, steps_r)),
        split_s=times["split"], jax_vmap_s=times["jax_vmap"],
    )  # fmt: skip


def run_ensemble(quick: bool) -> dict:
    t1, N = (0.05, 6) if quick else (1.0, 16)
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}"
    return in_child("benchmarks.diffrax:ensemble_child", DEVICES, t1, N, env={"XLA_FLAGS": flags})


def render_ensemble(e: dict) -> str:
    return table(
        f"{e['solves']} Brusselator solves (N = {e['N']}, n = {e['n']}, A from 3.0 to 3.8; "
        f"Kvaerno5, sparse Newton with GMRES, t in [0, {e['t1']:g}], rtol 1e-6) split over "
        f"{e['devices']} forced host devices by `shard_vmap`, against `jax.vmap` on one device; "
        "wall time of a compiled call, best of 2 in turns. The forced devices share the "
        "machine's cores: the times say what the split costs, not how it scales.",
        ["max rel. diff", "equal steps", "steps", "split [s]", "jax.vmap [s]", "vmap / split"],
        [[
            f"{e['max_rel_diff']:.1e}", "yes" if e["steps_equal"] else "no",
            f"{min(e['steps'])}-{max(e['steps'])}", f"{e['split_s']:.2f}",
            f"{e['jax_vmap_s']:.2f}", ratio(e["jax_vmap_s"], e["split_s"], ".2f"),
        ]],
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
