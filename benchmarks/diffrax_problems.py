"""Stiff test problems for the diffrax tests and benchmarks (JAX right-hand sides f(t, y, args)).

* `brusselator_2d`: the 2D Brusselator reaction-diffusion system on an N-by-N periodic grid with
  the localized forcing of Hairer & Wanner (Solving ODEs II, IV.10) as used in the SciML
  "large stiff equations" tutorial: alpha = 10, A = 3.4, B = 1, 5-point Laplacian, state
  shape (N, N, 2) (species last), t in [0, 11.5].
* `robertson`: Robertson's chemical kinetics (Hairer & Wanner II, IV.1), 3 species.
* `heat_reaction_1d`: 1D diffusion with a cubic reaction (Allen--Cahn / Nagumo type) and
  Dirichlet ends, parameters ``(D, r)`` passed through ``args``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def brusselator_2d(N: int, alpha: float = 10.0, A: float = 3.4, B: float = 1.0):
    """Return ``(rhs, y0)`` for the N-by-N Brusselator; ``y0`` has shape (N, N, 2)."""
    xyd = np.linspace(0.0, 1.0, N)
    X, Y = np.meshgrid(xyd, xyd, indexing="ij")
    # forcing region: a disc of radius 0.1 around (0.3, 0.6), switched on at t = 1.1
    disc = jnp.asarray(((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.1**2, dtype=float)

    def rhs(t, y, args):
        u, v = y[..., 0], y[..., 1]

        def lap(w):
            return (
                jnp.roll(w, 1, 0)
                + jnp.roll(w, -1, 0)
                + jnp.roll(w, 1, 1)
                + jnp.roll(w, -1, 1)
                - 4.0 * w
            )

        forcing = jnp.where(t >= 1.1, 5.0, 0.0) * disc
        uuv = u * u * v
        du = alpha * lap(u) + B + uuv - (A + 1.0) * u + forcing
        dv = alpha * lap(v) + A * u - uuv
        return jnp.stack([du, dv], axis=-1)

    u0 = 22.0 * Y * (1.0 - Y) ** 1.5
    v0 = 27.0 * X * (1.0 - X) ** (1.0 / 3.0)
    y0 = jnp.asarray(np.stack([u0, v0], axis=-1))
    return rhs, y0


def robertson(t, y, args):
    """Robertson's kinetics; ``args = (k1, k2, k3)``, usually (0.04, 3e7, 1e4)."""
    k1, k2, k3 = args
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack([-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2**2 - k3 * y2 * y3, k2 * y2**2])


def heat_reaction_1d(n: int):
    """Return ``(rhs, y0)``: u_t = D u_xx + r u (1 - u)(u - 0.3), u = 0 at both ends."""
    h = 1.0 / (n + 1)
    x = np.linspace(h, 1.0 - h, n)

    def rhs(t, u, args):
        D, r = args
        padded = jnp.pad(u, 1)
        uxx = (padded[2:] - 2.0 * u + padded[:-2]) / h**2
        return D * uxx + r * u * (1.0 - u) * (u - 0.3)

    y0 = jnp.asarray(np.exp(-80.0 * (x - 0.5) ** 2))
    return rhs, y0
