"""Where the time of a sparse diffrax solve goes: Brusselator 2D, implicit diffrax solvers.

    python benchmarks/diffrax_profile.py --N 32 64 --solvers Kvaerno5 --controllers default

For each (N, solver, step-size controller) it runs the jitted solve once (after compiling) and
splits the run time into

* ``factor``: host seconds inside the LU engine (`stiffasd.scipy.FixedPatternLU`), timed in the
  `DirectLU` callbacks;
* ``solve``: host seconds in the triangular solves, same;
* ``callback``: number of host round trips (factor + solve callbacks) times the cost of one
  no-op `jax.pure_callback` round trip with the same argument sizes, measured in a jitted loop;
* ``jacobian``: number of sparse Jacobians times the cost of one compressed-JVP evaluation and
  decompression, measured in a jitted loop;
* ``rhs``: number of vector-field evaluations (one per chord iteration plus one per step)
  times the cost of one evaluation, measured in a jitted loop;
* ``rest``: the remainder (diffrax's step logic, the controller, the stage arithmetic).

It also counts steps, rejected steps and why they were rejected (a failed chord iteration gives
an infinite error estimate; otherwise the error estimate exceeded the tolerance), chord
iterations (= solves) per step, Jacobians and factorizations per step.

Controllers: ``default`` is ``PIDController(rtol, atol)`` (diffrax's defaults: an I controller,
pcoeff = 0, icoeff = 1, factormax = 10); ``pid`` is the PID controller diffrax's docs suggest for
stiff problems (pcoeff = 0.3, icoeff = 0.4); a suffix ``-fmaxF`` sets factormax = F.
Solvers: a diffrax solver name, optionally ``:diffrax`` for `SparseVeryChord(iteration="diffrax")`
(diffrax's VeryChord termination) instead of the default ``iteration="converge"``.

Writes benchmarks/results/diffrax_profile[-TAG].json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd  # noqa: E402
import stiffasd.diffrax as sdx  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from benchmarks._timing import compile_and_time, loop_time  # noqa: E402
from benchmarks.diffrax_work_precision import DT0, T1, controller_options  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402


class _Rejections:
    """Host-side tally of the controller's decisions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.accepted = self.rejected_newton = self.rejected_error = 0

    def record(self, keep, newton_failed):
        with self.lock:
            if bool(keep):
                self.accepted += 1
            elif bool(newton_failed):
                self.rejected_newton += 1
            else:
                self.rejected_error += 1


TALLY = _Rejections()


class CountingPID(diffrax.PIDController):
    """PIDController that reports each accept/reject decision and its cause to the host."""

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        out = super().adapt_step_size(t0, t1, y0, y1_candidate, args, y_error, error_order, state)
        keep = out[0]
        newton_failed = jnp.any(jnp.isinf(jax.flatten_util.ravel_pytree(y_error)[0]))
        jax.debug.callback(TALLY.record, keep, newton_failed)
        return out


def unit_costs(problem) -> dict:
    """Cost of one RHS evaluation, one sparse Jacobian, one no-op callback round trip."""
    p = jnp.asarray(problem.args[0])
    y0 = jnp.asarray(problem.y0)
    rhs = problem.rhs
    sj = stiffasd.prepare_jacobian(lambda y: rhs(1.0, y, p), y0, mode="forward")
    rhs_s = loop_time(lambda y: rhs(1.0, y, p), y0, 2000)
    jac_s = loop_time(lambda y: jnp.sum(sj.data(y)) + y, y0, 200)

    def host_identity(h, b):
        return np.asarray(b), np.True_

    def noop_solve(b):  # the shape of DirectLU's solve callback (fast path: no matrix data)
        x, _ = jax.pure_callback(
            host_identity,
            (jax.ShapeDtypeStruct(b.shape, b.dtype), jax.ShapeDtypeStruct((), jnp.bool_)),
            jnp.int32(0),
            b,
            vmap_method="broadcast_all",
        )
        return x

    callback_s = loop_time(noop_solve, y0, 2000)
    return {"rhs_s": rhs_s, "jacobian_s": jac_s, "callback_s": callback_s, "ncolors": sj.ncolors}


def _solver(name: str):
    """``Kvaerno5`` or ``Kvaerno5:diffrax`` (the root finder's ``iteration`` after the colon)."""
    base, _, iteration = name.partition(":")
    return sdx.sparse(getattr(diffrax, base)(), iteration=iteration or "converge")


