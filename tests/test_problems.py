"""The library of test problems: every right-hand side runs, its detected pattern is exactly
the union of dense-AD nonzeros at random points, and solve_ivp with stiffasd.jac agrees with a
dense-Jacobian reference."""

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import stiffasd
from stiffasd.problems import PROBLEMS, OdeProblem

# small instances with short spans: each solve takes well under a second
SMALL = {
    "brusselator_2d": dict(N=6, t_span=(0.0, 1.5)),
    "gray_scott_2d": dict(N=6, t_span=(0.0, 50.0)),
    "allen_cahn_3d": dict(N=5, t_span=(0.0, 0.005)),
    "advection_diffusion_reaction_2d": dict(N=7, t_span=(0.0, 0.05)),
    "robertson_diffusion_2d": dict(N=3, t_span=(0.0, 5.0)),
    "reservoir_exchange": dict(n_cells=25, t_span=(0.0, 0.5)),
    "flame_1d": dict(N=20, t_span=(0.0, 0.5)),
    "fitzhugh_nagumo_2d": dict(N=6, t_span=(0.0, 20.0)),
}


def test_every_problem_has_a_small_instance():
    assert set(SMALL) == set(PROBLEMS)


def _make(name) -> OdeProblem:
    return PROBLEMS[name](**SMALL[name])


