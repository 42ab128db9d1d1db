"""`stiffasd.scipy.BDF`/`Radau` against scipy's own solvers, LU time included, on problems
whose Newton matrices pivot (FitzHugh-Nagumo at large steps) and on those where the fixed
nested-dissection ordering pays (Brusselator, Gray-Scott, the reservoir arrowhead).

    python -m benchmarks.scipy_newton_lu [--rounds 2] [--only fitzhugh] [--method BDF]

Every solve uses the same exact Jacobian (`stiffasd.jac`), rtol 1e-6, atol 1e-8. Variants,
run in turns (a fresh random order per round, best round kept):

* ``scipy``: scipy's own solver (SuperLU with COLAMD at every factorization);
* ``stiffasd``: `stiffasd.scipy`'s solver with its defaults (``ordering="auto"``);
* ``COLAMD``: the same with ``ordering="COLAMD"`` (computed once);
* ``unlimited``: the defaults with BLAS left at its own thread count and no COLAMD fallback
  (how the engine ran before it limited BLAS to one thread inside SuperLU).

*wall* and *CPU* (the process's, all threads) are whole solves; *LU* is the wall time inside
factorizations and triangular solves (scipy's measured by wrapping its ``lu``/``solve_lu``
hooks). On a shared machine CPU time is the steadier measure, but it also counts BLAS threads
spinning while they wait. Writes benchmarks/results/NAME.{json,md} (default scipy_newton_lu).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import scipy.integrate as si  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import stiffasd  # noqa: E402
import stiffasd.scipy as ss  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from stiffasd import problems as P  # noqa: E402
from stiffasd._compare import warm_up  # noqa: E402
from stiffasd.linalg import superlu  # noqa: E402

CASES = [
    ("fitzhugh_nagumo_2d", dict(N=32), "Radau"),
    ("fitzhugh_nagumo_2d", dict(N=32), "BDF"),
    ("brusselator_2d", dict(N=32), "Radau"),
    ("brusselator_2d", dict(N=32), "BDF"),
    ("gray_scott_2d", dict(N=32), "BDF"),
    ("reservoir_exchange", dict(n_cells=1000), "BDF"),
]
VARIANTS = ("scipy", "stiffasd", "COLAMD", "unlimited")


def _timed(base):
    """scipy's solver with its LU hooks timed."""

    class Timed(base):
        lu_s = 0.0

        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            lu, solve_lu = self.lu, self.solve_lu

            def timed(f):
                def g(*a):
                    t0 = time.perf_counter()
                    out = f(*a)
                    Timed.lu_s += time.perf_counter() - t0
                    return out

                return g

            self.lu, self.solve_lu = timed(lu), timed(solve_lu)

    return Timed


@contextlib.contextmanager
def _unlimited():
    saved = superlu._one_blas_thread, superlu.PIVOT_FILL_RATIO
    superlu._one_blas_thread, superlu.PIVOT_FILL_RATIO = contextlib.nullcontext, np.inf
    try:
        yield
    finally:
        superlu._one_blas_thread, superlu.PIVOT_FILL_RATIO = saved


def run_case(name, kw, method, rounds):
    prob = P.PROBLEMS[name](**kw)
    fun = prob.numpy_rhs()
    t0, y0, args = prob.t_span[0], prob.y0, prob.args
    fun(t0, y0, *args)
    jac = stiffasd.jac(prob.rhs)
    jac(t0, y0, *args)
    common = dict(args=args, jac=jac, rtol=1e-6, atol=1e-8)
    wall = {v: np.inf for v in VARIANTS}
    cpu = {v: np.inf for v in VARIANTS}
    lu = {v: np.inf for v in VARIANTS}
    info = {}
    for r in range(rounds):
        for v in np.random.default_rng(r).permutation(VARIANTS):
            v = str(v)
            extra, ctx = {}, contextlib.nullcontext()
            if v == "scipy":
                solver = _timed(getattr(si, method))
                solver.lu_s = 0.0
            else:
                solver = getattr(ss, method)
                if v == "COLAMD":
                    extra = dict(ordering="COLAMD")
                elif v == "unlimited":
                    ctx = _unlimited()
            with ctx:
                start, cstart = time.perf_counter(), time.process_time()
                sol = solve_ivp(fun, prob.t_span, y0, method=solver, **common, **extra)
                w, c = time.perf_counter() - start, time.process_time() - cstart
            if v == "scipy":
                lu_s = solver.lu_s
            else:
                st = ss.last_lu_stats()
                lu_s = st["factor_s"] + st["solve_s"]
            wall[v], cpu[v], lu[v] = min(wall[v], w), min(cpu[v], c), min(lu[v], lu_s)
            info[v] = dict(nlu=int(sol.nlu), nfev=int(sol.nfev), steps=int(sol.t.size))
        print(
            name,
            method,
            r,
            {v: (round(wall[v], 2), round(cpu[v], 2)) for v in VARIANTS},
            flush=True,
        )
    return {
        "problem": prob.name,
        "method": method,
        "n": prob.n,
        "t_span": list(prob.t_span),
        "wall_s": wall,
        "cpu_s": cpu,
        "lu_s": lu,
        "runs": info,
    }


def table(rows) -> str:
    cols = [("wall_s", "wall [s]"), ("cpu_s", "CPU [s]"), ("lu_s", "LU [s]")]
    head = (
        "| problem | method | n | nlu (scipy / ours) | "
        + " | ".join(f"{v} {label}" for key, label in cols for v in VARIANTS)
        + " | stiffasd / scipy wall | CPU | LU |"
    )
    lines = [head, "|" + "---|" * (7 + len(cols) * len(VARIANTS))]
    for r in rows:
        nlu = f"{r['runs']['scipy']['nlu']} / {r['runs']['stiffasd']['nlu']}"
        ratios = " | ".join(f"{r[key]['stiffasd'] / r[key]['scipy']:.2f}" for key, _ in cols)
        lines.append(
            f"| {r['problem']} | {r['method']} | {r['n']} | {nlu} | "
            + " | ".join(f"{r[key][v]:.2f}" for key, _ in cols for v in VARIANTS)
            + f" | {ratios} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="", help="run the cases whose problem name has this")
    parser.add_argument("--method", default="", help="run the cases of this method only")
    parser.add_argument("--name", default="scipy_newton_lu", help="results file name")
    opts = parser.parse_args(argv)
    warm_up()
    rows = [
        run_case(name, kw, method, opts.rounds)
        for name, kw, method in CASES
        if opts.only in name and opts.method in method
    ]
    md = (
        "# stiffasd.scipy against scipy's own BDF/Radau (same exact Jacobian)\n\n"
        f"rtol 1e-6, atol 1e-8; best of {opts.rounds} interleaved rounds; *LU*: time in "
        "factorizations and triangular solves; *unlimited*: BLAS threads not limited and no "
        "COLAMD fallback (the engine before both).\n\n" + table(rows)
    )
    write_results(opts.name, {"rounds": opts.rounds, "cases": rows}, md)
    print(md)


if __name__ == "__main__":
    main()
