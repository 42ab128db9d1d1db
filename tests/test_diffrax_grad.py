"""Gradients through diffrax solves with stiffasd.diffrax.sparse: against diffrax's dense default
(same solver and adjoint, no wrapper) and central finite differences of the same sparse solve,
with each linear solver ("jax", "direct", the default "auto"), and free of dense n-by-n arrays.

The problem is the 2D Brusselator (`stiffasd.problems.brusselator_2d`, N = 4: n = 32, stiff:
the scaled diffusion alpha / dx^2 = 90 puts eigenvalues near -720), differentiated with respect
to its three parameters (A, B, alpha / dx^2) and its initial state. Each compiled gradient costs
15-25 s on a loaded 2-core machine, so the quick tests compile four programs between them and
the remaining variants are marked slow.
"""

from __future__ import annotations

import re
from functools import cache

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
from solver_problems import heat_reaction_1d

import stiffasd.diffrax as sdx
import stiffasd.lineax as slx
from stiffasd import SparsityPattern
from stiffasd.problems import brusselator_2d

PROBLEM = brusselator_2d(4)
P = jnp.asarray(PROBLEM.args[0])  # (A, B, alpha / dx^2)
Y0 = jnp.asarray(PROBLEM.y0)
T1 = 0.5
TS = jnp.array([0.25, T1])
RTOL = 1e-8


def brusselator(t, y, p):
    return PROBLEM.rhs(t, y, p)


def loss(p, y0, solver, rhs=brusselator, controller=None, adjoint=None, max_steps=4096, dt0=1e-3):
    """A functional of the solution at two times (an interpolated save included)."""
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        solver,
        0.0,
        T1,
        dt0,
        y0,
        args=p,
        stepsize_controller=controller or diffrax.PIDController(rtol=RTOL, atol=RTOL),
        saveat=diffrax.SaveAt(ts=TS),
        adjoint=adjoint or diffrax.RecursiveCheckpointAdjoint(),
        max_steps=max_steps,
    )
    weights = jnp.linspace(1.0, 2.0, sol.ys.shape[-1])
    return jnp.sum(weights * sol.ys[-1] ** 2) + jnp.sum(jnp.sin(sol.ys[0]))


# one compiled program per configuration and worker, shared between tests
@cache
def grad_of(solver, **kw):
    return jax.jit(jax.grad(lambda p, y0: loss(p, y0, solver, **kw), argnums=(0, 1)))


@cache
def value_of(solver, **kw):
    return jax.jit(lambda p, y0: loss(p, y0, solver, **kw))


def rel(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y))) for x, y in pairs)


DENSE = diffrax.Kvaerno5()
# iteration="diffrax" runs diffrax's own chord iteration and stopping test, so the step sequence
# is the dense default's and the gradients can be compared tightly
SPARSE_JAX = sdx.sparse(diffrax.Kvaerno5(), linear_solver="jax", iteration="diffrax")
SPARSE_DIRECT = sdx.sparse(diffrax.Kvaerno5(), linear_solver="direct")
SPARSE_AUTO = sdx.sparse(diffrax.Kvaerno5())

# Sparse vs dense with the same iteration: the step sequences are identical, so the two programs
# differ only in the rounding of the forward chord solves (sparse vs dense LU, ~1e-15 relative)
# and of the adjoint solves; the chord iterations contract those errors. Measured 5e-15; 1e-9
# leaves room for a chord stopping test tipping the other way in one stage (an error of the
# order of the root tolerance, 1e-2 * RTOL, in one stage value).
SAME_STEPS_RTOL = 1e-9


def fd_directions():
    """Each parameter (scaled by its size) and one direction in the initial state."""
    dirs = [(jnp.zeros(3).at[k].set(P[k]), jnp.zeros_like(Y0)) for k in range(3)]
    dirs.append((jnp.zeros(3), jnp.sin(jnp.arange(Y0.size) + 0.5)))
    return dirs


