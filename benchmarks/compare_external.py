"""One sparse Jacobian: stiffasd against CasADi, sparsejac and asdex, side by side in one process.

    /tmp/venv-b2ext/bin/python -m benchmarks.compare_external            # all installed tools
    /tmp/venv-b2ext/bin/python -m benchmarks.compare_external --quick    # Brusselator N=16 only

Every tool is given the same right-hand side, in the same process (so the same machine load):

* **stiffasd**: ``prepare_jacobian`` (detection + coloring), then the jit-compiled ``data`` (the
  nonzero values as a device array) and ``csc`` (a scipy matrix on the host).
* **sparsejac** (JAX): ``sparsejac.jacfwd(fn, sparsity=BCOO)`` with the pattern stiffasd
  detected (sparsejac has no detection of its own), jit-compiled; it returns a BCOO.
* **asdex** (JAX): ``asdex.jacobian_coloring`` (its own detection + coloring), then
  ``jax.jit(asdex.jacobian_from_coloring(...))``; it returns a BCOO.
* **CasADi**: the same discretisation written with CasADi SX symbols (numpy-like slicing,
  ``vertcat``, ``reshape``); *build* is the time to create the SX graph, its symbolic
  ``jacobian`` and the ``casadi.Function``; *eval* calls that Function (its SX virtual machine,
  NumPy in, a sparse ``DM`` out), *to scipy* adds the conversion to a scipy matrix.

Every evaluation is timed best-of-many, the tools interleaved in rounds so that a burst of load
on the shared machine hits all of them alike; every tool's Jacobian is checked against
stiffasd's (max abs difference relative to the largest entry). A tool that is not installed is
recorded with the import error. Writes ``results/external_jacobian.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from stiffasd.problems import PROBLEMS  # noqa: E402

# (problem, size keyword, size); Brusselator N = 128 (n = 32768) is the row the issue asks for
CASES = [
    ("brusselator_2d", "N", 16),
    ("brusselator_2d", "N", 64),
    ("brusselator_2d", "N", 128),
    ("gray_scott_2d", "N", 64),
    ("gray_scott_2d", "N", 128),
    ("allen_cahn_3d", "N", 20),
    ("reservoir_exchange", "n_cells", 3000),
]
TOOLS = ("stiffasd", "sparsejac", "asdex", "casadi")
# how the tool environment was made (recorded with the results)
ENVIRONMENT = (
    "Tool environment: `python3.12 -m venv /tmp/venv-b2ext; pip install asdex casadi sparsejac "
    "networkx numba scipy matplotlib; pip install jax==0.11.2 jaxlib==0.11.2` (asdex 0.5.2 does "
    "not import with jax 0.12: `ImportError: cannot import name 'ClosedJaxpr' from "
    "'jax._src.core'`), stiffasd from this checkout on `PYTHONPATH`."
)


# --------------------------------------------------------------------------- CasADi RHS
def _casadi_roll(M, shift: int, axis: int, ca):
    """``jnp.roll(M, shift, axis)`` for a CasADi matrix, shift = +-1 (slices + concatenation)."""
    n = M.shape[axis]
    if axis == 0:
        if shift == 1:
            return ca.vertcat(M[n - 1, :], M[0 : n - 1, :])
        return ca.vertcat(M[1:n, :], M[0, :])
    if shift == 1:
        return ca.horzcat(M[:, n - 1], M[:, 0 : n - 1])
    return ca.horzcat(M[:, 1:n], M[:, 0])


def _casadi_lap_periodic(M, ca):
    return (
        _casadi_roll(M, 1, 0, ca)
        + _casadi_roll(M, -1, 0, ca)
        + _casadi_roll(M, 1, 1, ca)
        + _casadi_roll(M, -1, 1, ca)
        - 4.0 * M
    )


def casadi_rhs(name: str, size: int, ca):
    """The problem's right-hand side with CasADi SX symbols: ``(t, y, p, expression)``.

    Same discretisation as `stiffasd.problems`. CasADi reshapes column-major, so a grid field
    ``u`` (row-major in the flat state) appears transposed; the periodic Laplacian commutes with
    the transpose and the field goes back to the flat order by the same reshape, so only the
    position-dependent forcing needs care (it is applied to the flat vector)."""
    t = ca.SX.sym("t")
    if name in ("brusselator_2d", "gray_scott_2d"):
        N = size
        nn = N * N
        y = ca.SX.sym("y", 2 * nn)
        U = ca.reshape(y[0:nn], N, N)
        V = ca.reshape(y[nn : 2 * nn], N, N)
        lap_u = ca.reshape(_casadi_lap_periodic(U, ca), nn, 1)
        lap_v = ca.reshape(_casadi_lap_periodic(V, ca), nn, 1)
        u, v = y[0:nn], y[nn : 2 * nn]
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
    if name == "allen_cahn_3d":
        # 7-point stencil with Dirichlet faces: neighbours by index arithmetic on the flat
        # vector (the padded value where a neighbour is outside), written with index arrays
        N = size
        n = N**3
        y = ca.SX.sym("y", n)
        p = ca.SX.sym("p", 2)
        inv_h2, inv_eps2 = p[0], p[1]
        idx = np.arange(n).reshape(N, N, N)
        lap = -6.0 * y
        boundary = -1.0
        for axis in range(3):
            for step in (1, -1):
                nb = np.roll(idx, -step, axis=axis)
                inside = np.ones((N, N, N), bool)
                sl = [slice(None)] * 3
                sl[axis] = N - 1 if step == 1 else 0
                inside[tuple(sl)] = False
                ins = inside.ravel()
                src = nb.ravel()
                # y at the neighbour where inside, the boundary value elsewhere
                gathered = y[src.tolist()]
                lap = (
                    lap
                    + ca.DM(ins.astype(float)) * gathered
                    + boundary * ca.DM((~ins).astype(float))
                )
        return t, y, p, inv_h2 * lap + inv_eps2 * (y - y**3)
    if name == "reservoir_exchange":
        n_cells = size
        rng = np.random.default_rng(0)  # the problem's default seed
        kappa = ca.DM(10.0 ** rng.uniform(0.0, 3.0, n_cells))
        y = ca.SX.sym("y", n_cells + 1)
        p = ca.SX.sym("p", 2)
        d, inv_v = p[0], p[1]
        u, R = y[0:n_cells], y[n_cells]
        left = ca.vertcat(u[0], u[0 : n_cells - 1])
        right = ca.vertcat(u[1:n_cells], u[n_cells - 1])
        exchange = kappa * (R - u)
        du = d * (right - 2.0 * u + left) + exchange - u * u / (1.0 + u)
        dR = -inv_v * ca.sum1(exchange)
        return t, y, p, ca.vertcat(du, dR)
    raise KeyError(f"casadi_rhs: no CasADi version of {name!r}")


# ------------------------------------------------------------------------------- timing
def interleaved_best(fns: dict, *, rounds: int, reps: int, min_time: float) -> dict:
    """Best time of each callable, the callables taking turns in ``rounds`` rounds."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():
        jax.block_until_ready(fn())  # warm (compiled before)
    for _ in range(rounds):
        for k, fn in fns.items():
            times = []
            start = time.perf_counter()
            while len(times) < reps or time.perf_counter() - start < min_time:
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                times.append(time.perf_counter() - t0)
                if len(times) > 20 * reps:
                    break
            best[k] = min(best[k], float(np.min(times)))
    return best


