"""Property test: random chains of supported primitives on random shapes are detected soundly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from detect_helpers import observed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stiffasd.detect import jacobian_sparsity

lax = jax.lax

# Shape-preserving steps on a 1-D array of length n (n >= 4), each built from supported primitives.
STEPS = {
    "sin": jnp.sin,
    "square": lambda x: x * x,
    "exp_scaled": lambda x: jnp.exp(0.1 * x),
    "roll": lambda x: jnp.roll(x, 1),
    "roll_back": lambda x: jnp.roll(x, -2),
    "flip": lambda x: x[::-1],
    "diff_pad": lambda x: jnp.pad(x[1:] - x[:-1], (0, 1)),
    "cumsum": lambda x: jnp.cumsum(x) * 0.1,
    "mask_const": lambda x: x * (jnp.arange(x.shape[0]) % 3 != 0),
    "where": lambda x: jnp.where(x > 0, x, 0.5 * x[::-1]),
    "max_neighbour": lambda x: jnp.maximum(x, jnp.roll(x, 1)),
    "sum_bcast": lambda x: x + 0.01 * jnp.sum(x[:2]),
    "matvec_tridiag": lambda x: (
        jnp.diag(jnp.ones(x.shape[0] - 1), 1) - 2 * jnp.eye(x.shape[0]) + jnp.diag(jnp.ones(x.shape[0] - 1), -1)
    ) @ x,
    "gather_const": lambda x: x[(jnp.arange(x.shape[0]) * 3) % x.shape[0]],
    "scatter_add": lambda x: x.at[jnp.arange(x.shape[0]) // 2].add(x),
    "reshape_transpose": lambda x: x.reshape(2, -1).T.ravel(),
    "sort": lambda x: jnp.sort(x),
    "conv": lambda x: jnp.convolve(x, jnp.array([1.0, 0.0, -1.0]), mode="same"),
    "window_max": lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (2,), (1,), [(0, 1)]),
    "fori": lambda x: lax.fori_loop(0, 2, lambda i, z: z + 0.5 * jnp.roll(z, 1), x),
    "scan": lambda x: lax.scan(lambda c, xi: (0.5 * c + xi, c * xi), 0.0, x)[1],
    "cond": lambda x: lax.cond(x[0] > 0, lambda y: y * 2, lambda y: jnp.roll(y, 1), x),
    "dyn_slice_update": lambda x: lax.dynamic_update_slice(x, x[:2] ** 2, (2,)),
    "jit": jax.jit(lambda x: jnp.tanh(x) * x[::-1]),
    "stop_gradient": lambda x: x + lax.stop_gradient(x[::-1]),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([4, 6, 8]),
    steps=st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_random_chains_are_sound(n, steps, seed):
    def f(x):
        for s in steps:
            x = STEPS[s](x)
        return x

    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=n) for _ in range(2)]
    pat = jacobian_sparsity(f, xs[0]).to_dense()
    nz = observed(f, xs)
    assert not (nz & ~pat).any(), f"unsound for chain {steps}"
