"""The problem registry every benchmark suite draws from (and the solver tests too).

* `PROBLEMS`, `OdeProblem`: stiffasd's own problems (`stiffasd.problems`), right-hand sides
  ``rhs(t, y, *args)`` written the way users write them; `make(name, size)` builds one.
* Detection-only functions ``f(x)``: `squared_differences` (a bidiagonal (n - 1) x n pattern) and
  `heat_3d` (the 7-point stencil on an N^3 grid).
* Scalar functions for Hessians: `rosenbrock` (tridiagonal Hessian) and `grid_energy` (a 2D
  Ginzburg-Landau energy, 5-point stencil Hessian).
* diffrax-shaped ``rhs(t, y, args)``: `robertson`, `hires`, `orego` (`TESTSET`: the stiff IVP
  test set's three, with its reference values).
* Sharding: `grid_rhs` (a grid-first Brusselator to split) and `ensemble_problem` (a sweep of
  Brusselator solves).
"""

from __future__ import annotations

import inspect

import jax.numpy as jnp
import numpy as np

from stiffasd.problems import PROBLEMS, OdeProblem

__all__ = [
    "PROBLEMS", "OdeProblem", "make", "squared_differences", "heat_3d", "rosenbrock",
    "grid_energy", "robertson", "hires", "orego", "TESTSET", "grid_rhs", "ensemble_problem",
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


def ensemble_problem(t1=1.0, N=16, members=16, linear_solver="gmres", rtol=1e-6, atol=1e-8):
    """``members`` Brusselator solves (A from 3.0 to 3.8) with Kvaerno5 and stiffasd's sparse
    Newton iterations (by default GMRES, pure JAX): ``solve_one(p) -> (y(t1), number of steps)``
    and the ``(members, 3)`` parameter sets."""
    import diffrax

    import stiffasd.diffrax as sdx

    prob = PROBLEMS["brusselator_2d"](N)
    params = np.tile(np.asarray(prob.args[0]), (members, 1))
    params[:, 0] = np.linspace(3.0, 3.8, members)
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver=linear_solver)
    ctrl = diffrax.PIDController(rtol=rtol, atol=atol)

    def solve_one(p):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(prob.rhs), solver, 0.0, t1, 1e-3, jnp.asarray(prob.y0), args=p,
            stepsize_controller=ctrl, max_steps=10_000,
        )  # fmt: skip
        return sol.ys[-1], sol.stats["num_steps"]

    return solve_one, params
