"""Problems the solver tests share (not benchmarks).

* diffrax-shaped ``rhs(t, y, args)``: `brusselator_field` (the 2D Brusselator with state shape
  (N, N, 2)) and `heat_reaction_1d`;
* JAX-free analytic problems with sparse Jacobians whose CSC index arrays are cached and shared
  by every call (what ``stiffasd.jac`` returns): `Brusselator2D`, `Robertson`,
  `DiffusionReaction1D` (built on `FixedPatternJac`), so that the scipy-side linear algebra can
  be tested without the JAX pipeline. Each exposes ``rhs(t, y)``, ``y0``, ``t_span``,
  ``sparsity`` and ``jac(t, y) -> csc_matrix``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp


def brusselator_field(N: int, alpha: float = 10.0, A: float = 3.4, B: float = 1.0):
    """Return ``(rhs, y0)`` for the N-by-N Brusselator; ``y0`` has shape (N, N, 2) (species last).

    The 2D Brusselator on a periodic grid with the localized forcing of Hairer & Wanner (Solving
    ODEs II, IV.10): alpha = 10 (not scaled by the grid spacing), A = 3.4, B = 1, 5-point
    Laplacian, t in [0, 11.5].
    """
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


def heat_reaction_1d(n: int):
    """1D diffusion with a cubic (Nagumo-type) reaction, ``args = (D, r)``; returns ``(rhs, y0)``.

    u_t = D u_xx + r u (1 - u)(u - 0.3), u = 0 at both ends, n interior points.
    """
    h = 1.0 / (n + 1)
    x = np.linspace(h, 1.0 - h, n)

    def rhs(t, u, args):
        D, r = args
        padded = jnp.pad(u, 1)
        uxx = (padded[2:] - 2.0 * u + padded[:-2]) / h**2
        return D * uxx + r * u * (1.0 - u) * (u - 0.3)

    y0 = jnp.asarray(np.exp(-80.0 * (x - 0.5) ** 2))
    return rhs, y0


# ----------------------------------------------------------------- JAX-free analytic problems
class FixedPatternJac:
    """A sparse Jacobian callable whose CSC index arrays are cached and shared by every call.

    Built from a function returning any scipy sparse matrix whose nonzeros lie inside ``pattern``:
    each call maps those values into the pattern's data order (one vectorized search per call, no
    Python loop), like ``stiffasd.jac`` does with its decompression gather.
    """

    def __init__(self, make, pattern: sp.csc_matrix):
        self._make = make
        p = sp.csc_matrix(pattern, dtype=np.float64)
        p.sum_duplicates()
        p.sort_indices()
        self.indptr = p.indptr.astype(np.int32)
        self.indices = p.indices.astype(np.int32)
        self.shape = p.shape
        cols = np.repeat(np.arange(p.shape[1]), np.diff(self.indptr))
        self._keys = cols.astype(np.int64) * p.shape[0] + self.indices
        self.sparsity = sp.csc_matrix(
            (np.ones(self.indices.size), self.indices, self.indptr), shape=self.shape
        )

    def data(self, t, y):
        """The Jacobian's values in the pattern's CSC order."""
        m = sp.coo_matrix(self._make(t, y))
        keys = m.col.astype(np.int64) * self.shape[0] + m.row
        pos = np.searchsorted(self._keys, keys)
        if np.any(pos >= self._keys.size) or np.any(
            self._keys[np.minimum(pos, self._keys.size - 1)] != keys
        ):
            raise ValueError("FixedPatternJac: an entry falls outside the fixed pattern.")
        out = np.zeros(self.indices.size)
        np.add.at(out, pos, m.data)
        return out

    def __call__(self, t, y):
        return sp.csc_matrix((self.data(t, y), self.indices, self.indptr), shape=self.shape)


def _periodic_laplacian_1d(n: int) -> sp.csr_matrix:
    e = np.ones(n)
    L = sp.diags([e[:-1], -2 * e, e[:-1]], [-1, 0, 1], shape=(n, n), format="lil")
    L[0, n - 1] = 1.0
    L[n - 1, 0] = 1.0
    return L.tocsr()


class Brusselator2D:
    """The 2D Brusselator on an N-by-N periodic grid of [0, 1]^2 (n = 2 N^2 unknowns).

    u' = B + u^2 v - (A + 1) u + alpha/dx^2 * Lap(u) + f(x, y, t),
    v' = A u - u^2 v + alpha/dx^2 * Lap(v),
    with A = 3.4, B = 1, alpha = 10, dx = 1/(N - 1), 5-point periodic Laplacian and the forcing
    f = 5 on the disc (x - 0.3)^2 + (y - 0.6)^2 <= 0.1^2 for t >= 1.1. The state is the two fields
    stacked: y = [u.ravel(), v.ravel()].
    """

    A = 3.4
    B = 1.0
    alpha = 10.0

    def __init__(self, N: int = 32, t_end: float = 11.5):
        self.N = N
        self.n = 2 * N * N
        x = np.linspace(0.0, 1.0, N)
        self.dx = x[1] - x[0]
        X, Y = np.meshgrid(x, x, indexing="ij")
        self.disc = (((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.01).ravel().astype(np.float64)
        L1 = _periodic_laplacian_1d(N)
        eye = sp.identity(N, format="csr")
        self.lap = (sp.kron(L1, eye) + sp.kron(eye, L1)).tocsr() * (self.alpha / self.dx**2)
        u0 = 22.0 * (Y * (1.0 - Y)) ** 1.5
        v0 = 27.0 * (X * (1.0 - X)) ** 1.5
        self.y0 = np.concatenate([u0.ravel(), v0.ravel()])
        self.t_span = (0.0, t_end)
        m = N * N
        self._lap2 = sp.block_diag([self.lap, self.lap], format="csc")
        eye_m = sp.identity(m, format="csc")
        pattern = (abs(self._lap2) + sp.bmat([[eye_m, eye_m], [eye_m, eye_m]])).tocsc()
        self.jac = FixedPatternJac(self._jac_matrix, pattern)
        self.sparsity = self.jac.sparsity

    def rhs(self, t, y):
        m = self.N * self.N
        u, v = y[:m], y[m:]
        u2v = u * u * v
        f = 5.0 * self.disc if t >= 1.1 else 0.0
        du = self.B + u2v - (self.A + 1.0) * u + self.lap @ u + f
        dv = self.A * u - u2v + self.lap @ v
        return np.concatenate([du, dv])

    def _jac_matrix(self, t, y):
        m = self.N * self.N
        u, v = y[:m], y[m:]
        return self._lap2 + sp.bmat(
            [
                [sp.diags(2 * u * v - (self.A + 1.0)), sp.diags(u * u)],
                [sp.diags(self.A - 2 * u * v), sp.diags(-u * u)],
            ]
        )


class Robertson:
    """Robertson's chemical kinetics (3 species), the classic stiff test (Hairer-Wanner II)."""

    def __init__(self, t_end: float = 1e5):
        self.n = 3
        self.y0 = np.array([1.0, 0.0, 0.0])
        self.t_span = (0.0, t_end)
        self.sparsity = sp.csc_matrix(np.array([[1, 1, 1], [1, 1, 1], [0, 1, 0]], dtype=float))
        self.jac = FixedPatternJac(self._jac_matrix, self.sparsity)

    def rhs(self, t, y):
        y1, y2, y3 = y
        return np.array(
            [
                -0.04 * y1 + 1e4 * y2 * y3,
                0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2 * y2,
                3e7 * y2 * y2,
            ]
        )

    def _jac_matrix(self, t, y):
        y1, y2, y3 = y
        return sp.csc_matrix(
            np.array(
                [
                    [-0.04, 1e4 * y3, 1e4 * y2],
                    [0.04, -1e4 * y3 - 6e7 * y2, -1e4 * y2],
                    [0.0, 6e7 * y2, 0.0],
                ]
            )
        )


class DiffusionReaction1D:
    """u_t = D u_xx - k u^2 + s(x) on (0, 1), homogeneous Dirichlet boundaries, n interior points.

    A tridiagonal (band 1) problem: the natural test for LSODA's banded Jacobian.
    """

    def __init__(self, n: int = 200, D: float = 1.0, k: float = 5.0, t_end: float = 1.0):
        self.n = n
        dx = 1.0 / (n + 1)
        self.x = np.linspace(dx, 1.0 - dx, n)
        e = np.ones(n)
        self.lap = sp.diags([e[:-1], -2 * e, e[:-1]], [-1, 0, 1], format="csc") * (D / dx**2)
        self.k = k
        self.source = 10.0 * np.exp(-100.0 * (self.x - 0.5) ** 2)
        self.y0 = np.sin(np.pi * self.x)
        self.t_span = (0.0, t_end)
        self.sparsity = (abs(self.lap) + sp.identity(n)).tocsc()
        self.jac = FixedPatternJac(self._jac_matrix, self.sparsity)

    def rhs(self, t, y):
        return self.lap @ y - self.k * y * y + self.source

    def _jac_matrix(self, t, y):
        return self.lap + sp.diags(-2.0 * self.k * y)
