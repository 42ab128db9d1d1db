"""Detection tests beyond the per-rule table: API, pytrees, unsupported primitives, user rules,
local mode, sparse matrices, the Brusselator."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detect_helpers import check, observed, points

import stiffasd
from stiffasd import ConservativePatternWarning, UnsupportedPrimitiveError
from stiffasd.detect import _primitives as P
from stiffasd.detect import jacobian_sparsity, register_rule, registered_primitives
from stiffasd.detect._sets import take_rows


def _closed_call(f, x):
    """Bind the closed-call primitive (named closed_call or eval_jaxpr depending on JAX)."""
    closed = jax.make_jaxpr(f)(x)
    errors = []
    for name, kw in (
        ("closed_call", "call_jaxpr"),
        ("eval_jaxpr", "jaxpr"),
        ("eval_jaxpr", "call_jaxpr"),
    ):
        p = P.get(name)
        if p is None:
            continue
        try:
            out = p.bind(x, **{kw: closed})
            return out[0] if isinstance(out, (list, tuple)) else out
        except Exception as e:  # the parameter name differs between JAX versions
            errors.append(e)
    raise RuntimeError(errors)


def test_closed_call_and_eval_jaxpr():
    f = lambda x: _closed_call(lambda y: jnp.sin(y) * y[::-1], x)  # noqa: E731
    from detect_helpers import primitives_in

    names = primitives_in(f, np.ones(5))
    assert names & {"closed_call", "eval_jaxpr"}
    check(f, (5,))


def test_elementwise_without_second_derivative():
    # igamma_grad_a / random_gamma_grad appear in derivatives of gamma functions; JAX cannot
    # differentiate them again, so the check is structural: an element-wise (diagonal) pattern.
    for name, fn in (
        (
            "igamma_grad_a",
            lambda x: jax.grad(lambda a: jax.scipy.special.gammainc(a, 2.0).sum())(x),
        ),
        ("random_gamma_grad", lambda x: jax.random.gamma(jax.random.key(0), x + 1.0)),
    ):
        from detect_helpers import primitives_in

        x = np.full(4, 1.5)
        if name not in primitives_in(fn, x):
            continue
        pat = jacobian_sparsity(fn, x)
        assert pat.nnz == 4 and np.array_equal(pat.to_dense(), np.eye(4, dtype=bool)), name


def test_bcoo_dot_general():
    from jax.experimental import sparse

    n = 7
    A = np.diag(np.full(n, -2.0)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    A[0, -1] = A[-1, 0] = 1.0
    A[3, 3] = 0.0  # an explicit zero
    # Built from numpy index arrays (fromdense compiles, which is slow); two padding entries.
    r, c = np.nonzero(A)
    r = np.concatenate([r, [3, n, n]])  # (3, 3) is an explicitly stored zero
    c = np.concatenate([c, [3, n, n]])
    vals = np.where(r < n, A[np.minimum(r, n - 1), np.minimum(c, n - 1)], 0.0)
    M = sparse.BCOO((vals, np.stack([r, c], 1)), shape=(n, n))
    rr, cc = np.nonzero(A)
    indptr = np.searchsorted(rr, np.arange(n + 1))
    Mc = sparse.BCSR((A[rr, cc], cc, indptr), shape=(n, n))
    # The Jacobian of x -> A x is A itself: the reference is exact.
    assert np.array_equal(jacobian_sparsity(lambda x: M @ x, np.ones(n)).to_dense(), A != 0)
    assert np.array_equal(jacobian_sparsity(lambda x: Mc @ x, np.ones(n)).to_dense(), A != 0)
    pat = jacobian_sparsity(lambda x: (M @ x.reshape(n, 2)).ravel(), np.ones(2 * n)).to_dense()
    assert np.array_equal(pat, np.kron(A != 0, np.eye(2, dtype=bool)))
    # derivative w.r.t. the stored values (fixed structure, all entries of v nonzero): output
    # row i depends on exactly the stored entries of row i (padding entries are out of bounds).
    idx = np.asarray(M.indices)
    pat = jacobian_sparsity(
        lambda d: sparse.BCOO((d, M.indices), shape=A.shape) @ jnp.arange(1.0, n + 1),
        np.ones(M.nse),
    ).to_dense()
    expect = np.zeros((n, M.nse), bool)
    inb = (idx < n).all(axis=1)
    expect[idx[inb, 0], np.flatnonzero(inb)] = True
    assert np.array_equal(pat, expect)


def test_hi_primitive_or_interp():
    # jnp.interp with constant query points: exact two-point stencils (on JAX versions that use
    # a hijax searchsorted primitive this exercises call_hi_primitive too).
    xp = np.linspace(0.0, 1.0, 11)
    xq = np.array([0.05, 0.31, 0.5, 0.99])
    pat, _ = check(lambda fp: jnp.interp(xq, xp, fp), (11,))
    assert pat.sum(axis=1).tolist() == [2, 2, 1, 2] or pat.sum(axis=1).max() <= 2


def test_hi_primitive():
    from detect_helpers import primitives_in

    f = lambda x: jnp.sin(x) * jnp.searchsorted(jnp.arange(5.0), x + 10.0)  # noqa: E731
    names = primitives_in(f, np.ones(5))
    check(f, (5,))
    assert names  # the registry test relies on this case for call_hi_primitive when present


# -- unsupported primitives and user rules ----------------------------------------------------


def _make_prim(name):
    prim = P.Primitive(name)
    prim.def_impl(lambda x: jnp.cumsum(x[::-1]))
    prim.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
    return prim


def test_unsupported_primitive_warns_and_is_conservative():
    prim = _make_prim("stiffasd_test_op_warn")
    f = lambda x: prim.bind(x * 2.0)[:2] * 3.0 + x[4]  # noqa: E731
    with pytest.warns(ConservativePatternWarning, match="stiffasd_test_op_warn.*register_rule"):
        pat = jacobian_sparsity(f, np.ones(5))
    assert pat.to_dense().all()  # every output on every input (sound)


def test_unsupported_primitive_strict_raises():
    prim = _make_prim("stiffasd_test_op_strict")
    with pytest.raises(UnsupportedPrimitiveError, match="stiffasd_test_op_strict"):
        jacobian_sparsity(lambda x: prim.bind(x), np.ones(5), strict=True)


def test_integer_outputs_of_unknown_primitive_need_no_rule():
    prim = P.Primitive("stiffasd_test_int_op")
    prim.def_impl(lambda x: (x > 0).astype(jnp.int32))
    prim.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, jnp.int32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pat = jacobian_sparsity(lambda x: x * prim.bind(x), np.ones(4), strict=True)
    assert np.array_equal(pat.to_dense(), np.eye(4, dtype=bool))


def test_register_rule_user_primitive():
    prim = _make_prim("stiffasd_test_op_rule")

    def rule(ctx, eqn):
        # y = cumsum(x[::-1]): y[i] depends on x[n-1-j] for j <= i
        (x,) = eqn.invals
        n = x.size
        i, j = np.tril_indices(n)
        from stiffasd.detect._sets import from_pairs, matmul

        return [matmul(from_pairs(i, n - 1 - j, (n, n)), x.deps)]

    register_rule(prim, rule)
    assert prim in registered_primitives()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pat = jacobian_sparsity(lambda x: prim.bind(x), np.ones(4), strict=True)
    expect = np.fliplr(np.tril(np.ones((4, 4), bool)))
    assert np.array_equal(pat.to_dense(), expect)


def test_register_rule_errors():
    with pytest.raises(TypeError, match="Primitive object"):
        register_rule("sin", lambda ctx, eqn: [])
    with pytest.raises(TypeError, match="callable"):
        register_rule(jax.lax.sin_p, 3)


# -- API ---------------------------------------------------------------------------------------


def test_public_reexports():
    assert stiffasd.jacobian_sparsity is jacobian_sparsity
    assert stiffasd.register_rule is register_rule


def test_pytrees_and_argnums():
    def f(t, y, p):
        a, b = y["a"], y["b"]
        return {"u": a * p["k"] + b[:3], "v": jnp.sum(b) * t}

    y = {"a": np.ones(3), "b": np.ones((2, 2)).ravel()[:4]}
    p = {"k": np.ones(3)}
    pat = jacobian_sparsity(f, 0.5, y, p, argnums=1)
    # rows: leaves of the output dict in tree order (u: 3, v: 1); columns: a (3), b (4)
    expect = np.zeros((4, 7), bool)
    expect[np.arange(3), np.arange(3)] = True  # a * k (k unknown: not a constant)
    expect[np.arange(3), 3 + np.arange(3)] = True
    expect[3, 3:] = True
    assert np.array_equal(pat.to_dense(), expect)
    pat2 = jacobian_sparsity(f, 0.5, y, p, argnums=(2, 0))
    assert pat2.shape == (4, 4)
    # columns: p["k"] (3) then t (1); u_i = a_i k_i + b_i, v = sum(b) t
    assert np.array_equal(pat2.to_dense(), np.eye(4, dtype=bool))


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        jacobian_sparsity(jnp.sin, np.ones(3), mode="loose")
    with pytest.raises(ValueError, match="argnums"):
        jacobian_sparsity(jnp.sin, np.ones(3), argnums=2)
    with pytest.raises(stiffasd.TracingError, match="jax.numpy"):
        jacobian_sparsity(lambda x: np.sin(x), np.ones(3))


def test_row_major_order_2d_input():
    pat = jacobian_sparsity(lambda X: X.T, np.ones((2, 3)))
    expect = np.zeros((6, 6), bool)
    for i in range(2):
        for j in range(3):
            expect[j * 2 + i, i * 3 + j] = True
    assert np.array_equal(pat.to_dense(), expect)


# -- local mode --------------------------------------------------------------------------------


def test_local_mode_resolves_branches_max_sort_and_indices():
    x = np.array([3.0, -1.0, 2.0, 0.5, -2.0])

    def f(x):
        a = jax.lax.cond(x[0] > 0, lambda y: y * 2, lambda y: jnp.roll(y, 1), x)
        b = jnp.max(x) * jnp.ones(5)
        c = jnp.sort(x)
        d = x[jnp.argmin(x)] * jnp.ones(5)
        e = jnp.maximum(x, x[::-1])
        return jnp.concatenate([a, b, c, d, e])

    loc = jacobian_sparsity(f, x, mode="local").to_dense()
    J = np.asarray(jax.jacfwd(f)(x)) != 0
    assert not (J & ~loc).any()
    assert np.array_equal(loc, J)
    glob = jacobian_sparsity(f, x).to_dense()
    assert glob.sum() > loc.sum() and not (loc & ~glob).any()


def test_local_mode_while_data_dependent():
    def f(x):
        # trip count decided by the data: 3 steps if x[0] > 1 else 1
        init = (x, 0, jnp.where(x[0] > 1.0, 3, 1))
        body = lambda c: (c[0] + 0.5 * jnp.roll(c[0], 1), c[1] + 1, c[2])  # noqa: E731
        return jax.lax.while_loop(lambda c: c[1] < c[2], body, init)[0]

    x = np.array([1.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    loc = jacobian_sparsity(f, x, mode="local").to_dense()
    J = np.asarray(jax.jacfwd(f)(x)) != 0
    assert np.array_equal(loc, J)


# -- the Brusselator ---------------------------------------------------------------------------


def _brusselator(N):
    alpha, A, B = 10.0, 3.4, 1.0
    xs = np.linspace(0, 1, N)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    forcing = (((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.1**2) * 5.0
    dx = 1.0 / (N - 1)

    def lap(u):
        return (
            jnp.roll(u, 1, 0) + jnp.roll(u, -1, 0) + jnp.roll(u, 1, 1) + jnp.roll(u, -1, 1) - 4 * u
        )

    def rhs(y):
        u, v = y[: N * N].reshape(N, N), y[N * N :].reshape(N, N)
        du = alpha / dx**2 * lap(u) + B + u**2 * v - (A + 1) * u + forcing
        dv = alpha / dx**2 * lap(v) + A * u - u**2 * v
        return jnp.concatenate([du.ravel(), dv.ravel()])

    return rhs


def _brusselator_pattern(N):
    n = N * N
    idx = np.arange(n).reshape(N, N)
    rows, cols = [], []
    for s in range(2):
        for sh, ax in ((0, 0), (1, 0), (-1, 0), (1, 1), (-1, 1)):
            nb = np.roll(idx, sh, ax) if sh else idx
            rows.append(s * n + idx.ravel())
            cols.append(s * n + nb.ravel())
        rows.append(s * n + idx.ravel())
        cols.append((1 - s) * n + idx.ravel())
    P_ = np.zeros((2 * n, 2 * n), bool)
    P_[np.concatenate(rows), np.concatenate(cols)] = True
    return P_


def test_brusselator_exact_pattern():
    N = 8
    rhs = _brusselator(N)
    pat = jacobian_sparsity(rhs, np.ones(2 * N * N))
    expect = _brusselator_pattern(N)
    assert np.array_equal(pat.to_dense(), expect)
    assert pat.nnz == 2 * N * N * 6
    nz = observed(rhs, points((2 * N * N,), "pos"))
    assert np.array_equal(nz, expect)


def test_take_rows_fast_paths_agree():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    d = sp.csr_array(rng.random((7, 5)) < 0.4)
    d.sort_indices()
    for src in (np.array([2, 3, 4]), np.array([3, -1, 0, 6]), np.array([], int)):
        got = take_rows(d, src).toarray()
        ref = np.where(src[:, None] >= 0, d.toarray()[np.maximum(src, 0)], False)
        assert np.array_equal(got, ref)
    eye = sp.csr_array(np.eye(5, dtype=bool))
    got = take_rows(eye, np.array([4, -1, 1])).toarray()
    assert np.array_equal(got, np.array([np.eye(5)[4], np.zeros(5), np.eye(5)[1]], bool))


def test_reduce_window_init_value_with_dependencies():
    # JAX cannot differentiate through a dependent init value; the pattern is still sound:
    # every output depends on the init value and on its window.
    f = lambda x: jax.lax.reduce_window(x[1:], x[0], jax.lax.add, (2,), (1,), "VALID")  # noqa: E731
    pat = jacobian_sparsity(f, np.ones(6)).to_dense()
    expect = np.zeros((4, 6), bool)
    expect[:, 0] = True
    for i in range(4):
        expect[i, 1 + i : 3 + i] = True
    assert np.array_equal(pat, expect)


# -- programs that contain other libraries' machinery ------------------------------------------


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key])
def test_random_numbers_are_constants(make_key):
    # typed keys (an extended dtype) and raw uint32 keys carry no dependence on the input
    f = lambda x: x * jax.random.normal(make_key(0), x.shape) + jax.random.uniform(make_key(1))  # noqa: E731
    pat, _ = check(f, (6,))
    assert np.array_equal(pat, np.eye(6, dtype=bool))

    def g(x, key):  # a key argument: unknown in global mode, still no dependence
        return x[::-1] * jax.random.normal(key, x.shape)

    x, key = np.ones(5), make_key(3)
    pat = jacobian_sparsity(g, x, key).to_dense()
    assert np.array_equal(pat, np.eye(5, dtype=bool)[::-1])
    for k in range(3):
        J = np.asarray(jax.jacfwd(g)(np.random.default_rng(k).normal(size=5), make_key(k)))
        assert not ((J != 0) & ~pat).any()


def test_diffrax_step_inside_the_function():
    import diffrax

    N = 4
    rhs = _brusselator(N)

    def step(y):
        term = diffrax.ODETerm(lambda t, y, args: rhs(y))
        sol = diffrax.diffeqsolve(term, diffrax.Euler(), 0.0, 1e-4, 1e-4, y, max_steps=1)
        return sol.ys[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConservativePatternWarning)
        pat, nz = check(step, (2 * N * N,), "pos", mode="rev")
    expect = _brusselator_pattern(N)  # y + dt f(y): the diagonal is in f's pattern already
    assert np.array_equal(pat, expect) and pat.sum() == 192


def test_equinox_select_if_vmap():
    import equinox.internal as eqxi

    def f(x):
        return eqxi.select_if_vmap_p.bind(x[0] > 0.0, 2.0 * x, x[::-1] ** 2)

    pat = jacobian_sparsity(f, np.ones(5), strict=True).to_dense()
    assert np.array_equal(pat, np.eye(5, dtype=bool))
    pat2, _ = check(f, (5,), mode="cols")  # unbatched: under vmap it becomes a select
    assert np.array_equal(pat2, pat)
    # nondifferentiable_backward: the identity in value and JVP
    g = lambda x: eqxi.nondifferentiable_backward(x[::-1]) * x  # noqa: E731
    pat3, _ = check(g, (5,))
    assert np.array_equal(pat3, np.eye(5, dtype=bool) | np.eye(5, dtype=bool)[::-1])


@pytest.mark.parametrize(
    "make_perm",
    [
        lambda x: jnp.arange(5)[::-1],
        lambda x: jnp.argsort(jnp.array([3.0, 1.0, 4.0, 0.0, 2.0])),
    ],
)
def test_custom_jvp_rule_indexing_with_a_captured_permutation(make_perm):
    def f(x):
        perm = make_perm(x)  # traced, and captured by the rule's closure

        @jax.custom_jvp
        def g(x):
            return x[perm] * 2.0

        @g.defjvp
        def g_jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            return g(x), t[perm] * 2.0

        return g(x)

    x = np.linspace(1.0, 2.0, 5)
    perm = np.asarray(make_perm(x))
    pat, _ = check(f, (5,))
    assert np.array_equal(pat, np.eye(5, dtype=bool)[perm])


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("complete", [False, True])
def test_qr_follows_gram_schmidt(shape, complete):
    # q[:, k] on the columns 0..k; r[i, j] (i <= j) on the columns 0..j (0..i and j past the
    # m leading columns of a wide input), as JAX's derivative formula computes it; r[i > j] = 0
    f = lambda x: jnp.concatenate(  # noqa: E731
        [
            a.ravel()
            for a in jnp.linalg.qr(x.reshape(shape), mode="complete" if complete else "reduced")
        ]
    )
    pat, _ = check(f, (int(np.prod(shape)),), k=4)
    *batch, m, n = shape
    B = int(np.prod(batch))
    col = np.arange(B * m * n) % n  # column of each input element
    bat = np.arange(B * m * n) // (m * n)
    q, r = jax.eval_shape(
        lambda a: jnp.linalg.qr(a, mode="complete" if complete else "reduced"), jnp.ones(shape)
    )
    expect = []
    for b in range(B):
        for _ in range(m):
            for k in range(q.shape[-1]):
                expect.append((bat == b) & (col <= min(k, n - 1)))
    for b in range(B):
        for i in range(r.shape[-2]):
            for j in range(n):
                lead = j if j < m else i
                expect.append((bat == b) & ((col <= lead) | (col == j)) & (i <= j))
    assert np.array_equal(pat, np.array(expect))
