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
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from scipy.optimize._numdiff import approx_derivative

import stiffasd
from benchmarks._harness import (
    Part,
    best_of,
    figure,
    in_devices,
    interleaved,
    ratio,
    rel_diff,
    save_figure,
    spread,
    table,
)
from benchmarks.problems import grid_rhs, make
from stiffasd._compare import warm_up
from stiffasd.sharding import collective_bytes, shard_jacobian

SIZES = {
    "brusselator_2d": [16, 64], "gray_scott_2d": [16, 64], "allen_cahn_3d": [8, 20],
    "advection_diffusion_reaction_2d": [24, 96], "robertson_diffusion_2d": [12, 48],
    "reservoir_exchange": [300, 3000], "flame_1d": [250, 4000],
}  # fmt: skip
MAX_DENSE_N = 1200


def _per(key: str, fmt: str = ".1f"):
    """A table cell: the row's ``key`` over its stiffasd time, as a ratio (``n/a`` if missing)."""
    return lambda r: ratio(r.get(key), r["stiffasd_s"], fmt)


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the seconds it took."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _prepared(prob, t: float = 0.5):
    """``prob`` prepared with stiffasd: ``(sj, f1, y, xs = (t, y, *args), prepare s, compile s)``,
    ``f1`` the right-hand side as a function of ``y`` alone (as sparsejac, asdex and AD take it)."""
    xs = tuple(jnp.asarray(a) for a in (t, prob.y0, *prob.args))
    sj, prepare = _timed(stiffasd.prepare_jacobian, prob.rhs, *xs, argnums=1, fast_compile=False)
    compile_s = _timed(lambda: jax.block_until_ready(sj.data_jit(*xs)))[1]

    def f1(x):
        return prob.rhs(xs[0], x, *xs[2:])

    return sj, f1, xs[1], xs, prepare, compile_s


def time_jacobians(prob, max_dense_n: int, t: float = 0.5) -> dict:
    """One problem instance: stiffasd, colored finite differences and dense AD, one process."""
    sj, f1, y, xs, prepare, compile_s = _prepared(prob, t)
    J_sa = sj.csc(*xs)
    jvp = jax.jit(lambda y, v: jax.jvp(f1, (y,), (v,))[1])
    # scipy's colored forward differences with the same column groups (f0 given, as solve_ivp
    # gives it): one evaluation per group
    col = stiffasd.color(sj.pattern, partition="column", order="largest_first")
    groups = (sj.pattern.to_scipy("csr"), np.asarray(col.column_colors))
    fun, y_np = prob.numpy_rhs(), np.asarray(prob.y0)
    f0 = fun(t, y_np, *prob.args)

    def fd():
        return approx_derivative(
            lambda x: fun(t, x, *prob.args), y_np, method="2-point", f0=f0, sparsity=groups
        )

    t_sa, t_sa_med = best_of(sj.data_jit, *xs)
    row = dict(
        problem=prob.name, n=prob.n, nnz=sj.pattern.nnz, mode=sj.mode, passes=sj.ncolors,
        colors_column=col.ncolors, fd_evals=col.ncolors, detect_s=sj.timings["detect"],
        color_s=sj.timings["color"], prepare_s=prepare, compile_s=compile_s, stiffasd_s=t_sa,
        fd_rhs_floor_s=best_of(lambda: fun(t, y_np, *prob.args))[0] * (col.ncolors + 1),
        stiffasd_median_s=t_sa_med, stiffasd_csc_s=best_of(lambda: sj.csc(*xs), reps=10)[0],
        rhs_s=best_of(jax.jit(f1), y)[0], jvp_s=best_of(jvp, y, jnp.ones_like(y))[0],
        colored_fd_s=best_of(fd, reps=5, min_time=1.0)[0],  # host Python: best of many
        fd_rel_err=rel_diff(fd(), J_sa, floor=1.0),
    )  # fmt: skip
    if prob.n <= max_dense_n:
        for name, jfun in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
            dense = jax.jit(jfun(f1))
            row[f"dense_{name}_s"] = best_of(dense, y, reps=3, min_time=0.0)[0]
        row["max_abs_diff_vs_dense"] = rel_diff(dense(y), J_sa.toarray(), floor=1.0)
    print(f"[jacobian] {prob.name}", flush=True)
    return row


