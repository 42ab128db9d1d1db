"""Work-precision of `stiffasd.diffrax.sparse` on the stiff IVP test set: both chord iterations.

    python benchmarks/diffrax_ivp_testset.py [--problems hires rober orego bruss]
        [--rtols 1e-4 1e-5 1e-6 1e-7 1e-8] [--solver Kvaerno5] [--plot]

Problems (Mazzia & Magherini, *Test Set for IVP Solvers*, release 2.4, 2008; reference values at
the final time from that test set): HIRES (8 equations, t1 = 321.8122), ROBER (3, t1 = 1e11),
OREGO (3, t1 = 360); and the 2D Brusselator `stiffasd.problems.brusselator_2d(8)` (t1 = 11.5),
whose reference is `stiffasd.scipy.Radau` at rtol 1e-12 (not part of the test set).

Each tolerance (atol = rtol times the problem's ``atol_scale``) is solved with diffrax's
PIDController and ``sparse(solver, iteration=...)`` for ``"converge"`` (the default) and
``"diffrax"`` (diffrax's own VeryChord termination: the dense default's steps). Error: scd =
-log10 of the maximum over components of ``|y_i - ref_i| / |ref_i|`` (ROBER's y2 ~ 8e-14 is
measured relative to 1e-10, as an absolute error). Time: best of ``--repeat`` runs of the
compiled solve (rtol and atol are traced arguments: one compilation per problem and method).

Writes benchmarks/results/diffrax_ivp_testset.json and .md and, with ``--plot``,
docs/diffrax_ivp_work_precision.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd.diffrax as sdx  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"


def hires(t, y, args):
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    r = 280.0 * y6 * y8
    return jnp.stack(
        [
            -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
            1.71 * y1 - 8.75 * y2,
            -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
            8.32 * y2 + 1.71 * y3 - 1.12 * y4,
            -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
            -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
            r - 1.81 * y7,
            -r + 1.81 * y7,
        ]
    )


def rober(t, y, args):
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack(
        [-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2, 3e7 * y2**2]
    )


def orego(t, y, args):
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack(
        [
            77.27 * (y2 + y1 * (1.0 - 8.375e-6 * y1 - y2)),
            (y3 - (1.0 + y1) * y2) / 77.27,
            0.161 * (y1 - y3),
        ]
    )


#: name -> (rhs, y0, t1, dt0, reference at t1, atol = rtol * atol_scale, error floor)
PROBLEMS = {
    "hires": (
        hires,
        [1.0, 0, 0, 0, 0, 0, 0, 0.0057],
        321.8122,
        1e-4,
        [
            0.7371312573325668e-3,
            0.1442485726316185e-3,
            0.5888729740967575e-4,
            0.1175651343283149e-2,
            0.2386356198831331e-2,
            0.6238968252742796e-2,
            0.2849998395185769e-2,
            0.2850001604814231e-2,
        ],
        1e-4,
        0.0,
    ),
    "rober": (
        rober,
        [1.0, 0.0, 0.0],
        1e11,
        1e-6,
        [0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050],
        1e-4,
        1e-10,
    ),
    "orego": (
        orego,
        [1.0, 2.0, 3.0],
        360.0,
        1e-4,
        [0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3],
        1.0,
        0.0,
    ),
}


def bruss_problem(N: int = 8):
    from scipy.integrate import solve_ivp

    import stiffasd
    import stiffasd.scipy as ss

    p = brusselator_2d(N)
    (params,) = p.args

    def rhs(t, y, args):
        return p.rhs(t, y, params)

    ref = solve_ivp(
        p.numpy_rhs(),
        p.t_span,
        np.asarray(p.y0),
        method=ss.Radau,
        jac=stiffasd.jac(p.rhs, np.asarray(p.y0), params),
        args=(params,),
        rtol=1e-12,
        atol=1e-12,
    ).y[:, -1]
    return rhs, list(np.asarray(p.y0)), p.t_span[1], 1e-3, list(ref), 1e-3, 0.0


def scd(y, ref, floor):
    ref = np.asarray(ref)
    return float(-np.log10(np.max(np.abs(y - ref) / np.maximum(np.abs(ref), floor))))


def measure(problem, solver_name, iteration, rtols, repeat, linear_solver="direct"):
    rhs, y0, t1, dt0, ref, atol_scale, floor = problem
    solver = sdx.sparse(
        getattr(diffrax, solver_name)(), iteration=iteration, linear_solver=linear_solver
    )
    y0 = jnp.asarray(y0, dtype=jnp.float64)

    @jax.jit
    def run(rtol, atol):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs),
            solver,
            0.0,
            t1,
            dt0,
            y0,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=100_000,
        )
        return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_rejected_steps"]

    rows = []
    for rtol in rtols:
        args = (jnp.asarray(rtol), jnp.asarray(rtol * atol_scale))
        t0 = time.perf_counter()
        jax.block_until_ready(run(*args))
        first = time.perf_counter() - t0
        best = np.inf
        for _ in range(repeat):
            sdx.reset_stats()
            t0 = time.perf_counter()
            y, steps, rejected = jax.block_until_ready(run(*args))
            best = min(best, time.perf_counter() - t0)
        rows.append(
            dict(
                rtol=rtol,
                scd=scd(np.asarray(y), ref, floor),
                run_s=best,
                first_s=first,
                steps=int(steps),
                rejected=int(rejected),
                solves_per_step=sdx.stats()["solves"] / max(int(steps), 1),
            )
        )
        print(solver_name, iteration, rows[-1], flush=True)
    return rows


def markdown(report) -> str:
    lines = [
        "# diffrax + stiffasd on the stiff IVP test set: iteration='converge' vs 'diffrax'",
        "",
        f"Solver {report['solver']}, PIDController(rtol, atol = rtol * scale); scd = correct "
        "digits at t1 against the test set's reference; time = best of "
        f"{report['repeat']} compiled runs. Machine: {report['machine'].get('cpu', '?')}, "
        f"{report['machine'].get('cpu_count')} CPUs (shared).",
        "",
        "| problem | rtol | converge: scd, steps (rejected), s | diffrax: scd, steps "
        "(rejected), s |",
        "|---|---|---|---|",
    ]
    for name, res in report["problems"].items():
        for a, b in zip(res["converge"], res["diffrax"], strict=True):
            lines.append(
                f"| {name} | {a['rtol']:.0e} | {a['scd']:.2f}, {a['steps']} ({a['rejected']}), "
                f"{a['run_s']:.3f} | {b['scd']:.2f}, {b['steps']} ({b['rejected']}), "
                f"{b['run_s']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["problems"])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6))
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        for it, style in (("converge", "o-"), ("diffrax", "s--")):
            rows = report["problems"][name][it]
            ax.plot(
                [r["run_s"] for r in rows],
                [r["scd"] for r in rows],
                style,
                label=f'iteration="{it}"',
            )
            for r in rows:
                ax.annotate(f"{r['rtol']:.0e}", (r["run_s"], r["scd"]), fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("run time, s")
        ax.set_ylabel("correct digits (scd)")
        ax.set_title(f"{name.upper()}, {report['solver']}")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["hires", "rober", "orego", "bruss"])
    ap.add_argument("--rtols", nargs="+", type=float, default=[1e-4, 1e-5, 1e-6, 1e-7, 1e-8])
    ap.add_argument("--solver", default="Kvaerno5")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--linear-solver", default="direct")
    ap.add_argument("--tag", default="")
    ap.add_argument("--plot", action="store_true")
    args = ap.parse_args()
    report = dict(
        machine=machine(),
        solver=args.solver,
        linear_solver=args.linear_solver,
        repeat=args.repeat,
        rtols=args.rtols,
        problems={},
    )
    for name in args.problems:
        problem = bruss_problem() if name == "bruss" else PROBLEMS[name]
        report["problems"][name] = {
            it: measure(problem, args.solver, it, args.rtols, args.repeat, args.linear_solver)
            for it in ("converge", "diffrax")
        }
    stem = "diffrax_ivp_testset" + (f"-{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    if args.plot:
        plot(report, DOCS / "diffrax_ivp_work_precision.png")


if __name__ == "__main__":
    main()
