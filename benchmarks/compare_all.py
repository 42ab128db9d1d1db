"""The whole comparison table in one process: Jacobians, solves, scaling, work-precision.

    python -m benchmarks.compare_all            # everything, sizes for a small shared machine
    python -m benchmarks.compare_all --parts jacobian scaling --quick

Parts (all written with `benchmarks._machine.write_results`, so each result carries the machine
and the package versions):

* ``jacobian``: per problem and size, one Jacobian evaluation (jit-compiled, best of many) with
  stiffasd against dense ``jax.jacfwd`` / ``jax.jacrev`` and against scipy's colored finite
  differences (``scipy.optimize._numdiff.approx_derivative(fun, y, sparsity=(S, groups))``, what
  solve_ivp's ``jac_sparsity`` amounts to) using the *same* column groups, i.e. at equal pass
  count. -> ``results/all_jacobian.{json,md}``
* ``solve``: solve_ivp BDF and Radau with the three strategies (default dense finite
  differences / ``jac_sparsity`` / stiffasd) per problem: wall, nfev, njev, nlu, steps, error
  against a tight-tolerance Radau reference, and stiffasd's detection, coloring and compilation
  times separately. -> ``results/all_solve.{json,md}``
* ``scaling``: Brusselator Jacobian time against n (log-log) for dense AD, colored finite
  differences and stiffasd (with and without its one-time preparation): the three regimes and
  the crossover. -> ``results/scaling.{json,md}`` and ``docs/benchmarks/scaling.png``.
* ``breakeven``: where stiffasd repays its one-time setup on a whole solve_ivp solve: per
  problem and method, the setup (detection, coloring, compilation; cold, and warm from JAX's
  persistent compilation cache in a second process) against the time the prepared strategies
  save over ``jac_sparsity``. -> ``results/breakeven.{json,md}``
* ``wp``: work-precision diagram (error against wall time across tolerances) for the
  Brusselator. -> ``results/work_precision.{json,md}`` and ``docs/benchmarks/work_precision.png``.

Every ratio compares runs made side by side in this one process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from scipy.integrate import solve_ivp  # noqa: E402
from scipy.optimize._numdiff import approx_derivative  # noqa: E402

import stiffasd  # noqa: E402
from benchmarks._machine import machine_markdown, write_results  # noqa: E402
from benchmarks._timing import compile_and_time  # noqa: E402
from benchmarks.compare_jacobian import best_time  # noqa: E402
from stiffasd._compare import FULL_STACK, LABELS, compare_solve_ivp  # noqa: E402
from stiffasd.problems import PROBLEMS, brusselator_2d  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"

# (size keyword, sizes) per problem for the Jacobian table: a small and a medium instance
JACOBIAN_SIZES = {
    "brusselator_2d": ("N", [16, 64]),
    "gray_scott_2d": ("N", [16, 64]),
    "allen_cahn_3d": ("N", [8, 20]),
    "advection_diffusion_reaction_2d": ("N", [24, 96]),
    "robertson_diffusion_2d": ("N", [12, 48]),
    "reservoir_exchange": ("n_cells", [300, 3000]),
    "flame_1d": ("N", [250, 4000]),
}
# one instance per problem for the whole solves (sizes where the dense default still runs)
SOLVE_CASES = {
    "brusselator_2d": dict(N=16),
    "gray_scott_2d": dict(N=16, t_span=(0.0, 1000.0)),
    "allen_cahn_3d": dict(N=10),
    "advection_diffusion_reaction_2d": dict(N=24),
    "robertson_diffusion_2d": dict(N=10),
    "reservoir_exchange": dict(n_cells=300),
    "flame_1d": dict(N=250),
}


def _ratio(a, b, fmt=".0f"):
    return "n/a" if a is None else f"{a / b:{fmt}}x"


def _fmt_ms(x):
    return "n/a" if x is None or not np.isfinite(x) else f"{1e3 * x:.3g}"


# ------------------------------------------------------------------------------ Jacobians
def time_jacobians(prob, *, max_dense_n: int, t: float = 0.5) -> dict:
    """One problem instance: every Jacobian method, timed side by side."""
    tt = jnp.asarray(t)
    y = jnp.asarray(prob.y0)
    args = tuple(jnp.asarray(a) for a in prob.args)

    start = time.perf_counter()
    # compiled for evaluation speed: these tables compare evaluation engines (the default
    # compiles small programs for compile speed; the setup it buys is in the breakeven part)
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, *args, argnums=1, fast_compile=False)
    prepare = time.perf_counter() - start
    data = sj.data_jit
    start = time.perf_counter()
    jax.block_until_ready(data(tt, y, *args))
    compile_s = time.perf_counter() - start
    t_sa, t_sa_med = best_time(data, tt, y, *args)
    # what a solver receives: the scipy matrix (host transfer included)
    t_csc, _ = best_time(lambda: sj.csc(tt, y, *args), reps=10)

    f = jax.jit(lambda y: prob.rhs(tt, y, *args))
    t_rhs, _ = best_time(f, y)
    jvp = jax.jit(lambda y, v: jax.jvp(lambda y: prob.rhs(tt, y, *args), (y,), (v,))[1])
    t_jvp, _ = best_time(jvp, y, jnp.ones_like(y))

    # scipy colored finite differences with the same column groups (equal pass count)
    col = stiffasd.color(sj.pattern, partition="column", order="largest_first")
    S = sj.pattern.to_scipy("csr")
    groups = np.asarray(col.column_colors)
    fun = prob.numpy_rhs()
    y_np = np.asarray(prob.y0)
    f0 = fun(t, y_np, *prob.args)
    # what one right-hand side costs as scipy calls it (NumPy in, NumPy out)
    t_rhs_np, _ = best_time(lambda: fun(t, y_np, *prob.args), reps=20)

    def fd():
        # forward differences, one evaluation per group (approx_derivative's default is
        # 3-point, twice the work); f0 given, as solve_ivp gives it
        return approx_derivative(
            lambda x: fun(t, x, *prob.args), y_np, method="2-point", f0=f0, sparsity=(S, groups)
        )

    # host-side Python work is easily preempted on a shared machine: take the best of many
    t_fd, _ = best_time(fd, reps=5, min_time=1.0)
    # correctness of the compared values (finite differences: to their accuracy)
    J_sa = sj.csc(tt, y, *args)
    J_fd = fd()
    scale = max(float(np.abs(J_sa.data).max()), 1.0)
    fd_err = (
        float(np.abs((J_fd - J_sa).toarray() if prob.n <= 4000 else (J_fd - J_sa).data).max())
        / scale
    )

    row = dict(
        problem=prob.name,
        n=prob.n,
        nnz=sj.pattern.nnz,
        mode=sj.mode,
        passes=sj.ncolors,
        colors_column=col.ncolors,
        fd_evals=col.ncolors,
        detect_s=sj.timings["detect"],
        color_s=sj.timings["color"],
        prepare_s=prepare,
        compile_s=compile_s,
        stiffasd_s=t_sa,
        stiffasd_median_s=t_sa_med,
        fd_rhs_floor_s=t_rhs_np * (col.ncolors + 1),
        stiffasd_csc_s=t_csc,
        rhs_s=t_rhs,
        jvp_s=t_jvp,
        colored_fd_s=t_fd,
        fd_rel_err=fd_err,
    )
    if prob.n <= max_dense_n:
        for name, jfun in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
            dense = jax.jit(jfun(lambda y: prob.rhs(tt, y, *args)))
            row[f"dense_{name}_s"] = best_time(dense, y, reps=3, min_time=0.0)[0]
            if name == "jacfwd":
                Jd = np.asarray(dense(y))
                row["max_abs_diff_vs_dense"] = float(np.abs(Jd - J_sa.toarray()).max()) / scale
    return row


def part_jacobian(opts) -> list[dict]:
    rows = []
    for name, (key, sizes) in JACOBIAN_SIZES.items():
        for size in sizes[:1] if opts.quick else sizes:
            prob = PROBLEMS[name](**{key: size})
            row = time_jacobians(prob, max_dense_n=opts.max_dense_n)
            rows.append(row)
            print(
                f"[jacobian] {row['problem']:42s} n={row['n']:6d} passes={row['passes']:5d} "
                f"stiffasd {_fmt_ms(row['stiffasd_s'])} ms  colored FD "
                f"{_fmt_ms(row['colored_fd_s'])} ms  jacfwd "
                f"{_fmt_ms(row.get('dense_jacfwd_s'))} ms",
                flush=True,
            )
    write_results(
        "all_jacobian",
        {"rows": rows, "max_dense_n": opts.max_dense_n},
        jacobian_table(rows, opts.max_dense_n),
    )
    return rows


def jacobian_table(rows, max_dense_n) -> str:
    lines = [
        "One Jacobian evaluation per problem and size (jit-compiled where JAX, best of many), "
        "side by side in one process. *colored FD*: scipy's `approx_derivative` with the "
        "pattern and the **same column groups** as stiffasd's column coloring (equal pass "
        "count, except where stiffasd bicolors: *FD evals* then shows the column colors "
        "FD needs; f0 is given, as solve_ivp gives it). *(FD evals + 1) x rhs*: the "
        "right-hand-side calls alone, the floor of any finite-difference scheme; the rest of "
        "*colored FD* is scipy's per-group bookkeeping. Dense AD only up to n = "
        f"{max_dense_n}. *to scipy* includes building the `csc_matrix` on the host. stiffasd "
        "is compiled for evaluation speed (`fast_compile=False`; by default programs up to "
        "2^15 seed entries are compiled for compile speed, with 2-2.5x slower evaluations).",
        "",
        "| problem | n | nnz | mode | passes | FD evals | stiffasd [ms] | to scipy [ms] | "
        "colored FD [ms] | (FD evals + 1) x rhs [ms] "
        "| FD / stiffasd | jacfwd [ms] | jacrev [ms] | jacfwd / stiffasd | 1 JVP [ms] | "
        "detect [ms] | color [ms] | compile [ms] |",
        "|" + "---|" * 18,
    ]
    for r in rows:
        fwd = r.get("dense_jacfwd_s")
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['nnz']} | {r['mode']} | {r['passes']} | "
            f"{r['fd_evals']} | {_fmt_ms(r['stiffasd_s'])} | {_fmt_ms(r['stiffasd_csc_s'])} | "
            f"{_fmt_ms(r['colored_fd_s'])} | {_fmt_ms(r.get('fd_rhs_floor_s'))} | "
            f"{r['colored_fd_s'] / r['stiffasd_s']:.1f}x | "
            f"{_fmt_ms(fwd)} | {_fmt_ms(r.get('dense_jacrev_s'))} | "
            f"{_ratio(fwd, r['stiffasd_s'])} | "
            f"{_fmt_ms(r['jvp_s'])} | {_fmt_ms(r['detect_s'])} | {_fmt_ms(r['color_s'])} | "
            f"{_fmt_ms(r['compile_s'])} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- solves
# diffrax implicit solves (Kvaerno5 + PIDController): small instances, so that the dense
# default (a dense Jacobian and a dense LU per step) finishes on the shared machine
DIFFRAX_CASES = {
    "brusselator_2d": dict(N=12, t_span=(0.0, 2.0)),
    "reservoir_exchange": dict(n_cells=300, t_span=(0.0, 0.5)),
    "flame_1d": dict(N=80, t_span=(0.0, 1.0)),
}


def _reference(prob):
    j = stiffasd.jac(prob.rhs)
    sol = solve_ivp(
        prob.numpy_rhs(),
        prob.t_span,
        prob.y0,
        method="Radau",
        args=prob.args,
        rtol=1e-10,
        atol=1e-12,
        jac=j,
    )
    if not sol.success:
        raise RuntimeError(f"reference solve failed for {prob.name}: {sol.message}")
    return sol.y[:, -1]


def part_solve(opts) -> list[dict]:
    rows = []
    cases = dict(list(SOLVE_CASES.items())[:2]) if opts.quick else SOLVE_CASES
    for name, kw in cases.items():
        prob = PROBLEMS[name](**kw)
        t0, y0, args = prob.t_span[0], prob.y0, prob.args
        sj = stiffasd.jac(prob.rhs).prepare(t0, y0, *args)
        start = time.perf_counter()
        ref = _reference(prob)
        ref_s = time.perf_counter() - start
        scale = np.maximum(np.abs(ref), 1.0)
        strategies = ["jac_sparsity", "stiffasd", FULL_STACK]
        if prob.n <= opts.max_default_n:
            strategies.insert(0, "default")
        for method in opts.methods:
            recs = compare_solve_ivp(
                prob,
                strategies,
                method=method,
                rtol=opts.rtol,
                atol=opts.atol,
                repeat=opts.solve_repeats,
            )
            by = {r.strategy: r for r in recs}
            for r in recs:
                d = r.as_dict()
                d.update(
                    problem=prob.name,
                    error=float(np.max(np.abs(r.y_final - ref) / scale)),
                    reference_s=ref_s,
                    passes=sj.ncolors,
                    mode=sj.mode,
                    nnz=sj.pattern.nnz,
                    detect_s=sj.timings["detect"],
                    color_s=sj.timings["color"],
                    speedup_vs_jac_sparsity=by["jac_sparsity"].wall / r.wall,
                )
                if r.strategy in ("stiffasd", FULL_STACK):
                    d["compile_s"] = max(r.prepare - d["detect_s"] - d["color_s"], 0.0)
                if "default" in by:
                    d["speedup_vs_default"] = by["default"].wall / r.wall
                rows.append(d)
                print(
                    f"[solve] {prob.name:42s} {method:5s} {r.strategy:12s} {r.wall:8.3f} s "
                    f"nfev={r.nfev:6d} njev={r.njev:4d} nlu={r.nlu:4d} err={d['error']:.1e}",
                    flush=True,
                )
    write_results(
        "all_solve",
        {"rtol": opts.rtol, "atol": opts.atol, "rows": rows, "max_default_n": opts.max_default_n},
        solve_table(rows, opts.rtol, opts.atol, opts.max_default_n),
    )
    if not opts.no_diffrax:
        part_diffrax(opts)
    return rows


def part_diffrax(opts) -> list[dict]:
    """diffrax Kvaerno5 with its dense default against ``stiffasd.diffrax.sparse(Kvaerno5())``.

    Compilation (``jax.jit(...).lower(...).compile()``) is timed apart from the run (best of
    ``opts.diffrax_repeats`` runs of the compiled solve); the error is measured against the
    same tight solve_ivp Radau reference as the solve_ivp table."""
    import diffrax

    import stiffasd.diffrax as sdx

    rows = []
    cases = dict(list(DIFFRAX_CASES.items())[:1]) if opts.quick else DIFFRAX_CASES
    for name, kw in cases.items():
        prob = PROBLEMS[name](**kw)
        ref = _reference(prob)
        scale = np.maximum(np.abs(ref), 1.0)
        t0, t1 = prob.t_span
        y0 = jnp.asarray(prob.y0)
        args = tuple(jnp.asarray(a) for a in prob.args)
        term = diffrax.ODETerm(lambda t, y, a: prob.rhs(t, y, *a))
        ctrl = diffrax.PIDController(rtol=opts.diffrax_rtol, atol=opts.diffrax_atol)
        for label, solver in (
            ("dense (diffrax default)", diffrax.Kvaerno5()),
            ("stiffasd.diffrax.sparse", sdx.sparse(diffrax.Kvaerno5())),
        ):

            def solve(y0, args, solver=solver):
                sol = diffrax.diffeqsolve(
                    term,
                    solver,
                    t0,
                    t1,
                    1e-4 * (t1 - t0),
                    y0,
                    args=args,
                    stepsize_controller=ctrl,
                    max_steps=100_000,
                )
                return sol.ys[-1], sol.stats

            compile_s, walls, (y1, stats) = compile_and_time(
                solve, y0, args, repeat=opts.diffrax_repeats
            )
            d = dict(
                problem=prob.name,
                n=prob.n,
                t_span=list(prob.t_span),
                strategy=label,
                compile_s=compile_s,
                run_s=float(min(walls)),
                run_median_s=float(np.median(walls)),
                steps=int(stats["num_steps"]),
                accepted=int(stats["num_accepted_steps"]),
                rejected=int(stats["num_rejected_steps"]),
                error=float(np.max(np.abs(np.asarray(y1) - ref) / scale)),
                load=os.getloadavg()[0],
            )
            rows.append(d)
            print(
                f"[diffrax] {prob.name:36s} {label:24s} compile {compile_s:6.1f} s run "
                f"{d['run_s']:7.3f} s steps={d['steps']} err={d['error']:.1e}",
                flush=True,
            )
        dense, sparse = rows[-2], rows[-1]
        sparse["speedup_vs_dense"] = dense["run_s"] / sparse["run_s"]
    write_results(
        "all_solve_diffrax",
        {"rtol": opts.diffrax_rtol, "atol": opts.diffrax_atol, "rows": rows},
        diffrax_table(rows, opts.diffrax_rtol, opts.diffrax_atol, opts.diffrax_repeats),
    )
    return rows


# ------------------------------------------------------------------------------- arrowhead
class _Profile:
    """Seconds and calls spent in the right-hand side, the Jacobian and the sparse LU of one
    solve_ivp run (wrappers around the callables solve_ivp receives, and around the
    factorization scipy's BDF calls), so that the wall time can be split by what dominates."""

    def __init__(self):
        self.s = dict(rhs=0.0, jac=0.0, lu_factor=0.0, lu_solve=0.0)
        self.calls = dict(rhs=0, jac=0, lu_factor=0, lu_solve=0)
        self.rhs_in_jac_calls = 0
        self._in_jac = False

    def wrap(self, key, fn):
        def timed(*a, **k):
            if key == "rhs" and self._in_jac:
                # a finite-difference evaluation: its time is the Jacobian's
                self.rhs_in_jac_calls += 1
                return fn(*a, **k)
            t0 = time.perf_counter()
            self._in_jac = key == "jac"
            try:
                return fn(*a, **k)
            finally:
                self._in_jac = False
                self.s[key] += time.perf_counter() - t0
                self.calls[key] += 1

        return timed


class _TimedLU:
    """A SuperLU factor whose ``solve`` is timed into a `_Profile`."""

    def __init__(self, lu, prof):
        self._lu, self._prof = lu, prof

    def solve(self, b, *a):
        t0 = time.perf_counter()
        try:
            return self._lu.solve(b, *a)
        finally:
            self._prof.s["lu_solve"] += time.perf_counter() - t0
            self._prof.calls["lu_solve"] += 1


def _profiled_solve(prob, strategy, *, rtol, atol, sj=None):
    """One BDF solve of ``prob`` with ``strategy`` (jac_sparsity / stiffasd / stiffasd+lu),
    with the wall split into right-hand side, Jacobian, LU and the rest (solver loop)."""
    import scipy.integrate._ivp.bdf as bdf_mod

    from stiffasd import scipy as sscipy

    prof = _Profile()
    fun = prob.numpy_rhs()
    t0, y0, args = prob.t_span[0], prob.y0, prob.args
    fun(t0, y0, *args)  # compiled before the clock starts, for every strategy
    opts = dict(rtol=rtol, atol=atol, args=args, method="BDF")
    prepare = 0.0
    start = time.perf_counter()
    if strategy == "jac_sparsity":
        opts["jac_sparsity"] = sj.pattern.to_scipy("csc")  # the exact pattern, hand-fed
    else:
        j = stiffasd.jac(prob.rhs)
        j.prepare(t0, y0, *args)
        j(t0, y0, *args)  # compile
        prepare = time.perf_counter() - start
        opts["jac"] = prof.wrap("jac", j)
        if strategy == "stiffasd+lu":
            opts["method"] = sscipy.BDF
    orig_splu, orig_num_jac = bdf_mod.splu, bdf_mod.num_jac
    timed_factor = prof.wrap("lu_factor", orig_splu)
    bdf_mod.splu = lambda A, *a, **k: _TimedLU(timed_factor(A, *a, **k), prof)
    bdf_mod.num_jac = prof.wrap("jac", orig_num_jac)  # colored FD Jacobians (jac_sparsity)
    try:
        sol = solve_ivp(prof.wrap("rhs", fun), prob.t_span, y0, **opts)
    finally:
        bdf_mod.splu, bdf_mod.num_jac = orig_splu, orig_num_jac
    wall = time.perf_counter() - start
    if strategy == "stiffasd+lu":
        st = sscipy.last_lu_stats()
        prof.s["lu_factor"], prof.s["lu_solve"] = st.get("factor_s", 0.0), st.get("solve_s", 0.0)
        prof.calls["lu_factor"], prof.calls["lu_solve"] = (
            st.get("n_factor", 0),
            st.get("n_solve", 0),
        )
    return sol, wall, prepare, prof


def part_arrowhead(opts) -> list[dict]:
    """The global-coupling example (reservoir_exchange, arrowhead Jacobian) at sizes where the
    solve is not dominated by fixed costs: BDF with ``jac_sparsity`` (colored finite
    differences: n + 1 right-hand sides per Jacobian) against stiffasd.jac (bicoloring, 7
    passes) and against the full stack (``method=stiffasd.scipy.BDF``), best of
    ``--arrow-repeats`` solves each, with the wall split by a profile."""
    rows = []
    sizes = opts.arrow_sizes[:1] if opts.quick else opts.arrow_sizes
    strategies = ("jac_sparsity", "stiffasd", "stiffasd+lu")
    for n_cells in sizes:
        prob = PROBLEMS["reservoir_exchange"](n_cells=n_cells)
        start = time.perf_counter()
        sj = stiffasd.jac(prob.rhs).prepare(prob.t_span[0], prob.y0, *prob.args)
        first_prepare = time.perf_counter() - start
        best = {}
        for _ in range(opts.arrow_repeats):
            for strategy in strategies:  # in turns, so that load bursts hit all alike
                sol, wall, prepare, prof = _profiled_solve(
                    prob, strategy, rtol=opts.rtol, atol=opts.atol, sj=sj
                )
                if strategy not in best or wall < best[strategy][1]:
                    best[strategy] = (sol, wall, prepare, prof)
        ref_y = best["stiffasd"][0].y[:, -1]
        scale = np.maximum(np.abs(ref_y), 1.0)
        for strategy in strategies:
            sol, wall, prepare, prof = best[strategy]
            d = dict(
                problem=prob.name,
                n=prob.n,
                strategy=strategy,
                passes=sj.ncolors if strategy != "jac_sparsity" else None,
                wall=wall,
                prepare=prepare,
                nfev=int(sol.nfev),
                njev=int(sol.njev),
                nlu=int(sol.nlu),
                steps=int(sol.t.size - 1),
                success=bool(sol.success),
                max_rel_diff=float(np.max(np.abs(sol.y[:, -1] - ref_y) / scale)),
                load=os.getloadavg()[0],
                # detection and coloring of the first preparation of this size
                detect_s=sj.timings["detect"],
                color_s=sj.timings["color"],
                first_prepare_s=first_prepare,
                **{f"{k}_s": v for k, v in prof.s.items()},
                **{f"{k}_calls": v for k, v in prof.calls.items()},
            )
            d["rhs_in_jac_calls"] = prof.rhs_in_jac_calls
            d["rest_s"] = wall - prepare - sum(prof.s.values())
            rows.append(d)
        base = best["jac_sparsity"][1]
        for d in rows[-len(strategies) :]:
            d["speedup_vs_jac_sparsity"] = base / d["wall"]
            d["speedup_vs_jac_sparsity_no_prepare"] = base / (d["wall"] - d["prepare"])
            print(
                f"[arrowhead] n={d['n']:6d} {d['strategy']:12s} wall {d['wall']:7.2f} s "
                f"(prepare {d['prepare']:.2f}, rhs {d['rhs_s']:.2f}, jac {d['jac_s']:.2f}, "
                f"LU {d['lu_factor_s'] + d['lu_solve_s']:.2f}, rest {d['rest_s']:.2f}) "
                f"x{d['speedup_vs_jac_sparsity']:.1f} njev={d['njev']} nlu={d['nlu']}",
                flush=True,
            )
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    for d in rows:
        d["blas_threads"] = blas
    if opts.arrow_child:  # a child run under another BLAS setting: hand the rows back
        Path(opts.arrow_child).write_text(json.dumps(rows))
        return rows
    if blas == "default" and not opts.no_arrow_blas1:
        # numpy's vector norms in scipy's step loop go through OpenBLAS, whose threads fight
        # the other processes on this small shared machine: rerun the part with one BLAS
        # thread (read at import, hence a fresh process) to show what that costs
        import subprocess
        import sys
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rows.json"
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.compare_all",
                "--parts",
                "arrowhead",
                "--arrow-child",
                str(out),
                "--rtol",
                str(opts.rtol),
                "--atol",
                str(opts.atol),
                "--arrow-repeats",
                str(opts.arrow_repeats),
                "--arrow-sizes",
                *map(str, sizes),
            ]
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
            proc = subprocess.run(cmd, env=env, text=True)
            if proc.returncode == 0:
                rows += json.loads(out.read_text())
    write_results(
        "all_arrowhead",
        {"rtol": opts.rtol, "atol": opts.atol, "repeats": opts.arrow_repeats, "rows": rows},
        arrowhead_table(rows, opts.rtol, opts.atol, opts.arrow_repeats),
    )
    return rows