def run_problems(quick: bool) -> dict:
    warm_up()
    cases = [("brusselator_2d", 4)] if quick else [(k, s) for k in SIZES for s in SIZES[k]]
    rows = [time_jacobians(make(name, size), MAX_DENSE_N) for name, size in cases]
    return {"rows": rows, "max_dense_n": MAX_DENSE_N}


def render_problems(p: dict) -> str:
    def over(key, per="stiffasd_s"):
        return spread([r.get(key, np.nan) / r[per] for r in p["rows"]], ".0f")

    caption = (
        "One Jacobian per problem and size, best of many, side by side in one process. "
        "*stiffasd*: the jit-compiled values; *to scipy*: plus the host `csc_matrix`. *colored "
        "FD*: scipy's `approx_derivative` with the pattern and the same column groups as "
        "stiffasd's column coloring (*FD evals*; equal to *passes* except where stiffasd "
        "bicolors), f0 given as solve_ivp gives it; *(FD evals + 1) x rhs*: the right-hand-side "
        "calls alone, the floor of any finite-difference scheme. *data / (passes x JVP)*: "
        "stiffasd's Jacobian against as many single JVPs (below 1: the batched passes share "
        f"work). Dense AD up to n = {p['max_dense_n']}."
    )
    columns = {
        "problem": "{problem}", "n": "{n}", "nnz": "{nnz}", "mode": "{mode}", "passes": "{passes}",
        "FD evals": "{fd_evals}", "stiffasd [ms]": "{stiffasd_s:ms}",
        "to scipy [ms]": "{stiffasd_csc_s:ms}", "colored FD [ms]": "{colored_fd_s:ms}",
        "(FD evals + 1) x rhs [ms]": "{fd_rhs_floor_s:ms}", "FD / stiffasd": _per("colored_fd_s"),
        "jacfwd [ms]": "{dense_jacfwd_s:ms}", "jacrev [ms]": "{dense_jacrev_s:ms}",
        "jacfwd / stiffasd": _per("dense_jacfwd_s", ".0f"), "1 JVP [ms]": "{jvp_s:ms}",
        "data / (passes x JVP)": lambda r: f"{r['stiffasd_s'] / (r['passes'] * r['jvp_s']):.2f}",
        "detect [ms]": "{detect_s:ms}", "color [ms]": "{color_s:ms}",
        "compile [ms]": "{compile_s:ms}",
    }  # fmt: skip
    return table(caption, columns, p["rows"]) + (
        f"\n\nstiffasd against colored finite differences: {over('colored_fd_s')}; including the "
        f"transfer into a scipy matrix: {over('colored_fd_s', 'stiffasd_csc_s')}. Against dense "
        f"`jax.jacfwd`: {over('dense_jacfwd_s')}."
    )


def run_scaling(quick: bool) -> dict:
    warm_up()
    sizes = [6, 8, 12] if quick else [6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]
    rows = [time_jacobians(make("brusselator_2d", N), max_dense_n=5000) for N in sizes]
    for N, row in zip(sizes, rows, strict=True):
        row.update(N=N, stiffasd_once_s=row["prepare_s"] + row["compile_s"])
    dense = [r for r in rows if "dense_jacfwd_s" in r]
    fast = [r["n"] for r in dense if r["stiffasd_s"] < r["dense_jacfwd_s"]]
    once = [r["n"] for r in dense if r["stiffasd_s"] + r["stiffasd_once_s"] < r["dense_jacfwd_s"]]
    gain = [(r["stiffasd_once_s"], r["colored_fd_s"] - r["stiffasd_s"]) for r in rows]
    repay = [f"{once_s / g:.0f}" for once_s, g in gain if g > 0] or ["never"]  # per n
    return {"rows": rows, "crossover": {
        "stiffasd (prepared) faster than dense jacfwd from n": min(fast, default=None),
        "stiffasd including one-time preparation faster than one dense jacfwd from n":
            min(once, default="not within the dense range"),
        "Jacobians needed to repay preparation vs colored FD (largest n)": repay[-1],
    }}  # fmt: skip


