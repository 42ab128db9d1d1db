"""Gradients through diffrax solves with stiffasd.diffrax.sparse: against diffrax's dense default
(same solver, no wrapper) and central finite differences, and free of dense n-by-n arrays."""

from __future__ import annotations

import re

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
import pytest

import stiffasd.diffrax as sdx
import stiffasd.lineax as slx
from benchmarks.diffrax_problems import heat_reaction_1d

N = 16
RHS, Y0 = heat_reaction_1d(N)
ARGS = (jnp.asarray(0.05), jnp.asarray(5.0))  # (D, r)
TS = jnp.array([0.05, 0.1])


def loss(args, y0, solver, rtol=1e-8, rhs=RHS, controller=None):
    """A functional of the solution at two times (interpolated saves included)."""
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        solver,
        0.0,
        0.1,
        1e-3,
        y0,
        args=args,
        stepsize_controller=controller or diffrax.PIDController(rtol=rtol, atol=1e-2 * rtol),
        saveat=diffrax.SaveAt(ts=TS),
        max_steps=4096,
    )
    weights = jnp.linspace(1.0, 2.0, sol.ys.shape[-1])
    return jnp.sum(weights * sol.ys[-1] ** 2) + jnp.sum(jnp.sin(sol.ys[0]))


grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=(2, 3, 4, 5))
value = jax.jit(loss, static_argnums=(2, 3, 4, 5))


def rel(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y))) for x, y in pairs)


@pytest.fixture(scope="module")
def dense_grad():
    return grad(ARGS, Y0, diffrax.Kvaerno5(), 1e-8)


@pytest.mark.parametrize("iteration", ["converge", "diffrax"])
def test_gradients_match_diffrax_dense_default(dense_grad, iteration):
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver="jax", iteration=iteration)
    g = grad(ARGS, Y0, solver, 1e-8)
    assert rel(g, dense_grad) < 1e-9


def test_gradients_with_host_lu_forward(dense_grad):
    # the forward chord solves go through SuperLU (host callbacks); the gradient's solves
    # are SparseLU's all the same
    g = grad(ARGS, Y0, sdx.sparse(diffrax.Kvaerno5(), linear_solver="direct"), 1e-8)
    assert rel(g, dense_grad) < 1e-9


def test_gradients_match_central_differences():
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver="jax")
    g_args, g_y0 = grad(ARGS, Y0, solver, 1e-10)
    h = 1e-5
    for k in range(2):  # each parameter, relative steps
        up = tuple(a * (1 + h) if i == k else a for i, a in enumerate(ARGS))
        down = tuple(a * (1 - h) if i == k else a for i, a in enumerate(ARGS))
        fd = (value(up, Y0, solver, 1e-10) - value(down, Y0, solver, 1e-10)) / (2 * h * ARGS[k])
        assert abs(fd - g_args[k]) <= 1e-6 * abs(g_args[k]), (k, fd, g_args[k])
    v = jnp.sin(jnp.arange(N) + 0.5)  # a direction in the initial state
    fd = (value(ARGS, Y0 + h * v, solver, 1e-10) - value(ARGS, Y0 - h * v, solver, 1e-10)) / (2 * h)
    assert abs(fd - g_y0 @ v) <= 1e-6 * abs(fd)


def test_implicit_euler_gradients_match_dense():
    # ImplicitEuler's root find goes through optimistix's root_find like the Runge-Kutta stages
    # (fixed steps: the finders' tolerances are their own, tight enough for equal roots)
    controller = diffrax.ConstantStepSize()
    dense = diffrax.ImplicitEuler(root_finder=optx.Chord(rtol=1e-12, atol=1e-14))
    sparse = sdx.sparse(dense, linear_solver="jax")
    g = grad(ARGS, Y0, sparse, 1e-8, RHS, controller)
    ref = grad(ARGS, Y0, dense, 1e-8, RHS, controller)
    assert rel(g, ref) < 1e-8


