"""Side-by-side solve_ivp runs with the three Jacobian strategies a scipy user has.

Used by `stiffasd demo`, the Brusselator example and the benchmarks, so that all three report
the same numbers the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from ._ode import jac as make_jac
from .problems import OdeProblem

__all__ = ["SolveRecord", "compare_solve_ivp", "format_table", "warm_up"]

STRATEGIES = ("default", "jac_sparsity", "stiffasd")
# the whole stack: exact sparse Jacobians and the fixed-pattern LU of stiffasd.scipy
FULL_STACK = "stiffasd+lu"
LABELS = {
    FULL_STACK: "stiffasd.jac + stiffasd.scipy solver (fixed-pattern LU)",
    "default": "dense finite differences (default)",
    "jac_sparsity": "colored finite differences (jac_sparsity=)",
    "stiffasd": "stiffasd.jac (exact, colored AD)",
}


def warm_up() -> float:
    """Load the compiled coloring kernels (numba) and return the seconds it took.

    The first coloring of a process pays this once, whatever the pattern's size, like importing
    JAX or scipy; comparisons time it apart so that it is not charged to one problem size.
    """
    from .coloring import color
    from .pattern import SparsityPattern

    start = time.perf_counter()
    tiny = SparsityPattern.from_dense(np.array([[1, 1, 1], [1, 1, 0], [1, 0, 1]], dtype=bool))
    for partition in ("column", "row"):
        color(tiny, partition=partition, order="largest_first")
    color(tiny, partition="bidirectional", order="best")  # the star kernel and every order
    return time.perf_counter() - start


@dataclass
class SolveRecord:
    strategy: str
    method: str
    n: int
    wall: float
    prepare: float
    nfev: int
    njev: int
    nlu: int
    nsteps: int
    success: bool
    y_final: np.ndarray
    max_rel_diff: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "y_final"}
        d["label"] = LABELS[self.strategy]
        return d


def compare_solve_ivp(
    problem: OdeProblem,
    strategies=STRATEGIES,
    *,
    method: str = "BDF",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    reference: str = "stiffasd",
    repeat: int = 1,
    **solver_options: Any,
) -> list[SolveRecord]:
    """Solve ``problem`` with each Jacobian strategy; wall times include everything the
    strategy needs (stiffasd: detection, coloring and compilation, reported also as
    ``prepare``). The once-per-process loading of the coloring kernels (`warm_up`) is done
    first and charged to no strategy.

    With ``repeat > 1`` the strategies run in turn ``repeat`` times (interleaved, so that a
    burst of load on a shared machine hits them alike) and each keeps its fastest run; every
    stiffasd run prepares from scratch (detection, coloring, compilation)."""
    if repeat < 1:
        raise ValueError(f"compare_solve_ivp: repeat must be >= 1, got {repeat}.")
    warm_up()
    fun = problem.numpy_rhs()
    t0, y0, args = problem.t_span[0], problem.y0, problem.args
    np.asarray(fun(t0, y0, *args))  # compile the right-hand side once, for every strategy

    best: dict[str, SolveRecord] = {}
    for _ in range(repeat):
        for r in _run_strategies(problem, fun, strategies, method, rtol, atol, solver_options):
            if r.strategy not in best or r.wall < best[r.strategy].wall:
                best[r.strategy] = r
    records = [best[s] for s in strategies]
    ref = next((r for r in records if r.strategy == reference), records[-1])
    scale = np.maximum(np.abs(ref.y_final), 1.0)
    for r in records:
        r.max_rel_diff = float(np.max(np.abs(r.y_final - ref.y_final) / scale))
    return records


def _run_strategies(problem, fun, strategies, method, rtol, atol, solver_options):
    t0, y0, args = problem.t_span[0], problem.y0, problem.args
    records = []
    for strategy in strategies:
        opts: dict[str, Any] = dict(
            method=method, rtol=rtol, atol=atol, args=args, **solver_options
        )
        prepare = 0.0
        start = time.perf_counter()
        if strategy in ("stiffasd", FULL_STACK):
            j = make_jac(problem.rhs)
            j.prepare(t0, y0, *args)
            j(t0, y0, *args)  # compile
            prepare = time.perf_counter() - start
            opts["jac"] = j
            if strategy == FULL_STACK:
                from . import scipy as stiffasd_scipy

                opts["method"] = getattr(stiffasd_scipy, method)
        elif strategy == "jac_sparsity":
            # what a user hand-feeds: the exact pattern (taken from detection, not timed)
            pattern_start = time.perf_counter()
            sparsity = make_jac(problem.rhs).prepare(t0, y0, *args).pattern.to_scipy("csc")
            start += time.perf_counter() - pattern_start
            opts["jac_sparsity"] = sparsity
        elif strategy != "default":
            raise ValueError(
                f"compare_solve_ivp: unknown strategy {strategy!r}; one of "
                f"{STRATEGIES + (FULL_STACK,)}."
            )
        sol = solve_ivp(fun, problem.t_span, y0, **opts)
        wall = time.perf_counter() - start
        records.append(
            SolveRecord(
                strategy,
                method,
                problem.n,
                wall,
                prepare,
                sol.nfev,
                sol.njev,
                sol.nlu,
                sol.t.size - 1,
                bool(sol.success),
                sol.y[:, -1].copy(),
            )
        )
    return records


def format_table(records: list[SolveRecord]) -> str:
    """A Markdown table of the records, with speed-ups against the first one."""
    base = records[0].wall
    head = (
        "| Jacobian strategy | wall [s] | speed-up | prepare [s] | nfev | njev | nlu | "
        "steps | max rel. diff |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in records:
        lines.append(
            f"| {LABELS[r.strategy]} | {r.wall:.3f} | {base / r.wall:.1f}x | {r.prepare:.3f} | "
            f"{r.nfev} | {r.njev} | {r.nlu} | {r.nsteps} | {r.max_rel_diff:.1e} |"
        )
    return "\n".join(lines)
