"""One Jacobian: stiffasd against dense AD, colored finite differences and other sparse tools.

* ``problems``: every problem of `stiffasd.problems` at a small and a medium size: one
  jit-compiled `SparseJacobian.data` against dense ``jax.jacfwd`` / ``jax.jacrev`` (small sizes)
  and scipy's colored finite differences (``approx_derivative`` with the pattern and the same
  column groups: what ``jac_sparsity=`` amounts to), with one JVP for the overhead ratio.
* ``scaling``: the 2D Brusselator from n = 72 to 73728: the same strategies against n, with
  stiffasd's one-time preparation; the figure ``docs/benchmarks/scaling.png``.
* ``external``: the same right-hand sides with sparsejac, asdex and CasADi (SX virtual machine),
  every tool in one process, interleaved; tools that do not import are left out (asdex 0.5
  needs Python >= 3.12 and jax 0.11: run this part in such an environment, e.g.
  ``pip install asdex casadi sparsejac "jax==0.11.2"``, with this checkout on ``PYTHONPATH``).

stiffasd is compiled for evaluation speed (``fast_compile=False``), as the other tools compile.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.optimize._numdiff import approx_derivative

import stiffasd
from benchmarks._harness import (
    Part,
    best_of,
    figure,
    in_child,
    interleaved,
    ms,
    ratio,
    save_figure,
    spread,
    table,
)
from benchmarks.problems import grid_rhs, make
from stiffasd._compare import warm_up

SIZES = {
    "brusselator_2d": [16, 64],
    "gray_scott_2d": [16, 64],
    "allen_cahn_3d": [8, 20],
    "advection_diffusion_reaction_2d": [24, 96],
    "robertson_diffusion_2d": [12, 48],
    "reservoir_exchange": [300, 3000],
    "flame_1d": [250, 4000],
}
MAX_DENSE_N = 1200


def _prepared(prob, t: float = 0.5):
    tt, y = jnp.asarray(t), jnp.asarray(prob.y0)
    args = tuple(jnp.asarray(a) for a in prob.args)
    start = time.perf_counter()
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, *args, argnums=1, fast_compile=False)
    prepare = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(sj.data_jit(tt, y, *args))
    return sj, (tt, y, args), prepare, time.perf_counter() - start


def time_jacobians(prob, max_dense_n: int, t: float = 0.5) -> dict:
    """One problem instance: stiffasd, colored finite differences and dense AD, one process."""
    sj, (tt, y, args), prepare, compile_s = _prepared(prob, t)
    t_sa, t_sa_med = best_of(sj.data_jit, tt, y, *args)
    t_csc = best_of(lambda: sj.csc(tt, y, *args), reps=10)[0]
    t_rhs = best_of(jax.jit(lambda y: prob.rhs(tt, y, *args)), y)[0]
    jvp = jax.jit(lambda y, v: jax.jvp(lambda y: prob.rhs(tt, y, *args), (y,), (v,))[1])
    t_jvp = best_of(jvp, y, jnp.ones_like(y))[0]
    # scipy's colored forward differences with the same column groups (f0 given, as solve_ivp
    # gives it): one evaluation per group
    col = stiffasd.color(sj.pattern, partition="column", order="largest_first")
    S, groups = sj.pattern.to_scipy("csr"), np.asarray(col.column_colors)
    fun, y_np = prob.numpy_rhs(), np.asarray(prob.y0)
    f0 = fun(t, y_np, *prob.args)
    t_rhs_np = best_of(lambda: fun(t, y_np, *prob.args), reps=20)[0]

    def fd():
        return approx_derivative(
            lambda x: fun(t, x, *prob.args), y_np, method="2-point", f0=f0, sparsity=(S, groups)
        )

    t_fd = best_of(fd, reps=5, min_time=1.0)[0]  # host Python: best of many
    J_sa = sj.csc(tt, y, *args)
    scale = max(float(np.abs(J_sa.data).max()), 1.0)
    row = dict(
        problem=prob.name, n=prob.n, nnz=sj.pattern.nnz, mode=sj.mode, passes=sj.ncolors,
        colors_column=col.ncolors, fd_evals=col.ncolors, detect_s=sj.timings["detect"],
        color_s=sj.timings["color"], prepare_s=prepare, compile_s=compile_s, stiffasd_s=t_sa,
        stiffasd_median_s=t_sa_med, fd_rhs_floor_s=t_rhs_np * (col.ncolors + 1),
        stiffasd_csc_s=t_csc, rhs_s=t_rhs, jvp_s=t_jvp, colored_fd_s=t_fd,
        fd_rel_err=float(abs(fd() - J_sa).max()) / scale,
    )  # fmt: skip
    if prob.n <= max_dense_n:
        for name, jfun in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
            dense = jax.jit(jfun(lambda y: prob.rhs(tt, y, *args)))
            row[f"dense_{name}_s"] = best_of(dense, y, reps=3, min_time=0.0)[0]
        diff = np.abs(np.asarray(dense(y)) - J_sa.toarray()).max()
        row["max_abs_diff_vs_dense"] = float(diff) / scale
    return row


def run_problems(quick: bool) -> dict:
    warm_up()
    rows = []
    for name, sizes in SIZES.items():
        for size in sizes[:1] if quick else sizes:
            rows.append(time_jacobians(make(name, size // 4 if quick else size), MAX_DENSE_N))
            print(f"[jacobian] {rows[-1]['problem']}", flush=True)
        if quick:
            break
    return {"rows": rows, "max_dense_n": MAX_DENSE_N}


def render_problems(p: dict) -> str:
    rows = [
        [
            r["problem"], r["n"], r["nnz"], r["mode"], r["passes"], r["fd_evals"],
            ms(r["stiffasd_s"]), ms(r["stiffasd_csc_s"]), ms(r["colored_fd_s"]),
            ms(r["fd_rhs_floor_s"]), ratio(r["colored_fd_s"], r["stiffasd_s"]),
            ms(r.get("dense_jacfwd_s")), ms(r.get("dense_jacrev_s")),
            ratio(r.get("dense_jacfwd_s"), r["stiffasd_s"], ".0f"), ms(r["jvp_s"]),
            f"{r['stiffasd_s'] / (r['passes'] * r['jvp_s']):.2f}",
            ms(r["detect_s"]), ms(r["color_s"]), ms(r["compile_s"]),
        ]
        for r in p["rows"]
    ]  # fmt: skip
    fd = spread([r["colored_fd_s"] / r["stiffasd_s"] for r in p["rows"]], ".0f")
    fd_csc = spread([r["colored_fd_s"] / r["stiffasd_csc_s"] for r in p["rows"]], ".0f")
    dense = spread([r.get("dense_jacfwd_s", np.nan) / r["stiffasd_s"] for r in p["rows"]], ".0f")
    summary = (
        f"\n\nstiffasd against colored finite differences: {fd}; including the transfer into "
        f"a scipy matrix: {fd_csc}. Against dense `jax.jacfwd`: {dense}."
    )
    return table(
        "One Jacobian per problem and size, best of many, side by side in one process. "
        "*stiffasd*: the jit-compiled values; *to scipy*: plus the host `csc_matrix`. *colored "
        "FD*: scipy's `approx_derivative` with the pattern and the same column groups as "
        "stiffasd's column coloring (*FD evals*; equal to *passes* except where stiffasd "
        "bicolors), f0 given as solve_ivp gives it; *(FD evals + 1) x rhs*: the right-hand-side "
        "calls alone, the floor of any finite-difference scheme. *data / (passes x JVP)*: "
        "stiffasd's Jacobian against as many single JVPs (below 1: the batched passes share "
        f"work). Dense AD up to n = {p['max_dense_n']}.",
        [
            "problem", "n", "nnz", "mode", "passes", "FD evals", "stiffasd [ms]",
            "to scipy [ms]", "colored FD [ms]", "(FD evals + 1) x rhs [ms]", "FD / stiffasd",
            "jacfwd [ms]", "jacrev [ms]", "jacfwd / stiffasd", "1 JVP [ms]",
            "data / (passes x JVP)", "detect [ms]", "color [ms]", "compile [ms]",
        ],
        rows,
    ) + summary  # fmt: skip


def run_scaling(quick: bool) -> dict:
    warm_up()
    rows = []
    for N in [6, 8, 12] if quick else [6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]:
        row = time_jacobians(make("brusselator_2d", N), max_dense_n=5000)
        row.update(N=N, stiffasd_once_s=row["prepare_s"] + row["compile_s"])
        rows.append(row)
        print(f"[scaling] N={N}", flush=True)
    return {"rows": rows, "crossover": _crossovers(rows)}


def _crossovers(rows) -> dict:
    dense = [r for r in rows if "dense_jacfwd_s" in r]
    fast = [r["n"] for r in dense if r["stiffasd_s"] < r["dense_jacfwd_s"]]
    once = [r["n"] for r in dense if r["stiffasd_s"] + r["stiffasd_once_s"] < r["dense_jacfwd_s"]]
    k = [r["stiffasd_once_s"] / (r["colored_fd_s"] - r["stiffasd_s"]) for r in rows if r["colored_fd_s"] > r["stiffasd_s"]]  # fmt: skip
    return {
        "stiffasd (prepared) faster than dense jacfwd from n": min(fast) if fast else None,
        "stiffasd including one-time preparation faster than one dense jacfwd from n": min(once) if once else "not within the dense range",
        "Jacobians needed to repay preparation vs colored FD (largest n)": f"{k[-1]:.0f}" if k else "never",
    }  # fmt: skip


def render_scaling(p: dict) -> str:
    rows = [
        [
            r["N"], r["n"], r["passes"], ms(r["stiffasd_s"]), f"{r['stiffasd_once_s']:.2f}",
            ms(r["colored_fd_s"]), ms(r.get("dense_jacfwd_s")), ms(r.get("dense_jacrev_s")),
            ratio(r.get("dense_jacfwd_s"), r["stiffasd_s"], ".0f"),
            ratio(r["colored_fd_s"], r["stiffasd_s"]),
        ]
        for r in p["rows"]
    ]  # fmt: skip
    cross = "; ".join(f"{k}: {v}" for k, v in p["crossover"].items())
    return (
        table(
            "2D Brusselator, one Jacobian against n (best of many, one process). *once*: "
            "stiffasd's detection + coloring + compilation, paid once per right-hand side and "
            "input structure. Dense AD's compile time is not counted.",
            [
                "N", "n", "passes", "stiffasd [ms]", "stiffasd once [s]", "colored FD [ms]",
                "jacfwd [ms]", "jacrev [ms]", "jacfwd / stiffasd", "FD / stiffasd",
            ],
            rows,
        )
        + f"\n\nCrossovers: {cross}."
    )  # fmt: skip


def plot_scaling(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    rows = p["rows"]
    n = [r["n"] for r in rows]
    dn = [r for r in rows if "dense_jacfwd_s" in r]
    ax.loglog([r["n"] for r in dn], [r["dense_jacfwd_s"] for r in dn], "o-", label="dense jax.jacfwd")  # fmt: skip
    ax.loglog([r["n"] for r in dn], [r["dense_jacrev_s"] for r in dn], "v-", label="dense jax.jacrev")  # fmt: skip
    ax.loglog(n, [r["colored_fd_s"] for r in rows], "s-", label="colored finite differences (scipy)")  # fmt: skip
    ax.loglog(n, [r["stiffasd_s"] for r in rows], "D-", label="stiffasd (prepared)")
    once = [r["stiffasd_s"] + r["stiffasd_once_s"] for r in rows]
    ax.loglog(n, once, "D--", alpha=0.6, label="stiffasd incl. detection + coloring + compile")
    return save_figure(
        fig, ax, directory / "scaling.png", xlabel="n (unknowns)",
        ylabel="time of one Jacobian [s]", title="2D Brusselator: Jacobian time against n",
    )  # fmt: skip


# ---------------------------------------------------------------------------- external tools
EXTERNAL = [
    ("brusselator_2d", 16), ("brusselator_2d", 64), ("brusselator_2d", 128),
    ("gray_scott_2d", 64), ("gray_scott_2d", 128), ("allen_cahn_3d", 20),
    ("reservoir_exchange", 3000),
]  # fmt: skip


def _ca_roll(M, shift: int, axis: int, ca):
    """``jnp.roll(M, shift, axis)`` for a CasADi matrix, shift = +-1 (slices + concatenation)."""
    n = M.shape[axis]
    if axis == 0:
        return ca.vertcat(M[n - 1, :], M[0 : n - 1, :]) if shift == 1 else ca.vertcat(M[1:n, :], M[0, :])  # fmt: skip
    return ca.horzcat(M[:, n - 1], M[:, 0 : n - 1]) if shift == 1 else ca.horzcat(M[:, 1:n], M[:, 0])  # fmt: skip


def _ca_lap(M, ca):
    rolls = [_ca_roll(M, s, a, ca) for s in (1, -1) for a in (0, 1)]
    return rolls[0] + rolls[1] + rolls[2] + rolls[3] - 4.0 * M


def casadi_rhs(name: str, size: int, ca):
    """The problem's right-hand side with CasADi SX symbols: ``(t, y, p, expression)``.

    The same discretisation as `stiffasd.problems`. CasADi reshapes column-major, so a grid
    field appears transposed; the periodic Laplacian commutes with the transpose and the field
    goes back to the flat order by the same reshape, so only the position-dependent forcing
    needs care (it is applied to the flat vector)."""
    t = ca.SX.sym("t")
    if name in ("brusselator_2d", "gray_scott_2d"):
        N, nn = size, size * size
        y = ca.SX.sym("y", 2 * nn)
        u, v = y[0:nn], y[nn : 2 * nn]
        lap_u = ca.reshape(_ca_lap(ca.reshape(u, N, N), ca), nn, 1)
        lap_v = ca.reshape(_ca_lap(ca.reshape(v, N, N), ca), nn, 1)
        if name == "brusselator_2d":
            p = ca.SX.sym("p", 3)
            a, b, diff = p[0], p[1], p[2]
            xs = np.linspace(0.0, 1.0, N)
            X, Y = np.meshgrid(xs, xs, indexing="ij")
            disc = (((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.1**2).ravel().astype(float)
            forcing = 5.0 * ca.DM(disc) * ca.if_else(t >= 1.1, 1.0, 0.0)
            uuv = u * u * v
            du = b + uuv - (a + 1.0) * u + diff * lap_u + forcing
            dv = a * u - uuv + diff * lap_v
        else:
            p = ca.SX.sym("p", 4)
            f, kk, du_, dv_ = p[0], p[1], p[2], p[3]
            uvv = u * v * v
            du = du_ * lap_u - uvv + f * (1.0 - u)
            dv = dv_ * lap_v + uvv - (f + kk) * v
        return t, y, p, ca.vertcat(du, dv)
    if name == "allen_cahn_3d":  # 7-point stencil, Dirichlet faces at -1, by index arithmetic
        N, n = size, size**3
        y, p = ca.SX.sym("y", n), ca.SX.sym("p", 2)
        idx = np.arange(n).reshape(N, N, N)
        lap = -6.0 * y
        for axis in range(3):
            for step in (1, -1):
                inside = np.ones((N, N, N), bool)
                face = [slice(None)] * 3
                face[axis] = N - 1 if step == 1 else 0
                inside[tuple(face)] = False
                ins = inside.ravel()
                gathered = y[np.roll(idx, -step, axis=axis).ravel().tolist()]
                lap = lap + ca.DM(ins.astype(float)) * gathered - ca.DM((~ins).astype(float))
        return t, y, p, p[0] * lap + p[1] * (y - y**3)
    if name == "reservoir_exchange":
        kappa = ca.DM(10.0 ** np.random.default_rng(0).uniform(0.0, 3.0, size))
        y, p = ca.SX.sym("y", size + 1), ca.SX.sym("p", 2)
        u, R = y[0:size], y[size]
        left = ca.vertcat(u[0], u[0 : size - 1])
        right = ca.vertcat(u[1:size], u[size - 1])
        exchange = kappa * (R - u)
        du = p[0] * (right - 2.0 * u + left) + exchange - u * u / (1.0 + u)
        return t, y, p, ca.vertcat(du, -p[1] * ca.sum1(exchange))
    raise KeyError(f"casadi_rhs: no CasADi version of {name!r}")


def _rel_err(A, B) -> float:
    A, B = sp.csc_matrix(A), sp.csc_matrix(B)
    return float(abs(A - B).max()) / max(float(abs(B).max()), 1.0)


def _bcoo_scipy(out, shape):
    return sp.coo_matrix((np.asarray(out.data), tuple(np.asarray(out.indices).T)), shape=shape)


def _external_case(name: str, size: int, tools: list[str], quick: bool) -> dict:
    prob = make(name, size)
    sj, (tt, y, args), prepare, compile_s = _prepared(prob)
    row: dict = dict(
        problem=prob.name, n=prob.n, nnz=sj.pattern.nnz, stiffasd_mode=sj.mode,
        stiffasd_passes=sj.ncolors, stiffasd_prepare_s=prepare, stiffasd_compile_s=compile_s,
    )  # fmt: skip
    J_ref = sj.csc(tt, y, *args)
    fns = {"stiffasd": lambda: sj.data_jit(tt, y, *args), "stiffasd_csc": lambda: sj.csc(tt, y, *args)}  # fmt: skip

    def f1(x):  # the function of the state alone, as sparsejac and asdex take it
        return prob.rhs(tt, x, *args)

    try:
        if "sparsejac" in tools:
            import sparsejac
            from jax.experimental import sparse as jsparse

            coo = sj.pattern.to_scipy("coo")
            idx = jnp.asarray(np.stack([coo.row, coo.col], axis=1))
            pattern = jsparse.BCOO((jnp.ones(len(idx)), idx), shape=sj.pattern.shape)
            jf = jax.jit(sparsejac.jacfwd(f1, sparsity=pattern))
            start = time.perf_counter()
            row["sparsejac_err"] = _rel_err(_bcoo_scipy(jf(y), sj.pattern.shape), J_ref)
            row["sparsejac_compile_s"] = time.perf_counter() - start
            fns["sparsejac"] = lambda: jf(y)
        if "asdex" in tools:
            import asdex

            start = time.perf_counter()
            colored = asdex.jacobian_coloring(f1, y)
            row["asdex_prepare_s"] = time.perf_counter() - start
            row["asdex_passes"], row["asdex_mode"] = int(colored.num_colors), str(colored.mode)
            ja = jax.jit(asdex.jacobian_from_coloring(f1, colored))
            start = time.perf_counter()
            out = jax.block_until_ready(ja(y))
            row["asdex_compile_s"] = time.perf_counter() - start
            row["asdex_err"] = _rel_err(_bcoo_scipy(out, out.shape), J_ref)
            fns["asdex"] = lambda: ja(y)
        if "casadi" in tools:
            import casadi as ca

            start = time.perf_counter()
            ct, cy, cp, expr = casadi_rhs(name, size, ca)
            cfun = ca.Function("J", [ct, cy, cp], [ca.jacobian(expr, cy)])
            row["casadi_build_s"] = time.perf_counter() - start
            p0, y0 = np.asarray(prob.args[0], dtype=float), np.asarray(prob.y0, dtype=float)
            row["casadi_err"] = _rel_err(cfun(0.5, y0, p0).sparse(), J_ref)
            dm_in = (ca.DM(0.5), ca.DM(y0), ca.DM(p0))  # converted once, outside the clock
            fns["casadi"] = lambda: cfun(0.5, y0, p0)
            fns["casadi_dm"] = lambda: cfun(*dm_in)
            fns["casadi_scipy"] = lambda: cfun(0.5, y0, p0).sparse()
    except Exception as exc:  # record why, do not hide it
        row["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    rounds, reps = (1, 3) if quick else (5, 20)
    for k, v in interleaved(fns, rounds=rounds, reps=reps, min_time=0.2).items():
        row[f"{k}_s"] = v
    return row


def run_external(quick: bool) -> dict:
    tools = []
    for tool in ("sparsejac", "asdex", "casadi"):
        try:
            __import__(tool)
            tools.append(tool)
        except Exception as exc:  # noqa: BLE001 - a tool that does not import is left out
            print(f"[external] {tool} left out: {type(exc).__name__}: {exc}", flush=True)
    warm_up()
    cases = [("brusselator_2d", 8)] if quick else EXTERNAL
    rows = [_external_case(name, size, tools, quick) for name, size in cases]
    versions = {}
    for pkg in ("jax", *tools):
        versions[pkg] = importlib.metadata.version(pkg)
    return {"rows": rows, "versions": versions}


def render_external(p: dict) -> str:
    def per(r, key):
        return ratio(r.get(f"{key}_s"), r["stiffasd_s"], ".2f")

    rows = []
    for r in p["rows"]:
        errs = [r[k] for k in ("sparsejac_err", "asdex_err", "casadi_err") if k in r]
        asdex_once = r.get("asdex_prepare_s", np.nan) + r.get("asdex_compile_s", np.nan)
        rows.append(
            [
                r["problem"], r["n"], r["nnz"], r["stiffasd_passes"], ms(r["stiffasd_s"]),
                ms(r.get("stiffasd_csc_s")), ms(r.get("sparsejac_s")), per(r, "sparsejac"),
                r.get("asdex_passes", "n/a"), ms(r.get("asdex_s")), per(r, "asdex"),
                ms(r.get("casadi_s")), ms(r.get("casadi_dm_s")), ms(r.get("casadi_scipy_s")),
                per(r, "casadi"), f"{r['casadi_build_s']:.2f}" if "casadi_build_s" in r else "n/a",
                f"{r['stiffasd_prepare_s'] + r['stiffasd_compile_s']:.2f}",
                f"{asdex_once:.2f}" if np.isfinite(asdex_once) else "n/a",
                f"{max(errs):.1e}" if errs else "n/a",
            ]
        )  # fmt: skip
    tools = ", ".join(f"{k} {v}" for k, v in p["versions"].items())
    stencils = [r for r in p["rows"] if not r["problem"].startswith("reservoir")]
    summary = "".join(
        f" {name} / stiffasd on the stencil problems: "
        + spread([r.get(f"{key}_s", np.nan) / r["stiffasd_s"] for r in stencils], ".2f")
        + "."
        for key, name in (("sparsejac", "sparsejac"), ("asdex", "asdex"), ("casadi", "CasADi"))
        if any(f"{key}_s" in r for r in stencils)
    )
    return table(
        "One sparse Jacobian per problem and size, every tool in one process, interleaved in "
        "rounds, best of many. *stiffasd*: the jit-compiled values; *-> scipy*: plus the host "
        "`csc_matrix`. *sparsejac* (given stiffasd's pattern; it has no detection) and *asdex* "
        "(its own detection and coloring): jit-compiled, BCOO out. *CasADi*: the same "
        "discretisation as an SX graph, `casadi.Function` of its symbolic `jacobian` (NumPy in, "
        "sparse DM out; *DM in*: inputs already `DM`s; *-> scipy*: plus `DM.sparse()`). "
        "*x / stiffasd* > 1: stiffasd faster. *err*: max |difference| to stiffasd's Jacobian / "
        f"max |entry|. Versions: {tools}.",
        [
            "problem", "n", "nnz", "stiffasd passes", "stiffasd [ms]", "stiffasd -> scipy [ms]",
            "sparsejac [ms]", "sparsejac / stiffasd", "asdex passes", "asdex [ms]",
            "asdex / stiffasd", "CasADi [ms]", "CasADi, DM in [ms]", "CasADi -> scipy [ms]",
            "CasADi / stiffasd", "CasADi build [s]", "stiffasd prepare + compile [s]",
            "asdex prepare + compile [s]", "max err",
        ],
        rows,
    ) + (f"\n\n{summary.strip()}" if summary else "")  # fmt: skip


# -------------------------------------------------------------------------- sharded Jacobian
DEVICES = 4


def _sharded_case(N: int, mode: str, rounds: int, devices: int) -> dict:
    from jax.sharding import NamedSharding, PartitionSpec

    from stiffasd.sharding import collective_bytes, shard_jacobian

    rhs, y = grid_rhs(N)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("x",))
    sharding = NamedSharding(mesh, PartitionSpec("x"))
    start = time.perf_counter()
    sj = stiffasd.prepare_jacobian(rhs, y, mode=mode)
    prepare_s, start = time.perf_counter() - start, time.perf_counter()
    jac = shard_jacobian(sj, sharding)
    layout_s, ys = time.perf_counter() - start, jax.device_put(y, sharding)
    moved = collective_bytes(jac.lower(ys).compile())
    consts = tuple(None if c is None else jnp.asarray(c) for c in sj._consts())
    plain = collective_bytes(jax.jit(sj._data_from).lower(consts, ys).compile())
    ref = np.asarray(sj.data_jit(y))
    err = np.abs(jac.to_pattern_order(jac.data_jit(ys)) - ref).max() / np.abs(ref).max()
    m, n = sj.pattern.shape
    compressed = (sj._ncol * m + sj._nrow * n) * y.dtype.itemsize // devices
    fns = {"sharded": lambda: jac.data_jit(ys), "one_device": lambda: sj.data_jit(y)}
    times = interleaved(fns, rounds=rounds, reps=1, min_time=0.0)
    return dict(
        N=N, n=n, nnz=sj.pattern.nnz, mode=sj.mode, colors=sj.ncolors,
        compressed_bytes=compressed, halo_bytes=2 * sj.ncolors * N * 2 * y.dtype.itemsize,
        sent_bytes=moved.bytes_sent, sent_fraction=moved.total / compressed,
        plain_sent_fraction=plain.total / compressed, max_rel_diff=float(err),
        prepare_s=prepare_s, layout_s=layout_s, sharded_s=times["sharded"],
        one_device_s=times["one_device"],
    )  # fmt: skip


def sharded_child(sizes: list[int], rounds: int, devices: int) -> dict:
    """In a process with ``devices`` forced host devices: forward at every size, reverse at the
    largest."""
    rows = [_sharded_case(N, "forward", rounds, devices) for N in sizes]
    rows.append(_sharded_case(sizes[-1], "reverse", rounds, devices))
    return {"devices": devices, "rounds": rounds, "rows": rows}  # fmt: skip


def run_sharded(quick: bool) -> dict:
    sizes, rounds = ([32], 1) if quick else ([256, 512, 1024], 5)
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}"
    return in_child("benchmarks.jacobian:sharded_child", sizes, rounds, DEVICES, env={"XLA_FLAGS": flags})  # fmt: skip


def render_sharded(p: dict) -> str:
    rows = [
        [
            r["N"], f"{r['n']:,}", r["mode"], r["colors"], f"{r['compressed_bytes'] / 1e6:.3g} MB",
            f"{r['halo_bytes']:,} B",
            " + ".join(f"{v:,} B {k}" for k, v in r["sent_bytes"].items()) or "0 B",
            f"{r['sent_fraction']:.2%}", f"{r['plain_sent_fraction']:.0%}",
            f"{r['max_rel_diff']:.1e}", f"{r['prepare_s']:.2f}", f"{r['layout_s']:.2f}",
            ms(r["sharded_s"]), ms(r["one_device_s"]),
        ]
        for r in p["rows"]
    ]  # fmt: skip
    return table(
        f"The 2D Brusselator laid out `(N, N, 2)`, split along the grid's first axis over "
        f"{p['devices']} forced host devices (`stiffasd.sharding.shard_jacobian`). Bytes are "
        "what one device sends per Jacobian, read from the collectives of the optimized HLO "
        "(`collective_bytes`); the halo is one `(u, v)` grid row to each neighbour per color; "
        "*without shard_jacobian*: the plain prepared program run on the sharded state. "
        f"*max rel. diff*: from the unsharded values. Evaluation: best of {p['rounds']} "
        "rounds in turns; the forced devices share the machine's cores.",
        [
            "N", "n", "mode", "colors", "compressed buffer / device", "halo", "sent / device",
            "sent / compressed", "without shard_jacobian", "max rel. diff", "prepare [s]",
            "layout [s]", "sharded [ms]", "one device [ms]",
        ],
        rows,
    )  # fmt: skip


PARTS = {
    "problems": Part("One Jacobian, every problem", run_problems, render_problems),
    "scaling": Part("Scaling with n", run_scaling, render_scaling, plot_scaling),
    "external": Part("Against sparsejac, asdex and CasADi", run_external, render_external),
    "sharded": Part("Sharded over devices", run_sharded, render_sharded),
}