def profile(problem, solver_name: str, ctrl_name: str, rtol: float, atol: float) -> dict:
    solver = _solver(solver_name)
    term = diffrax.ODETerm(problem.rhs)
    ctrl = CountingPID(rtol=rtol, atol=atol, **controller_options(ctrl_name))

    def solve(y0, p):
        sol = diffrax.diffeqsolve(
            term, solver, 0.0, T1, DT0, y0, args=p, stepsize_controller=ctrl, max_steps=100_000
        )
        return sol.ys[-1], sol.stats

    y0 = jnp.asarray(problem.y0)
    p = jnp.asarray(problem.args[0])

    def reset():
        sdx.reset_stats()
        TALLY.reset()

    compile_s, walls, (y1, stats) = compile_and_time(solve, y0, p, before=reset)
    run_s = walls[0]
    work = sdx.stats()
    steps = int(stats["num_steps"])
    return {
        "solver": solver_name,
        "controller": ctrl_name,
        "compile_s": compile_s,
        "run_s": run_s,
        "steps": steps,
        "accepted": int(stats["num_accepted_steps"]),
        "rejected": int(stats["num_rejected_steps"]),
        "rejected_newton": TALLY.rejected_newton,
        "rejected_error": TALLY.rejected_error,
        "jacobians": work["jacobians"],
        "factorizations": work["factorizations"],
        "solves": work["solves"],
        "factor_s": work["factor_s"],
        "solve_s": work["solve_s"],
        "y1": np.asarray(y1),
    }


def split(rec: dict, unit: dict) -> dict:
    callbacks = rec["factorizations"] + rec["solves"] + rec["jacobians"]
    parts = {
        "factor": rec["factor_s"],
        "solve": rec["solve_s"],
        "callback": callbacks * unit["callback_s"],
        "jacobian": rec["jacobians"] * unit["jacobian_s"],
        "rhs": (rec["solves"] + rec["steps"]) * unit["rhs_s"],
    }
    parts["rest"] = rec["run_s"] - sum(parts.values())
    return parts


def write(records: list, tag: str) -> None:
    name = "diffrax_profile" + (f"-{tag}" if tag else "")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": dict(machine(), loadavg=os.getloadavg()), "t1": T1, "dt0": DT0}
    out["records"] = records
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    lines = [
        f"# Where the time goes: sparse diffrax on the 2D Brusselator (t in [0, {T1}])",
        "",
        "Run time split (seconds, share of the run). factor / solve: host time in the LU engine; "
        "callback: host round trips x no-op round-trip cost; jacobian, rhs: count x cost of one "
        "evaluation in a jitted loop; rest: diffrax's own step logic.",
        "",
        "| N | solver | controller | rtol | run s | factor | solve | callback | jacobian | rhs "
        "| rest | steps (rej.: Newton / error) | solves/step | LU/step | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        sp_ = r["split"]
        cells = " | ".join(
            f"{sp_[k]:.2f} ({100 * sp_[k] / r['run_s']:.0f}%)"
            for k in ("factor", "solve", "callback", "jacobian", "rhs", "rest")
        )
        lines.append(
            f"| {r['N']} | {r['solver']} | {r['controller']} | {r['rtol']:g} | {r['run_s']:.2f} "
            f"| {cells} | {r['steps']} ({r['rejected_newton']} / {r['rejected_error']}) | "
            f"{r['solves'] / r['steps']:.1f} | {r['factorizations'] / r['steps']:.2f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    lines += ["", "Unit costs (ms):", ""]
    lines += ["| N | rhs | jacobian | no-op callback | colors |", "|---|---|---|---|---|"]
    seen = set()
    for r in records:
        if r["N"] in seen:
            continue
        seen.add(r["N"])
        u = r["unit"]
        lines.append(
            f"| {r['N']} | {1e3 * u['rhs_s']:.3f} | {1e3 * u['jacobian_s']:.3f} | "
            f"{1e3 * u['callback_s']:.3f} | {u['ncolors']} |"
        )
    m = out["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu')}, {m.get('cpu_count')} cores (shared), load average at the "
        f"end {', '.join(f'{x:.1f}' for x in m['loadavg'])}; jax {m.get('jax')}, diffrax {m.get('diffrax')}, "
        f"scipy {m.get('scipy')}, python {m.get('python')}.",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[32])
    parser.add_argument("--solvers", nargs="+", default=["Kvaerno5"])
    parser.add_argument("--controllers", nargs="+", default=["default"])
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--tag", default="")
    opts = parser.parse_args()
    atol = opts.rtol * 1e-3
    records = []
    for N in opts.N:
        problem = brusselator_2d(N)
        unit = unit_costs(problem)
        for solver_name in opts.solvers:
            for ctrl in opts.controllers:
                print(f"N={N} {solver_name} {ctrl} ...", flush=True)
                rec = profile(problem, solver_name, ctrl, opts.rtol, atol)
                rec.pop("y1")
                rec.update(N=N, n=problem.n, rtol=opts.rtol, atol=atol, unit=unit)
                rec["split"] = split(rec, unit)
                rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                records.append(rec)
                print(json.dumps(rec), flush=True)
                write(records, opts.tag)


if __name__ == "__main__":
    main()
