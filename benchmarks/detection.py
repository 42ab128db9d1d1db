"""Sparsity detection: time, memory and precision of `stiffasd.jacobian_sparsity`.

* ``large``: large PDE-like functions (squared differences at n = 10^6, the 2D Brusselator at
  N = 256, the 3D 7-point heat stencil at 64^3): median and best of repeated detections after a
  warm-up, numpy's peak memory (tracemalloc) during one; asdex's detection alternating with
  stiffasd's when asdex is importable (it needs its own environment: Python >= 3.12, jax 0.11),
  with both patterns compared.
* ``scaling``: the squared differences from n = 10^4 to 10^6 (time per nonzero).
* ``precision``: detected nonzeros against those observed in dense ``jax.jacfwd`` at 5 random
  points, over functions exercising control flow, gathers, custom rules, and every problem of
  `stiffasd.problems`. 1.00 means the global pattern is exact; above 1, entries possible for some
  input (branches, max, sort) or over-approximated. Below 1 would be unsound: it raises.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import statistics
import time
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Part, table
from benchmarks.problems import heat_3d, make, squared_differences
from stiffasd import jacobian_sparsity


def _state_fn(prob, frac: float = 0.3):
    """The problem's right-hand side as a function of the state only, at an interior time."""
    t = prob.t_span[0] + frac * (prob.t_span[1] - prob.t_span[0])
    return lambda y: prob.rhs(t, y, *prob.args)


def _measure(f, n: int, repeats: int) -> dict:
    x = np.ones(n)
    pat = jacobian_sparsity(f, x)  # warm-up (JAX's tracing caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jacobian_sparsity(f, x)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    jacobian_sparsity(f, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dict(
        n=n, nnz=pat.nnz, median_s=statistics.median(times), min_s=min(times), peak_MiB=peak / 2**20
    )


def _asdex(f, n: int, repeats: int, ours_s: list) -> dict:
    """asdex's detection timed alternately with stiffasd's; same pattern?"""
    import asdex
    import scipy.sparse as sp

    x = np.ones(n)
    ours = jacobian_sparsity(f, x)
    theirs = asdex.jacobian_sparsity(f, x)
    rows, cols = np.asarray(theirs.rows), np.asarray(theirs.cols)
    sc = sp.csr_array((np.ones(len(rows), bool), (rows, cols)), shape=tuple(theirs.shape))
    same = bool(sc.nnz == ours.nnz and (sc != ours.to_scipy(dtype=bool)).nnz == 0)
    ta = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jacobian_sparsity(f, x)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        asdex.jacobian_sparsity(f, x)
        ta.append(time.perf_counter() - t0)
    return dict(asdex_s=statistics.median(ta), same_pattern=same)


def run_large(quick: bool) -> dict:
    N2, N3, n1 = (16, 8, 10**4) if quick else (256, 64, 10**6)
    cases = [
        (f"squared_differences n={n1:.0e}", squared_differences, n1),
        (f"brusselator_2d N={N2}", _state_fn(make("brusselator_2d", N2)), 2 * N2**2),
        (f"heat_3d {N3}^3", heat_3d(N3), N3**3),
    ]
    has_asdex = importlib.util.find_spec("asdex") is not None
    rows = []
    for name, f, n in cases:
        r = dict(problem=name, **_measure(f, n, 2 if quick else 5))
        if has_asdex:
            ours: list = []
            r.update(_asdex(f, n, 1 if quick else 3, ours))
            r["stiffasd_alternating_s"] = statistics.median(ours)
        rows.append(r)
        print(f"[detection] {name:32s} {r['median_s']:.3f} s", flush=True)
    versions = {"asdex": importlib.metadata.version("asdex")} if has_asdex else {}
    return {"rows": rows, "versions": versions}


def render_large(p: dict) -> str:
    asdex = any("asdex_s" in r for r in p["rows"])
    head = ["problem", "n", "nnz", "median [s]", "best [s]", "peak numpy memory [MiB]"]
    if asdex:
        head += ["stiffasd, alternating [s]", "asdex [s]", "asdex / stiffasd", "same pattern"]
    rows = []
    for r in p["rows"]:
        row = [r["problem"], r["n"], r["nnz"], f"{r['median_s']:.3f}", f"{r['min_s']:.3f}"]
        row.append(f"{r['peak_MiB']:.0f}")
        if asdex:
            a, s = r["asdex_s"], r["stiffasd_alternating_s"]
            row += [f"{s:.3f}", f"{a:.3f}", f"{a / s:.0f}x", r["same_pattern"]]
        rows.append(row)
    caption = (
        "`jacobian_sparsity` on large functions: median and best of repeated detections after a "
        "warm-up, numpy's peak memory during one."
    )
    if asdex:
        caption += (
            f" asdex {p['versions']['asdex']}'s `jacobian_sparsity` alternates with stiffasd's "
            "in the same process (medians)."
        )
    return table(caption, head, rows)


def run_scaling(quick: bool) -> dict:
    sizes = [10**3, 10**4] if quick else [10**4, 3 * 10**4, 10**5, 3 * 10**5, 10**6]
    return {"rows": [_measure(squared_differences, n, 2 if quick else 5) for n in sizes]}