def arrowhead_table(rows, rtol, atol, repeats) -> str:
    lines = [
        f"reservoir_exchange (arrowhead Jacobian: one dense row and column), solve_ivp BDF, "
        f"rtol={rtol}, atol={atol}, t in [0, 2]; best of {repeats} solves per strategy, the "
        "strategies in turns in one process. *jac_sparsity*: colored finite differences with "
        "the exact pattern (n + 1 column groups: the dense row makes every pair of columns "
        "conflict); *stiffasd*: `jac=stiffasd.jac(rhs)` (bicoloring); *stiffasd+lu*: the same "
        "with `method=stiffasd.scipy.BDF` (fixed-pattern LU). The wall is split into stiffasd's "
        "one-time *prepare* (detection, coloring, compilation), time inside the right-hand side "
        "calls the solver makes (for jac_sparsity, those made by the finite differences are in "
        "*Jacobian*), the Jacobians, the LU factorizations and solves, and the *rest* (scipy's "
        "Python step loop). *rhs* counts the calls outside the Jacobian; for jac_sparsity the "
        "finite-difference calls (nfev minus those) are inside *Jacobian*. *BLAS threads*: "
        "`OPENBLAS_NUM_THREADS` of the process (the second block is a fresh process with one "
        "BLAS thread: scipy's step loop takes a vector norm several times per step, and "
        "OpenBLAS's threaded `dot` on a busy 2-core machine costs milliseconds per call).",
        "",
        "| n | BLAS threads | strategy | wall [s] | vs jac_sparsity | vs jac_sparsity w/o prepare | prepare [s] | "
        "rhs [s] (calls) | Jacobian [s] (njev) | LU factor [s] (nlu) | LU solve [s] (calls) | "
        "rest [s] | nfev | steps | max rel. diff | load | detect / color [s] |",
        "|" + "---|" * 17,
    ]
    for d in rows:
        lines.append(
            f"| {d['n']} | {d.get('blas_threads', 'default')} | {d['strategy']} | {d['wall']:.2f} | "
            f"{d['speedup_vs_jac_sparsity']:.1f}x | {d['speedup_vs_jac_sparsity_no_prepare']:.1f}x | "
            f"{d['prepare']:.2f} | {d['rhs_s']:.2f} ({d['rhs_calls']}) | "
            f"{d['jac_s']:.2f} ({d['njev']}) | {d['lu_factor_s']:.2f} ({d['nlu']}) | "
            f"{d['lu_solve_s']:.2f} ({d['lu_solve_calls']}) | {d['rest_s']:.2f} | {d['nfev']} | "
            f"{d['steps']} | {d['max_rel_diff']:.1e} | {d['load']:.1f} | "
            + (
                f"{d['detect_s']:.2f} / {d['color_s']:.2f}"
                if "color_s" in d and d["strategy"] != "jac_sparsity"
                else ""
            )
            + " |"
        )
    return "\n".join(lines)