def _rel_err(A, B) -> float:
    A, B = sp.csc_matrix(A), sp.csc_matrix(B)
    scale = max(float(abs(B).max()), 1.0)
    return float(abs(A - B).max()) / scale


def _version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def run_case(name: str, key: str, size: int, tools, opts) -> dict:
    prob = PROBLEMS[name](**{key: size})
    t = 0.5
    tt = jnp.asarray(t)
    y = jnp.asarray(prob.y0)
    args = tuple(jnp.asarray(a) for a in prob.args)
    row: dict = dict(problem=prob.name, n=prob.n)
    fns: dict = {}

    # stiffasd: detection + coloring, compile, evaluate
    start = time.perf_counter()
    # compiled for evaluation speed, as the other tools compile (the default compiles small
    # programs for compile speed, see prepare_jacobian's fast_compile)
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, *args, argnums=1, fast_compile=False)
    row["stiffasd_prepare_s"] = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(sj.data_jit(tt, y, *args))
    row["stiffasd_compile_s"] = time.perf_counter() - start
    row.update(nnz=sj.pattern.nnz, stiffasd_mode=sj.mode, stiffasd_passes=sj.ncolors)
    J_ref = sj.csc(tt, y, *args)
    fns["stiffasd"] = lambda: sj.data_jit(tt, y, *args)
    fns["stiffasd_csc"] = lambda: sj.csc(tt, y, *args)

    def f1(x):  # the function of the state alone, as sparsejac and asdex take it
        return prob.rhs(tt, x, *args)

    if "sparsejac" in tools:
        try:
            import sparsejac
            from jax.experimental import sparse as jsparse

            p = sj.pattern
            coo = p.to_scipy("coo")
            idx = np.stack([coo.row, coo.col], axis=1)
            sparsity = jsparse.BCOO((jnp.ones(len(idx)), jnp.asarray(idx)), shape=p.shape)
            start = time.perf_counter()
            jf = jax.jit(sparsejac.jacfwd(f1, sparsity=sparsity))
            row["sparsejac_setup_s"] = time.perf_counter() - start
            start = time.perf_counter()
            out = jax.block_until_ready(jf(y))
            row["sparsejac_compile_s"] = time.perf_counter() - start
            Jsj = sp.coo_matrix(
                (np.asarray(out.data), tuple(np.asarray(out.indices).T)), shape=p.shape
            )
            row["sparsejac_err"] = _rel_err(Jsj, J_ref)
            fns["sparsejac"] = lambda: jf(y)
        except Exception as exc:  # record why, do not hide it
            row["sparsejac_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    if "asdex" in tools:
        try:
            import asdex

            start = time.perf_counter()
            colored = asdex.jacobian_coloring(f1, y)
            row["asdex_prepare_s"] = time.perf_counter() - start
            row["asdex_passes"] = int(colored.num_colors)
            row["asdex_mode"] = str(colored.mode)
            row["asdex_nnz"] = (
                int(colored.sparsity.nnz) if hasattr(colored.sparsity, "nnz") else None
            )
            ja = jax.jit(asdex.jacobian_from_coloring(f1, colored))
            start = time.perf_counter()
            out = jax.block_until_ready(ja(y))
            row["asdex_compile_s"] = time.perf_counter() - start
            Ja = sp.coo_matrix(
                (np.asarray(out.data), tuple(np.asarray(out.indices).T)), shape=out.shape
            )
            row["asdex_err"] = _rel_err(Ja, J_ref)
            fns["asdex"] = lambda: ja(y)
        except Exception as exc:
            row["asdex_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    if "casadi" in tools:
        try:
            import casadi as ca

            start = time.perf_counter()
            ct, cy, cp, expr = casadi_rhs(name, size, ca)
            row["casadi_graph_s"] = time.perf_counter() - start
            Jexpr = ca.jacobian(expr, cy)
            cfun = ca.Function("J", [ct, cy, cp], [Jexpr])
            row["casadi_build_s"] = time.perf_counter() - start
            row["casadi_nnz"] = int(Jexpr.nnz())
            p0 = np.asarray(prob.args[0], dtype=float)
            y0 = np.asarray(prob.y0, dtype=float)
            Jc = cfun(t, y0, p0)
            row["casadi_err"] = _rel_err(Jc.sparse(), J_ref)
            fns["casadi"] = lambda: cfun(t, y0, p0)
            dm_in = (ca.DM(t), ca.DM(y0), ca.DM(p0))  # converted once, outside the clock
            fns["casadi_dm"] = lambda: cfun(*dm_in)
            fns["casadi_scipy"] = lambda: cfun(t, y0, p0).sparse()
        except Exception as exc:
            row["casadi_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    best = interleaved_best(fns, rounds=opts.rounds, reps=opts.reps, min_time=opts.min_time)
    for k, v in best.items():
        row[f"{k}_s"] = v
    return row


def _ms(x) -> str:
    return "n/a" if x is None else f"{1e3 * x:.3g}"


def _ratio(row, key) -> str:
    v = row.get(f"{key}_s")
    return "n/a" if v is None else f"{v / row['stiffasd_s']:.2f}"


def table(rows, versions) -> str:
    vs = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    lines = [
        "One sparse Jacobian per problem and size, every tool in the same process, evaluations "
        "interleaved in rounds, best of many (ms). *stiffasd*: jit-compiled values (device "
        "array; compiled for evaluation speed, `fast_compile=False`); *stiffasd -> scipy*: plus the host `csc_matrix`. *sparsejac*, *asdex*: "
        "jit-compiled, BCOO out (sparsejac gets stiffasd's pattern; asdex detects and colors "
        "itself). *CasADi*: the same discretisation as an SX graph, `casadi.Function` of its "
        "symbolic `jacobian` (SX virtual machine; NumPy in, sparse DM out; *DM in*: the inputs "
        "already CasADi `DM`s, i.e. the virtual machine without the input conversion; "
        "*-> scipy* adds `DM.sparse()`). *x / stiffasd*: time ratio against stiffasd's values (> 1: stiffasd "
        "faster). *err*: max |difference| to stiffasd's Jacobian / max |entry|. "
        f"Tools: {vs}.",
        "",
        "| problem | n | nnz | stiffasd passes | stiffasd [ms] | stiffasd -> scipy [ms] | "
        "sparsejac [ms] | sparsejac / stiffasd | asdex passes | asdex [ms] | asdex / stiffasd | "
        "CasADi [ms] | CasADi, DM in [ms] | CasADi -> scipy [ms] | CasADi / stiffasd | "
        "CasADi build [s] | "
        "stiffasd prepare + compile [s] | asdex prepare + compile [s] | max err |",
        "|" + "---|" * 19,
    ]
    for r in rows:
        errs = [r.get(k) for k in ("sparsejac_err", "asdex_err", "casadi_err")]
        errs = [e for e in errs if e is not None]
        asdex_once = (
            f"{r['asdex_prepare_s'] + r['asdex_compile_s']:.2f}"
            if "asdex_compile_s" in r
            else "n/a"
        )
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['nnz']} | {r['stiffasd_passes']} | "
            f"{_ms(r['stiffasd_s'])} | {_ms(r.get('stiffasd_csc_s'))} | "
            f"{_ms(r.get('sparsejac_s'))} | {_ratio(r, 'sparsejac')} | "
            f"{r.get('asdex_passes', 'n/a')} | {_ms(r.get('asdex_s'))} | {_ratio(r, 'asdex')} | "
            f"{_ms(r.get('casadi_s'))} | {_ms(r.get('casadi_dm_s'))} | "
            f"{_ms(r.get('casadi_scipy_s'))} | {_ratio(r, 'casadi')} | "
            + (f"{r['casadi_build_s']:.2f}" if "casadi_build_s" in r else "n/a")
            + f" | {r['stiffasd_prepare_s'] + r['stiffasd_compile_s']:.2f} | {asdex_once} | "
            + (f"{max(errs):.1e}" if errs else "n/a")
            + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Brusselator N=16 only")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS[1:]), choices=list(TOOLS[1:]))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--name", default="external_jacobian")
    parser.add_argument("--only", nargs="+", default=None, help="problem names to run")
    opts = parser.parse_args(argv)
    versions = {k: _version(k) for k in ("jax", "sparsejac", "asdex", "casadi")}
    missing = {}
    tools = []
    for tool in opts.tools:
        try:
            __import__(tool)
            tools.append(tool)
        except Exception as exc:
            missing[tool] = f"{type(exc).__name__}: {exc}"
            print(f"{tool} not available: {missing[tool]}", flush=True)
    from stiffasd._compare import warm_up

    print(f"numba start-up (once per process, not in the tables): {warm_up():.2f} s", flush=True)
    cases = CASES[:1] if opts.quick else CASES
    if opts.only:
        cases = [c for c in cases if c[0] in opts.only]
    rows = []
    for name, key, size in cases:
        load = os.getloadavg()[0]
        row = run_case(name, key, size, tools, opts)
        row["load_before"] = load
        rows.append(row)
        print({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    md_table = table(rows, versions)
    loads = [r["load_before"] for r in rows]
    md_table += (
        f"\n\nLoad average (1 min) before each problem: {min(loads):.2f} to {max(loads):.2f} "
        "(2 cores, shared)."
    )
    if os.environ.get("XLA_FLAGS"):
        md_table += f"\n\nRun under `XLA_FLAGS={os.environ['XLA_FLAGS']}`."
    md_table += "\n\n" + ENVIRONMENT
    if missing:
        md_table += "\n\nNot installed: " + "; ".join(f"{k}: `{v}`" for k, v in missing.items())
    write_results(
        opts.name,
        {
            "rows": rows,
            "versions": versions,
            "missing": missing,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        md_table,
    )
    print(md_table)


if __name__ == "__main__":
    main()
