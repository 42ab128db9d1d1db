"""Precision table of sparsity detection: detected nnz / nnz observed in dense Jacobians.

Run from the repository root::

    python3 benchmarks/detect_precision.py    # writes benchmarks/results/detect_precision.{json,md}

For each function, the observed pattern is the union of the nonzeros of dense ``jax.jacfwd`` at
5 random points; a ratio of 1.00 means the global pattern is exact, a ratio above 1 shows entries
that are structurally possible for some input (branches, max/min, sort...) or over-approximated.
A ratio below 1 would be a soundness bug (it is asserted never to happen).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import detect_problems as dp  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from stiffasd.detect import jacobian_sparsity  # noqa: E402

lax = jax.lax


def _relu_chain(x):
    return jax.nn.relu(x) * jnp.roll(x, 1)


def _interp(fp):
    return jnp.interp(jnp.linspace(0.05, 0.95, 7), jnp.linspace(0.0, 1.0, fp.shape[0]), fp)


def _sparse_lap(n):
    from jax.experimental import sparse

    A = np.diag(np.full(n, -2.0)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    M = sparse.BCOO.fromdense(A)
    return lambda x: M @ x


def _conv_stencil(N):
    k = jnp.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
    return lambda x: lax.conv_general_dilated(x.reshape(1, 1, N, N), k, (1, 1), "SAME").ravel()


FUNCTIONS = [
    ("brusselator_2d N=8 (roll Laplacian)", dp.brusselator_2d(8), 128, "pos"),
    ("brusselator_2d N=16", dp.brusselator_2d(16), 512, "pos"),
    ("heat_3d N=6 (pad + slices)", dp.heat_3d(6), 216, "real"),
    ("squared differences n=50", dp.squared_differences, 50, "real"),
    ("conv 5-point stencil 8x8", _conv_stencil(8), 64, "real"),
    ("BCOO tridiagonal matvec n=20", _sparse_lap(20), 20, "real"),
    ("interp, constant query points", _interp, 12, "real"),
    (
        "scan recurrence n=40",
        lambda x: lax.scan(lambda c, xi: (0.5 * c + xi, c * xi), 0.0, x)[1],
        40,
        "real",
    ),
    (
        "fori_loop diffusion, 40 steps, n=64",
        lambda x: lax.fori_loop(0, 40, lambda i, z: z + 0.1 * jnp.roll(z, 1), x),
        64,
        "real",
    ),
    ("relu * roll (custom_jvp)", _relu_chain, 20, "real"),
    (
        "where(x > 0, ...) (both branches)",
        lambda x: jnp.where(x > 0, x**2, jnp.sin(x[::-1])),
        20,
        "real",
    ),
    ("max of neighbours", lambda x: jnp.maximum(x, jnp.roll(x, 1)), 20, "real"),
    ("sort", jnp.sort, 10, "real"),
    (
        "dense solve (linalg)",
        lambda x: jnp.linalg.solve(x[:16].reshape(4, 4) + 5 * jnp.eye(4), x[16:]),
        20,
        "pos",
    ),
]


def _example_rhs(name, size):
    """The right-hand side of a problem of `stiffasd.problems` as a function of the state, at
    a point inside its domain (the initial state), for the table below."""
    from stiffasd.problems import PROBLEMS

    prob = PROBLEMS[name](size)
    t = prob.t_span[0] + 0.3 * (prob.t_span[1] - prob.t_span[0])
    return prob, (lambda y: prob.rhs(t, y, *prob.args))


# every example problem, at a small size, sampled around its initial state
EXAMPLES = [
    ("brusselator_2d", 8),
    ("gray_scott_2d", 8),
    ("allen_cahn_3d", 5),
    ("advection_diffusion_reaction_2d", 8),
    ("robertson_diffusion_2d", 5),
    ("reservoir_exchange", 30),
    ("flame_1d", 40),
]


def main(out_dir=None):
    out_dir = out_dir or os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    cases = [(name, f, n, dom, None) for name, f, n, dom in FUNCTIONS]
    for pname, size in EXAMPLES:
        prob, f = _example_rhs(pname, size)
        cases.append((f"example: {prob.name}", f, prob.n, "y0", prob.y0))
    for name, f, n, dom, y0 in cases:
        rng = np.random.default_rng(0)
        if dom == "y0":  # random points around the initial state, same signs
            xs = [y0 * rng.uniform(0.5, 1.5, n) + 1e-3 * rng.uniform(0, 1, n) for _ in range(5)]
        else:
            xs = [
                rng.uniform(0.5, 2.0, n) if dom == "pos" else rng.normal(size=n) for _ in range(5)
            ]
        pat = jacobian_sparsity(f, xs[0]).to_dense()
        jf = jax.jit(jax.vmap(jax.jacfwd(f)))
        obs = (np.asarray(jf(np.stack(xs))).reshape(5, pat.shape[0], n) != 0).any(axis=0)
        assert not (obs & ~pat).any(), f"unsound pattern for {name}"
        rows.append(
            {
                "function": name,
                "n": n,
                "detected_nnz": int(pat.sum()),
                "observed_nnz": int(obs.sum()),
                "ratio": float(pat.sum() / max(obs.sum(), 1)),
            }
        )
        print(
            f"{name:40s} {rows[-1]['detected_nnz']:6d} {rows[-1]['observed_nnz']:6d} {rows[-1]['ratio']:.2f}"
        )
    with open(os.path.join(out_dir, "detect_precision.json"), "w") as fh:
        json.dump({"jax": jax.__version__, "rows": rows}, fh, indent=2)
    lines = [
        "| function | n | detected nnz | observed nnz | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['function']} | {r['n']} | {r['detected_nnz']} | {r['observed_nnz']} | {r['ratio']:.2f} |"
        for r in rows
    ]
    with open(os.path.join(out_dir, "detect_precision.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
