"""Sparse Hessians against dense `jax.hessian`, star against acyclic coloring.

Problems: the chained Rosenbrock function (tridiagonal Hessian) and a 2D Ginzburg-Landau grid
energy (5-point stencil Hessian on an N x N grid). Per size: detection and coloring times, the
Hessian-vector products for star coloring (direct decompression) and acyclic coloring
(substitution), one jit-compiled `SparseHessian.data` for each, one jit-compiled
Hessian-vector product (so that ``sparse / (colors x HVP)`` measures the decompression and
batching overhead), dense ``jax.jit(jax.hessian(f))`` up to n = 10^4, and asdex's sparse
Hessian when asdex is importable.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time

import jax
import jax.numpy as jnp
import numpy as np

import stiffasd
from benchmarks._harness import Part, best_of, ratio, table
from benchmarks.problems import grid_energy, rosenbrock

MAX_DENSE_N = 10_000


def _asdex(f, x) -> dict:
    """asdex's sparse Hessian (jit-compiled, BCOO out): preparation and evaluation seconds."""
    if importlib.util.find_spec("asdex") is None:
        return {}
    import asdex

    t0 = time.perf_counter()
    hess = jax.jit(asdex.hessian(f, x))
    jax.block_until_ready(hess(x))
    prep = time.perf_counter() - t0
    return {"asdex_prepare_s": prep, "asdex_s": best_of(hess, x, reps=10)[0]}


def _one(problem: str, f, n: int, size_label) -> dict:
    x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, n))
    t0 = time.perf_counter()
    pattern = stiffasd.hessian_sparsity(f, x)
    row = dict(problem=problem, size=size_label, n=n, nnz=pattern.nnz)
    row["detect_s"] = time.perf_counter() - t0
    grad = jax.grad(f)
    hvp = jax.jit(lambda x, v: jax.jvp(grad, (x,), (v,))[1])
    row["hvp_s"] = best_of(hvp, x, jnp.ones_like(x))[0]
    values = {}
    for kind, decompression in (("star", "direct"), ("acyclic", "substitution")):
        t0 = time.perf_counter()
        sh = stiffasd.prepare_hessian(f, x, sparsity=pattern, decompression=decompression)
        row[f"{kind}_color_s"] = time.perf_counter() - t0
        row[f"{kind}_colors"] = sh.ncolors
        data = jax.jit(sh.data)
        row[f"{kind}_s"], row[f"{kind}_median_s"] = best_of(data, x, reps=10)
        row[f"{kind}_overhead"] = row[f"{kind}_s"] / max(sh.ncolors * row["hvp_s"], 1e-12)
        values[kind] = np.asarray(data(x))
    # both decompressions must give the same Hessian
    scale = max(np.abs(values["star"]).max(), 1e-300)
    row["star_vs_acyclic_maxrel"] = float(np.abs(values["star"] - values["acyclic"]).max() / scale)
    row["sparse_s"] = min(row["star_s"], row["acyclic_s"])
    row["auto_choice"] = stiffasd.prepare_hessian(f, x, sparsity=pattern).coloring.decompression
    if n <= MAX_DENSE_N:
        row["dense_s"] = best_of(jax.jit(jax.hessian(f)), x, reps=3, min_time=0.0)[0]
    row.update(_asdex(f, x))
    return row


def run(quick: bool) -> dict:
    rosen, grid = ([100], [8]) if quick else ([1000, 10_000, 100_000], [32, 64, 128, 256])
    rows = [_one("rosenbrock", rosenbrock, n, n) for n in rosen]
    rows += [_one("grid_energy", grid_energy, N * N, f"{N}x{N}") for N in grid]
    versions = {}
    if importlib.util.find_spec("asdex") is not None:
        versions["asdex"] = importlib.metadata.version("asdex")
    return {"rows": rows, "versions": versions}


def render(p: dict) -> str:
    def overhead(r):  # of the faster coloring
        return r[("star" if r["star_s"] <= r["acyclic_s"] else "acyclic") + "_overhead"]

    asdex = p.get("versions", {}).get("asdex")
    return table(
        "One sparse Hessian (jit-compiled `SparseHessian.data`) against dense "
        "`jax.jit(jax.hessian(f))`, best of repeated runs in one process. *star*: star coloring, "
        "direct decompression; *acyclic*: acyclic coloring, substitution. *sparse / (colors x "
        "HVP)*: the faster of the two against as many Hessian-vector products (batching and "
        f"decompression overhead). Dense only up to n = {MAX_DENSE_N}; asdex when installed"
        + (f" (asdex {asdex})." if asdex else "."),
        {
            "problem": "{problem}", "size": "{size}", "n": "{n}", "nnz": "{nnz}",
            "colors star / acyclic": "{star_colors} / {acyclic_colors}",
            "detect [s]": "{detect_s:.3f}", "star [ms]": "{star_s:ms}",
            "acyclic [ms]": "{acyclic_s:ms}", "HVP [ms]": "{hvp_s:ms}",
            "sparse / (colors x HVP)": lambda r: f"{overhead(r):.2f}",
            "dense jax.hessian [ms]": "{dense_s:ms}",
            "vs dense": lambda r: ratio(r.get("dense_s"), r["sparse_s"], ".0f"),
            "auto picks": "{auto_choice}", "asdex [ms]": "{asdex_s:ms}",
        },
        p["rows"],
    )  # fmt: skip


PARTS = {"hessian": Part("Sparse Hessians", run, render)}