def diffrax_table(rows, rtol, atol, repeats=3) -> str:
    lines = [
        f"diffrax `Kvaerno5` with `PIDController(rtol={rtol}, atol={atol})`: the dense default "
        "(dense `jacfwd` Jacobian and dense LU inside diffrax's root finder) against "
        "`stiffasd.diffrax.sparse(Kvaerno5())` (sparse Jacobian, SuperLU), side by side in one "
        f"process. *run*: best of {repeats} runs of the compiled solve; *compile*: "
        "`jax.jit(...).lower().compile()` (for stiffasd it includes detection and coloring, "
        "which run while tracing). *error*: max relative deviation (floor 1) of the final state "
        "from a solve_ivp Radau rtol=1e-10 reference. Small instances, so that the dense default "
        "finishes.",
        "",
        "| problem | n | t span | strategy | compile [s] | run [s] | run speed-up vs dense | "
        "steps (rejected) | error | load |",
        "|" + "---|" * 10,
    ]
    for d in rows:
        sp_ = f"{d['speedup_vs_dense']:.1f}x" if "speedup_vs_dense" in d else ""
        lines.append(
            f"| {d['problem']} | {d['n']} | {d['t_span'][0]:g}..{d['t_span'][1]:g} | "
            f"{d['strategy']} | {d['compile_s']:.1f} | {d['run_s']:.3f} | {sp_} | "
            f"{d['steps']} ({d['rejected']}) | {d['error']:.1e} | {d['load']:.1f} |"
        )
    return "\n".join(lines)