@cache
def frozen_steps() -> tuple[float, ...]:
    """The times the PID controller accepts on this problem (diffrax's dense default)."""
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(brusselator),
        diffrax.Kvaerno5(),
        0.0,
        T1,
        1e-3,
        Y0,
        args=P,
        stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=RTOL),
        saveat=diffrax.SaveAt(steps=True),
        max_steps=512,
    )
    ts = np.asarray(sol.ts)
    return (0.0, *ts[np.isfinite(ts)].tolist())


def check_central_differences(linear_solver, h=1e-5):
    """jax.grad of the sparse solve against central differences of the same sparse solve.

    The steps are frozen (`diffrax.StepTo` at the PID controller's accepted times): diffrax
    stops gradients through its step-size controller by design, so with adaptive steps the
    differences also see the steps move with the parameters (measured: up to 2e-4 relative on
    the diffusion coefficient), which the gradient deliberately leaves out. With frozen steps
    the discrete solution is smooth in the parameters up to the chord iterations' stopping
    tests (root tolerance 1e-10): truncation ~h^2 = 1e-10, noise ~1e-10 / h = 1e-5 at worst.
    Measured 1e-11 to 1.3e-8 (h = 1e-5); 1e-6 catches a wrong adjoint (a missing or
    transposed term is an O(1) error).
    """
    base = diffrax.Kvaerno5(root_finder=diffrax.VeryChord(rtol=1e-10, atol=1e-10))
    solver = sdx.sparse(base, linear_solver=linear_solver)
    kw = dict(controller=diffrax.StepTo(frozen_steps()), dt0=None)
    g = jax.jit(jax.grad(lambda p, y0: loss(p, y0, solver, **kw), argnums=(0, 1)))(P, Y0)
    value = jax.jit(lambda p, y0: loss(p, y0, solver, **kw))
    dirs = fd_directions()
    fd = [
        float(value(P + h * dp, Y0 + h * dy) - value(P - h * dp, Y0 - h * dy)) / (2 * h)
        for dp, dy in dirs
    ]
    grad_along = [float(g[0] @ dp + g[1] @ dy) for dp, dy in dirs]
    np.testing.assert_allclose(grad_along, fd, rtol=1e-6)


# ------------------------------------------------------------------------- values
def test_jax_lu_gradients_match_diffrax_dense_default():
    g = grad_of(SPARSE_JAX)(P, Y0)
    ref = grad_of(DENSE)(P, Y0)
    assert rel(g, ref) < SAME_STEPS_RTOL
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)


def test_host_lu_gradients_match_central_differences():
    # the forward chord solves are SuperLU's (jax.pure_callback, no derivative rule): the
    # root finds are differentiated by optimistix's implicit adjoint, never through the
    # callback, and the adjoint's solves are SparseLU's
    check_central_differences("direct")


@pytest.mark.slow
def test_default_auto_gradients_match_dense_default_and_differences():
    # "auto" picks JaxLU or the host LU by the machine's BLAS threads: both must work. Its
    # default iteration ("converge") takes other steps than diffrax's chord (fewer
    # rejections), so the comparison with the dense default is at the solve's accuracy
    # (global errors of RTOL = 1e-8; measured 1.6e-7 relative on the largest entry)
    g = grad_of(SPARSE_AUTO)(P, Y0)
    assert rel(g, grad_of(DENSE)(P, Y0)) < 1e-5
    check_central_differences("auto")


@pytest.mark.slow
@pytest.mark.parametrize("linear_solver", ["direct", "jax"])
def test_direct_adjoint_gradients_match_dense(linear_solver):
    # DirectAdjoint differentiates through diffrax's bounded while loop instead of
    # checkpointing; forward-mode as well as reverse-mode through it
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver=linear_solver, iteration="diffrax")
    kw = dict(adjoint=diffrax.DirectAdjoint(), max_steps=256)
    g = grad_of(solver, **kw)(P, Y0)
    assert rel(g, grad_of(DENSE, **kw)(P, Y0)) < SAME_STEPS_RTOL
    dp = jnp.array([1.0, -0.5, 0.3])
    tangent = jax.jvp(lambda p: value_of(solver, **kw)(p, Y0), (P,), (dp,))[1]
    assert abs(float(tangent) - float(g[0] @ dp)) <= SAME_STEPS_RTOL * float(
        jnp.abs(g[0]) @ jnp.abs(dp)
    )


