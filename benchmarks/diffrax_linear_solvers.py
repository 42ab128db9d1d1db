"""Per-call cost of the linear-solver candidates for I - γhJ inside jit (2D Brusselator).

    python benchmarks/diffrax_linear_solvers.py --N 16 32 64

For the stage matrix of Kvaerno5 (γh = 0.26 * 0.05) at the initial state, jitted calls of:
stiffasd's DirectLU factor (SuperLU via pure_callback, ordering reused) and solve (cached
factorization), the same without ordering reuse, jax.experimental.sparse.linalg.spsolve (refactors
at every call), stiffasd's Krylov (GMRES + block Jacobi) build and solve, and a dense LU solve for
reference. A chord step of Kvaerno5 does 1 factorization and about 12 solves.
Writes benchmarks/results/diffrax_linear_solvers.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from stiffasd.linalg import DirectLU, FactorCache, Krylov, with_diagonal  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402


def _time(fn, *args, k=20):
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(k):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t) / k)
    return best * 1e3


def measure(N: int) -> dict:
    pr = brusselator_2d(N)
    y = jnp.asarray(pr.y0)
    sj = stiffasd.prepare_jacobian(pr.rhs, 0.0, y, *pr.args, argnums=1)
    full, src, diag = with_diagonal(sj.pattern)
    jdata = jnp.zeros(full.nnz).at[src].set(sj.data(0.0, y, *pr.args))
    data = (-0.26 * 0.05 * jdata).at[diag].add(1.0)
    b = jnp.asarray(np.random.default_rng(0).standard_normal(full.shape[0]))
    rec = {"N": N, "n": full.shape[0], "nnz": full.nnz, "ncolors": sj.ncolors}
    rec["jacobian_ms"] = _time(jax.jit(sj.data), 0.0, y, *pr.args)
    for name, cfg in [
        ("superlu", DirectLU(cache=FactorCache())),
        ("superlu_no_reuse", DirectLU(reuse_ordering=False, cache=FactorCache())),
    ]:
        bound = cfg.bind(full)
        factor, solve = jax.jit(bound.factor), jax.jit(bound.solve)
        state = factor(data)
        rec[f"{name}_factor_ms"] = _time(factor, data, k=5)
        rec[f"{name}_solve_ms"] = _time(solve, state, b)
    from jax.experimental.sparse.linalg import spsolve

    csr = full.to_scipy("csr")
    perm = np.asarray(full.csr_to_csc)
    spsolve_jit = jax.jit(
        lambda d, b: spsolve(d[perm], jnp.asarray(csr.indices), jnp.asarray(csr.indptr), b)
    )
    rec["spsolve_ms"] = _time(spsolve_jit, data, b, k=5)
    for bs in (2, 16):
        kry = Krylov(block_size=bs).bind(full)
        kf, ks = jax.jit(kry.factor), jax.jit(kry.solve)
        kstate = kf(data)
        rec[f"gmres_bj{bs}_build_ms"] = _time(kf, data)
        rec[f"gmres_bj{bs}_solve_ms"] = _time(ks, kstate, b)
        x = ks(kstate, b)
        rec[f"gmres_bj{bs}_residual"] = float(
            jnp.linalg.norm(kry.matvec(data, x) - b) / jnp.linalg.norm(b)
        )
    if full.shape[0] <= 2048:
        dense = jnp.asarray(full.to_dense(), float).at[full.csc_indices, full.csc_cols].set(data)
        lu = jax.jit(jax.scipy.linalg.lu_factor)
        rec["dense_lu_factor_ms"] = _time(lu, dense, k=3)
        fac = lu(dense)
        rec["dense_lu_solve_ms"] = _time(jax.jit(jax.scipy.linalg.lu_solve), fac, b)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[16, 32, 64])
    opts = parser.parse_args()
    records = []
    for N in opts.N:
        records.append(measure(N))
        print(json.dumps(records[-1]), flush=True)
    out = {"machine": machine(), "records": records}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffrax_linear_solvers.json").write_text(json.dumps(out, indent=2))
    keys = [k for k in records[0] if k not in ("N",)]
    lines = [
        "# Linear-solver candidates for I - γhJ (Brusselator, ms per jitted call)",
        "",
        "| " + " | ".join(["N"] + keys) + " |",
        "|" + "---|" * (len(keys) + 1),
    ]
    for r in records:
        cells = [str(r["N"])] + [
            (f"{r[k]:.3g}" if isinstance(r.get(k), float) else str(r.get(k, ""))) for k in keys
        ]
        lines.append("| " + " | ".join(cells) + " |")
    m = out["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu')}, {m.get('cpu_count')} cores (shared with other "
        f"jobs: absolute times are noisy), jax {m.get('jax')}, scipy {m.get('scipy')}.",
    ]
    (RESULTS / "diffrax_linear_solvers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
