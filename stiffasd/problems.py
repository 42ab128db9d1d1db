"""Standard stiff test problems written in plain jax.numpy, the way users write them.

Each constructor returns an [`OdeProblem`][stiffasd.problems.OdeProblem]: the right-hand side
``rhs(t, y, p)``, the initial state, the time span and the parameters, ready for
``solve_ivp(problem.rhs, problem.t_span, problem.y0, args=problem.args, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["OdeProblem", "brusselator_2d"]


@dataclass(frozen=True)
class OdeProblem:
    """A stiff initial value problem ``y' = rhs(t, y, *args)``, ``y(t_span[0]) = y0``."""

    name: str
    rhs: Callable[..., Any]
    y0: np.ndarray
    t_span: tuple[float, float]
    args: tuple = ()
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.y0.size)

    def numpy_rhs(self) -> Callable[..., np.ndarray]:
        """The right-hand side jit-compiled once, returning NumPy arrays (what scipy wants)."""
        f = jax.jit(self.rhs)

        def fun(t, y, *args):
            return np.asarray(f(t, y, *args))

        return fun


def _laplacian_periodic(w: jax.Array) -> jax.Array:
    """5-point Laplacian stencil (unscaled) on a periodic grid."""
    return (
        jnp.roll(w, 1, axis=0)
        + jnp.roll(w, -1, axis=0)
        + jnp.roll(w, 1, axis=1)
        + jnp.roll(w, -1, axis=1)
        - 4.0 * w
    )


def brusselator_2d(N: int = 32, *, alpha: float = 10.0, A: float = 3.4, B: float = 1.0,
                   t_span: tuple[float, float] = (0.0, 11.5)) -> OdeProblem:
    """The 2D Brusselator reaction-diffusion system on an ``N``-by-``N`` periodic grid.

    .. math::
        u_t = B + u^2 v - (A + 1) u + \\alpha \\Delta u + f(x, y, t), \\qquad
        v_t = A u - u^2 v + \\alpha \\Delta v

    on :math:`[0, 1]^2` with the 5-point Laplacian (grid spacing :math:`1 / (N - 1)`), the
    diffusion coefficient scaled by the grid (``alpha / dx**2``), and the localized forcing
    :math:`f = 5` inside the disc of radius 0.1 around (0.3, 0.6) for :math:`t \\ge 1.1`.
    Initial state :math:`u = 22 (y (1 - y))^{3/2}`, :math:`v = 27 (x (1 - x))^{3/2}`. The state
    is ``[u.ravel(), v.ravel()]`` (n = 2 N^2). This is the standard stiff PDE benchmark of
    Hairer & Wanner, *Solving ODEs II*, and of the SciML benchmarks.
    """
    xs = np.linspace(0.0, 1.0, N)
    dx = xs[1] - xs[0]
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    disc = ((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.1**2
    u0 = 22.0 * (Y * (1.0 - Y)) ** 1.5
    v0 = 27.0 * (X * (1.0 - X)) ** 1.5
    y0 = np.concatenate([u0.ravel(), v0.ravel()])
    p = np.array([A, B, alpha / dx**2])

    def rhs(t, y, p):
        a, b, diff = p[0], p[1], p[2]
        u = y[: N * N].reshape(N, N)
        v = y[N * N :].reshape(N, N)
        forcing = jnp.where(disc & (t >= 1.1), 5.0, 0.0)
        uuv = u * u * v
        du = b + uuv - (a + 1.0) * u + diff * _laplacian_periodic(u) + forcing
        dv = a * u - uuv + diff * _laplacian_periodic(v)
        return jnp.concatenate([du.ravel(), dv.ravel()])

    return OdeProblem(f"brusselator_2d(N={N})", rhs, y0, t_span, (p,), {"N": N})
