"""Second-order sparsity detection: exact patterns on structured problems and a rule-by-rule
soundness check against dense ``jax.hessian`` at random points."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stiffasd
from stiffasd.detect.hessian import hessian_sparsity
from stiffasd.errors import ConservativePatternWarning, ShapeError, UnsupportedPrimitiveError


def dense_support(f, x, points=3, seed=0):
    """Union of the nonzeros of the dense Hessian at a few random points (one compiled call)."""
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(
        rng.uniform(0.5, 1.5, (points,) + x.shape) * rng.choice([-1, 1], (points,) + x.shape)
    )
    try:
        hs = jax.jit(jax.vmap(jax.hessian(f)))(xs)
    except ValueError:  # while loops have no reverse mode: forward-over-forward instead
        hs = jax.jit(jax.vmap(jax.jacfwd(jax.jacfwd(f))))(xs)
    hs = np.asarray(hs).reshape(points, x.size, x.size)
    assert np.all(np.isfinite(hs))
    return np.any(hs != 0, axis=0)


def check(f, x, exact=False):
    p = hessian_sparsity(f, x)
    d = p.to_dense().astype(bool)
    assert p.shape == (x.size, x.size)
    assert np.array_equal(d, d.T), "pattern must be symmetric"
    sup = dense_support(f, x)
    missing = np.argwhere(sup & ~d)
    assert missing.size == 0, f"pattern misses Hessian nonzeros at {missing[:5].tolist()}"
    if exact:
        assert np.array_equal(d, sup), f"over-approximation at {np.argwhere(d & ~sup)[:5].tolist()}"
    return d


# ------------------------------------------------------------------ structured problems
from benchmarks.problems import rosenbrock  # noqa: E402


def grid_energy(u):
    N = int(round(np.sqrt(u.size)))
    U = u.reshape(N, N)
    dx = U[1:, :] - U[:-1, :]
    dy = U[:, 1:] - U[:, :-1]
    return jnp.sum(dx**4) + jnp.sum(dy**2 * jnp.cosh(dy)) + jnp.sum(U**4)


def test_separable_sum_is_diagonal():
    x = jnp.ones(12)
    d = check(lambda x: jnp.sum(jnp.exp(x) + jnp.sin(x) * x), x, exact=True)
    assert np.array_equal(d, np.eye(12, dtype=bool))


def test_chained_rosenbrock_is_tridiagonal():
    n = 15
    d = check(rosenbrock, jnp.ones(n), exact=True)
    i, j = np.indices((n, n))
    assert np.array_equal(d, np.abs(i - j) <= 1)


def test_grid_energy_is_stencil():
    N = 6
    d = check(grid_energy, jnp.ones(N * N), exact=True)
    r, c = np.divmod(np.arange(N * N), N)
    dist = np.abs(r[:, None] - r[None, :]) + np.abs(c[:, None] - c[None, :])
    assert np.array_equal(d, dist <= 1)


def test_linear_terms_add_nothing():
    A = np.random.default_rng(0).standard_normal((5, 7))
    x = jnp.ones(7)
    assert hessian_sparsity(lambda x: jnp.sum(A @ x) + 3.0 * x[2] - jnp.sum(x[::-1]), x).nnz == 0
    d = check(lambda x: jnp.sum(A @ x) + x[1] ** 3, x, exact=True)
    assert d.sum() == 1 and d[1, 1]


def test_curvature_that_never_reaches_the_output():
    x = jnp.ones(5)
    # a product with a literal zero, a zero-derivative function and stop_gradient pass no
    # curvature on; what reaches the output through nonzero derivatives still counts
    for f, expect in (
        (lambda x: jnp.sum(0.0 * x**2), []),
        (lambda x: jnp.sum(x**2 * 0.0) + x[0] * x[3], [(0, 3)]),
        (lambda x: jnp.sum(jnp.floor(x**2) + x), []),
        (lambda x: jnp.sum(jax.lax.stop_gradient(jnp.sin(x)) * x), []),
        (lambda x: jnp.sum(0.0 / jnp.exp(x)) + jnp.sin(x[2]), [(2, 2)]),
        (lambda x: jnp.sum(jax.jit(lambda y: 0.0 * y)(x**3)) + x[1] ** 3, [(1, 1)]),
    ):
        d = check(f, x, exact=True)
        want = np.zeros((5, 5), bool)
        for i, j in expect:
            want[i, j] = want[j, i] = True
        assert np.array_equal(d, want)


def test_arrowhead():
    n = 9
    d = check(lambda x: x[0] * jnp.sum(jnp.sin(x[1:])) + jnp.sum(x**2), jnp.ones(n), exact=True)
    expect = np.eye(n, dtype=bool)
    expect[0, :] = expect[:, 0] = True
    assert np.array_equal(d, expect)


def test_bilinear_without_self_terms():
    # x0*x1: no diagonal; x2/x3: (2,3) and (3,3) but not (2,2)
    d = check(lambda x: x[0] * x[1] + x[2] / x[3], jnp.ones(4), exact=True)
    assert not d[0, 0] and not d[1, 1] and d[0, 1] and not d[2, 2] and d[2, 3] and d[3, 3]


def test_quadratic_form_matches_matrix():
    A = np.zeros((6, 6))
    A[0, 3] = A[3, 0] = 1.0
    A[2, 2] = 2.0
    A[4, 5] = 1.0  # nonsymmetric entry: the Hessian is A + A^T
    check(lambda x: x @ (A @ x), jnp.ones(6))
    d = hessian_sparsity(lambda x: x @ (A @ x), jnp.ones(6)).to_dense().astype(bool)
    assert d[0, 3] and d[2, 2] and d[4, 5] and d[5, 4]


def test_pytree_and_argnums():
    def f(a, b):
        return jnp.sum(a["u"] ** 2) * b[0] + jnp.sum(a["v"])

    a = {"u": jnp.ones(3), "v": jnp.ones(2)}
    b = jnp.ones(2)
    p = hessian_sparsity(f, a, b, argnums=(0, 1))
    assert p.shape == (7, 7)
    # u (cols 0-2): diagonal, and coupled with b[0] (col 5); v and b[1] are linear
    d = p.to_dense().astype(bool)
    assert (
        np.array_equal(d[:3, :3], np.eye(3, dtype=bool))
        and d[:3, 5].all()
        and not d[3:5].any()
        and not d[6].any()
    )
    p0 = hessian_sparsity(f, a, b)  # argnums=0: u and v only
    assert p0.shape == (5, 5) and p0.nnz == 3


def test_non_scalar_output_is_an_error():
    with pytest.raises(ShapeError, match="scalar"):
        hessian_sparsity(lambda x: x**2, jnp.ones(3))


def test_local_mode_resolves_branches():
    def f(x):
        return jax.lax.cond(x[0] > 0, lambda x: x[1] * x[2], lambda x: x[3] ** 3, x)

    x = jnp.array([1.0, 1.0, 1.0, 1.0])
    g = hessian_sparsity(f, x).to_dense().astype(bool)
    loc = hessian_sparsity(f, x, mode="local").to_dense().astype(bool)
    assert g[1, 2] and g[3, 3]
    assert loc[1, 2] and not loc[3, 3]
    assert stiffasd.hessian_sparsity is hessian_sparsity


def test_unsupported_primitive_is_conservative_or_strict():
    prim = jax.extend.core.Primitive("hessian_test_op")
    prim.def_impl(lambda x: x)
    prim.def_abstract_eval(lambda x: x)

    def f(x):
        return jnp.sum(prim.bind(x[:2]) ** 2) + jnp.sum(x[2:] ** 2)

    x = jnp.ones(4)
    with pytest.warns(ConservativePatternWarning):
        d = hessian_sparsity(f, x).to_dense().astype(bool)
    assert d[:2, :2].all() and not d[0, 2]
    with pytest.raises(UnsupportedPrimitiveError):
        hessian_sparsity(f, x, strict=True)


# ------------------------------------------------------------------ rule-by-rule soundness
M = np.random.default_rng(1).standard_normal((4, 6))
M[M < 0.3] = 0.0  # a sparse constant matrix

CASES = {
    # element-wise unary
    "sin": lambda x: jnp.sum(jnp.sin(x)),
    "exp_log": lambda x: jnp.sum(jnp.exp(x) + jnp.log(x**2 + 1)),
    "tanh_sqrt": lambda x: jnp.sum(jnp.tanh(x) * jnp.sqrt(x**2 + 1)),
    "logistic_erf": lambda x: jnp.sum(jax.nn.sigmoid(x) + jax.scipy.special.erf(x)),
    "integer_pow": lambda x: jnp.sum(x**3 + x**1),
    "square_rsqrt": lambda x: jnp.sum(jnp.square(x) + jax.lax.rsqrt(x**2 + 1)),
    "atan_asinh": lambda x: jnp.sum(jnp.arctan(x) + jnp.arcsinh(x)),
    "abs_max_min": lambda x: jnp.sum(jnp.abs(x) * x[0] + jnp.maximum(x, x[::-1]) ** 2),
    "abs_complex": lambda x: jnp.sum(jnp.abs(x[:3] + 1j * x[3:])),
    "clamp": lambda x: jnp.sum(jnp.clip(x, -0.8, 0.8) ** 2),
    # element-wise binary with broadcasting
    "mul_bcast": lambda x: jnp.sum(x[:3, None] * x[None, 3:]),
    "div": lambda x: jnp.sum(x[:3] / (x[3:] + 3.0)),
    "div_const_num": lambda x: jnp.sum(2.0 / (x + 3.0)),
    "pow": lambda x: jnp.sum(jnp.abs(x[:3]) ** x[3:]),
    "pow_const": lambda x: jnp.sum(jnp.abs(x) ** 2.5),
    "atan2": lambda x: jnp.sum(jnp.arctan2(x[:3], x[3:])),
    "rem": lambda x: jnp.sum(jnp.remainder(x[:3] * 3.0, 1.7) * x[3:]),
    "where": lambda x: jnp.sum(jnp.where(x > 0, x**2, x[::-1] ** 3)),
    # linear algebra
    "dot_const": lambda x: jnp.sum((M @ x) ** 2),
    "dot_vv": lambda x: jnp.dot(x[:3], x[3:]),
    "matmul": lambda x: jnp.sum(x[:4].reshape(2, 2) @ x[2:].reshape(2, 2)),
    "batched": lambda x: jnp.sum(
        jnp.einsum("bi,bj->bij", x[:4].reshape(2, 2), x[2:].reshape(2, 2)) ** 2
    ),
    "outer_trace": lambda x: jnp.trace(jnp.outer(x, x)),
    "solve": lambda x: jnp.sum(jnp.linalg.solve(jnp.eye(2) * 3 + x[:4].reshape(2, 2), x[4:])),
    "cholesky": lambda x: jnp.sum(jnp.linalg.cholesky(jnp.eye(2) * 5 + jnp.outer(x[:2], x[:2]))),
    # reductions
    "prod": lambda x: jnp.prod(x[:4]) + jnp.sum(x[4:] ** 2),
    "max_reduce": lambda x: jnp.max(x**2),
    "logsumexp": lambda x: jax.nn.logsumexp(x),
    "norm": lambda x: jnp.linalg.norm(x[1:4]),
    "cumsum": lambda x: jnp.sum(jnp.cumsum(x) ** 2),
    "cumprod": lambda x: jnp.sum(jnp.cumprod(x[:4])),
    "sort": lambda x: jnp.sum(jnp.sort(x) * jnp.arange(6.0)) + jnp.sum(jnp.sort(x)[:2] ** 2),
    "var": lambda x: jnp.var(x[:4]),
    # data movement
    "slices_concat": lambda x: jnp.sum(jnp.concatenate([x[4:], x[:2]]) * x[1:4:1][:, None]),
    "reshape_transpose": lambda x: jnp.sum(x.reshape(2, 3).T ** 2 * jnp.arange(6.0).reshape(3, 2)),
    "roll_pad": lambda x: jnp.sum(jnp.roll(x, 2) * jnp.pad(x, (1, 0))[:-1]),
    "gather": lambda x: jnp.sum(x[jnp.array([0, 0, 5, 2])] ** 2 * x[jnp.array([1, 3, 5, 4])]),
    "scatter": lambda x: (
        jnp.sum(jnp.zeros(4).at[jnp.array([0, 2, 2])].add(x[:3]) ** 3)
        + jnp.sum(x.at[1].set(7.0) ** 2)
    ),
    "scatter_mul": lambda x: jnp.sum(x.at[jnp.array([0, 1])].multiply(x[4:], unique_indices=True)),
    "conv": lambda x: jnp.sum(jnp.convolve(x, jnp.array([1.0, -2.0, 1.0]), mode="same") ** 2),
    "conv_both": lambda x: jnp.sum(jnp.convolve(x[:4], x[4:], mode="full")),
    # control flow
    "cond": lambda x: jax.lax.cond(jnp.sum(x) > 0, lambda y: y[0] * y[1], lambda y: y[2] ** 2, x),
    "scan_short": lambda x: jax.lax.scan(lambda c, xi: (c * xi, None), 1.0, x[:4])[0],
    "scan_long": lambda x: jax.lax.scan(
        lambda c, xi: (c + jnp.sin(c * xi), None), 0.1, jnp.tile(x[:3], 8)
    )[0],
    "scan_ys": lambda x: jnp.sum(
        jax.lax.scan(lambda c, xi: (c + xi, c * xi), 0.0, jnp.tile(x, 4))[1]
    ),
    "fori": lambda x: jax.lax.fori_loop(0, 20, lambda i, c: c * 0.5 + x[i % 6] * x[0], 0.0),
    "while": lambda x: jax.lax.while_loop(
        lambda c: c[1] < 3, lambda c: (c[0] * x[c[1]] + x[5], c[1] + 1), (1.0, 0)
    )[0],
    "while_data": lambda x: jax.lax.while_loop(
        lambda c: c[0] < 5.0, lambda c: (c[0] + x[1] ** 2 + 1.0, c[1] * x[2]), (x[0] * 0, x[3])
    )[1],
    "custom_jvp": lambda x: jnp.sum(jax.nn.relu(x) * x[0] + jax.nn.softplus(x) + jax.nn.silu(x)),
    "custom_jvp_logaddexp": lambda x: jnp.sum(jnp.logaddexp(x[:3], x[3:])),
    "jit_remat": lambda x: jax.jit(jax.checkpoint(lambda y: jnp.sum(jnp.sin(y[:3]) * y[3:])))(x),
    "stop_gradient": lambda x: jnp.sum(jax.lax.stop_gradient(x) * x**2),
    "grad_inside": lambda x: jnp.sum(jax.grad(lambda y: jnp.sum(y**3 * y[0]))(x)),
    "select_known": lambda x: jnp.sum(jnp.where(jnp.arange(6) < 3, x**2, x * 2.0)),
}


def test_one_table_for_both_orders():
    """Second-order rules are registered with the first-order ones, family by family."""
    from stiffasd.detect.rules import _registry

    second = set(_registry._SECOND)
    assert len(second) > 50 and second <= set(_registry.registered_primitives())
    for name in ("sin", "add", "mul", "dot_general", "reshape", "while", "custom_jvp_call"):
        assert _registry.get_second_order_rule(stiffasd.detect._primitives.get(name)) is not None


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_soundness(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservativePatternWarning)
        check(CASES[name], jnp.linspace(0.3, 1.3, 6))


def test_rule_precision_examples():
    x = jnp.linspace(0.3, 1.3, 6)
    # relu is piecewise linear: only silu/softplus give the diagonal, x[0] couples with all
    check(CASES["stop_gradient"], x, exact=True)
    check(CASES["dot_const"], x, exact=True)
    check(CASES["mul_bcast"], x, exact=True)
    check(CASES["roll_pad"], x, exact=True)
    check(CASES["scan_short"], x, exact=True)
    check(CASES["gather"], x, exact=True)
    d = hessian_sparsity(lambda x: jnp.sum(jax.nn.relu(x)), x)
    assert d.nnz == 0


LOCAL_CASES = ("where", "abs_max_min", "cond", "while", "sort", "clamp", "custom_jvp", "prod")


@pytest.mark.parametrize("name", LOCAL_CASES)
def test_local_mode_soundness(name):
    """The local pattern holds the Hessian at its point and refines the global pattern."""
    f = CASES[name]
    x0 = jnp.array([-0.7, 0.2, 0.9, -0.3, 1.3, 0.5])
    loc = hessian_sparsity(f, x0, mode="local").to_dense().astype(bool)
    glob = hessian_sparsity(f, x0).to_dense().astype(bool)
    try:
        h = jax.hessian(f)(x0)
    except ValueError:  # while loops: forward-over-forward
        h = jax.jacfwd(jax.jacfwd(f))(x0)
    missing = np.argwhere((np.asarray(h) != 0) & ~loc)
    assert missing.size == 0, missing[:5].tolist()
    assert not (loc & ~glob).any()
