"""The problems of the sharding tests, shared by tests/test_sharding.py and the processes it
starts (tests/_sharding_worker.py); importing this module starts nothing."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from stiffasd.problems import brusselator_2d


def grid_rhs(N: int):
    """The 2D Brusselator with its state laid out ``(N, N, 2)``, as ``rhs(y)``, and a state
    with every reaction term active."""
    prob = brusselator_2d(N, layout="grid")
    (p,) = prob.args

    def rhs(y):
        return prob.rhs(0.0, y, p)

    y = prob.y0 + np.random.default_rng(N).uniform(0.1, 1.0, prob.y0.shape)
    return rhs, y


def ensemble_problem(t1: float = 0.5):
    """16 Brusselator N = 16 solves (A from 3.0 to 3.8) with Kvaerno5 and stiffasd's sparse
    Newton iterations (GMRES, pure JAX): ``solve_one(p) -> (y(t1), number of steps)`` and the
    ``(16, 3)`` parameter sets."""
    import diffrax

    import stiffasd.diffrax as sdx

    prob = brusselator_2d(16)
    params = np.tile(np.asarray(prob.args[0]), (16, 1))
    params[:, 0] = np.linspace(3.0, 3.8, 16)
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres")

    def solve_one(p):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(prob.rhs),
            solver,
            0.0,
            t1,
            1e-3,
            jnp.asarray(prob.y0),
            args=p,
            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
            max_steps=10_000,
        )
        return sol.ys[-1], sol.stats["num_steps"]

    return solve_one, params
