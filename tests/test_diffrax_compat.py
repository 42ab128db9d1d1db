"""stiffasd.diffrax on what diffrax's own test suite exercises: complex states, states with no
elements, solvers stepped outside jit, failed iterations reported as diffrax does, vector fields
closing over arrays. Each case is compared with diffrax's dense default."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import stiffasd
import stiffasd.diffrax as sdx

# diffrax and optimistix warn that their complex support is a work in progress
pytestmark = pytest.mark.filterwarnings("ignore:Complex:UserWarning")


def _solve(solver, term, y0, args=None, t1=1.0, dt0=0.01, rtol=1e-6, atol=1e-9, **kw):
    return diffrax.diffeqsolve(
        term,
        solver,
        0.0,
        t1,
        dt0,
        y0,
        args=args,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        throw=False,
        **kw,
    )


COMPLEX_A = jnp.array([[-1.0 + 2.0j, 0.3, 0.0], [0.0, -3.0 - 1.0j, 0.2j], [0.1, 0.0, -20.0]])


def _complex_rhs(t, y, args):
    return COMPLEX_A @ y + 0.1j * y**2


@pytest.mark.parametrize(
    "make_solver, linear_solver",
    [
        (diffrax.Kvaerno5, "direct"),
        (diffrax.Kvaerno5, "gmres"),
        pytest.param(diffrax.ImplicitEuler, "direct", marks=pytest.mark.slow),
    ],
)
def test_complex_state_matches_dense(make_solver, linear_solver):
    """Complex states: complex seeds and data, a complex LU; the linearisation is the JVP along
    real unit directions, as diffrax's dense default materialises it."""
    y0 = jnp.array([1.0 + 0.0j, 0.5j, -0.2 + 0.1j])
    term = diffrax.ODETerm(_complex_rhs)
    # first-order ImplicitEuler needs a looser tolerance to finish within max_steps
    tol = {"rtol": 1e-4, "atol": 1e-7} if make_solver is diffrax.ImplicitEuler else {}
    ours = _solve(sdx.sparse(make_solver(), linear_solver=linear_solver), term, y0, **tol)
    ref = _solve(make_solver(), term, y0, **tol)
    assert ref.result == diffrax.RESULTS.successful
    assert ours.result == diffrax.RESULTS.successful
    assert ours.ys.dtype == jnp.complex128
    assert int(ours.stats["num_steps"]) == int(ref.stats["num_steps"])
    np.testing.assert_allclose(np.asarray(ours.ys), np.asarray(ref.ys), rtol=1e-9, atol=1e-12)


def test_complex64_state_warns_about_precision():
    finder = sdx.sparse(diffrax.Kvaerno5()).root_finder
    y = jnp.ones(2, jnp.complex64)
    with pytest.warns(stiffasd.errors.PrecisionWarning, match="complex64"):
        finder.init(lambda y, a: (y, None), y, None, {}, None, None, frozenset())


def test_integer_state_is_refused_clearly():
    finder = sdx.sparse(diffrax.Kvaerno5()).root_finder
    with pytest.raises(TypeError, match=r"floating point.*got dtype int"):
        finder.init(lambda y, a: (y, None), jnp.arange(3), None, {}, None, None, frozenset())


@pytest.mark.parametrize("linear_solver", ["direct", "gmres"])
def test_state_with_no_elements(linear_solver):
    """diffrax's tests draw states of shape such as (3, 0): nothing to solve."""
    term = diffrax.ODETerm(lambda t, y, a: jax.tree.map(jnp.negative, y))
    y0 = {"a": jnp.zeros((3, 0)), "b": jnp.zeros((0,))}
    sol = _solve(sdx.sparse(diffrax.Kvaerno5(), linear_solver=linear_solver), term, y0, t1=0.1)
    assert sol.result == diffrax.RESULTS.successful
    assert sol.ys["a"].shape == (1, 3, 0)


WEIGHTS = jnp.linspace(0.5, 1.0, 6)  # closed over: concrete outside a loop, traced inside


def _implicit(t, y, args):
    return -args * y + WEIGHTS * jnp.roll(y, -1) - 0.5 * y**3


def _imex_terms():
    def explicit(t, y, args):
        return jnp.roll(y, 1) * 0.1

    return diffrax.MultiTerm(diffrax.ODETerm(explicit), diffrax.ODETerm(_implicit))


