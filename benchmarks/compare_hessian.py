"""Sparse Hessians against dense `jax.hessian`, star against acyclic coloring, in one run.

    python -m benchmarks.compare_hessian
    python -m benchmarks.compare_hessian --rosenbrock 1000 10000 100000 --grid 32 64 128 256

Problems: the chained Rosenbrock function (tridiagonal Hessian) and a 2D Ginzburg-Landau grid
energy (5-point stencil Hessian, N x N grid). For each size: detection and coloring times, the
number of Hessian-vector products for star coloring (direct decompression) and acyclic coloring
(substitution), the time of one jit-compiled sparse Hessian (`SparseHessian.data`) for each,
the time of one jit-compiled Hessian-vector product (so that ``sparse / (colors x HVP)``
measures the decompression and batching overhead), and dense ``jax.jit(jax.hessian(f))`` up
to ``--max-dense-n``. asdex is timed as well when it is installed. Writes
``results/hessian.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from benchmarks.compare_jacobian import best_time  # noqa: E402


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def grid_energy(u):
    N = int(round(np.sqrt(u.size)))
    U = u.reshape(N, N)
    dx = U[1:, :] - U[:-1, :]
    dy = U[:, 1:] - U[:, :-1]
    return 0.5 * jnp.sum(dx**2) + 0.5 * jnp.sum(dy**2) + 0.25 * jnp.sum((U**2 - 1.0) ** 2)


def _asdex(f, x) -> dict:  # pragma: no cover - optional comparison
    """Preparation and evaluation time of asdex's sparse Hessian (a jit-compiled BCOO), if
    asdex is importable (``PYTHONPATH`` may point at a ``pip install --no-deps --target``)."""
    if importlib.util.find_spec("asdex") is None:
        return {}
    import asdex

    t0 = time.perf_counter()
    hess = jax.jit(asdex.hessian(f, x))
    jax.block_until_ready(hess(x))
    prep = time.perf_counter() - t0
    return {"asdex_prepare_s": prep, "asdex_s": best_time(hess, x, reps=10)[0]}


def run_one(problem: str, f, n: int, size_label, max_dense_n: int) -> dict:
    x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, n))
    t0 = time.perf_counter()
    pattern = stiffasd.hessian_sparsity(f, x)
    t_detect = time.perf_counter() - t0
    row = dict(problem=problem, size=size_label, n=n, nnz=pattern.nnz, detect_s=t_detect)
    grad = jax.grad(f)
    hvp = jax.jit(lambda x, v: jax.jvp(grad, (x,), (v,))[1])
    row["hvp_s"] = best_time(hvp, x, jnp.ones_like(x))[0]
    reference = None
    for kind, decompression in (("star", "direct"), ("acyclic", "substitution")):
        t0 = time.perf_counter()
        sh = stiffasd.prepare_hessian(f, x, sparsity=pattern, decompression=decompression)
        row[f"{kind}_color_s"] = time.perf_counter() - t0
        row[f"{kind}_colors"] = sh.ncolors
        data = jax.jit(sh.data)
        row[f"{kind}_s"], row[f"{kind}_median_s"] = best_time(data, x, reps=10)
        row[f"{kind}_overhead"] = row[f"{kind}_s"] / max(sh.ncolors * row["hvp_s"], 1e-12)
        values = np.asarray(data(x))
        if reference is None:
            reference = values
        else:  # both decompressions give the same Hessian
            row["star_vs_acyclic_maxrel"] = float(
                np.abs(values - reference).max() / max(np.abs(reference).max(), 1e-300)
            )
    row["sparse_s"] = min(row["star_s"], row["acyclic_s"])
    row["auto_choice"] = stiffasd.prepare_hessian(f, x, sparsity=pattern).coloring.decompression
    if n <= max_dense_n:
        dense = jax.jit(jax.hessian(f))
        row["dense_s"] = best_time(dense, x, reps=3, min_time=0.0)[0]
        row["speedup_vs_dense"] = row["dense_s"] / row["sparse_s"]
    row.update(_asdex(f, x))
    return row


def table(rows: list[dict]) -> str:
    head = (
        "| problem | size | n | nnz | colors star / acyclic | detect (s) | sparse star (ms) | "
        "sparse acyclic (ms) | HVP (ms) | sparse / (colors x HVP) | dense jax.hessian (ms) | "
        "speedup vs dense | auto picks | asdex (ms) |\n" + "|---" * 14 + "|"
    )
    lines = [head]
    for r in rows:
        best = "star" if r["star_s"] <= r["acyclic_s"] else "acyclic"
        dense = f"{1e3 * r['dense_s']:.2f}" if "dense_s" in r else "-"
        speed = f"{r['speedup_vs_dense']:.0f}x" if "speedup_vs_dense" in r else "-"
        asdex = f"{1e3 * r['asdex_s']:.3f}" if "asdex_s" in r else "-"
        lines.append(
            f"| {r['problem']} | {r['size']} | {r['n']} | {r['nnz']} | "
            f"{r['star_colors']} / {r['acyclic_colors']} | {r['detect_s']:.3f} | "
            f"{1e3 * r['star_s']:.3f} | {1e3 * r['acyclic_s']:.3f} | {1e3 * r['hvp_s']:.3f} | "
            f"{r[f'{best}_overhead']:.2f} | {dense} | {speed} | {r['auto_choice']} | {asdex} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rosenbrock", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--grid", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--max-dense-n", type=int, default=10000)
    parser.add_argument("--name", default="hessian")
    opts = parser.parse_args(argv)
    rows = []
    for n in opts.rosenbrock:
        rows.append(run_one("rosenbrock", rosenbrock, n, n, opts.max_dense_n))
        print(rows[-1], flush=True)
    for N in opts.grid:
        rows.append(run_one("grid_energy", grid_energy, N * N, f"{N}x{N}", opts.max_dense_n))
        print(rows[-1], flush=True)
    md = (
        "Sparse Hessian (one jit-compiled `SparseHessian.data` call) against dense "
        "`jax.jit(jax.hessian(f))`; best of repeated runs, same process.\n\n" + table(rows)
    )
    versions = {}
    if importlib.util.find_spec("asdex") is not None:
        import importlib.metadata as md_

        versions["asdex"] = md_.version("asdex")
    write_results(opts.name, {"rows": rows, "versions": versions}, md)
    print(md)


if __name__ == "__main__":
    main()