def _random_points(prob, k=3, seed=0):
    rng = np.random.default_rng(seed)
    # positive, O(1) perturbations keep every nonlinear term active (no accidental zeros)
    return [prob.y0 + rng.uniform(0.05, 1.0, prob.n) for _ in range(k)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_rhs_runs_and_pattern_is_exact(name):
    prob = _make(name)
    out = np.asarray(prob.rhs(0.3, prob.y0, *prob.args))
    assert out.shape == prob.y0.shape and np.all(np.isfinite(out))
    fields = prob.info["fields"](prob.y0)
    assert fields and all(np.all(np.isfinite(v)) for v in fields.values())

    pattern = stiffasd.jacobian_sparsity(prob.rhs, 0.3, prob.y0, *prob.args, argnums=1)
    assert pattern.shape == (prob.n, prob.n)
    dense = jax.jit(jax.jacfwd(prob.rhs, argnums=1))
    seen = np.zeros((prob.n, prob.n), dtype=bool)
    for y in _random_points(prob):
        J = np.asarray(dense(2.0, y, *prob.args))
        nz = J != 0
        assert pattern.issuperset(stiffasd.SparsityPattern.from_dense(nz)), name
        seen |= nz
    # every problem here is written without structural zeros that AD would hide: the
    # detected pattern is exact, not only sound
    np.testing.assert_array_equal(pattern.to_dense(), seen)


def _pattern(prob):
    return stiffasd.jacobian_sparsity(prob.rhs, 0.0, prob.y0, *prob.args, argnums=1)


def test_brusselator_grid_layout_is_the_same_system():
    """layout="grid" stores (u, v) per grid point: the same right-hand side and Jacobian as the
    default layout, up to the permutation of the state."""
    N = 6
    flat = PROBLEMS["brusselator_2d"](N=N)
    grid = PROBLEMS["brusselator_2d"](N=N, layout="grid")
    assert grid.y0.shape == (N, N, 2)
    to_grid = np.arange(2 * N * N).reshape(2, N, N).transpose(1, 2, 0).ravel()  # grid <- flat
    np.testing.assert_array_equal(grid.y0.ravel(), flat.y0[to_grid])
    y = _random_points(flat)[0]
    for t in (0.3, 2.0):  # before and after the forcing switches on
        f_flat = np.asarray(flat.rhs(t, y, *flat.args))
        f_grid = np.asarray(grid.rhs(t, y[to_grid].reshape(N, N, 2), *grid.args))
        np.testing.assert_allclose(f_grid.ravel(), f_flat[to_grid], rtol=1e-14, atol=1e-12)
    pg = _pattern(grid).to_dense()
    pf = _pattern(flat).to_dense()
    np.testing.assert_array_equal(pg, pf[np.ix_(to_grid, to_grid)])
    assert grid.info["fields"](grid.y0)["v"].shape == (N, N)
    with pytest.raises(ValueError, match="layout must be 'fields' or 'grid', got 'rows'"):
        PROBLEMS["brusselator_2d"](N=N, layout="rows")


def test_allen_cahn_is_a_seven_point_stencil():
    N = 5
    prob = PROBLEMS["allen_cahn_3d"](N=N)
    # 7 entries per row, minus one per face a point touches
    expected = 7 * N**3 - 6 * N**2
    assert _pattern(prob).nnz == expected


def test_upwinding_keeps_only_the_upwind_neighbours():
    """Without diffusion, jnp.where on the (constant) velocity field selects one neighbour per
    direction: the detected pattern has at most 3 entries per row and is exact."""
    prob = PROBLEMS["advection_diffusion_reaction_2d"](N=8, D=0.0)
    p = prob.args[0]

    def rhs(t, y):  # the parameters as constants: detection sees the zero diffusion
        return prob.rhs(t, y, p)

    pattern = stiffasd.jacobian_sparsity(rhs, 0.0, prob.y0, argnums=1)
    assert pattern.row_counts.max() <= 3
    J = np.asarray(jax.jacfwd(rhs, argnums=1)(0.0, _random_points(prob)[0]))
    np.testing.assert_array_equal(pattern.to_dense(), J != 0)


def test_robertson_blocks_and_diffusion():
    N = 3
    pattern = _pattern(PROBLEMS["robertson_diffusion_2d"](N=N)).to_dense()
    n = 3 * N * N
    blocks = np.kron(np.eye(N * N, dtype=bool), np.ones((3, 3), dtype=bool))
    # the reaction block of a cell: A' = -k1 A + k2 B C, C' = k3 B^2
    cell = pattern[:3, :3]
    assert cell[0].tolist() == [True, True, True]  # A' depends on A, B, C
    assert cell[2].tolist() == [False, True, True]  # C' = k3 B^2 (+ diffusion of C)
    # off the diagonal blocks only the diffusion of each species to its grid neighbours
    off = pattern & ~blocks
    rows, cols = np.nonzero(off)
    assert np.all(rows % 3 == cols % 3)
    assert off.sum() == 3 * 2 * 2 * N * (N - 1)
    assert pattern.shape == (n, n)


def test_reservoir_is_an_arrowhead():
    nc = 30
    prob = PROBLEMS["reservoir_exchange"](n_cells=nc)
    pattern = _pattern(prob)
    dense = pattern.to_dense()
    assert dense[-1].all() and dense[:, -1].all()
    inner = dense[:-1, :-1]
    assert np.array_equal(inner, np.abs(np.subtract.outer(np.arange(nc), np.arange(nc))) <= 1)
    # one-sided colorings need a color per column / row: what bicoloring fixes
    assert stiffasd.color(pattern, partition="column").ncolors == nc + 1
    assert stiffasd.color(pattern, partition="row").ncolors == nc + 1
    # bicoloring needs a handful of passes whatever n, and stiffasd.jac's auto mode picks it
    bi = stiffasd.color(pattern, partition="bidirectional", order="best")
    assert bi.ncolors <= 8
    stiffasd.check_coloring(pattern, bi)
    # (auto mode considers bicoloring once the dense row/column stand out: n = 81 here)
    prob = PROBLEMS["reservoir_exchange"](n_cells=80)
    sj = stiffasd.jac(prob.rhs).prepare(0.0, prob.y0, *prob.args)
    assert sj.mode == "bidirectional" and sj.ncolors <= 8
    J = np.asarray(jax.jacfwd(prob.rhs, argnums=1)(0.3, _random_points(prob)[0], *prob.args))
    got = sj.csc(0.3, _random_points(prob)[0], *prob.args).toarray()
    np.testing.assert_allclose(got, J, rtol=1e-12, atol=1e-12)


def _dense_jac(prob):
    jf = jax.jit(jax.jacfwd(prob.rhs, argnums=1))
    return lambda t, y, *a: np.asarray(jf(t, y, *a))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bdf_with_stiffasd_matches_dense_reference(name):
    prob = _make(name)
    fun = prob.numpy_rhs()
    opts = dict(method="BDF", args=prob.args, rtol=1e-7, atol=1e-9)
    j = stiffasd.jac(prob.rhs)
    sol = solve_ivp(fun, prob.t_span, prob.y0, jac=j, **opts)
    ref = solve_ivp(fun, prob.t_span, prob.y0, jac=_dense_jac(prob), **opts)
    assert sol.success and ref.success, (sol.message, ref.message)
    scale = np.maximum(np.abs(ref.y[:, -1]), 1.0)
    assert np.max(np.abs(sol.y[:, -1] - ref.y[:, -1]) / scale) < 1e-5
    assert sol.nfev > 1 and j.calls == sol.njev >= 1
    # the problem is not trivial over the span: the state moved
    assert np.max(np.abs(sol.y[:, -1] - prob.y0)) > 1e-3