def test_vmapped_gradients_over_parameters(dense_grad):
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver="jax")
    ds = jnp.array([0.05, 0.08])
    g = jax.vmap(lambda d: grad((d, ARGS[1]), Y0, solver, 1e-8))(ds)
    ref = grad((ds[1], ARGS[1]), Y0, diffrax.Kvaerno5(), 1e-8)
    assert rel(jax.tree.map(lambda a: a[0], g), dense_grad) < 1e-9
    assert rel(jax.tree.map(lambda a: a[1], g), ref) < 1e-9


# ------------------------------------------------------------------------- no dense arrays
BIG = 301  # no front size, color count or step count of the problem below reaches it


def _square_shapes(jaxpr, n, found):
    for eqn in jaxpr.eqns:
        found += [
            v.aval.shape for v in eqn.outvars if list(getattr(v.aval, "shape", ())).count(n) >= 2
        ]
        for p in eqn.params.values():
            for sub in p if isinstance(p, list | tuple) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _square_shapes(inner, n, found)
    return found


def square_arrays(fn, *args, lower=True):
    """Arrays with two axes of length BIG in ``fn``'s program: its jaxpr, then (lineax's solve
    primitive is expanded only on lowering) its StableHLO."""
    found = _square_shapes(jax.make_jaxpr(fn)(*args).jaxpr, BIG, [])
    if found or not lower:
        return found
    text = jax.jit(fn).lower(*args).as_text()
    return [
        t
        for t in set(re.findall(r"tensor<([0-9x]+)x[a-z]", text))
        if t.split("x").count(str(BIG)) >= 2
    ]


@pytest.fixture(scope="module")
def big():
    rhs, y0 = heat_reaction_1d(BIG)
    return rhs, y0


def big_grad(solver, rhs):
    return jax.grad(lambda args, y0: loss(args, y0, solver, 1e-6, rhs), argnums=(0, 1))


def test_gradient_program_has_no_dense_matrix(big):
    rhs, y0 = big
    sparse = sdx.sparse(diffrax.Kvaerno5(), linear_solver="jax")
    assert square_arrays(big_grad(sparse, rhs), ARGS, y0) == []
    # the scan can fail: diffrax's dense default, and the sparse finder with optimistix's
    # dense adjoint solve put back, both hold (n, n) arrays
    assert square_arrays(big_grad(diffrax.Kvaerno5(), rhs), ARGS, y0, lower=False) != []
    dense_adjoint = eqx.tree_at(
        lambda s: s.root_finder.adjoint_linear_solver,
        sparse,
        lx.AutoLinearSolver(well_posed=None),
        is_leaf=lambda x: x is None,
    )
    assert square_arrays(big_grad(dense_adjoint, rhs), ARGS, y0, lower=False) != []


def test_adjoint_routing_leaves_other_root_finds_alone():
    n = BIG

    def f(y, s):
        return jnp.pad(y, 1)[2:] - 2.0 * y + jnp.pad(y, 1)[:-2] - jnp.sinh(y) + s

    def root_loss(s):
        return jnp.sum(optx.root_find(f, optx.Newton(1e-8, 1e-8), jnp.zeros(n), s).value ** 2)

    assert optx.ImplicitAdjoint.apply.__stiffasd_original__ is not None  # the wrapper is in
    # optimistix's own finder under its default adjoint: still optimistix's dense LU
    assert square_arrays(jax.grad(root_loss), jnp.full(n, 0.1), lower=False) != []
    # a user's explicit adjoint solver is respected for SparseVeryChord too
    finder = sdx.sparse(diffrax.Kvaerno5()).root_finder
    assert isinstance(sdx._adjoint_linear_solver(finder), slx.SparseLU)
    custom = eqx.tree_at(
        lambda s: s.adjoint_linear_solver, finder, lx.LU(), is_leaf=lambda x: x is None
    )
    assert isinstance(sdx._adjoint_linear_solver(custom), lx.LU)
