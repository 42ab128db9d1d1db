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
import time
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from benchmarks._harness import Part, best_of, ratio, table
from benchmarks.problems import heat_3d, make, squared_differences
from stiffasd import SparsityPattern, jacobian_sparsity


def _state_fn(prob):
    """The problem's right-hand side as a function of the state only, at an interior time."""
    t = prob.t_span[0] + 0.3 * (prob.t_span[1] - prob.t_span[0])
    return lambda y: prob.rhs(t, y, *prob.args)


def _measure(f, n: int, repeats: int) -> dict:
    """Best and median of ``repeats`` detections after a warm-up; numpy's peak memory in one."""
    x = np.ones(n)
    best, median = best_of(jacobian_sparsity, f, x, reps=repeats, min_time=0.0, max_reps=repeats)
    tracemalloc.start()
    pat = jacobian_sparsity(f, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dict(n=n, nnz=pat.nnz, median_s=median, min_s=best, peak_MiB=peak / 2**20)


def _asdex(f, n: int, repeats: int) -> dict:
    """asdex's detection timed alternately with stiffasd's (medians); same pattern?"""
    import asdex

    x = np.ones(n)
    ours, theirs = jacobian_sparsity(f, x), asdex.jacobian_sparsity(f, x)
    same = SparsityPattern.from_coo(theirs.shape, theirs.rows, theirs.cols) == ours
    times = {"stiffasd_alternating_s": [], "asdex_s": []}
    for _ in range(repeats):
        for key, detect in zip(times, (jacobian_sparsity, asdex.jacobian_sparsity), strict=True):
            t0 = time.perf_counter()
            detect(f, x)
            times[key].append(time.perf_counter() - t0)
    return {key: float(np.median(t)) for key, t in times.items()} | {"same_pattern": bool(same)}


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
        rows.append(dict(problem=name, **_measure(f, n, 2 if quick else 5)))
        rows[-1] |= _asdex(f, n, 1 if quick else 3) if has_asdex else {}
        print(f"[detection] {name:32s} {rows[-1]['median_s']:.3f} s", flush=True)
    versions = {"asdex": importlib.metadata.version("asdex")} if has_asdex else {}
    return {"rows": rows, "versions": versions}


def render_large(p: dict) -> str:
    columns = {
        "problem": "{problem}", "n": "{n}", "nnz": "{nnz}", "median [s]": "{median_s:.3f}",
        "best [s]": "{min_s:.3f}", "peak numpy memory [MiB]": "{peak_MiB:.0f}",
    }  # fmt: skip
    if asdex := any("asdex_s" in r for r in p["rows"]):
        columns |= {
            "stiffasd, alternating [s]": "{stiffasd_alternating_s:.3f}",
            "asdex [s]": "{asdex_s:.3f}",
            "asdex / stiffasd": lambda r: ratio(r["asdex_s"], r["stiffasd_alternating_s"], ".0f"),
            "same pattern": "{same_pattern}",
        }  # fmt: skip
    return table(
        "`jacobian_sparsity` on large functions: median and best of repeated detections after a "
        "warm-up, numpy's peak memory during one."
        + (f" asdex {p['versions']['asdex']}'s `jacobian_sparsity` alternates with stiffasd's "
           "in the same process (medians)." if asdex else ""),
        columns, p["rows"],
    )  # fmt: skip


def run_scaling(quick: bool) -> dict:
    sizes = [10**3, 10**4] if quick else [10**4, 3 * 10**4, 10**5, 3 * 10**5, 10**6]
    return {"rows": [_measure(squared_differences, n, 2 if quick else 5) for n in sizes]}


def render_scaling(p: dict) -> str:
    return table(
        "Detection time of f(x) = (x[1:] - x[:-1])**2 against n (median of repeated runs).",
        {"n": "{n}", "nnz": "{nnz}", "median [ms]": lambda r: f"{1e3 * r['median_s']:.1f}",
         "ns per nonzero": lambda r: f"{r['median_s'] / r['nnz'] * 1e9:.0f}",
         "peak numpy memory [MiB]": "{peak_MiB:.1f}"},
        p["rows"],
    )  # fmt: skip


_STENCIL = jnp.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
_TRIDIAGONAL = sparse.BCOO.fromdense(-2 * np.eye(20) + np.eye(20, k=1) + np.eye(20, k=-1))

# (name, function, n, domain of the random points: "pos" uniform in [0.5, 2], "real" normal)
FUNCTIONS = [
    ("heat_3d N=6 (pad + slices)", heat_3d(6), 216, "real"),
    ("squared differences n=50", squared_differences, 50, "real"),
    ("conv 5-point stencil 8x8", lambda x: jax.lax.conv_general_dilated(
        x.reshape(1, 1, 8, 8), _STENCIL, (1, 1), "SAME").ravel(), 64, "real"),
    ("BCOO tridiagonal matvec n=20", lambda x: _TRIDIAGONAL @ x, 20, "real"),
    ("interp, constant query points",
     lambda x: jnp.interp(jnp.linspace(0.05, 0.95, 7), jnp.linspace(0.0, 1.0, 12), x), 12, "real"),
    ("scan recurrence n=40",
     lambda x: jax.lax.scan(lambda c, xi: (0.5 * c + xi, c * xi), 0.0, x)[1], 40, "real"),
    ("fori_loop diffusion, 40 steps, n=64",
     lambda x: jax.lax.fori_loop(0, 40, lambda i, z: z + 0.1 * jnp.roll(z, 1), x), 64, "real"),
    ("relu * roll (custom_jvp)", lambda x: jax.nn.relu(x) * jnp.roll(x, 1), 20, "real"),
    ("where(x > 0, ...) (both branches)",
     lambda x: jnp.where(x > 0, x**2, jnp.sin(x[::-1])), 20, "real"),
    ("max of neighbours", lambda x: jnp.maximum(x, jnp.roll(x, 1)), 20, "real"),
    ("sort", jnp.sort, 10, "real"),
    ("dense solve (linalg)",
     lambda x: jnp.linalg.solve(x[:16].reshape(4, 4) + 5 * jnp.eye(4), x[16:]), 20, "pos"),
]  # fmt: skip
# every problem of stiffasd.problems at a small size, sampled around its initial state
EXAMPLES = {
    "brusselator_2d": 8, "gray_scott_2d": 8, "allen_cahn_3d": 5,
    "advection_diffusion_reaction_2d": 8, "robertson_diffusion_2d": 5, "reservoir_exchange": 30,
    "flame_1d": 40,
}  # fmt: skip


def run_precision(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    problems = (make(name, size) for name, size in EXAMPLES.items())
    cases = FUNCTIONS + [(f"problem {p.name}", _state_fn(p), p.n, p.y0) for p in problems]
    if quick:
        cases = cases[:3] + cases[-1:]
    rows = []
    for name, f, n, dom in cases:
        if isinstance(dom, str):
            xs = rng.normal(size=(5, n)) if dom == "real" else rng.uniform(0.5, 2.0, (5, n))
        else:  # around the initial state dom, same signs
            xs = dom * rng.uniform(0.5, 1.5, (5, n)) + 1e-3 * rng.uniform(0, 1, (5, n))
        pat = jacobian_sparsity(f, xs[0]).to_dense()
        obs = (np.asarray(jax.jit(jax.vmap(jax.jacfwd(f)))(xs)).reshape(5, -1, n) != 0).any(axis=0)
        if (obs & ~pat).any():
            raise AssertionError(f"unsound pattern for {name}: a nonzero outside the detection")
        rows.append(dict(function=name, n=n, detected=int(pat.sum()), observed=int(obs.sum())))
    return {"rows": rows}


def render_precision(p: dict) -> str:
    return table(
        "Detected nonzeros against the union of the nonzeros of dense `jax.jacfwd` at 5 random "
        "points (*ratio* 1.00: the global pattern is exact; above 1: entries some input can "
        "make nonzero, or an over-approximation).",
        {"function": "{function}", "n": "{n}", "detected nnz": "{detected}",
         "observed nnz": "{observed}",
         "ratio": lambda r: f"{r['detected'] / max(r['observed'], 1):.2f}"},
        p["rows"],
    )  # fmt: skip


PARTS = {
    "large": Part("Large functions", run_large, render_large),
    "scaling": Part("Scaling with n", run_scaling, render_scaling),
    "precision": Part("Precision", run_precision, render_precision),
}