def render_scaling(p: dict) -> str:
    cross = "; ".join(f"{k}: {v}" for k, v in p["crossover"].items())
    caption = (
        "2D Brusselator, one Jacobian against n (best of many, one process). *once*: "
        "stiffasd's detection + coloring + compilation, paid once per right-hand side and "
        "input structure. Dense AD's compile time is not counted."
    )
    columns = {
        "N": "{N}", "n": "{n}", "passes": "{passes}", "stiffasd [ms]": "{stiffasd_s:ms}",
        "stiffasd once [s]": "{stiffasd_once_s:.2f}", "colored FD [ms]": "{colored_fd_s:ms}",
        "jacfwd [ms]": "{dense_jacfwd_s:ms}", "jacrev [ms]": "{dense_jacrev_s:ms}",
        "jacfwd / stiffasd": _per("dense_jacfwd_s", ".0f"), "FD / stiffasd": _per("colored_fd_s"),
    }  # fmt: skip
    return table(caption, columns, p["rows"]) + f"\n\nCrossovers: {cross}."


def plot_scaling(p: dict, directory: Path) -> Path:
    fig, ax = figure()
    rows = [{**r, "once_s": r["stiffasd_s"] + r["stiffasd_once_s"]} for r in p["rows"]]
    for key, style, label in (
        ("dense_jacfwd_s", "o-", "dense jax.jacfwd"), ("dense_jacrev_s", "v-", "dense jax.jacrev"),
        ("colored_fd_s", "s-", "colored finite differences (scipy)"),
        ("stiffasd_s", "D-", "stiffasd (prepared)"),
        ("once_s", "D--", "stiffasd incl. detection + coloring + compile"),
    ):  # fmt: skip
        have = [r for r in rows if key in r]
        alpha = 0.6 if key == "once_s" else None
        ax.loglog([r["n"] for r in have], [r[key] for r in have], style, label=label, alpha=alpha)
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


def _ca_lap(w, shape: tuple[int, ...], centre, **pad):
    """The unscaled Laplacian stencil on a row-major grid of ``shape`` for CasADi: each neighbour
    is an index gather from ``w``, the indices padded as the problem pads its grid
    (``np.pad(..., **pad)``: ``mode="wrap"`` periodic, ``"edge"`` zero flux, ``"constant"`` an
    index past the grid, where ``w`` holds the boundary value)."""
    idx = np.pad(np.arange(np.prod(shape)).reshape(shape), 1, **pad)
    cut = (slice(1, -1),) * idx.ndim
    nb = [np.roll(idx, s, a)[cut].ravel().tolist() for a in range(idx.ndim) for s in (1, -1)]
    return sum(w[i] for i in nb) - 2.0 * idx.ndim * centre


def casadi_rhs(name: str, size: int, ca):
    """The problem's right-hand side with CasADi SX symbols: ``(t, y, p, expression)``, the same
    discretisation as `stiffasd.problems` (the stencils as index gathers, `_ca_lap`)."""
    t = ca.SX.sym("t")
    if name in ("brusselator_2d", "gray_scott_2d"):
        nn = size * size
        y = ca.SX.sym("y", 2 * nn)
        u, v = y[:nn], y[nn:]
        lap_u, lap_v = (_ca_lap(w, (size, size), w, mode="wrap") for w in (u, v))
        if name == "brusselator_2d":
            p = ca.SX.sym("p", 3)  # a, b, diff
            xs = np.linspace(0.0, 1.0, size)  # the forcing disc: x along axis 0, y along 1
            disc = ((xs[:, None] - 0.3) ** 2 + (xs[None, :] - 0.6) ** 2 <= 0.1**2).ravel()
            forcing = 5.0 * ca.DM(disc.astype(float)) * ca.if_else(t >= 1.1, 1.0, 0.0)
            uuv = u * u * v
            du = p[1] + uuv - (p[0] + 1.0) * u + p[2] * lap_u + forcing
            dv = p[0] * u - uuv + p[2] * lap_v
        else:
            p = ca.SX.sym("p", 4)  # f, k, du, dv
            uvv = u * v * v
            du = p[2] * lap_u - uvv + p[0] * (1.0 - u)
            dv = p[3] * lap_v + uvv - (p[0] + p[1]) * v
        return t, y, p, ca.vertcat(du, dv)
    if name == "allen_cahn_3d":  # Dirichlet faces at -1: the gathers past the grid read it
        y, p = ca.SX.sym("y", size**3), ca.SX.sym("p", 2)
        ext = ca.vertcat(y, -1.0)
        lap = _ca_lap(ext, (size,) * 3, y, mode="constant", constant_values=size**3)
        return t, y, p, p[0] * lap + p[1] * (y - y**3)
    if name == "reservoir_exchange":
        kappa = ca.DM(10.0 ** np.random.default_rng(0).uniform(0.0, 3.0, size))
        y, p = ca.SX.sym("y", size + 1), ca.SX.sym("p", 2)
        u, R = y[:size], y[size]
        exchange = kappa * (R - u)
        du = p[0] * _ca_lap(u, (size,), u, mode="edge") + exchange - u * u / (1.0 + u)
        return t, y, p, ca.vertcat(du, -p[1] * ca.sum1(exchange))
    raise KeyError(f"casadi_rhs: no CasADi version of {name!r}")


