"""Sparse Hessians against dense ``jax.hessian``, and symmetric Jacobians in ``stiffasd.jac``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import stiffasd

# ------------------------------------------------------------------ problems
from benchmarks.problems import grid_energy, rosenbrock  # noqa: E402  (the benchmarks' own)
from stiffasd import PatternMismatchError, ShapeError


def separable(x):
    return jnp.sum(jnp.exp(x) - x * jnp.log1p(x**2))


def arrowhead(x):
    return x[0] ** 2 * jnp.sum(jnp.cos(x[1:])) + jnp.sum(x[1:] ** 4)


def ocp_lagrangian(z, N=20):
    """Lagrangian of a discretized optimal-control problem: min sum h (y^2 + u^2) / 2 subject to
    forward-Euler steps of y' = -y^3 + y u; z = (y_0..y_N, u_0..u_{N-1}, lambda_0..lambda_{N-1})."""
    h = 1.0 / N
    y, u, lam = z[: N + 1], z[N + 1 : 2 * N + 1], z[2 * N + 1 :]
    cost = 0.5 * h * (jnp.sum(y[:-1] ** 2) + jnp.sum(u**2)) + 0.5 * y[-1] ** 2
    residual = y[1:] - y[:-1] - h * (-(y[:-1] ** 3) + y[:-1] * u)
    return cost + jnp.dot(lam, residual)


PROBLEMS = {
    "rosenbrock": (rosenbrock, 60),
    "grid_energy": (grid_energy, 64),
    "separable": (separable, 40),
    "arrowhead": (arrowhead, 30),
    "ocp_lagrangian": (ocp_lagrangian, 61),
}


def point(n, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(0.2, 1.5, n))


