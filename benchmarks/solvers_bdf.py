"""solve_ivp BDF on the 2D Brusselator: scipy's BDF with ``jac_sparsity`` (colored finite
differences), scipy's BDF with a sparse analytic ``jac``, and ``stiffasd.scipy.BDF`` with the same
sparse ``jac``; wall time and the share of it spent in sparse LU factorizations.

The sparse ``jac`` is a JAX-free analytic Jacobian whose CSC index arrays are cached (what
``stiffasd.jac`` returns), so the comparison isolates the linear algebra. The variants
``scipy-stiffasd`` / ``ours-stiffasd`` solve the same problem written in JAX
(``stiffasd.problems.brusselator_2d``) with ``jac=stiffasd.jac(rhs)``.

Run: ``PYTHONPATH=. python benchmarks/solvers_bdf.py --sizes 32 64 128 [--variants ...]``; writes
benchmarks/results/solvers_bdf.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.integrate._ivp.bdf as _scipy_bdf
from scipy.integrate import solve_ivp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import stiffasd.scipy as ss  # noqa: E402
from benchmarks.problems import Brusselator2D  # noqa: E402
from benchmarks.solvers_linear import machine  # noqa: E402

RTOL, ATOL = 1e-3, 1e-6  # solve_ivp defaults


def _clock():
    """(wall, CPU) seconds. The machine is shared: CPU time of this process is the measure that
    other jobs disturb least (SuperLU and the rest of the loop are single-threaded)."""
    return time.perf_counter(), time.process_time()


class _TimedSplu:
    """Wraps scipy's splu inside scipy's bdf module to measure the LU share of scipy's BDF."""

    def __init__(self):
        self.orig = _scipy_bdf.splu
        self.factor_cpu = 0.0
        self.n = 0

    def __call__(self, A, *args, **kwargs):
        t = time.process_time()
        out = self.orig(A, *args, **kwargs)
        self.factor_cpu += time.process_time() - t
        self.n += 1
        return out

    def __enter__(self):
        _scipy_bdf.splu = self
        return self

    def __exit__(self, *exc):
        _scipy_bdf.splu = self.orig


class _CpuStats:
    """Reads the CPU time spent in stiffasd's factorizations (its counters use wall time)."""

    def __init__(self):
        self.cpu = 0.0


def _run(P, label, method, fun=None, **kw):
    timer = _TimedSplu()
    patched = None
    if method is ss.BDF:
        # measure stiffasd's factorizations in CPU time too, by wrapping FixedPatternLU.factor
        orig = ss.FixedPatternLU.factor
        acc = _CpuStats()

        def factor(self, *a, **k):
            t = time.process_time()
            out = orig(self, *a, **k)
            acc.cpu += time.process_time() - t
            return out

        ss.FixedPatternLU.factor = factor
        patched = (orig, acc)
    try:
        with timer:
            w0, c0 = _clock()
            sol = solve_ivp(fun or P.rhs, P.t_span, P.y0, method=method, rtol=RTOL, atol=ATOL, **kw)
            w1, c1 = _clock()
    finally:
        if patched is not None:
            ss.FixedPatternLU.factor = patched[0]
    if patched is not None:
        lu_cpu, nfac = patched[1].cpu, ss.last_lu_stats()["n_factor"]
    else:
        lu_cpu, nfac = timer.factor_cpu, timer.n
    return dict(
        N=P.N,
        n=P.n,
        variant=label,
        cpu_s=c1 - c0,
        wall_s=w1 - w0,
        lu_cpu_s=lu_cpu,
        lu_share=lu_cpu / (c1 - c0),
        n_factor=nfac,
        nfev=int(sol.nfev),
        njev=int(sol.njev),
        nlu=int(sol.nlu),
        nsteps=int(sol.t.size),
        status=int(sol.status),
        y_end=sol.y[:, -1],
    )


VARIANTS = {
    "scipy-sparsity": "scipy BDF, jac_sparsity",
    "scipy-jac": "scipy BDF, sparse jac (numpy)",
    "ours-jac": "stiffasd.scipy.BDF, sparse jac (numpy)",
    "ours-sparsity": "stiffasd.scipy.BDF, jac_sparsity",
    "scipy-stiffasd": "scipy BDF, stiffasd.jac (JAX rhs)",
    "ours-stiffasd": "stiffasd.scipy.BDF, stiffasd.jac (JAX rhs)",
}


