"""Right-hand sides used by the detection benchmarks (importable by scripts in benchmarks/)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def squared_differences(x):
    """f(x) = (x[1:] - x[:-1])**2: a bidiagonal (n-1) x n pattern."""
    return (x[1:] - x[:-1]) ** 2


def laplacian_2d_periodic(u):
    """5-point periodic Laplacian (unit spacing) on an N x N grid via jnp.roll."""
    return jnp.roll(u, 1, 0) + jnp.roll(u, -1, 0) + jnp.roll(u, 1, 1) + jnp.roll(u, -1, 1) - 4.0 * u


def brusselator_2d(N: int):
    """2D Brusselator right-hand side y -> dy/dt on an N x N periodic grid (two species).

    The standard stiff benchmark (alpha = 10, A = 3.4, B = 1) with its localized forcing term.
    """
    xs = np.linspace(0.0, 1.0, N)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    alpha, A, B = 10.0, 3.4, 1.0
    dx = 1.0 / (N - 1)
    forcing_mask = (((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.1**2).astype(np.float64)

    def rhs(y, t=1.2):
        u = y[: N * N].reshape(N, N)
        v = y[N * N :].reshape(N, N)
        f = jnp.where(t >= 1.1, 5.0, 0.0) * forcing_mask
        du = alpha / dx**2 * laplacian_2d_periodic(u) + B + u**2 * v - (A + 1.0) * u + f
        dv = alpha / dx**2 * laplacian_2d_periodic(v) + A * u - u**2 * v
        return jnp.concatenate([du.ravel(), dv.ravel()])

    return rhs


def heat_3d(N: int):
    """3D heat equation, 7-point stencil, zero Dirichlet boundary via padding, N^3 unknowns."""

    def rhs(y):
        u = y.reshape(N, N, N)
        p = jnp.pad(u, 1)
        lap = (
            p[2:, 1:-1, 1:-1]
            + p[:-2, 1:-1, 1:-1]
            + p[1:-1, 2:, 1:-1]
            + p[1:-1, :-2, 1:-1]
            + p[1:-1, 1:-1, 2:]
            + p[1:-1, 1:-1, :-2]
            - 6.0 * u
        )
        return lap.ravel()

    return rhs