def assert_close(H, f, x, rtol=1e-12):
    dense = np.asarray(jax.jit(jax.hessian(f))(x))
    err = np.abs(H.toarray() - dense).max()
    assert err <= rtol * np.abs(dense).max(), err


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_matches_dense_hessian(name):
    f, n = PROBLEMS[name]
    dense_fn = jax.jit(jax.hessian(f))
    x, x2 = point(n), point(n, seed=1)
    dense, dense2 = np.asarray(dense_fn(x)), np.asarray(dense_fn(x2))
    for decompression in ("direct", "substitution"):
        hess = stiffasd.hessian(f, decompression=decompression)
        for xi, di in ((x, dense), (x2, dense2)):
            H = hess(xi)
            assert isinstance(H, sp.csc_matrix) and H.shape == (n, n)
            err = np.abs(H.toarray() - di).max()
            assert err <= 1e-12 * np.abs(di).max(), (decompression, err)
        sh = hess.prepared(x)
        assert sh.coloring.structure == "symmetric"
        assert sh.coloring.decompression == decompression
        assert sh.ncolors <= max(4, n // 4)  # far fewer passes than a dense Hessian


def test_auto_decompression():
    """Star coloring unless acyclic coloring saves passes; then the faster of the two."""
    for name in ("grid_energy", "separable"):
        f, n = PROBLEMS[name]
        x = point(n)
        pattern = stiffasd.hessian_sparsity(f, x)
        star = stiffasd.color(pattern, structure="symmetric", order="largest_first")
        acyclic = stiffasd.color(
            pattern, structure="symmetric", decompression="substitution", order="largest_first"
        )
        auto = stiffasd.prepare_hessian(f, x, sparsity=pattern)
        if star.ncolors == acyclic.ncolors:
            assert auto.coloring.decompression == "direct" and "choose" not in auto.timings
        else:
            assert "choose" in auto.timings
            fastest = min(("direct", "substitution"), key=lambda d: auto.timings[f"eval_{d}"])
            assert auto.coloring.decompression == fastest


def test_star_coloring_of_arrowhead():
    f, n = PROBLEMS["arrowhead"]
    x = point(n)
    sh = stiffasd.prepare_hessian(f, x)
    # arrowhead: a column coloring needs n colors, a star coloring 2
    assert sh.ncolors == 2


def test_formats_jit_and_bcoo():
    f, n = PROBLEMS["rosenbrock"]
    x = point(n)
    sh = stiffasd.prepare_hessian(f, x)
    data = jax.jit(sh.data)(x)
    assert np.allclose(np.asarray(data), sh.csc(x).data, rtol=1e-14, atol=0)
    B = stiffasd.hessian(f, format="bcoo")(x)
    assert_close(sp.csc_matrix(np.asarray(B.todense())), f, x)
    d = stiffasd.hessian(f, format="data")(x)
    assert d.shape == (sh.pattern.nnz,)
    # vmapped over points
    xs = jnp.stack([x, point(n, 3)])
    batch = jax.vmap(sh.data)(xs)
    assert np.allclose(np.asarray(batch[1]), sh.csc(xs[1]).data, rtol=1e-14)


def test_chunked_and_given_sparsity_and_verify():
    f, n = PROBLEMS["ocp_lagrangian"]
    x = point(n)
    pattern = stiffasd.hessian_sparsity(f, x)
    sh = stiffasd.prepare_hessian(f, x, sparsity=pattern, chunk_size=2, verify=True)
    assert_close(sh.csc(x), f, x)
    # a pattern that misses entries is caught by verify
    diag = stiffasd.SparsityPattern.identity(n)
    with pytest.raises(PatternMismatchError, match="misses"):
        stiffasd.prepare_hessian(f, x, sparsity=diag, verify=True)
    # a non-symmetric user pattern is refused
    upper = sp.triu(pattern.to_scipy("csr"), k=1) + sp.eye(n)
    with pytest.raises(ShapeError, match="symmetric"):
        stiffasd.prepare_hessian(f, x, sparsity=upper)


def test_input_errors():
    x = point(5)
    with pytest.raises(ShapeError, match="scalar"):
        stiffasd.hessian(lambda x: x**2)(x)
    with pytest.raises(TypeError, match="floating-point"):
        stiffasd.hessian(rosenbrock)(jnp.arange(5))
    with pytest.raises(ValueError, match="decompression"):
        stiffasd.prepare_hessian(rosenbrock, x, decompression="star")
    with pytest.raises(ValueError, match="format"):
        stiffasd.hessian(rosenbrock, format="dense")
    with pytest.raises(stiffasd.NonFiniteError):
        stiffasd.hessian(rosenbrock)(x.at[2].set(jnp.nan))


def test_size_one_output():
    x = point(6)
    H = stiffasd.hessian(lambda x: jnp.sum(x**3, keepdims=True))(x)
    assert np.allclose(H.toarray(), np.diag(6 * np.asarray(x)), rtol=1e-14)


def test_linear_function_has_empty_hessian():
    H = stiffasd.hessian(lambda x: jnp.sum(3.0 * x) + 1.0)(point(7))
    assert H.nnz == 0 and H.shape == (7, 7)


def test_other_argnums_and_args():
    def f(p, x):
        return jnp.sum(p[0] * x**3) + p[1] * jnp.sum(x[1:] * x[:-1])

    p = jnp.array([2.0, 0.5])
    x = point(10)
    H = stiffasd.hessian(f, argnums=1)(p, x)
    dense = np.asarray(jax.hessian(f, argnums=1)(p, x))
    assert np.abs(H.toarray() - dense).max() <= 1e-12 * np.abs(dense).max()


# ------------------------------------------------------------------ symmetric Jacobians
def gradient_flow_rhs(t, y, kappa):
    """Allen-Cahn as the negative gradient of an energy: its Jacobian is symmetric."""
    return -jax.grad(grid_energy)(y) * kappa


def test_jac_symmetric_structure():
    n = 36
    y = point(n)
    jac = stiffasd.jac(gradient_flow_rhs, structure="symmetric", verify=True)
    J = jac(0.0, y, 2.0)
    dense = np.asarray(jax.jacfwd(gradient_flow_rhs, argnums=1)(0.0, y, 2.0))
    assert np.abs(J.toarray() - dense).max() <= 1e-12 * np.abs(dense).max()
    assert jac.coloring.structure == "symmetric"
    columns = stiffasd.color(jac.pattern, partition="column", order="largest_first")
    assert jac.coloring.ncolors <= columns.ncolors


def test_jac_symmetric_rejects_nonsymmetric():
    def advection(t, y):
        return -(y - jnp.roll(y, 1)) + 0.1 * y**2

    with pytest.raises(ShapeError, match="symmetric"):
        stiffasd.jac(advection, structure="symmetric")(0.0, point(8))

    def sym_pattern_not_values(t, y):  # symmetric pattern, nonsymmetric values
        return 2.0 * jnp.roll(y, 1) + jnp.roll(y, -1) - y**3

    with pytest.raises(PatternMismatchError, match="not symmetric"):
        stiffasd.jac(sym_pattern_not_values, structure="symmetric", verify=True)(0.0, point(8))
    with pytest.raises(ValueError, match="structure"):
        stiffasd.prepare_jacobian(lambda y: y, point(3), structure="upper")
    with pytest.raises(ValueError, match="forward"):
        stiffasd.prepare_jacobian(lambda y: y, point(3), structure="symmetric", mode="reverse")


def test_preparation_traces_the_function_once():
    traces = []

    def f(x):
        traces.append(1)  # runs once per trace
        return jnp.sum(x[1:] * x[:-1]) + jnp.sum(jnp.sin(x) ** 2)

    x = np.linspace(0.1, 1.0, 30)
    sh = stiffasd.prepare_hessian(f, x, decompression="direct")
    assert len(traces) == 1  # the output check and detection share one jaxpr
    np.testing.assert_allclose(sh.csc(x).toarray(), jax.hessian(f)(x), rtol=1e-12, atol=1e-12)