@pytest.mark.slow
def test_implicit_euler_gradients_match_dense():
    # ImplicitEuler's root find goes through optimistix's root_find like the Runge-Kutta stages
    # (fixed steps: the finders' tolerances are their own, tight enough for equal roots)
    controller = diffrax.ConstantStepSize()
    dense = diffrax.ImplicitEuler(root_finder=optx.Chord(rtol=1e-12, atol=1e-12))
    sparse = sdx.sparse(dense, linear_solver="jax")
    g = grad_of(sparse, controller=controller)(P, Y0)
    ref = grad_of(dense, controller=controller)(P, Y0)
    assert rel(g, ref) < 1e-8


@pytest.mark.slow
def test_vmapped_gradients_over_parameters():
    ps = jnp.stack([P, P * jnp.array([1.0, 1.1, 0.9])])
    g = jax.vmap(lambda p: grad_of(SPARSE_JAX)(p, Y0))(ps)
    for k in range(2):
        ref = grad_of(DENSE)(ps[k], Y0)
        assert rel(jax.tree.map(lambda a, k=k: a[k], g), ref) < SAME_STEPS_RTOL


# ------------------------------------------------------------------------- no dense arrays
BIG = 301  # heat equation with a reaction term: tridiagonal, 3 colors, small fronts


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
    return rhs, y0, (jnp.asarray(0.05), jnp.asarray(5.0))


def big_grad(solver, rhs):
    kw = dict(rhs=rhs, controller=diffrax.PIDController(rtol=1e-6, atol=1e-8))
    return jax.grad(lambda args, y0: loss(args, y0, solver, **kw), argnums=(0, 1))


def test_gradient_program_has_no_dense_matrix(big):
    rhs, y0, args = big
    slx.clear_cache()
    sparse = sdx.sparse(diffrax.Kvaerno5(), linear_solver="jax")
    assert square_arrays(big_grad(sparse, rhs), args, y0) == []
    # No (n, n) array by accident: every factorization the adjoint prepared has fronts far
    # smaller than n (relaxed supernodes of the tridiagonal pattern: 18), and the stage
    # pattern is the tridiagonal one
    plans = [p.bound.plan for p in slx._cache._store.values()]
    assert plans and all(plan.stats["max_front"] < 32 for plan in plans)
    assert all(p.sj.pattern.nnz == 3 * BIG - 2 for p in slx._cache._store.values())
    # the scan can fail: diffrax's dense default holds (n, n) arrays
    assert square_arrays(big_grad(diffrax.Kvaerno5(), rhs), args, y0, lower=False) != []


@pytest.mark.slow
def test_dense_adjoint_put_back_is_dense(big):
    # the sparse finder with optimistix's dense adjoint solve restored (the opt-out)
    rhs, y0, args = big
    dense_adjoint = sdx.sparse(
        diffrax.Kvaerno5(),
        linear_solver="jax",
        adjoint_linear_solver=lx.AutoLinearSolver(well_posed=None),
    )
    assert square_arrays(big_grad(dense_adjoint, rhs), args, y0, lower=False) != []


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
    custom = sdx.sparse(diffrax.Kvaerno5(), adjoint_linear_solver=lx.LU()).root_finder
    assert isinstance(sdx._adjoint_linear_solver(custom), lx.LU)
    with pytest.raises(TypeError, match="adjoint_linear_solver"):
        sdx.sparse(diffrax.Kvaerno5(), adjoint_linear_solver="dense")
    # a known df/dy pattern without a diagonal: the adjoint's matrix I - c h df/dy has one
    shift = np.roll(np.eye(6, dtype=bool), 1, axis=1)
    known = sdx.sparse(diffrax.Kvaerno5(), sparsity=shift).root_finder
    pattern = sdx._adjoint_linear_solver(known).sparsity
    assert pattern.nnz == 12 and pattern.union(SparsityPattern.identity(6)) == pattern
