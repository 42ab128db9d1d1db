"""SuperLU's panel width for the fixed-pattern LU (`stiffasd.scipy.PANEL_SIZE`).

    python -m benchmarks.superlu_panel [--rounds 8] [--solve-rounds 5]

Two measurements, each interleaved (every round runs the widths in a fresh random order, and the
best round is kept) because the machine is shared:

1. *factor*: one numeric factorization of ``I - c J`` by `FixedPatternLU` (METIS ordering,
   computed once and shared by all widths), averaged over three shifts ``c`` spanning the
   Newton matrices a stiff solve meets (``c |J|_diag`` = 0.1, 1, 10), with ``J`` taken at a
   perturbed initial state.
2. *solve*: whole `solve_ivp` runs with the full stack (`stiffasd.jac` + `stiffasd.scipy`
   solver), SuperLU's default width against `PANEL_SIZE`; wall time and the solver's
   accumulated factorization seconds.

Writes benchmarks/results/superlu_panel.{json,md}.
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import stiffasd  # noqa: E402
import stiffasd.scipy as ss  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from stiffasd import problems as P  # noqa: E402
from stiffasd._compare import warm_up  # noqa: E402

#: SuperLU's own default panel width (sp_ienv(1)), what scipy's splu uses unless told
SUPERLU_DEFAULT = 20
WIDTHS = (SUPERLU_DEFAULT, 12, 8, 4, 2)

FACTOR_CASES = [
    ("brusselator_2d", 16),
    ("brusselator_2d", 32),
    ("brusselator_2d", 64),
    ("brusselator_2d", 128),
    ("gray_scott_2d", 32),
    ("allen_cahn_3d", 12),
    ("advection_diffusion_reaction_2d", 32),
    ("flame_1d", 1000),
    ("reservoir_exchange", 1000),
]
SOLVE_CASES = [
    ("brusselator_2d", 32, "BDF"),
    ("brusselator_2d", 64, "BDF"),
    ("gray_scott_2d", 32, "BDF"),
    ("allen_cahn_3d", 12, "BDF"),
    ("flame_1d", 1000, "Radau"),
    ("reservoir_exchange", 1000, "BDF"),
]


def _problem(name, size):
    return getattr(P, name)(size)


def factor_sweep(name, size, rounds):
    prob = _problem(name, size)
    t0, y0, args = prob.t_span[0], prob.y0, prob.args
    y = y0 * (1 + 0.1 * np.random.default_rng(0).random(y0.shape))
    J = stiffasd.jac(prob.rhs)(t0, y, *args).tocsc()
    n = J.shape[0]
    coo = J.tocoo()
    order = ss.nested_dissection(coo.row, coo.col, n)
    scale = 1.0 / np.abs(J.diagonal()).max()
    shifts = [0.1 * scale, scale, 10 * scale]
    engines = {
        w: ss.FixedPatternLU(J.indptr, J.indices, n, ordering=order, panel_size=w) for w in WIDTHS
    }
    for eng in engines.values():  # the first factorization fixes the layout: not timed
        eng.factor(J.data, 1.0, shifts[0])
    times = {w: [] for w in WIDTHS}
    for r in range(rounds):
        for w in np.random.default_rng(r).permutation(WIDTHS):
            w = int(w)
            start = time.perf_counter()
            for c in shifts:
                engines[w].factor(J.data, 1.0, c)
            times[w].append((time.perf_counter() - start) / len(shifts))
    best = {w: min(v) for w, v in times.items()}
    return {
        "problem": f"{name}({size})",
        "n": n,
        "fill": engines[SUPERLU_DEFAULT].fill,
        "factor_ms": {w: 1e3 * best[w] for w in WIDTHS},
        "ratio": {w: best[w] / best[SUPERLU_DEFAULT] for w in WIDTHS},
    }


def solve_pair(name, size, method, rounds):
    prob = _problem(name, size)
    fun = prob.numpy_rhs()
    t0, y0, args = prob.t_span[0], prob.y0, prob.args
    fun(t0, y0, *args)
    jac = stiffasd.jac(prob.rhs)
    jac(t0, y0, *args)
    widths = (SUPERLU_DEFAULT, ss.PANEL_SIZE)
    wall = {w: [] for w in widths}
    factor = {w: [] for w in widths}
    nlu = None
    for r in range(rounds):
        for w in np.random.default_rng(r).permutation(widths):
            w = int(w)
            start = time.perf_counter()
            sol = solve_ivp(
                fun,
                prob.t_span,
                y0,
                method=getattr(ss, method),
                args=args,
                rtol=1e-6,
                atol=1e-8,
                jac=jac,
                panel_size=w,
            )
            wall[w].append(time.perf_counter() - start)
            factor[w].append(ss.last_lu_stats()["factor_s"])
            nlu = sol.nlu
    d, p = SUPERLU_DEFAULT, ss.PANEL_SIZE
    return {
        "problem": f"{name}({size})",
        "method": method,
        "n": prob.n,
        "nlu": nlu,
        "wall_s": {w: min(v) for w, v in wall.items()},
        "factor_s": {w: min(v) for w, v in factor.items()},
        "wall_ratio": min(wall[p]) / min(wall[d]),
        "factor_ratio": min(factor[p]) / min(factor[d]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--solve-rounds", type=int, default=5)
    opts = parser.parse_args(argv)
    warm_up()

    frows = []
    for name, size in FACTOR_CASES:
        frows.append(factor_sweep(name, size, opts.rounds))
        print(frows[-1], flush=True)
    srows = []
    for name, size, method in SOLVE_CASES:
        srows.append(solve_pair(name, size, method, opts.solve_rounds))
        print(srows[-1], flush=True)

    lines = [
        "# SuperLU panel width in `FixedPatternLU`",
        "",
        f"Factor: one numeric factorization of I - cJ (METIS ordering shared), mean over three "
        f"shifts, best of {opts.rounds} interleaved rounds; ratio to SuperLU's default width "
        f"{SUPERLU_DEFAULT} (< 1: faster).",
        "",
        "| problem | n | fill nnz(L+U) | "
        + " | ".join(f"w={w} [ms]" for w in WIDTHS)
        + " | "
        + " | ".join(f"w={w} ratio" for w in WIDTHS[1:])
        + " |",
        "|" + "---|" * (3 + 2 * len(WIDTHS) - 1),
    ]
    for r in frows:
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['fill']} | "
            + " | ".join(f"{r['factor_ms'][w]:.2f}" for w in WIDTHS)
            + " | "
            + " | ".join(f"{r['ratio'][w]:.2f}" for w in WIDTHS[1:])
            + " |"
        )
    d, p = SUPERLU_DEFAULT, ss.PANEL_SIZE
    lines += [
        "",
        f"Solve: solve_ivp with stiffasd.jac and the stiffasd.scipy solver (rtol 1e-6, atol "
        f"1e-8), panel width {d} against PANEL_SIZE = {p}, best of {opts.solve_rounds} "
        "interleaved runs each; *factor* is the solver's accumulated factorization time.",
        "",
        f"| problem | method | n | nlu | wall w={d} [s] | wall w={p} [s] | wall ratio | "
        f"factor w={d} [s] | factor w={p} [s] | factor ratio |",
        "|" + "---|" * 10,
    ]
    for r in srows:
        lines.append(
            f"| {r['problem']} | {r['method']} | {r['n']} | {r['nlu']} | {r['wall_s'][d]:.3f} | "
            f"{r['wall_s'][p]:.3f} | {r['wall_ratio']:.2f} | {r['factor_s'][d]:.3f} | "
            f"{r['factor_s'][p]:.3f} | {r['factor_ratio']:.2f} |"
        )
    payload = {
        "rounds": opts.rounds,
        "solve_rounds": opts.solve_rounds,
        "panel_size": p,
        "factor": frows,
        "solve": srows,
    }
    write_results("superlu_panel", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