@pytest.mark.parametrize("make_solver", [diffrax.Sil3, diffrax.KenCarp4, diffrax.Kvaerno5])
def test_solver_stepped_outside_jit(make_solver):
    """solver.step called eagerly on concrete arrays: the preparation made before the stage loop
    (concrete arguments) and inside it (traced arguments) must be the same one, or the loop's
    carry changes structure ("body_fun must have the same input and output structure"). The
    vector field closes over an array: its value is known before the loop, traced inside."""
    if make_solver is diffrax.Kvaerno5:
        term = diffrax.ODETerm(_implicit)
    else:
        term = _imex_terms()
    y0 = jnp.linspace(1.0, 2.0, 6)
    args = jnp.asarray(5.0)
    steps = []
    # iteration="diffrax": the same chord iterations, so the same outcome as the dense solver
    for solver in (sdx.sparse(make_solver(), iteration="diffrax"), make_solver()):
        # tolerances of their own: no step size controller hands them over here
        solver = eqx.tree_at(
            lambda s: (s.root_finder.rtol, s.root_finder.atol, s.root_finder.norm),
            solver,
            (1e-8, 1e-8, optx.max_norm),
        )
        t0, t1 = jnp.asarray(0.0), jnp.asarray(0.02)
        state = solver.init(term, t0, t1, y0, args)
        y1, err, _, _, result = solver.step(term, t0, t1, y0, args, state, made_jump=False)
        steps.append((np.asarray(y1), np.asarray(err), result))
    assert steps[0][2] == steps[1][2]
    np.testing.assert_allclose(steps[0][0], steps[1][0], rtol=1e-7)
    np.testing.assert_allclose(steps[0][1], steps[1][1], rtol=1e-3, atol=1e-12)


def test_failed_iteration_is_reported_as_divergence():
    """A chord iteration that has not converged when its budget is spent is a failed step, which
    diffrax reports as nonlinear_divergence (not as a maximum number of steps)."""
    term = diffrax.ODETerm(lambda t, y, args: -10 * y**3)
    kw = dict(throw=False)
    ref = diffrax.diffeqsolve(
        term,
        diffrax.ImplicitEuler(root_finder=diffrax.VeryChord(rtol=1e-5, atol=1e-5)),
        0,
        1,
        1,
        1.0,
        **kw,
    )
    assert ref.result == diffrax.RESULTS.nonlinear_divergence
    solver = sdx.sparse(diffrax.ImplicitEuler(root_finder=diffrax.VeryChord(rtol=1e-5, atol=1e-5)))
    ours = diffrax.diffeqsolve(term, solver, 0, 1, 1, 1.0, **kw)
    assert ours.result == diffrax.RESULTS.nonlinear_divergence
    # the adaptive solve still succeeds
    ours = diffrax.diffeqsolve(
        term,
        sdx.sparse(diffrax.ImplicitEuler()),
        0,
        1,
        1,
        1.0,
        stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-5),
        **kw,
    )
    assert ours.result == diffrax.RESULTS.successful


@pytest.mark.parametrize("make_solver", [diffrax.ImplicitEuler, diffrax.Kvaerno5])
def test_vector_field_closing_over_arrays(make_solver):
    """`A @ y` with `A` captured by the vector field, as a constant or (under jit) a traced
    value: both reach the root finder traced (optimistix's closure conversion makes them traced
    constants of the residual), are lifted to arguments of the prepared program, and get a
    pattern valid for every A."""
    n = 5
    A = -2.0 * jnp.eye(n) + jnp.diag(jnp.ones(n - 1), 1)
    y0 = jnp.linspace(1.0, 2.0, n)

    def run(solver, A):
        return _solve(solver, diffrax.ODETerm(lambda t, y, a: A @ y), y0).ys

    ref = run(make_solver(), A)
    np.testing.assert_allclose(np.asarray(run(sdx.sparse(make_solver()), A)), ref, rtol=1e-9)
    traced = jax.jit(lambda A: run(sdx.sparse(make_solver()), A))
    np.testing.assert_allclose(np.asarray(traced(A)), ref, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(traced(2 * A)), run(make_solver(), 2 * A), rtol=1e-9)


def test_closed_over_index_array_stays_exact():
    """Integer arrays a vector field closes over stay concrete in diffrax's closure-converted
    vector field: detection reads them (an exact permutation pattern), and the same preparation
    serves the solver stepped eagerly and inside jit."""
    n = 6
    perm = jnp.roll(jnp.arange(n), 1)
    term = diffrax.ODETerm(lambda t, y, a: -y + 0.5 * y[perm])
    y0 = jnp.linspace(1.0, 2.0, n)
    sdx._prepared_cache.clear()
    ours = _solve(sdx.sparse(diffrax.Kvaerno5()), term, y0)
    np.testing.assert_allclose(
        np.asarray(ours.ys), np.asarray(_solve(diffrax.Kvaerno5(), term, y0).ys), rtol=1e-9
    )
    assert {p.pattern.nnz for p in sdx._prepared_cache._store.values()} == {2 * n}