def render_scaling(p: dict) -> str:
    rows = [
        [r["n"], r["nnz"], f"{1e3 * r['median_s']:.1f}", f"{r['median_s'] / r['nnz'] * 1e9:.0f}", f"{r['peak_MiB']:.1f}"]
        for r in p["rows"]
    ]  # fmt: skip
    return table(
        "Detection time of f(x) = (x[1:] - x[:-1])**2 against n (median of repeated runs).",
        ["n", "nnz", "median [ms]", "ns per nonzero", "peak numpy memory [MiB]"],
        rows,
    )


def _conv_stencil(N):
    k = jnp.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
    return lambda x: jax.lax.conv_general_dilated(x.reshape(1, 1, N, N), k, (1, 1), "SAME").ravel()


def _bcoo_laplacian(n):
    from jax.experimental import sparse

    A = np.diag(np.full(n, -2.0)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    M = sparse.BCOO.fromdense(A)
    return lambda x: M @ x


# (name, function, n, domain of the random points: "pos" uniform in [0.5, 2], "real" normal)
FUNCTIONS = [
    ("heat_3d N=6 (pad + slices)", heat_3d(6), 216, "real"),
    ("squared differences n=50", squared_differences, 50, "real"),
    ("conv 5-point stencil 8x8", _conv_stencil(8), 64, "real"),
    ("BCOO tridiagonal matvec n=20", _bcoo_laplacian(20), 20, "real"),
    ("interp, constant query points", lambda fp: jnp.interp(jnp.linspace(0.05, 0.95, 7), jnp.linspace(0.0, 1.0, 12), fp), 12, "real"),
    ("scan recurrence n=40", lambda x: jax.lax.scan(lambda c, xi: (0.5 * c + xi, c * xi), 0.0, x)[1], 40, "real"),
    ("fori_loop diffusion, 40 steps, n=64", lambda x: jax.lax.fori_loop(0, 40, lambda i, z: z + 0.1 * jnp.roll(z, 1), x), 64, "real"),
    ("relu * roll (custom_jvp)", lambda x: jax.nn.relu(x) * jnp.roll(x, 1), 20, "real"),
    ("where(x > 0, ...) (both branches)", lambda x: jnp.where(x > 0, x**2, jnp.sin(x[::-1])), 20, "real"),
    ("max of neighbours", lambda x: jnp.maximum(x, jnp.roll(x, 1)), 20, "real"),
    ("sort", jnp.sort, 10, "real"),
    ("dense solve (linalg)", lambda x: jnp.linalg.solve(x[:16].reshape(4, 4) + 5 * jnp.eye(4), x[16:]), 20, "pos"),
]  # fmt: skip
# every problem of stiffasd.problems at a small size, sampled around its initial state
EXAMPLES = {
    "brusselator_2d": 8, "gray_scott_2d": 8, "allen_cahn_3d": 5,
    "advection_diffusion_reaction_2d": 8, "robertson_diffusion_2d": 5, "reservoir_exchange": 30,
    "flame_1d": 40,
}  # fmt: skip


def run_precision(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    cases = [(name, f, n, dom, None) for name, f, n, dom in FUNCTIONS]
    for name, size in EXAMPLES.items():
        prob = make(name, size)
        cases.append((f"problem {prob.name}", _state_fn(prob), prob.n, "y0", prob.y0))
    if quick:
        cases = cases[:3] + cases[-1:]
    rows = []
    for name, f, n, dom, y0 in cases:
        if dom == "y0":  # random points around the initial state, same signs
            xs = [y0 * rng.uniform(0.5, 1.5, n) + 1e-3 * rng.uniform(0, 1, n) for _ in range(5)]
        elif dom == "pos":
            xs = [rng.uniform(0.5, 2.0, n) for _ in range(5)]
        else:
            xs = [rng.normal(size=n) for _ in range(5)]
        pat = jacobian_sparsity(f, xs[0]).to_dense()
        jacs = np.asarray(jax.jit(jax.vmap(jax.jacfwd(f)))(np.stack(xs)))
        obs = (jacs.reshape(5, pat.shape[0], n) != 0).any(axis=0)
        if (obs & ~pat).any():
            raise AssertionError(f"unsound pattern for {name}: a nonzero outside the detection")
        rows.append(dict(function=name, n=n, detected=int(pat.sum()), observed=int(obs.sum())))
    return {"rows": rows}


def render_precision(p: dict) -> str:
    rows = [
        [r["function"], r["n"], r["detected"], r["observed"], f"{r['detected'] / max(r['observed'], 1):.2f}"]
        for r in p["rows"]
    ]  # fmt: skip
    return table(
        "Detected nonzeros against the union of the nonzeros of dense `jax.jacfwd` at 5 random "
        "points (*ratio* 1.00: the global pattern is exact; above 1: entries some input can "
        "make nonzero, or an over-approximation).",
        ["function", "n", "detected nnz", "observed nnz", "ratio"],
        rows,
    )


PARTS = {
    "large": Part("Large functions", run_large, render_large),
    "scaling": Part("Scaling with n", run_scaling, render_scaling),
    "precision": Part("Precision", run_precision, render_precision),
}
