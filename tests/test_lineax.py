"""stiffasd.lineax: SparseMatrixOperator and SparseLU against dense references (lineax's LU on
the materialised matrix, jax.jacfwd, scipy's spsolve), in lineax.linear_solve, optimistix's
Newton / Chord root finds and optimistix's ImplicitAdjoint."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

import stiffasd.lineax as slx
from stiffasd import SparsityPattern
from stiffasd.errors import ShapeError
from stiffasd.linalg import JaxLU


def random_matrix(n: int, density: float, seed: int, dtype=float, dominant=True) -> sp.csc_matrix:
    """A random sparse matrix; diagonally dominant, or with a zero-free random diagonal."""
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density, random_state=rng, format="csc")
    a.data = rng.uniform(-1.0, 1.0, a.nnz)
    if np.issubdtype(dtype, np.complexfloating):
        b = sp.random(n, n, density, random_state=rng, format="csc")
        b.data = rng.uniform(-1.0, 1.0, b.nnz)
        a = a + 1j * b
    diag = (abs(a).sum(axis=1).A.ravel() + 1.0) if dominant else rng.uniform(0.5, 1.5, n)
    a = sp.csc_matrix(a + sp.diags(diag * rng.choice([-1.0, 1.0], n)))
    a.sort_indices()
    return a


def dense_solve(a, b):
    return lx.linear_solve(lx.MatrixLinearOperator(a), b, lx.LU()).value


def assert_close(x, ref, rtol=1e-11):
    x, ref = np.asarray(x), np.asarray(ref)
    assert np.max(np.abs(x - ref)) <= rtol * max(np.max(np.abs(ref)), 1e-300), np.max(
        np.abs(x - ref)
    )


def walk_shapes(jaxpr, out):
    """Every output shape of every equation of ``jaxpr`` and of its sub-jaxprs."""
    for eqn in jaxpr.eqns:
        out.extend(tuple(getattr(v.aval, "shape", ())) for v in eqn.outvars)
        for p in eqn.params.values():
            for sub in p if isinstance(p, list | tuple) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    walk_shapes(inner, out)
    return out


def square_arrays(fn, n, *args):
    """Shapes with at least two axes of length ``n`` in the program of ``fn(*args)`` (jaxpr and
    its lowered StableHLO text: lineax's solve primitive is only expanded on lowering)."""
    closed = jax.make_jaxpr(fn)(*args)
    found = [s for s in walk_shapes(closed.jaxpr, []) if sum(d == n for d in s) >= 2]
    text = jax.jit(fn).lower(*args).as_text()
    found += [t for t in set(_tensor_types(text)) if t.count(str(n)) >= 2]
    return found


def _tensor_types(text):
    import re

    for m in re.finditer(r"tensor<([0-9x]+)x[a-z]", text):
        yield tuple(m.group(1).split("x"))


# ------------------------------------------------------------------------- operator
@pytest.fixture(scope="module")
def matrix():
    return random_matrix(40, 0.08, 0)


def test_operator_matches_scipy_matrix(matrix):
    op = slx.SparseMatrixOperator.from_scipy(matrix)
    x = np.random.default_rng(1).standard_normal(40)
    assert_close(op.mv(jnp.asarray(x)), matrix @ x, 1e-14)
    assert_close(op.as_matrix(), matrix.toarray(), 0)
    assert_close(op.T.as_matrix(), matrix.T.toarray(), 0)
    assert_close(op.T.mv(jnp.asarray(x)), matrix.T @ x, 1e-14)
    assert op.in_structure() == jax.ShapeDtypeStruct((40,), jnp.float64)
    assert op.out_structure() == jax.ShapeDtypeStruct((40,), jnp.float64)
    assert lx.materialise(op) is op and lx.linearise(op) is op


def test_operator_rectangular_and_vmap():
    a = sp.random(7, 11, 0.3, random_state=3, format="csc")
    op = slx.SparseMatrixOperator.from_scipy(a)
    assert op.in_size() == 11 and op.out_size() == 7
    x = np.random.default_rng(2).standard_normal(11)
    assert_close(op.mv(jnp.asarray(x)), a @ x, 1e-14)
    assert_close(op.T.mv(jnp.ones(7)), a.T @ np.ones(7), 1e-14)
    datas = jnp.stack([op.data, 2.0 * op.data])
    ys = jax.vmap(lambda d: slx.SparseMatrixOperator(op.pattern, d).mv(jnp.asarray(x)))(datas)
    assert_close(ys, np.stack([a @ x, 2 * (a @ x)]), 1e-14)


def test_operator_mv_differentiates_in_values(matrix):
    op = slx.SparseMatrixOperator.from_scipy(matrix)
    x = jnp.linspace(-1.0, 1.0, 40)
    g = jax.grad(lambda d: jnp.sum(slx.SparseMatrixOperator(op.pattern, d).mv(x) ** 2))(op.data)
    ref = jax.grad(lambda a: jnp.sum((a @ x) ** 2))(jnp.asarray(matrix.toarray()))
    assert_close(g, np.asarray(ref)[op.pattern.csc_indices, op.pattern.csc_cols], 1e-13)


def test_structure_queries_follow_pattern_and_tags():
    n = 9
    diag = slx.SparseMatrixOperator.from_scipy(sp.diags(np.arange(1.0, n + 1)))
    tri = slx.SparseMatrixOperator.from_scipy(
        sp.diags([np.arange(1.0, n), np.arange(2.0, n + 2), -np.arange(1.0, n)], [-1, 0, 1])
    )
    lower = slx.SparseMatrixOperator.from_scipy(sp.tril(random_matrix(n, 0.5, 4)))
    upper = slx.SparseMatrixOperator.from_scipy(sp.triu(random_matrix(n, 0.5, 4)))
    general = slx.SparseMatrixOperator.from_scipy(random_matrix(n, 0.5, 4))
    assert lx.is_diagonal(diag) and lx.is_symmetric(diag) and lx.is_tridiagonal(diag)
    assert lx.is_tridiagonal(tri) and not lx.is_diagonal(tri) and not lx.is_symmetric(tri)
    assert lx.is_lower_triangular(lower) and not lx.is_upper_triangular(lower)
    assert lx.is_upper_triangular(upper) and not lx.is_lower_triangular(upper)
    for q in (lx.is_diagonal, lx.is_tridiagonal, lx.is_lower_triangular, lx.is_symmetric):
        assert not q(general)
    for q in (lx.has_unit_diagonal, lx.is_positive_semidefinite, lx.is_negative_semidefinite):
        assert not q(general)
    tagged = slx.SparseMatrixOperator(general.pattern, general.data, lx.symmetric_tag)
    assert lx.is_symmetric(tagged) and tagged.T is tagged
    psd = slx.SparseMatrixOperator(general.pattern, general.data, lx.positive_semidefinite_tag)
    assert lx.is_positive_semidefinite(psd) and lx.is_symmetric(psd)
    unit = slx.SparseMatrixOperator(general.pattern, general.data, [lx.unit_diagonal_tag])
    assert lx.has_unit_diagonal(unit)
    # values gathered from the pattern, zeros where it has none
    d, lo, up = lx.tridiagonal(general)
    dense = general.as_matrix()
    assert_close(d, jnp.diag(dense), 0)
    assert_close(lo, jnp.diag(dense, -1), 0)
    assert_close(up, jnp.diag(dense, 1), 0)
    assert_close(lx.diagonal(tri), jnp.diag(tri.as_matrix()), 0)
    # lineax's own structured solvers run on it through the registrations
    b = jnp.arange(1.0, n + 1)
    for op in (diag, tri):
        x = lx.linear_solve(op, b, lx.AutoLinearSolver(well_posed=True)).value
        assert_close(x, np.linalg.solve(np.asarray(op.as_matrix()), b))


def test_conj_of_complex_operator():
    a = random_matrix(12, 0.3, 5, complex)
    op = slx.SparseMatrixOperator.from_scipy(a)
    assert op.in_structure().dtype == jnp.complex128
    assert_close(lx.conj(op).as_matrix(), a.conj().toarray(), 0)


def test_operator_errors(matrix):
    op = slx.SparseMatrixOperator.from_scipy(matrix)
    with pytest.raises(TypeError, match="SparsityPattern"):
        slx.SparseMatrixOperator(matrix, op.data)
    with pytest.raises(ShapeError, match=f"{op.pattern.nnz} values"):
        slx.SparseMatrixOperator(op.pattern, op.data[:-1])
    with pytest.raises(ShapeError, match=r"shape \(40,\)"):
        op.mv(jnp.ones(39))
    with pytest.raises(TypeError, match="MatrixLinearOperator"):
        slx.SparseMatrixOperator.from_scipy(matrix.toarray())
    rect = slx.SparseMatrixOperator.from_scipy(sp.random(3, 4, 0.5, random_state=0))
    with pytest.raises(ShapeError, match="square"):
        lx.diagonal(rect)
    with pytest.raises(ShapeError, match="square"):
        lx.tridiagonal(rect)
    # integer values are promoted, as lineax's MatrixLinearOperator does
    ints = slx.SparseMatrixOperator(op.pattern, np.ones(op.pattern.nnz, dtype=np.int32))
    assert jnp.issubdtype(ints.data.dtype, jnp.floating)


# ------------------------------------------------------------------------- SparseLU on matrices
@pytest.mark.parametrize("dominant", [True, False])
def test_sparse_lu_matches_dense_lu_and_spsolve(dominant):
    a = random_matrix(60, 0.06, 6, dominant=dominant)
    b = np.random.default_rng(7).standard_normal(60)
    op = slx.SparseMatrixOperator.from_scipy(a)
    sol = lx.linear_solve(op, jnp.asarray(b), slx.SparseLU(), throw=False)
    assert sol.result == lx.RESULTS.successful
    assert_close(sol.value, spsolve(a, b), 1e-10)
    assert_close(sol.value, dense_solve(jnp.asarray(a.toarray()), jnp.asarray(b)), 1e-10)


def test_sparse_lu_pattern_without_diagonal():
    # two cyclic shifts: no stored diagonal at all (SparseLU adds it, as zeros)
    n = 30
    i = np.arange(n)
    a = sp.csc_matrix((np.arange(1.0, n + 1), (i, (i + 3) % n)), shape=(n, n))
    a = sp.csc_matrix(a + sp.csc_matrix((0.1 * np.ones(n), (i, (i + 7) % n)), shape=(n, n)))
    b = np.arange(n, dtype=float)
    op = slx.SparseMatrixOperator.from_scipy(a)
    assert op.pattern.nnz < op.pattern.union(SparsityPattern.identity(n)).nnz
    assert_close(lx.linear_solve(op, jnp.asarray(b), slx.SparseLU()).value, spsolve(a, b), 1e-10)


def test_sparse_lu_complex_transpose_and_conj():
    a = random_matrix(25, 0.15, 9, complex)
    b = np.random.default_rng(10).standard_normal(25) + 1j
    op = slx.SparseMatrixOperator.from_scipy(a)
    solver = slx.SparseLU()
    state = solver.init(op, {})
    x, result, _ = solver.compute(state, jnp.asarray(b), {})
    assert result == lx.RESULTS.successful
    assert_close(x, spsolve(a, b), 1e-10)
    t_state, _ = solver.transpose(state, {})
    assert_close(solver.compute(t_state, jnp.asarray(b), {})[0], spsolve(a.T.tocsc(), b), 1e-10)
    c_state, _ = solver.conj(state, {})
    assert_close(solver.compute(c_state, jnp.asarray(b), {})[0], spsolve(a.conj(), b), 1e-10)
    ct_state, _ = solver.transpose(c_state, {})
    assert_close(solver.compute(ct_state, jnp.asarray(b), {})[0], spsolve(a.conj().T, b), 1e-10)
    assert solver.assume_full_rank()


def test_jaxlu_transposed_solve():
    a = random_matrix(35, 0.1, 11, dominant=False)
    op = slx.SparseMatrixOperator.from_scipy(a)
    lu = JaxLU().bind(op.pattern.union(SparsityPattern.identity(35)))
    fac = lu.factor(op.data) if lu.plan.nnz == op.pattern.nnz else None
    assert fac is not None  # random_matrix stores its whole diagonal
    b = jnp.linspace(0.0, 1.0, 35)
    x, ok = lu.solve_checked(fac, b, transpose=True)
    assert bool(ok)
    assert_close(x, spsolve(a.T.tocsc(), np.asarray(b)), 1e-10)
    assert_close(lu.solve(fac, b, transpose=True), x, 0)
    # differentiable in b through the transposed solve (the transpose of A^-T is A^-1)
    g = jax.grad(lambda v: jnp.sum(lu.solve(fac, v, transpose=True) * b))(b)
    assert_close(g, spsolve(a, np.asarray(b)), 1e-10)


def test_sparse_lu_gradients_match_dense(matrix):
    op = slx.SparseMatrixOperator.from_scipy(matrix)
    pattern = op.pattern
    b = jnp.cos(jnp.arange(40.0))

    def loss(data, b, solver, dense):
        m = slx.SparseMatrixOperator(pattern, data)
        if dense:
            m = lx.MatrixLinearOperator(m.as_matrix())
        return jnp.sum(jnp.sin(lx.linear_solve(m, b, solver).value))

    g = jax.grad(loss, argnums=(0, 1))(op.data, b, slx.SparseLU(), False)
    ref = jax.grad(loss, argnums=(0, 1))(op.data, b, lx.LU(), True)
    assert_close(g[0], ref[0], 1e-10)
    assert_close(g[1], ref[1], 1e-10)
    # forward mode too
    t = jax.jvp(lambda d: loss(d, b, slx.SparseLU(), False), (op.data,), (jnp.ones_like(op.data),))
    tr = jax.jvp(lambda d: loss(d, b, lx.LU(), True), (op.data,), (jnp.ones_like(op.data),))
    assert_close(t[1], tr[1], 1e-10)


def test_sparse_lu_jit_vmap_and_state_reuse(matrix):
    op = slx.SparseMatrixOperator.from_scipy(matrix)
    solver = slx.SparseLU()
    bs = jnp.stack([jnp.ones(40), jnp.arange(40.0)])
    datas = jnp.stack([op.data, op.data * 1.5])

    @jax.jit
    def solve(d, b):
        return lx.linear_solve(slx.SparseMatrixOperator(op.pattern, d), b, solver).value

    xs = jax.vmap(solve)(datas, bs)
    for k, scale in enumerate([1.0, 1.5]):
        assert_close(xs[k], spsolve(scale * matrix, np.asarray(bs[k])), 1e-10)
    state = solver.init(op, {})
    for b in bs:
        x = lx.linear_solve(op, b, solver, state=state).value
        assert_close(x, spsolve(matrix, np.asarray(b)), 1e-10)


def test_singular_and_nonfinite_are_results_not_exceptions():
    n = 20
    base = random_matrix(n, 0.1, 12)
    pattern = SparsityPattern.from_scipy(base)
    good = np.asarray(base[pattern.csc_indices, pattern.csc_cols]).ravel()
    data = np.where(pattern.csc_indices == 5, 0.0, good)  # row 5 stored but zero: singular
    solve = jax.jit(
        lambda d: (
            lx.linear_solve(
                slx.SparseMatrixOperator(pattern, d), jnp.ones(n), slx.SparseLU(), throw=False
            ).result
        )
    )
    assert solve(jnp.asarray(data)) == lx.RESULTS.singular
    assert solve(jnp.full(pattern.nnz, jnp.nan)) != lx.RESULTS.successful
    assert solve(jnp.asarray(good)) == lx.RESULTS.successful
    with pytest.raises(Exception, match="singular"):
        lx.linear_solve(
            slx.SparseMatrixOperator(pattern, jnp.asarray(data)), jnp.ones(n), slx.SparseLU()
        ).value.block_until_ready()


def test_sparse_lu_errors(matrix):
    solver = slx.SparseLU()
    with pytest.raises(TypeError, match="SparseMatrixOperator.from_scipy"):
        solver.init(lx.MatrixLinearOperator(jnp.eye(3)), {})
    with pytest.raises(TypeError, match="lineax.LU"):
        solver.init(lx.DiagonalLinearOperator(jnp.ones(3)), {})
    rect = slx.SparseMatrixOperator.from_scipy(sp.random(3, 4, 0.5, random_state=0))
    with pytest.raises(ShapeError, match="square"):
        solver.init(rect, {})
    with pytest.raises(TypeError, match="JaxLU"):
        slx.SparseLU(lu="jax")
    with pytest.raises(ValueError, match="mode"):
        slx.SparseLU(mode="sideways")
    with pytest.raises(TypeError, match="sparsity"):
        slx.SparseLU(sparsity=[[1, 0], [0, 1]])
    op = lx.JacobianLinearOperator(lambda y, a: y**2, jnp.ones(4))
    with pytest.raises(ShapeError, match="4 x 4"):
        slx.SparseLU(sparsity=sp.identity(5)).init(op, {})
    # tagged operators are unwrapped
    tagged = lx.TaggedLinearOperator(slx.SparseMatrixOperator.from_scipy(matrix), ())
    x = lx.linear_solve(tagged, jnp.ones(40), solver).value
    assert_close(x, spsolve(matrix, np.ones(40)), 1e-10)


def test_untraceable_function_is_a_tracing_error():
    # SparseLU traces the operator's function for its cache key; a function JAX cannot trace
    # (numpy on a traced input) gives stiffasd's TracingError with the fix (lineax's own shape
    # evaluation in `init` usually meets it first, so the key is traced here directly)
    from stiffasd.errors import TracingError
    from stiffasd.lineax import _Function, _Struct

    fn = _Function(lambda z, c: z * np.sum(np.asarray(z)), None, _Struct.of(jnp.ones(4)))
    with pytest.raises(TracingError, match=r"SparseLU .*jax\.numpy"):
        fn.key(jnp.float64)


# ------------------------------------------------------------------------- function operators
N = 48


def lap(w):
    return jnp.pad(w, 1)[2:] - 2.0 * w + jnp.pad(w, 1)[:-2]


def bratu(y, lam):
    """A 1D Bratu-type residual on a pytree state (two coupled fields): tridiagonal blocks."""
    u, v = y["u"], y["v"]
    return {"u": lap(u) + lam * jnp.exp(0.1 * u) - 0.3 * v, "v": lap(v) - v + 0.2 * u**2}


def flat_bratu(z, lam):
    return jnp.concatenate(jax.tree.leaves(bratu({"u": z[:N], "v": z[N:]}, lam)))


@pytest.fixture
def point():
    return {"u": jnp.linspace(0.0, 1.0, N), "v": jnp.cos(jnp.arange(N) * 0.3)}


def test_jacobian_operator_solve_matches_jacfwd(point):
    lam = jnp.asarray(0.7)
    op = lx.JacobianLinearOperator(bratu, point, lam)
    b = {"u": jnp.ones(N), "v": jnp.arange(N) / N}
    x = lx.linear_solve(op, b, slx.SparseLU()).value
    z = jnp.concatenate([point["u"], point["v"]])
    jac = jax.jacfwd(flat_bratu)(z, lam)
    ref = np.linalg.solve(np.asarray(jac), np.concatenate([b["u"], b["v"]]))
    assert_close(jnp.concatenate([x["u"], x["v"]]), ref, 1e-10)
    assert set(x) == {"u", "v"} and x["u"].shape == (N,)


def test_function_operator_and_reverse_mode(point):
    lam = 0.4
    z = jnp.concatenate([point["u"], point["v"]])
    jac = np.asarray(jax.jacfwd(flat_bratu)(z, lam))
    b = jnp.sin(jnp.arange(2.0 * N))
    _, lin = jax.linearize(lambda w: flat_bratu(w, lam), z)
    fop = lx.FunctionLinearOperator(lin, jax.ShapeDtypeStruct((2 * N,), z.dtype))
    assert_close(lx.linear_solve(fop, b, slx.SparseLU()).value, np.linalg.solve(jac, b), 1e-10)

    # a function that only has a reverse-mode derivative (custom_vjp): jac="bwd" -> VJPs
    @jax.custom_vjp
    def f(w):
        return flat_bratu(w, lam)

    f.defvjp(lambda w: (f(w), w), lambda w, g: jax.vjp(lambda q: flat_bratu(q, lam), w)[1](g))
    bop = lx.JacobianLinearOperator(lambda w, _: f(w), z, jac="bwd")
    x = lx.linear_solve(bop, b, slx.SparseLU()).value
    assert_close(x, np.linalg.solve(jac, b), 1e-10)


def test_detection_is_cached_per_function_structure(point):
    slx.clear_cache()
    solve = jax.jit(
        lambda y, lam, b: (
            lx.linear_solve(lx.JacobianLinearOperator(bratu, y, lam), b, slx.SparseLU()).value
        )
    )
    b = jax.tree.map(jnp.ones_like, point)
    misses = slx._cache.misses
    solve(point, 0.5, b)
    assert slx._cache.misses == misses + 1
    (prepared,) = slx._cache._store.values()
    # the detected pattern is exact: two tridiagonal blocks, a diagonal and a diagonal coupling
    assert prepared.sj.pattern.nnz == 2 * (3 * N - 2) + 2 * N
    # new values, new point: no new detection; a new structure: one more
    x2 = solve(jax.tree.map(lambda a: a + 1.0, point), 0.9, b)
    lx.linear_solve(lx.JacobianLinearOperator(bratu, point, jnp.asarray(0.5)), b, slx.SparseLU())
    assert slx._cache.misses == misses + 1
    z = jnp.concatenate([point["u"], point["v"]]) + 1.0
    ref = np.linalg.solve(np.asarray(jax.jacfwd(flat_bratu)(z, 0.9)), np.ones(2 * N))
    assert_close(jnp.concatenate([x2["u"], x2["v"]]), ref, 1e-10)
    half = {"u": point["u"][: N // 2], "v": point["v"][: N // 2]}
    lx.linear_solve(
        lx.JacobianLinearOperator(bratu, half, 0.5),
        jax.tree.map(jnp.ones_like, half),
        slx.SparseLU(),
    )
    assert slx._cache.misses == misses + 2


def test_known_sparsity_skips_detection(point):
    z = jnp.concatenate([point["u"], point["v"]])
    jac = np.asarray(jax.jacfwd(flat_bratu)(z, 0.5))
    known = sp.csc_matrix(np.abs(jac) > 0) + sp.identity(2 * N)
    slx.clear_cache()
    solver = slx.SparseLU(sparsity=known)
    op = lx.JacobianLinearOperator(flat_bratu, z, 0.5)
    x = lx.linear_solve(op, jnp.ones(2 * N), solver).value
    assert_close(x, np.linalg.solve(jac, np.ones(2 * N)), 1e-10)
    (prepared,) = slx._cache._store.values()
    assert prepared.sj.pattern == SparsityPattern.from_scipy(known)


def test_jacobian_operator_solve_has_no_dense_array():
    n = 301  # no front or color count of a tridiagonal system comes near it

    def f(y, p):
        return jnp.pad(y, 1)[2:] - 2.0 * y + jnp.pad(y, 1)[:-2] - p * jnp.sinh(y)

    def solve(y, p):
        op = lx.JacobianLinearOperator(f, y, p)
        return lx.linear_solve(op, jnp.ones(n), slx.SparseLU()).value

    y = jnp.linspace(0.0, 1.0, n)
    assert square_arrays(solve, n, y, 0.5) == []

    def dense(y, p):
        return lx.linear_solve(lx.JacobianLinearOperator(f, y, p), jnp.ones(n), lx.LU()).value

    assert square_arrays(dense, n, y, 0.5) != []  # the scan sees a dense solve


# ------------------------------------------------------------------------- optimistix
def reaction_diffusion(y, args):
    """Steady 1D reaction-diffusion with a per-node source: the root y*(k, s) is sparse-coupled."""
    k, s = args
    lap = jnp.pad(y, 1)[2:] - 2.0 * y + jnp.pad(y, 1)[:-2]
    return lap - k * y / (1.0 + y**2) + s


M = 60
SOURCE = 0.05 * (1.0 + jnp.sin(jnp.arange(M) * 0.2))


@pytest.mark.parametrize("method", ["newton", "chord"])
def test_root_find_with_sparse_lu_matches_dense(method):
    cls = optx.Newton if method == "newton" else optx.Chord
    y0 = jnp.zeros(M)
    args = (0.8, SOURCE)
    sparse = optx.root_find(
        reaction_diffusion, cls(1e-12, 1e-12, linear_solver=slx.SparseLU()), y0, args
    )
    dense = optx.root_find(reaction_diffusion, cls(1e-12, 1e-12), y0, args)
    assert sparse.result == optx.RESULTS.successful
    assert_close(sparse.value, dense.value, 1e-10)
    assert float(jnp.max(jnp.abs(reaction_diffusion(sparse.value, args)))) < 1e-12
    if method == "newton":
        assert sparse.stats["num_steps"] == dense.stats["num_steps"]


def test_implicit_adjoint_gradients_match_dense_and_jacfwd():
    def loss(k, s, adjoint):
        sol = optx.root_find(
            reaction_diffusion,
            optx.Newton(1e-12, 1e-12, linear_solver=slx.SparseLU()),
            jnp.zeros(M),
            (k, s),
            adjoint=adjoint,
        )
        return jnp.sum(sol.value**2 * jnp.arange(M))

    sparse_adj = optx.ImplicitAdjoint(linear_solver=slx.SparseLU())
    g = jax.grad(loss, argnums=(0, 1))(0.8, SOURCE, sparse_adj)
    ref = jax.grad(loss, argnums=(0, 1))(0.8, SOURCE, optx.ImplicitAdjoint())
    assert_close(g[0], ref[0], 1e-9)
    assert_close(g[1], ref[1], 1e-9)
    # and against the implicit function theorem written out with dense jax.jacfwd
    y = optx.root_find(
        reaction_diffusion, optx.Newton(1e-12, 1e-12), jnp.zeros(M), (0.8, SOURCE)
    ).value
    jy = jax.jacfwd(reaction_diffusion)(y, (0.8, SOURCE))
    js = jax.jacfwd(lambda s: reaction_diffusion(y, (0.8, s)))(SOURCE)
    dy_ds = -np.linalg.solve(np.asarray(jy), np.asarray(js))
    dl_dy = 2 * np.asarray(y) * np.arange(M)
    assert_close(g[1], dl_dy @ dy_ds, 1e-9)
    # forward mode through the same adjoint
    t = jax.jvp(lambda k: loss(k, SOURCE, sparse_adj), (0.8,), (1.0,))[1]
    assert_close(t, g[0], 1e-9)


def test_implicit_adjoint_gradient_has_no_dense_array():
    n = 301

    def loss(s, linear_solver):
        sol = optx.root_find(
            reaction_diffusion,
            optx.Newton(1e-10, 1e-10, linear_solver=slx.SparseLU()),
            jnp.zeros(n),
            (0.8, s),
            adjoint=optx.ImplicitAdjoint(linear_solver=linear_solver),
        )
        return jnp.sum(sol.value**2)

    s = jnp.full(n, 0.05)
    grad = jax.grad(loss)
    assert square_arrays(lambda s: grad(s, slx.SparseLU()), n, s) == []

    def dense(s):
        return grad(s, lx.AutoLinearSolver(well_posed=None))

    assert square_arrays(dense, n, s) != []


def test_sparse_lu_is_a_static_equal_solver():
    # equal configurations compare equal (no retrace of jitted callers per instance)
    assert slx.SparseLU() == slx.SparseLU()
    assert eqx.tree_equal(slx.SparseLU(mode="reverse"), slx.SparseLU(mode="reverse")) is True
