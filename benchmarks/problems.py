"""The problem registry every benchmark suite draws from (and the solver tests too).

* `PROBLEMS`, `OdeProblem`: stiffasd's own problems (`stiffasd.problems`), right-hand sides
  ``rhs(t, y, *args)`` written the way users write them; `make(name, size)` builds one.
* Detection-only functions ``f(x)``: `squared_differences` (a bidiagonal (n - 1) x n pattern) and
  `heat_3d` (the 7-point stencil on an N^3 grid).
* Scalar functions for Hessians: `rosenbrock` (tridiagonal Hessian) and `grid_energy` (a 2D
  Ginzburg-Landau energy, 5-point stencil Hessian).
* diffrax-shaped problems ``rhs(t, y, args)``: `brusselator_field` (the 2D Brusselator with state
  shape (N, N, 2)), `robertson`, `hires`, `orego` (`TESTSET`: the stiff IVP test set's three,
  with its reference values) and `heat_reaction_1d`.
* Sharding: `grid_rhs` (a grid-first Brusselator to split) and `ensemble_problem` (16 solves).
* JAX-free analytic problems with sparse Jacobians whose CSC index arrays are cached and shared by
  every call (what ``stiffasd.jac`` returns): `Brusselator2D`, `Robertson`, `DiffusionReaction1D`
  (built on `FixedPatternJac`), so that the scipy-side linear algebra can be measured and tested
  without the JAX pipeline. Each exposes ``rhs(t, y)``, ``y0``, ``t_span``, ``sparsity`` and
  ``jac(t, y) -> csc_matrix``.
"""

from __future__ import annotations

import inspect

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from stiffasd.problems import PROBLEMS, OdeProblem

__all__ = [
    "PROBLEMS", "OdeProblem", "make", "squared_differences", "heat_3d", "rosenbrock",
    "grid_energy", "brusselator_field", "robertson", "hires", "orego", "TESTSET", "grid_rhs",
    "ensemble_problem", "heat_reaction_1d", "FixedPatternJac",
    "Brusselator2D", "Robertson", "DiffusionReaction1D",
]  # fmt: skip


def make(name: str, size: int, **kwargs) -> OdeProblem:
    """``PROBLEMS[name]`` at ``size``, given to its first (size) parameter."""
    key = next(iter(inspect.signature(PROBLEMS[name]).parameters))
    return PROBLEMS[name](**{key: size}, **kwargs)


# ------------------------------------------------------------------- detection-only functions
def squared_differences(x):
    """f(x) = (x[1:] - x[:-1])**2: a bidiagonal (n-1) x n pattern."""
    return (x[1:] - x[:-1]) ** 2


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


def rosenbrock(x):
    """The chained Rosenbrock function: a tridiagonal Hessian."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def grid_energy(u):
    """A Ginzburg-Landau energy on an N x N grid (``u`` flat, N^2 values): 5-point Hessian."""
    N = int(round(np.sqrt(u.size)))
    U = u.reshape(N, N)
    dx = U[1:, :] - U[:-1, :]
    dy = U[:, 1:] - U[:, :-1]
    return 0.5 * jnp.sum(dx**2) + 0.5 * jnp.sum(dy**2) + 0.25 * jnp.sum((U**2 - 1.0) ** 2)


# ----------------------------------------------------------------------- diffrax-shaped problems
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


def robertson(t, y, args):
    """Robertson's kinetics; ``args = (k1, k2, k3)``, usually (0.04, 3e7, 1e4)."""
    k1, k2, k3 = args
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack([-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2**2 - k3 * y2 * y3, k2 * y2**2])


def hires(t, y, args):
    """HIRES (8 species; Schäfer 1975), as in the IVP test set."""
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    r = 280.0 * y6 * y8
    return jnp.stack(
        [
            -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007, 1.71 * y1 - 8.75 * y2,
            -10.03 * y3 + 0.43 * y4 + 0.035 * y5, 8.32 * y2 + 1.71 * y3 - 1.12 * y4,
            -1.745 * y5 + 0.43 * y6 + 0.43 * y7, -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
            r - 1.81 * y7, -r + 1.81 * y7,
        ]
    )  # fmt: skip


def orego(t, y, args):
    """OREGO (the Oregonator, 3 species), as in the IVP test set."""
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack(
        [
            77.27 * (y2 + y1 * (1.0 - 8.375e-6 * y1 - y2)),
            (y3 - (1.0 + y1) * y2) / 77.27, 0.161 * (y1 - y3),
        ]
    )  # fmt: skip


#: Stiff problems of the IVP test set (Mazzia & Magherini, *Test Set for IVP Solvers*, release
#: 2.4, 2008): name -> (rhs, args, y0, t1, dt0, the test set's reference at t1, atol / rtol,
#: error floor: components below it are measured absolutely).
TESTSET = {
    "hires": (
        hires, None, [1.0, 0, 0, 0, 0, 0, 0, 0.0057], 321.8122, 1e-4,
        [7.371312573325668e-4, 1.442485726316185e-4, 5.888729740967575e-5, 1.175651343283149e-3,
         2.386356198831331e-3, 6.238968252742796e-3, 2.849998395185769e-3, 2.850001604814231e-3],
        1e-4, 0.0,
    ),
    "rober": (
        robertson, (0.04, 3e7, 1e4), [1.0, 0.0, 0.0], 1e11, 1e-6,
        [2.083340149701255e-8, 8.333360770334713e-14, 9.999999791665050e-1], 1e-4, 1e-10,
    ),
    "orego": (
        orego, None, [1.0, 2.0, 3.0], 360.0, 1e-4,
        [1.000814870318523, 1.228178521549917e3, 1.320554942846706e2], 1.0, 0.0,
    ),
}  # fmt: skip


def grid_rhs(N: int):
    """The 2D Brusselator with its state laid out ``(N, N, 2)``, as ``rhs(y)`` (forcing on), and
    a state with every reaction term active: the sharded-Jacobian problem."""
    prob = PROBLEMS["brusselator_2d"](N, layout="grid")
    (p,) = prob.args
    y = prob.y0 + np.random.default_rng(N).uniform(0.1, 1.0, prob.y0.shape)
    return (lambda y: prob.rhs(2.0, y, p)), y


def ensemble_problem(t1: float = 1.0, N: int = 16):
    """16 Brusselator solves (A from 3.0 to 3.8) with Kvaerno5 and stiffasd's sparse Newton
    iterations (GMRES, pure JAX): ``solve_one(p) -> (y(t1), number of steps)`` and the
    ``(16, 3)`` parameter sets."""
    import diffrax

    import stiffasd.diffrax as sdx

    prob = PROBLEMS["brusselator_2d"](N)
    params = np.tile(np.asarray(prob.args[0]), (16, 1))
    params[:, 0] = np.linspace(3.0, 3.8, 16)
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres")
    ctrl = diffrax.PIDController(rtol=1e-6, atol=1e-8)

    def solve_one(p):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(prob.rhs), solver, 0.0, t1, 1e-3, jnp.asarray(prob.y0), args=p,
            stepsize_controller=ctrl, max_steps=10_000,
        )  # fmt: skip
        return sol.ys[-1], sol.stats["num_steps"]

    return solve_one, params


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