def solve_table(rows, rtol, atol, max_default_n) -> str:
    lines = [
        f"Whole solves with solve_ivp (rtol={rtol}, atol={atol}), side by side in one "
        "process. *error*: max relative deviation (floor 1) of the final state from a Radau "
        "reference at rtol=1e-10 (using stiffasd). Wall times include everything the strategy "
        "needs; for stiffasd, detection, coloring and compilation (*prepare*) are in it and "
        "broken down. The dense default runs only up to n = "
        f"{max_default_n}.",
        "",
        "| problem | n | passes | method | strategy | wall [s] | vs default | vs jac_sparsity | "
        "nfev | njev | nlu | steps | error | prepare [s] (detect / color / compile) | "
        "wall - prepare [s] |",
        "|" + "---|" * 15,
    ]
    for d in rows:
        vs_def = f"{d['speedup_vs_default']:.1f}x" if "speedup_vs_default" in d else "n/a"
        prep = (
            f"{d['prepare']:.2f} ({d['detect_s']:.2f} / {d['color_s']:.2f} / {d['compile_s']:.2f})"
            if "compile_s" in d
            else ""
        )
        lines.append(
            f"| {d['problem']} | {d['n']} | {d['passes']} | {d['method']} | "
            f"{LABELS[d['strategy']]} | {d['wall']:.2f} | {vs_def} | "
            f"{d['speedup_vs_jac_sparsity']:.2f}x | {d['nfev']} | {d['njev']} | {d['nlu']} | "
            f"{d['nsteps']} | {d['error']:.1e} | {prep} | {d['wall'] - d['prepare']:.2f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------- scaling
def part_scaling(opts) -> list[dict]:
    rows = []
    sizes = opts.scaling_sizes[:4] if opts.quick else opts.scaling_sizes
    for N in sizes:
        prob = brusselator_2d(N)
        row = time_jacobians(prob, max_dense_n=opts.max_dense_n_scaling)
        row["N"] = N
        # one-time cost of stiffasd: detection + coloring + compilation of the passes
        row["stiffasd_once_s"] = row["prepare_s"] + row["compile_s"]
        rows.append(row)
        print(
            f"[scaling] N={N:4d} n={row['n']:6d} stiffasd {_fmt_ms(row['stiffasd_s'])} ms "
            f"(+{row['stiffasd_once_s']:.2f} s once)  FD {_fmt_ms(row['colored_fd_s'])} ms  "
            f"jacfwd {_fmt_ms(row.get('dense_jacfwd_s'))} ms",
            flush=True,
        )
    crossover = _crossovers(rows)
    lines = [
        "Brusselator 2D, one Jacobian against n (best of many, one process). *once*: stiffasd's "
        "detection + coloring + compilation, paid once per right-hand side and input "
        "structure. Dense AD is compiled separately (its compile time is not counted). "
        "stiffasd is compiled for evaluation speed (`fast_compile=False`).",
        "",
        "| N | n | passes | stiffasd [ms] | stiffasd once [s] | colored FD [ms] | jacfwd [ms] | "
        "jacrev [ms] | jacfwd / stiffasd | FD / stiffasd |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        fwd = r.get("dense_jacfwd_s")
        lines.append(
            f"| {r['N']} | {r['n']} | {r['passes']} | {_fmt_ms(r['stiffasd_s'])} | "
            f"{r['stiffasd_once_s']:.2f} | {_fmt_ms(r['colored_fd_s'])} | {_fmt_ms(fwd)} | "
            f"{_fmt_ms(r.get('dense_jacrev_s'))} | "
            f"{_ratio(fwd, r['stiffasd_s'])} | "
            f"{r['colored_fd_s'] / r['stiffasd_s']:.1f}x |"
        )
    lines += ["", "Crossovers: " + "; ".join(f"{k}: {v}" for k, v in crossover.items())]
    write_results("scaling", {"rows": rows, "crossover": crossover}, "\n".join(lines))
    _plot_scaling(rows, crossover)
    return rows


def _crossovers(rows) -> dict:
    out = {}
    dense = [r for r in rows if "dense_jacfwd_s" in r]
    fast = [r["n"] for r in dense if r["stiffasd_s"] < r["dense_jacfwd_s"]]
    out["stiffasd (prepared) faster than dense jacfwd from n"] = min(fast) if fast else None
    once = [r["n"] for r in dense if r["stiffasd_s"] + r["stiffasd_once_s"] < r["dense_jacfwd_s"]]
    out["stiffasd including one-time preparation faster than one dense jacfwd from n"] = (
        min(once) if once else "not within the dense range"
    )
    # one-time cost amortized against colored FD over a solve's Jacobians
    k = [
        r["stiffasd_once_s"] / (r["colored_fd_s"] - r["stiffasd_s"])
        for r in rows
        if r["colored_fd_s"] > r["stiffasd_s"]
    ]
    out["Jacobians needed to repay preparation vs colored FD (largest n)"] = (
        f"{k[-1]:.0f}" if k else "never"
    )
    return out


def _plot_scaling(rows, crossover) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    n = np.array([r["n"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    dn = [r for r in rows if "dense_jacfwd_s" in r]
    nd = [r["n"] for r in dn]
    ax.loglog(nd, [r["dense_jacfwd_s"] for r in dn], "o-", label="dense jax.jacfwd")
    ax.loglog(nd, [r["dense_jacrev_s"] for r in dn], "v-", label="dense jax.jacrev")
    ax.loglog(
        n, [r["colored_fd_s"] for r in rows], "s-", label="colored finite differences (scipy)"
    )
    ax.loglog(n, [r["stiffasd_s"] for r in rows], "D-", label="stiffasd (prepared)")
    ax.loglog(
        n,
        [r["stiffasd_s"] + r["stiffasd_once_s"] for r in rows],
        "D--",
        alpha=0.6,
        label="stiffasd incl. detection + coloring + compile",
    )
    ax.set_xlabel("n (unknowns)")
    ax.set_ylabel("time of one Jacobian [s]")
    ax.set_title("2D Brusselator: Jacobian time against n", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.005, machine_markdown().replace("Machine: ", "")[:150], fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(FIGURES / "scaling.png", dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------- work-precision
def part_wp(opts) -> list[dict]:
    prob = brusselator_2d(opts.wp_N)
    ref = _reference(prob)
    scale = np.maximum(np.abs(ref), 1.0)
    rows = []
    tols = opts.wp_tols[:3] if opts.quick else opts.wp_tols
    for method in opts.wp_methods:
        for rtol in tols:
            strategies = ["jac_sparsity", "stiffasd"]
            if prob.n <= opts.max_default_n:
                strategies.insert(0, "default")
            # best of a few repeats: single walls on a shared machine vary by several x
            runs = [
                compare_solve_ivp(prob, strategies, method=method, rtol=rtol, atol=rtol * 1e-2)
                for _ in range(opts.wp_repeats)
            ]
            recs = [
                min((run[i] for run in runs), key=lambda r: r.wall) for i in range(len(strategies))
            ]
            for r in recs:
                d = r.as_dict()
                d.update(
                    rtol=rtol,
                    error=float(np.max(np.abs(r.y_final - ref) / scale)),
                    repeats=opts.wp_repeats,
                    walls=[
                        run[i].wall
                        for run in runs
                        for i in range(len(strategies))
                        if run[i].strategy == r.strategy
                    ],
                    blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                    load=os.getloadavg()[0],
                )
                rows.append(d)
                print(
                    f"[wp] {method} rtol={rtol:.0e} {r.strategy:12s} {r.wall:7.2f} s "
                    f"err={d['error']:.1e}",
                    flush=True,
                )
    lines = [
        f"Work-precision, {prob.name} (n = {prob.n}), atol = rtol / 100; error = max relative "
        "deviation (floor 1) from a Radau rtol=1e-10 reference; wall (best of "
        f"{opts.wp_repeats} runs, in turns in one process) includes stiffasd's preparation; "
        "*wall - prepare* leaves it out (it is paid once per right-hand side).",
        "",
        "| method | rtol | strategy | wall [s] (best) | wall [s] (all runs) | wall - prepare [s] "
        "| error | nfev | njev | nlu | steps | load |",
        "|" + "---|" * 12,
    ]
    for d in rows:
        lines.append(
            f"| {d['method']} | {d['rtol']:.0e} | {LABELS[d['strategy']]} | "
            f"{d['wall']:.2f} | {' / '.join(f'{w:.2f}' for w in d['walls'])} | "
            f"{d['wall'] - d['prepare']:.2f} | {d['error']:.1e} | {d['nfev']} | {d['njev']} | "
            f"{d['nlu']} | {d['nsteps']} | {d['load']:.1f} |"
        )
    write_results("work_precision", {"problem": prob.name, "rows": rows}, "\n".join(lines))
    _plot_wp(prob, rows)
    return rows


def _plot_wp(prob, rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    markers = {"default": "o", "jac_sparsity": "s", "stiffasd": "D"}
    styles = {"BDF": "-", "Radau": "--"}
    for method in sorted({d["method"] for d in rows}):
        for strategy in ("default", "jac_sparsity", "stiffasd"):
            pts = [d for d in rows if d["method"] == method and d["strategy"] == strategy]
            if pts:
                line = ax.loglog(
                    [d["wall"] for d in pts],
                    [max(d["error"], 1e-16) for d in pts],
                    markers[strategy] + styles[method],
                    label=f"{method}: {LABELS[strategy]}",
                )[0]
                if strategy == "stiffasd":
                    ax.loglog(
                        [d["wall"] - d["prepare"] for d in pts],
                        [max(d["error"], 1e-16) for d in pts],
                        markers[strategy] + ":",
                        color=line.get_color(),
                        alpha=0.5,
                        mfc="none",
                        label=f"{method}: stiffasd without its one-time preparation",
                    )
    ax.set_xlabel(f"wall time of the whole solve [s] (best of {rows[0].get('repeats', 3)})")
    ax.set_ylabel("error at t_end (max rel.)")
    ax.set_title(f"Work-precision: {prob.name}, n = {prob.n}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.text(0.01, 0.005, machine_markdown().replace("Machine: ", "")[:150], fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(FIGURES / "work_precision.png", dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------- break-even
# the small instances of the solve part, plus larger ones to place the crossover
BREAKEVEN_CASES = [
    *SOLVE_CASES.items(),
    ("brusselator_2d", dict(N=32)),
    ("reservoir_exchange", dict(n_cells=1000)),
    ("flame_1d", dict(N=1000)),
]


def _setup_time(prob) -> float:
    """A fresh `stiffasd.jac` up to its first Jacobian: detection, coloring, compilation."""
    t0, y0, args = prob.t_span[0], prob.y0, prob.args
    start = time.perf_counter()
    stiffasd.jac(prob.rhs)(t0, y0, *args)
    return time.perf_counter() - start


def _warm_child(cache_dir: str) -> None:
    """Child process: setups with JAX's persistent compilation cache in ``cache_dir`` (filled
    by an earlier child); prints ``{problem: best of 3 seconds}`` as JSON."""
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    numba_startup()
    out = {}
    for name, kw in BREAKEVEN_CASES:
        prob = PROBLEMS[name](**kw)
        prob.numpy_rhs()(prob.t_span[0], prob.y0, *prob.args)
        out[prob.name] = min(_setup_time(prob) for _ in range(3))
    print("WARM " + json.dumps(out), flush=True)


def _warm_setups() -> dict:
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as cache_dir:
        cmd = [sys.executable, "-m", "benchmarks.compare_all", "--warm-child", cache_dir]
        for _ in range(2):  # the first child fills the cache, the second one measures
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("WARM "))
    return json.loads(line[5:])


def part_breakeven(opts) -> list[dict]:
    """Setup against savings: stiffasd is never slower than ``jac_sparsity`` on a solve exactly
    when its one-time setup is smaller than the time its prepared Jacobians (and, for the full
    stack, the fixed-pattern LU) save during that solve."""
    from stiffasd import scipy as stiffasd_scipy

    warm = _warm_setups()
    rows = []
    cases = BREAKEVEN_CASES[:2] if opts.quick else BREAKEVEN_CASES
    for name, kw in cases:
        prob = PROBLEMS[name](**kw)
        t0, y0, args = prob.t_span[0], prob.y0, prob.args
        fun = prob.numpy_rhs()
        fun(t0, y0, *args)
        cold = min(_setup_time(prob) for _ in range(opts.solve_repeats))
        j = stiffasd.jac(prob.rhs)
        j(t0, y0, *args)
        for method in opts.methods:
            strategies = {
                "jac_sparsity": dict(jac_sparsity=j.sparsity),
                "stiffasd": dict(jac=j),
                FULL_STACK: dict(jac=j, method=getattr(stiffasd_scipy, method)),
            }
            best = {k: np.inf for k in strategies}
            for _ in range(opts.solve_repeats):  # interleaved, best of
                for k, extra in strategies.items():
                    kw_solve = dict(method=method, rtol=opts.rtol, atol=opts.atol, args=args)
                    kw_solve.update(extra)
                    start = time.perf_counter()
                    sol = solve_ivp(fun, prob.t_span, y0, **kw_solve)
                    best[k] = min(best[k], time.perf_counter() - start)
                    if not sol.success:
                        raise RuntimeError(f"{prob.name} {method} {k}: {sol.message}")
            js = best["jac_sparsity"]
            row = dict(
                problem=prob.name,
                n=prob.n,
                method=method,
                jac_sparsity_s=js,
                stiffasd_solve_s=best["stiffasd"],
                full_solve_s=best[FULL_STACK],
                setup_cold_s=cold,
                setup_warm_s=warm.get(prob.name, float("nan")),
            )
            for k, key in (("stiffasd", "stiffasd"), (FULL_STACK, "full")):
                row[f"{key}_saving_s"] = js - best[k]
                row[f"{key}_vs_js_cold"] = js / (cold + best[k])
                row[f"{key}_vs_js_warm"] = js / (row["setup_warm_s"] + best[k])
            rows.append(row)
            print(
                f"[breakeven] {prob.name:36s} {method:5s} js {js:.3f} s, setup {cold:.3f} / "
                f"{row['setup_warm_s']:.3f} s, saving {row['stiffasd_saving_s']:+.3f} / "
                f"{row['full_saving_s']:+.3f} s",
                flush=True,
            )
    write_results(
        "breakeven",
        {"rtol": opts.rtol, "atol": opts.atol, "repeats": opts.solve_repeats, "rows": rows},
        breakeven_table(rows, opts.rtol, opts.atol, opts.solve_repeats),
    )
    return rows


def breakeven_table(rows, rtol, atol, repeats) -> str:
    lines = [
        f"Where stiffasd repays its setup (solve_ivp, rtol={rtol}, atol={atol}). *setup*: a "
        "fresh `stiffasd.jac` up to its first Jacobian (detection, coloring, compilation); "
        f"*cold*: best of {repeats} in this process; *warm*: with JAX's persistent compilation "
        "cache filled by an earlier process (`jax_compilation_cache_dir`, "
        "`jax_persistent_cache_min_compile_time_secs=0`). *saving*: `jac_sparsity`'s solve "
        f"minus the prepared strategy's solve (best of {repeats}, interleaved); with its setup, "
        "a strategy is never slower than `jac_sparsity` exactly when saving > setup. *full "
        "stack*: `stiffasd.jac` + `stiffasd.scipy` solver. Ratios > 1: stiffasd faster, setup "
        "included.",
        "",
        "| problem | n | method | jac_sparsity [s] | setup cold [s] | setup warm [s] | "
        "saving stiffasd.jac [s] | saving full stack [s] | stiffasd.jac vs js (cold / warm) | "
        "full stack vs js (cold / warm) |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['method']} | {r['jac_sparsity_s']:.3f} | "
            f"{r['setup_cold_s']:.3f} | {r['setup_warm_s']:.3f} | "
            f"{r['stiffasd_saving_s']:+.3f} | {r['full_saving_s']:+.3f} | "
            f"{r['stiffasd_vs_js_cold']:.2f}x / {r['stiffasd_vs_js_warm']:.2f}x | "
            f"{r['full_vs_js_cold']:.2f}x / {r['full_vs_js_warm']:.2f}x |"
        )
    return "\n".join(lines)


def numba_startup() -> float:
    """numba loads its compiled kernels on the first coloring of a process (seconds on a busy
    machine); pay it once here so the per-problem coloring times are steady-state."""
    start = time.perf_counter()
    tiny = stiffasd.SparsityPattern.identity(2)
    for partition in ("column", "row"):
        stiffasd.color(tiny, partition=partition, order="largest_first")
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- docs page
DOC_SECTIONS = [
    ("all_jacobian", "One Jacobian, every problem"),
    ("external_jacobian", "One Jacobian against CasADi, sparsejac and asdex"),
    (
        "external_jacobian_1thread",
        "One Jacobian against CasADi, sparsejac and asdex, XLA on one thread",
    ),
    ("external_variants", "Where the Brusselator Jacobian's time goes (N = 128)"),
    ("external_variants_sweep", "Constant one-hot seeds, every problem"),
    ("scaling", "Scaling with n: the three regimes"),
    ("all_solve", "Whole solves with solve_ivp"),
    ("breakeven", "Whole solves: where stiffasd repays its setup"),
    ("all_solve_diffrax", "Whole solves with diffrax (Kvaerno5)"),
    ("all_arrowhead", "Global coupling (arrowhead): whole BDF solves against jac_sparsity"),
    ("work_precision", "Work-precision: Brusselator"),
]
DOC_FIGURES = {
    "scaling": "benchmarks/scaling.png",
    "work_precision": "benchmarks/work_precision.png",
}


def _load(results: Path, name: str) -> dict | None:
    import json

    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _findings(results: Path) -> list[str]:
    """Headline ratios, recomputed from the committed JSON so the text never goes stale."""
    lines = []
    jac = _load(results, "all_jacobian")
    if jac:
        r = np.array([d["colored_fd_s"] / d["stiffasd_s"] for d in jac["rows"]])
        rc = np.array([d["colored_fd_s"] / d["stiffasd_csc_s"] for d in jac["rows"]])
        lines.append(
            f"- **One Jacobian vs scipy's colored finite differences at equal pass count**: "
            f"stiffasd is {np.min(r):.0f}x to {np.max(r):.0f}x faster (median {np.median(r):.0f}x) "
            f"over {len(r)} problem instances; {np.min(rc):.0f}x to {np.max(rc):.0f}x including "
            "the transfer into a scipy `csc_matrix`."
        )
        dense = [d for d in jac["rows"] if "dense_jacfwd_s" in d]
        if dense:
            q = np.array([d["dense_jacfwd_s"] / d["stiffasd_s"] for d in dense])
            lines.append(
                f"- **vs dense `jax.jacfwd`** (n <= {max(d['n'] for d in dense)}): "
                f"{np.min(q):.0f}x to {np.max(q):.0f}x faster."
            )
    sc = _load(results, "scaling")
    if sc:
        dense = [d for d in sc["rows"] if "dense_jacfwd_s" in d]
        if dense:
            big = dense[-1]
            lines.append(
                f"- **Scaling (Brusselator)**: at the largest n with a dense reference "
                f"(n = {big['n']}), stiffasd is {big['dense_jacfwd_s'] / big['stiffasd_s']:.0f}x "
                f"faster than dense `jacfwd` and "
                f"{big['colored_fd_s'] / big['stiffasd_s']:.0f}x faster than colored finite "
                "differences; " + "; ".join(f"{k}: {v}" for k, v in sc["crossover"].items()) + "."
            )
    sv = _load(results, "all_solve")
    if sv:
        rows = [d for d in sv["rows"] if d["strategy"] == "stiffasd"]
        q = np.array([d["speedup_vs_jac_sparsity"] for d in rows])
        full = [d for d in sv["rows"] if d["strategy"] == FULL_STACK]
        worse = [
            f"{d['problem']} {d['method']} ({d['speedup_vs_jac_sparsity']:.2f}x)"
            for d in rows
            if d["speedup_vs_jac_sparsity"] < 1.0
        ]
        qf = np.array([d["speedup_vs_jac_sparsity"] for d in full]) if full else None
        lines.append(
            f"- **Whole solve_ivp runs, stiffasd vs `jac_sparsity`** (wall including "
            f"detection, coloring and compilation): {np.min(q):.2f}x to {np.max(q):.2f}x "
            f"(median {np.median(q):.2f}x) over {len(q)} runs"
            + (
                f"; with the full stack (`method=stiffasd.scipy.*`) {np.min(qf):.2f}x to "
                f"{np.max(qf):.2f}x (median {np.median(qf):.2f}x)"
                if qf is not None
                else ""
            )
            + ". scipy's BDF and Radau reuse "
            "one Jacobian for many steps, so the Jacobian is rarely the bottleneck once it is "
            "sparse; the sparse LU, the right-hand side calls and the solver's Python loop "
            "dominate."
            + (
                f" Slower than `jac_sparsity` in: {', '.join(worse)} (mostly the "
                "one-time preparation on small problems, and noise of the shared "
                "machine)."
                if worse
                else ""
            )
        )
        by = {(d["problem"], d["method"]): d for d in sv["rows"] if d["strategy"] == "jac_sparsity"}
        q2 = np.array(
            [
                by[(d["problem"], d["method"])]["wall"] / (d["wall"] - d["prepare"])
                for d in rows
                if (d["problem"], d["method"]) in by
            ]
        )
        prep = np.array([d["prepare"] for d in rows])
        lines.append(
            f"- **The same runs without stiffasd's one-time preparation** (detection, coloring, "
            f"compilation: {np.min(prep):.1f} to {np.max(prep):.1f} s here, almost all of it "
            f"XLA compilation of the compressed passes): "
            f"{np.min(q2):.2f}x to {np.max(q2):.2f}x (median {np.median(q2):.2f}x) against "
            "`jac_sparsity`. The preparation pays off on long or repeated solves of one "
            "right-hand side (it is cached per input structure), not on a single short solve of "
            "a small problem. Single runs on the shared machine vary by 2-5x (e.g. a BDF run with "
            "one Jacobian taking 0.2 s in one strategy and 1.7 s in the other with identical "
            "counts), so read the counts as the hard numbers and the walls as indications."
        )
        dd = [d for d in rows if "speedup_vs_default" in d]
        if dd:
            q = np.array([d["speedup_vs_default"] for d in dd])
            lines.append(
                f"- **vs the dense finite-difference default**: {np.min(q):.1f}x to "
                f"{np.max(q):.1f}x faster (n <= {max(d['n'] for d in dd)})."
            )
    be = _load(results, "breakeven")
    if be:
        rows = be["rows"]
        won = [r for r in rows if r["full_vs_js_cold"] >= 1.0]
        lost = [r for r in rows if r["full_vs_js_cold"] < 1.0]
        longest_lost = max((r["jac_sparsity_s"] for r in lost), default=0.0)
        lines.append(
            f"- **Break-even of the one-time setup** (setup "
            f"{min(r['setup_cold_s'] for r in rows):.2f}-{max(r['setup_cold_s'] for r in rows):.2f}"
            f" s): the full stack, setup included, is at least as fast as `jac_sparsity` in "
            f"{len(won)} of {len(rows)} solves; the others are solves that take at most "
            f"{longest_lost:.2f} s with `jac_sparsity`, where the time stiffasd saves "
            f"({min(r['full_saving_s'] for r in lost) * 1e3:.0f}-"
            f"{max(r['full_saving_s'] for r in lost) * 1e3:.0f} ms) is less than the setup."
            if lost
            else f"- **Break-even of the one-time setup**: the full stack, setup included, is at "
            f"least as fast as `jac_sparsity` in all {len(rows)} solves."
        )
    lines += _findings_external(results)
    return lines


def _findings_external(results: Path) -> list[str]:
    """Headlines of the external-tool, variant, arrowhead and diffrax tables."""
    lines = []
    ext = _load(results, "external_jacobian")
    if ext:
        rows = ext["rows"]
        for tool, label in (
            ("casadi", "CasADi (SX virtual machine)"),
            ("casadi_dm", "CasADi (SX virtual machine, inputs already DM)"),
            ("sparsejac", "sparsejac"),
            ("asdex", "asdex"),
        ):
            # the arrowhead is listed apart: one-sided colorings need n passes there
            q = [
                r[f"{tool}_s"] / r["stiffasd_s"]
                for r in rows
                if f"{tool}_s" in r and not r["problem"].startswith("reservoir")
            ]
            if q:
                lines.append(
                    f"- **One Jacobian vs {label}** (same right-hand side, one process): "
                    f"{label.split(' ')[0]} takes {min(q):.2f}x to {max(q):.2f}x stiffasd's time "
                    f"over {len(q)} stencil instances (> 1: stiffasd faster)."
                )
        big = [r for r in rows if r["problem"] == "brusselator_2d(N=128)"]
        if big:
            r = big[0]
            parts = [f"stiffasd {1e3 * r['stiffasd_s']:.2f} ms"]
            for tool in ("casadi", "casadi_dm", "sparsejac", "asdex"):
                if f"{tool}_s" in r:
                    parts.append(
                        f"{tool.replace('_dm', ' (DM inputs)')} {1e3 * r[f'{tool}_s']:.2f} ms"
                    )
            lines.append(
                "- **Brusselator N = 128 (n = 32768)**: " + ", ".join(parts) + ". The 0.40 ms "
                "the issue quotes for CasADi is not reproduced by its SX virtual machine on this "
                "machine with this discretisation."
            )
        arrow = [r for r in rows if r["problem"].startswith("reservoir")]
        if arrow and "asdex_s" in arrow[0]:
            r = arrow[0]
            lines.append(
                f"- **Arrowhead ({r['problem']})**: stiffasd bicolors ({r['stiffasd_passes']} "
                f"passes); asdex uses {r.get('asdex_passes')} one-sided colors and takes "
                f"{r['asdex_s'] / r['stiffasd_s']:.0f}x longer, sparsejac "
                f"{r.get('sparsejac_s', float('nan')) / r['stiffasd_s']:.0f}x; CasADi "
                f"{r.get('casadi_s', float('nan')) / r['stiffasd_s']:.1f}x (after a "
                f"{r.get('casadi_build_s', float('nan')):.0f} s graph build)."
            )
    var = _load(results, "external_variants")
    if var:
        base = var["results"][0]
        t = base["times"]
        ref = t["stiffasd data (12 vmapped JVPs + gather)"]
        cands = {k: v for k, v in t.items() if k.startswith("V:")}
        best = min(cands, key=cands.get)
        lines.append(
            f"- **Where the time went (Brusselator N = {base['N']}, seeds built inside the "
            f"compiled function, as before `seeds='auto'`)**: stiffasd's Jacobian "
            f"{1e3 * ref:.2f} ms = 12 vmapped JVPs "
            f"{1e3 * t['12 vmapped JVPs only (compressed)']:.2f} ms + gather "
            f"{1e3 * t['gather only (flat[idx])']:.2f} ms; one JVP alone "
            f"{1e3 * t.get('one JVP (seed passed in)', float('nan')):.3f} ms (seed an input), "
            f"{1e3 * t.get('one JVP (constant seed)', t.get('one JVP', float('nan'))):.3f} ms "
            f"(seed a constant XLA folds). Fastest exact variant: *{best[3:]}* "
            f"{1e3 * cands[best]:.2f} ms ({ref / cands[best]:.1f}x faster)."
        )
    sw = _load(results, "external_variants_sweep")
    if sw:
        q = [r["stiffasd_s"] / r["constant_seeds_s"] for r in sw["rows"]]
        lines.append(
            f"- **The same passes with the one-hot seeds as trace-time constants**: "
            f"{min(q):.1f}x to {max(q):.1f}x faster than seeds built inside the compiled "
            f"function over {len(q)} instances (same values to rounding); XLA folds the "
            "seed-only part of each tangent (a linear stencil applied to a seed). This study is "
            "why `prepare_jacobian(seeds='auto')` now embeds the seeds as constants up to 2^19 "
            "seed entries (docs/pipeline.md)."
        )
    arr = _load(results, "all_arrowhead")
    if arr:
        for blas in ("default", "1"):
            rows = [d for d in arr["rows"] if d.get("blas_threads", "default") == blas]
            if not rows:
                continue
            txt = "; ".join(
                f"n = {d['n']}: {d['speedup_vs_jac_sparsity']:.1f}x "
                f"({d['speedup_vs_jac_sparsity_no_prepare']:.1f}x without preparation)"
                for d in rows
                if d["strategy"] == "stiffasd+lu"
            )
            prep = "; ".join(
                f"n = {d['n']}: {d['prepare']:.1f} s, its first coloring {d.get('color_s', float('nan')):.1f} s"
                for d in rows
                if d["strategy"] == "stiffasd+lu"
            )
            full = [d for d in rows if d["strategy"] == "stiffasd+lu"]
            best = max(full, key=lambda d: d["speedup_vs_jac_sparsity"])
            verdict = (
                f"the >= 10x target is met at n = {best['n']}"
                if best["speedup_vs_jac_sparsity"] >= 10
                else "the >= 10x target is not reached"
            )
            lines.append(
                f"- **Arrowhead whole BDF solves, full stack vs `jac_sparsity`** (BLAS threads "
                f"{blas}): {txt}. BDF evaluates only 1-2 Jacobians per solve here, each costing "
                f"n + 1 right-hand sides by finite differences (O(n^2) in all) and 7 passes with "
                f"stiffasd; with the one-time preparation ({prep}) counted, {verdict}. The table "
                "splits every wall."
            )
    dfx = _load(results, "all_solve_diffrax")
    if dfx:
        q = [d for d in dfx["rows"] if "speedup_vs_dense" in d]
        if q:
            lines.append(
                "- **diffrax Kvaerno5, `stiffasd.diffrax.sparse` vs the dense default** (run "
                "time, compile apart): "
                + ", ".join(f"{d['problem']} {d['speedup_vs_dense']:.1f}x" for d in q)
                + "."
            )
    return lines


def rerender(results: Path) -> None:
    """Rewrite the Markdown of the tables from their JSON (presentation changes only)."""
    for name, render in (
        ("all_jacobian", lambda p: jacobian_table(p["rows"], p.get("max_dense_n", 1200))),
        (
            "all_solve",
            lambda p: solve_table(p["rows"], p["rtol"], p["atol"], p.get("max_default_n", "n/a")),
        ),
        ("all_solve_diffrax", lambda p: diffrax_table(p["rows"], p["rtol"], p["atol"])),
        (
            "all_arrowhead",
            lambda p: arrowhead_table(p["rows"], p["rtol"], p["atol"], p.get("repeats", 1)),
        ),
    ):
        payload = _load(results, name)
        if payload:
            (results / f"{name}.md").write_text(
                f"{render(payload)}\n\n{machine_markdown(payload['machine'])}\n"
            )


def write_docs_page(opts=None) -> Path:
    """Assemble docs/benchmarks.md from every committed ``results/*.md`` table."""
    from benchmarks._machine import RESULTS

    rerender(RESULTS)

    out = FIGURES.parent / "benchmarks.md"
    parts = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.compare_all` from the tables it and the other "
        "benchmark scripts commit in `benchmarks/results/` (JSON with every number, Markdown "
        "below). Each table comes from one process, strategies side by side, so the ratios are "
        "meaningful; absolute times are from a small **shared** machine (2 cores, shared with "
        "other jobs; the machine line under each table gives CPU and versions) and are noisy.",
        "",
    ]
    findings = _findings(RESULTS)
    if findings:
        parts += ["## Summary (computed from the JSON results below)", "", *findings, ""]
    seen = set()
    for name, title in DOC_SECTIONS:
        md = RESULTS / f"{name}.md"
        if not md.exists():
            continue
        seen.add(name)
        parts += [f"## {title}", "", md.read_text().strip(), ""]
        if name in DOC_FIGURES and (FIGURES.parent / DOC_FIGURES[name]).exists():
            parts += [f"![{title}]({DOC_FIGURES[name]})", ""]
    others = [md for md in sorted(RESULTS.glob("*.md")) if md.stem not in seen]
    if others:
        parts += ["## Other benchmark scripts", ""]
    for md in others:
        parts += [f"### {md.stem.replace('_', ' ')}", "", md.read_text().strip(), ""]
    parts += [
        "## Not measured here",
        "",
        "- CasADi is compared through its SX virtual machine only, on the Brusselator, "
        "Gray-Scott, Allen-Cahn and reservoir right-hand sides rewritten with SX symbols; "
        "sparsejac and asdex are given the same JAX function. CasADi's generated C code was "
        "tried by hand: at Brusselator N = 16 it takes 0.025 ms against the virtual machine's "
        "0.038 ms (DM inputs), but the generated Jacobian source (3.4 MB at N = 64, 14.5 MB at "
        "N = 128) did not compile with `gcc -O1` within 5-6 minutes on this machine.",
        "- Jacobian times are for CPU only (no GPU on this machine).",
        "- scipy's `solve_ivp` computes its colored finite differences with its own "
        "`num_jac` (step-size control, same one evaluation per group); the Jacobian table "
        "uses `approx_derivative`, the public-facing equivalent. In whole solves, "
        "`jac_sparsity=` is exactly what users run.",
        "",
    ]
    out.write_text("\n".join(parts))
    return out


PARTS = {
    "jacobian": part_jacobian,
    "solve": part_solve,
    "diffrax": part_diffrax,
    "arrowhead": part_arrowhead,
    "scaling": part_scaling,
    "breakeven": part_breakeven,
    "wp": part_wp,
    "docs": write_docs_page,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        # the solve part runs the diffrax solves too; "diffrax" alone runs only those
        default=[p for p in PARTS if p != "diffrax"],
        choices=list(PARTS),
    )
    parser.add_argument("--quick", action="store_true", help="first sizes/problems only")
    parser.add_argument("--methods", nargs="+", default=["BDF", "Radau"])
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-8)
    parser.add_argument(
        "--max-dense-n",
        type=int,
        default=1200,
        help="dense jacfwd/jacrev only up to this n (Jacobian table)",
    )
    parser.add_argument("--max-dense-n-scaling", type=int, default=5000)
    parser.add_argument(
        "--max-default-n",
        type=int,
        default=600,
        help="solve_ivp's dense finite-difference default only up to this n",
    )
    parser.add_argument(
        "--scaling-sizes", type=int, nargs="+", default=[6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]
    )
    parser.add_argument(
        "--no-diffrax", action="store_true", help="solve part: skip the diffrax solves"
    )
    parser.add_argument(
        "--solve-repeats", type=int, default=3, help="solve and breakeven parts: best of"
    )
    parser.add_argument("--warm-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--diffrax-rtol", type=float, default=1e-5)
    parser.add_argument("--diffrax-atol", type=float, default=1e-7)
    parser.add_argument("--diffrax-repeats", type=int, default=3)
    parser.add_argument("--arrow-sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--arrow-repeats", type=int, default=3)
    parser.add_argument("--arrow-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-arrow-blas1",
        action="store_true",
        help="arrowhead part: skip the rerun with OPENBLAS_NUM_THREADS=1",
    )
    parser.add_argument("--wp-N", type=int, default=16)
    parser.add_argument("--wp-methods", nargs="+", default=["BDF", "Radau"])
    parser.add_argument("--wp-repeats", type=int, default=3)
    parser.add_argument(
        "--wp-tols", type=float, nargs="+", default=[1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    )
    opts = parser.parse_args(argv)
    if opts.warm_child:
        _warm_child(opts.warm_child)
        return
    startup = numba_startup()
    print(f"numba start-up (once per process, not in the tables): {startup:.2f} s", flush=True)
    for part in opts.parts:
        start = time.perf_counter()
        PARTS[part](opts)
        print(f"== {part} done in {time.perf_counter() - start:.0f} s", flush=True)
    if "docs" not in opts.parts and not opts.arrow_child:
        print("wrote", write_docs_page(opts))


if __name__ == "__main__":
    main()
