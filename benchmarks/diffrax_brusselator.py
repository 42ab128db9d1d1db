"""Kvaerno5 on the 2D Brusselator: diffrax's dense default against stiffasd.diffrax.

    python benchmarks/diffrax_brusselator.py --N 16 32 --methods dense direct gmres scipy
    python benchmarks/diffrax_brusselator.py --N 64 128 --methods direct gmres scipy

Problem: `stiffasd.problems.brusselator_2d(N)` (alpha = 10 scaled by 1/dx^2, A = 3.4, B = 1,
periodic 5-point Laplacian, forcing from t = 1.1), t in [0, 11.5], PIDController rtol 1e-3 /
atol 1e-6, dt0 = 1e-3. Compile time (jax.jit lower + compile) is reported apart from run time
(best of ``--repeat`` runs of the compiled solve). "scipy" is solve_ivp BDF with
``jac=stiffasd.jac(rhs)`` at the same tolerances, for reference ("scipy-fixed": the same with
``method=stiffasd.scipy.BDF``, the fixed-pattern LU); "direct-diffrax" is the direct solver with
diffrax's own chord termination (``iteration="diffrax"``). The final state of every run is
compared with a tight reference (solve_ivp Radau, rtol 1e-8, or with ``--ref bdf`` BDF rtol 1e-6,
with stiffasd's exact Jacobian).

Writes benchmarks/results/diffrax_brusselator[-TAG].json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd  # noqa: E402
import stiffasd.diffrax as sdx  # noqa: E402
import stiffasd.scipy as ss  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from benchmarks._timing import compile_and_time  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402

RTOL, ATOL, T1, DT0 = 1e-3, 1e-6, 11.5, 1e-3


def _solver(method: str, block_size: int):
    if method == "dense":
        return diffrax.Kvaerno5()
    if method == "direct":
        return sdx.sparse(diffrax.Kvaerno5())
    if method == "direct-diffrax":  # diffrax's own VeryChord termination (the old default)
        return sdx.sparse(diffrax.Kvaerno5(), iteration="diffrax")
    if method == "gmres":
        return sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres", block_size=block_size)
    raise ValueError(method)


def run_diffrax(problem, method: str, repeat: int, block_size: int) -> dict:
    solver = _solver(method, block_size)
    term = diffrax.ODETerm(problem.rhs)
    ctrl = diffrax.PIDController(rtol=RTOL, atol=ATOL)

    def solve(y0, p):
        sol = diffrax.diffeqsolve(
            term, solver, 0.0, T1, DT0, y0, args=p, stepsize_controller=ctrl, max_steps=100_000
        )
        return sol.ys[-1], sol.stats

    y0 = jax.numpy.asarray(problem.y0)
    p = jax.numpy.asarray(problem.args[0])
    compile_s, walls, (y1, stats) = compile_and_time(
        solve, y0, p, repeat=repeat, before=sdx.reset_stats
    )
    best = min(walls)
    work = sdx.stats()
    steps = int(stats["num_steps"])
    rec = {
        "method": f"diffrax Kvaerno5 {method}",
        "compile_s": compile_s,
        "run_s": best,
        "steps": steps,
        "accepted": int(stats["num_accepted_steps"]),
        "rejected": int(stats["num_rejected_steps"]),
        "y1": np.asarray(y1),
    }
    rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if method != "dense":
        rec["jacobians_per_step"] = work["jacobians"] / steps
        if method.startswith("direct"):
            rec["factorizations_per_step"] = work["factorizations"] / steps
            rec["solves_per_step"] = work["solves"] / steps
    return rec


def prepared_scipy_inputs(problem):
    """``(fun, jac)`` for solve_ivp, both compiled and warmed up (not timed): the jitted
    right-hand side returning NumPy arrays and a prepared ``stiffasd.jac``."""
    jac = stiffasd.jac(problem.rhs)
    rhs = jax.jit(problem.rhs)
    rhs(0.0, problem.y0, *problem.args).block_until_ready()
    jac(0.0, problem.y0, *problem.args)  # detection, coloring, compilation

    def f(t, y, *a):
        return np.asarray(rhs(t, y, *a))

    return f, jac


def run_scipy(problem, rtol=RTOL, atol=ATOL, method="BDF") -> dict:
    """solve_ivp with ``jac=stiffasd.jac(rhs)``; ``method`` "BDF"/"Radau" (scipy's classes) or
    "fixed-BDF" (`stiffasd.scipy.BDF`: fixed-pattern LU)."""
    f, jac = prepared_scipy_inputs(problem)
    t = time.perf_counter()
    sol = solve_ivp(
        f,
        (0.0, T1),
        np.asarray(problem.y0),
        method=ss.BDF if method == "fixed-BDF" else method,
        args=problem.args,
        jac=jac,
        rtol=rtol,
        atol=atol,
    )
    elapsed = time.perf_counter() - t
    return {
        "method": f"scipy {method} + stiffasd.jac",
        "compile_s": None,
        "run_s": elapsed,
        "steps": int(sol.t.size - 1),
        "njev": int(sol.njev),
        "nlu": int(sol.nlu),
        "y1": sol.y[:, -1],
    }


def write(records: list, tag: str) -> None:
    # speed-ups against the dense default where both ran
    for rec in records:
        dense = [r for r in records if r["N"] == rec["N"] and r["method"].endswith("dense")]
        if dense and not rec["method"].endswith("dense"):
            rec["speedup_vs_dense"] = dense[0]["run_s"] / rec["run_s"]

    name = "diffrax_brusselator" + (f"-{tag}" if tag else "")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": dict(machine(), loadavg=os.getloadavg()), "rtol": RTOL, "atol": ATOL}
    out.update(t1=T1, records=records)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    lines = [
        f"# Kvaerno5 on the 2D Brusselator (t in [0, {T1}], rtol {RTOL}, atol {ATOL})",
        "",
        "| N | n | method | compile s | run s | speed-up vs dense | steps (rej.) | "
        "Jac./step | LU/step | max scaled err | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:

        def fmt(key, spec=".2f", r=r):
            v = r.get(key)
            return "" if v is None else format(v, spec)

        lines.append(
            f"| {r['N']} | {r['n']} | {r['method']} | {fmt('compile_s')} | {fmt('run_s')} | "
            f"{fmt('speedup_vs_dense', '.1f')} | {r['steps']} ({r.get('rejected', '')}) | "
            f"{fmt('jacobians_per_step')} | {fmt('factorizations_per_step')} | "
            f"{fmt('max_scaled_err', '.2g')} | {fmt('peak_rss_mb', '.0f')} |"
        )
    m = out["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu')}, {m.get('cpu_count')} cores (shared, noisy), "
        f"{m.get('mem_total')}; jax {m.get('jax')}, diffrax {m.get('diffrax')}, "
        f"scipy {m.get('scipy')}, python {m.get('python')}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in m['loadavg'])}. Peak RSS: the process's maximum "
        "resident set so far (ru_maxrss; compilation included).",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--methods", nargs="+", default=["dense", "direct", "gmres", "scipy"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=2)
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--ref",
        choices=["radau", "bdf"],
        default="radau",
        help="reference: Radau rtol 1e-8 (default) or BDF rtol 1e-6 (cheaper)",
    )
    opts = parser.parse_args()

    records = []
    for N in opts.N:
        problem = brusselator_2d(N)
        if opts.ref == "radau":
            ref = run_scipy(problem, rtol=1e-8, atol=1e-10, method="Radau")["y1"]
        else:
            ref = run_scipy(problem, rtol=1e-6, atol=1e-9, method="BDF")["y1"]
        for method in opts.methods:
            print(f"N={N} {method} ...", flush=True)
            if method == "scipy":
                rec = run_scipy(problem)
            elif method == "scipy-fixed":
                rec = run_scipy(problem, method="fixed-BDF")
            else:
                rec = run_diffrax(problem, method, opts.repeat, opts.block_size)
            y1 = rec.pop("y1")
            rec["N"], rec["n"] = N, problem.n
            rec["max_err_vs_reference"] = float(np.max(np.abs(y1 - ref)))
            rec["max_scaled_err"] = float(np.max(np.abs(y1 - ref) / (ATOL + RTOL * np.abs(ref))))
            records.append(rec)
            print(json.dumps(rec), flush=True)
            write(records, opts.tag)  # keep partial results if a later run is cut off

    write(records, opts.tag)


if __name__ == "__main__":
    main()
