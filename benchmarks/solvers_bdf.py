"""solve_ivp BDF on the 2D Brusselator: scipy's BDF with ``jac_sparsity`` (colored finite
differences), scipy's BDF with a sparse analytic ``jac``, and ``stiffasd.scipy.BDF`` with the same
sparse ``jac``; wall time and the share of it spent in sparse LU factorizations.

The sparse ``jac`` is a JAX-free analytic Jacobian whose CSC index arrays are cached (what
``stiffasd.jac`` returns), so the comparison isolates the linear algebra. With ``--stiffasd-jac`` the
``stiffasd.jac`` of a JAX right-hand side is added (needs the JAX pipeline on the branch).

Run: ``PYTHONPATH=. python benchmarks/solvers_bdf.py --sizes 32 64 128``; writes
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
from benchmarks.solvers_linear import machine  # noqa: E402
from benchmarks.solvers_problems import Brusselator2D  # noqa: E402

RTOL, ATOL = 1e-3, 1e-6  # solve_ivp defaults


class _TimedSplu:
    """Wraps scipy's splu inside scipy's bdf module to measure the LU share of scipy's BDF."""

    def __init__(self):
        self.orig = _scipy_bdf.splu
        self.factor_s = 0.0
        self.n = 0

    def __call__(self, A, *args, **kwargs):
        t = time.perf_counter()
        out = self.orig(A, *args, **kwargs)
        self.factor_s += time.perf_counter() - t
        self.n += 1
        return out

    def __enter__(self):
        _scipy_bdf.splu = self
        return self

    def __exit__(self, *exc):
        _scipy_bdf.splu = self.orig


def _run(P, label, method, **kw):
    timer = _TimedSplu()
    with timer:
        t0 = time.perf_counter()
        sol = solve_ivp(P.rhs, P.t_span, P.y0, method=method, rtol=RTOL, atol=ATOL, **kw)
        wall = time.perf_counter() - t0
    if method is ss.BDF:
        st = ss.last_lu_stats()
        lu_s, nfac = st["factor_s"], st["n_factor"]
    else:
        lu_s, nfac = timer.factor_s, timer.n
    return dict(
        N=P.N, n=P.n, variant=label, wall_s=wall, lu_s=lu_s, lu_share=lu_s / wall, n_factor=nfac,
        nfev=int(sol.nfev), njev=int(sol.njev), nlu=int(sol.nlu), nsteps=int(sol.t.size),
        status=int(sol.status), y_end=sol.y[:, -1],
    )


def run(sizes, t_end, stiffasd_jac=False):
    rows = []
    for N in sizes:
        P = Brusselator2D(N, t_end=t_end)
        variants = [
            ("scipy BDF, jac_sparsity", "BDF", dict(jac_sparsity=P.sparsity)),
            ("scipy BDF, sparse jac", "BDF", dict(jac=P.jac)),
            ("stiffasd.scipy.BDF, sparse jac", ss.BDF, dict(jac=P.jac)),
            ("stiffasd.scipy.BDF, jac_sparsity", ss.BDF, dict(jac_sparsity=P.sparsity)),
        ]
        res = [_run(P, label, m, **kw) for label, m, kw in variants]
        ref = res[1]["y_end"]
        for r in res:
            r["max_diff_vs_scipy_sparse_jac"] = float(np.abs(r.pop("y_end") - ref).max())
            r["speedup_vs_scipy_jac_sparsity"] = res[0]["wall_s"] / r["wall_s"]
            r["speedup_vs_scipy_sparse_jac"] = res[1]["wall_s"] / r["wall_s"]
            print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in r.items()},
                  flush=True)
        rows += res
    return rows


def to_markdown(rows, mach, t_end):
    out = [
        "# solve_ivp BDF on the 2D Brusselator: scipy vs stiffasd.scipy.BDF", "",
        f"Machine: {mach}", "",
        f"t in [0, {t_end}], rtol={RTOL}, atol={ATOL}. LU = time inside sparse factorizations "
        "(scipy: splu wrapped; stiffasd: its own counters, which include scattering values into "
        "the fixed pattern). Speedups are ratios of wall times measured in the same run.", "",
        "| N | n | variant | wall (s) | LU (s) | LU share | nlu | nfev | njev | steps | "
        "speedup vs jac_sparsity | speedup vs sparse jac | max diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['N']} | {r['n']} | {r['variant']} | {r['wall_s']:.2f} | {r['lu_s']:.2f} | "
            f"{100 * r['lu_share']:.0f}% | {r['nlu']} | {r['nfev']} | {r['njev']} | "
            f"{r['nsteps']} | {r['speedup_vs_scipy_jac_sparsity']:.2f}x | "
            f"{r['speedup_vs_scipy_sparse_jac']:.2f}x | {r['max_diff_vs_scipy_sparse_jac']:.1e} |"
        )
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--t-end", type=float, default=11.5)
    ap.add_argument("--out", default="benchmarks/results/solvers_bdf")
    args = ap.parse_args()
    rows = run(args.sizes, args.t_end)
    mach = machine()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(dict(machine=mach, t_end=args.t_end, rtol=RTOL, atol=ATOL, rows=rows), f,
                  indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(to_markdown(rows, mach, args.t_end))


if __name__ == "__main__":
    main()