def _external_case(name: str, size: int, tools: list[str], quick: bool) -> dict:
    prob = make(name, size)
    sj, f1, y, xs, prepare, compile_s = _prepared(prob)
    row: dict = dict(
        problem=prob.name, n=prob.n, nnz=sj.pattern.nnz, stiffasd_mode=sj.mode,
        stiffasd_passes=sj.ncolors, stiffasd_prepare_s=prepare, stiffasd_compile_s=compile_s,
    )  # fmt: skip
    J_ref = sj.csc(*xs)
    fns = {"stiffasd": lambda: sj.data_jit(*xs), "stiffasd_csc": lambda: sj.csc(*xs)}

    def err(J):  # against stiffasd's Jacobian, floor 1; J: scipy, or BCOO (sparsejac, asdex)
        if not sp.issparse(J):
            J = sp.coo_matrix((np.asarray(J.data), tuple(np.asarray(J.indices).T)), shape=J.shape)
        return rel_diff(J, J_ref, floor=1.0)

    try:
        if "sparsejac" in tools:
            import sparsejac

            jf = jax.jit(sparsejac.jacfwd(f1, sparsity=sj.pattern.to_bcoo()))
            row["sparsejac_err"], row["sparsejac_compile_s"] = _timed(lambda: err(jf(y)))
            fns["sparsejac"] = lambda: jf(y)
        if "asdex" in tools:
            import asdex

            colored, row["asdex_prepare_s"] = _timed(asdex.jacobian_coloring, f1, y)
            row["asdex_passes"], row["asdex_mode"] = int(colored.num_colors), str(colored.mode)
            ja = jax.jit(asdex.jacobian_from_coloring(f1, colored))
            out, row["asdex_compile_s"] = _timed(lambda: jax.block_until_ready(ja(y)))
            row["asdex_err"] = err(out)
            fns["asdex"] = lambda: ja(y)
        if "casadi" in tools:
            import casadi as ca

            start = time.perf_counter()
            ct, cy, cp, expr = casadi_rhs(name, size, ca)
            cfun = ca.Function("J", [ct, cy, cp], [ca.jacobian(expr, cy)])
            row["casadi_build_s"] = time.perf_counter() - start
            p0, y0 = np.asarray(prob.args[0], dtype=float), np.asarray(prob.y0, dtype=float)
            row["casadi_err"] = err(cfun(0.5, y0, p0).sparse())
            dm_in = (ca.DM(0.5), ca.DM(y0), ca.DM(p0))  # converted once, outside the clock
            fns["casadi"] = lambda: cfun(0.5, y0, p0)
            fns["casadi_dm"] = lambda: cfun(*dm_in)
            fns["casadi_scipy"] = lambda: cfun(0.5, y0, p0).sparse()
    except Exception as exc:  # record why, do not hide it
        row["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    rounds, reps = (1, 3) if quick else (5, 20)
    times = interleaved(fns, rounds=rounds, reps=reps, min_time=0.2)
    return row | {f"{k}_s": v for k, v in times.items()}


def run_external(quick: bool) -> dict:
    versions = {"jax": importlib.metadata.version("jax")}
    for tool in ("sparsejac", "asdex", "casadi"):
        try:
            __import__(tool)
            versions[tool] = importlib.metadata.version(tool)
        except Exception as exc:  # noqa: BLE001 - a tool that does not import is left out
            print(f"[external] {tool} left out: {type(exc).__name__}: {exc}", flush=True)
    warm_up()
    cases = [("brusselator_2d", 8)] if quick else EXTERNAL
    rows = [_external_case(name, size, list(versions)[1:], quick) for name, size in cases]
    return {"rows": rows, "versions": versions}


def render_external(p: dict) -> str:
    def na(value, fmt=".2f"):  # formatted, n/a when missing or not finite
        return "n/a" if value is None or not np.isfinite(value) else format(value, fmt)

    def seconds(*keys):  # a cell: the row's ``keys`` summed, n/a where one is missing
        return lambda r: na(sum(r.get(k, np.nan) for k in keys))

    errs = ("sparsejac_err", "asdex_err", "casadi_err")
    tools = ", ".join(f"{k} {v}" for k, v in p["versions"].items())
    stencils = [r for r in p["rows"] if not r["problem"].startswith("reservoir")]
    summary = " ".join(
        f"{name} / stiffasd on the stencil problems: "
        + spread([r.get(f"{key}_s", np.nan) / r["stiffasd_s"] for r in stencils], ".2f")
        + "."
        for key, name in (("sparsejac", "sparsejac"), ("asdex", "asdex"), ("casadi", "CasADi"))
        if any(f"{key}_s" in r for r in stencils)
    )
    caption = (
        "One sparse Jacobian per problem and size, every tool in one process, interleaved in "
        "rounds, best of many. *stiffasd*: the jit-compiled values; *-> scipy*: plus the host "
        "`csc_matrix`. *sparsejac* (given stiffasd's pattern; it has no detection) and *asdex* "
        "(its own detection and coloring): jit-compiled, BCOO out. *CasADi*: the same "
        "discretisation as an SX graph, `casadi.Function` of its symbolic `jacobian` (NumPy in, "
        "sparse DM out; *DM in*: inputs already `DM`s; *-> scipy*: plus `DM.sparse()`). "
        "*x / stiffasd* > 1: stiffasd faster. *err*: max |difference| to stiffasd's Jacobian / "
        f"max |entry|. Versions: {tools}."
    )
    columns = {
        "problem": "{problem}", "n": "{n}", "nnz": "{nnz}", "stiffasd passes": "{stiffasd_passes}",
        "stiffasd [ms]": "{stiffasd_s:ms}", "stiffasd -> scipy [ms]": "{stiffasd_csc_s:ms}",
        "sparsejac [ms]": "{sparsejac_s:ms}", "sparsejac / stiffasd": _per("sparsejac_s", ".2f"),
        "asdex passes": lambda r: r.get("asdex_passes", "n/a"), "asdex [ms]": "{asdex_s:ms}",
        "asdex / stiffasd": _per("asdex_s", ".2f"), "CasADi [ms]": "{casadi_s:ms}",
        "CasADi, DM in [ms]": "{casadi_dm_s:ms}", "CasADi -> scipy [ms]": "{casadi_scipy_s:ms}",
        "CasADi / stiffasd": _per("casadi_s", ".2f"), "CasADi build [s]": seconds("casadi_build_s"),
        "stiffasd prepare + compile [s]": seconds("stiffasd_prepare_s", "stiffasd_compile_s"),
        "asdex prepare + compile [s]": seconds("asdex_prepare_s", "asdex_compile_s"),
        "max err": lambda r: na(max((r[k] for k in errs if k in r), default=None), ".1e"),
    }  # fmt: skip
    return table(caption, columns, p["rows"]) + (f"\n\n{summary}" if summary else "")


# -------------------------------------------------------------------------- sharded Jacobian
def sharded_child(devices: int, sizes: list[int], rounds: int) -> dict:
    """In a process with ``devices`` forced host devices: forward at every size, reverse at the
    largest."""
    sharding = NamedSharding(Mesh(np.asarray(jax.devices()[:devices]), ("x",)), PartitionSpec("x"))
    rows = []
    for N, mode in [(N, "forward") for N in sizes] + [(sizes[-1], "reverse")]:
        rhs, y = grid_rhs(N)
        sj, prepare_s = _timed(stiffasd.prepare_jacobian, rhs, y, mode=mode)
        jac, layout_s = _timed(shard_jacobian, sj, sharding)
        ys = jax.device_put(y, sharding)
        moved = collective_bytes(jac.lower(ys).compile())
        consts = tuple(None if c is None else jnp.asarray(c) for c in sj._consts())
        plain = collective_bytes(jax.jit(sj._data_from).lower(consts, ys).compile())
        err = rel_diff(jac.to_pattern_order(jac.data_jit(ys)), np.asarray(sj.data_jit(y)))
        m, n = sj.pattern.shape
        compressed = (sj._ncol * m + sj._nrow * n) * y.dtype.itemsize // devices
        fns = {"sharded": lambda: jac.data_jit(ys), "one_device": lambda: sj.data_jit(y)}
        times = interleaved(fns, rounds=rounds, reps=1, min_time=0.0)
        rows.append(dict(
            N=N, n=n, nnz=sj.pattern.nnz, mode=sj.mode, colors=sj.ncolors,
            compressed_bytes=compressed, halo_bytes=2 * sj.ncolors * N * 2 * y.dtype.itemsize,
            sent_bytes=moved.bytes_sent, sent_fraction=moved.total / compressed,
            plain_sent_fraction=plain.total / compressed, max_rel_diff=err, prepare_s=prepare_s,
            layout_s=layout_s, sharded_s=times["sharded"], one_device_s=times["one_device"],
        ))  # fmt: skip
    return {"devices": devices, "rounds": rounds, "rows": rows}


def run_sharded(quick: bool) -> dict:
    sizes, rounds = ([32], 1) if quick else ([256, 512, 1024], 5)
    return in_devices("benchmarks.jacobian:sharded_child", 4, sizes, rounds)  # 4 host devices


def render_sharded(p: dict) -> str:
    def sent(r):  # what one device sends, by kind of collective
        return " + ".join(f"{v:,} B {k}" for k, v in r["sent_bytes"].items()) or "0 B"

    caption = (
        f"The 2D Brusselator laid out `(N, N, 2)`, split along the grid's first axis over "
        f"{p['devices']} forced host devices (`stiffasd.sharding.shard_jacobian`). Bytes are "
        "what one device sends per Jacobian, read from the collectives of the optimized HLO "
        "(`collective_bytes`); the halo is one `(u, v)` grid row to each neighbour per color; "
        "*without shard_jacobian*: the plain prepared program run on the sharded state. "
        f"*max rel. diff*: from the unsharded values. Evaluation: best of {p['rounds']} "
        "rounds in turns; the forced devices share the machine's cores."
    )
    columns = {
        "N": "{N}", "n": "{n:,}", "mode": "{mode}", "colors": "{colors}",
        "compressed buffer / device": lambda r: f"{r['compressed_bytes'] / 1e6:.3g} MB",
        "halo": "{halo_bytes:,} B", "sent / device": sent,
        "sent / compressed": "{sent_fraction:.2%}",
        "without shard_jacobian": "{plain_sent_fraction:.0%}",
        "max rel. diff": "{max_rel_diff:.1e}", "prepare [s]": "{prepare_s:.2f}",
        "layout [s]": "{layout_s:.2f}", "sharded [ms]": "{sharded_s:ms}",
        "one device [ms]": "{one_device_s:ms}",
    }  # fmt: skip
    return table(caption, columns, p["rows"])


PARTS = {
    "problems": Part("One Jacobian, every problem", run_problems, render_problems),
    "scaling": Part("Scaling with n", run_scaling, render_scaling, plot_scaling),
    "external": Part("Against sparsejac, asdex and CasADi", run_external, render_external),
    "sharded": Part("Sharded over devices", run_sharded, render_sharded),
}