def run(sizes, t_end, variants=tuple(VARIANTS)):
    rows = []
    for N in sizes:
        P = Brusselator2D(N, t_end=t_end)
        todo = {
            "scipy-sparsity": ("BDF", dict(jac_sparsity=P.sparsity)),
            "scipy-jac": ("BDF", dict(jac=P.jac)),
            "ours-jac": (ss.BDF, dict(jac=P.jac)),
            "ours-sparsity": (ss.BDF, dict(jac_sparsity=P.sparsity)),
        }
        if any(v.endswith("stiffasd") for v in variants):
            import jax

            jax.config.update("jax_enable_x64", True)
            import stiffasd
            from stiffasd.problems import brusselator_2d

            prob = brusselator_2d(N, t_span=P.t_span)
            fun = prob.numpy_rhs()
            jac = stiffasd.jac(prob.rhs)
            # detection, coloring and every jit compilation happen in a short warm-up solve
            solve_ivp(fun, (0.0, 1e-3), prob.y0, method="BDF", args=prob.args, jac=jac)
            kw = dict(fun=fun, args=prob.args, jac=jac)
            todo["scipy-stiffasd"] = ("BDF", kw)
            todo["ours-stiffasd"] = (ss.BDF, kw)
        res = [_run(P, VARIANTS[v], todo[v][0], **todo[v][1]) for v in variants]
        ref = res[0]
        for r in res:
            r["max_diff_vs_first"] = float(np.abs(r["y_end"] - ref["y_end"]).max())
            r["cpu_speedup_vs_first"] = ref["cpu_s"] / r["cpu_s"]
        for r in res:
            r.pop("y_end")
            print(
                {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in r.items()},
                flush=True,
            )
        rows += res
    return rows


def to_markdown(rows, mach, t_end):
    out = [
        "# solve_ivp BDF on the 2D Brusselator: scipy vs stiffasd.scipy.BDF",
        "",
        f"Machine: {mach}",
        "",
        f"t in [0, {t_end}], rtol={RTOL}, atol={ATOL} (solve_ivp's defaults). "
        f"{mach.get('load', 'The machine is shared with other jobs')}. CPU time of the process "
        "is the measure (wall time shown too; SuperLU's dense kernels may run BLAS on both cores, "
        "so CPU can exceed wall). LU = CPU time inside sparse "
        "factorizations (scipy: its splu call; stiffasd: FixedPatternLU.factor, which includes "
        "scattering the values into the fixed pattern). Speedup = CPU time of the first row of "
        "the same N divided by this row's.",
        "",
        "| N | n | variant | CPU (s) | wall (s) | LU CPU (s) | LU share | nlu | nfev | njev | "
        "steps | speedup vs first row | max diff vs first row |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['N']} | {r['n']} | {r['variant']} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} | "
            f"{r['lu_cpu_s']:.2f} | {100 * r['lu_share']:.0f}% | {r['nlu']} | {r['nfev']} | "
            f"{r['njev']} | {r['nsteps']} | {r['cpu_speedup_vs_first']:.2f}x | "
            f"{r['max_diff_vs_first']:.1e} |"
        )
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--t-end", type=float, default=11.5)
    ap.add_argument("--out", default="benchmarks/results/solvers_bdf")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="which solves to run, in this order (the first is the reference row)",
    )
    args = ap.parse_args()
    rows = run(args.sizes, args.t_end, args.variants)
    mach = machine()
    mach["load"] = "Load average (1, 5, 15 min) at the end of the run: " + ", ".join(
        f"{x:.1f}" for x in os.getloadavg()
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(
            dict(machine=mach, t_end=args.t_end, rtol=RTOL, atol=ATOL, rows=rows), f, indent=1
        )
    with open(args.out + ".md", "w") as f:
        f.write(to_markdown(rows, mach, args.t_end))


if __name__ == "__main__":
    main()
