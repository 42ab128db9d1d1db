"""The sparse LU compiled into JAX (stiffasd.linalg.JaxLU): solves against scipy's spsolve on the
Newton matrices I - gamma J of every problem of stiffasd.problems and on random matrices, both
dense-kernel families, transposes, vmap, derivatives, and failure reporting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import spsolve

from benchmarks.linalg import newton_matrix as benchmark_newton_matrix
from stiffasd import SparsityPattern
from stiffasd.errors import ShapeError
from stiffasd.linalg import JaxLU, Relaxation, analyze
from stiffasd.problems import PROBLEMS

# instances large enough for several levels of fronts, small enough to compile quickly
INSTANCES = {
    "brusselator_2d": dict(N=10),
    "gray_scott_2d": dict(N=10),
    "allen_cahn_3d": dict(N=6),
    "advection_diffusion_reaction_2d": dict(N=14),
    "robertson_diffusion_2d": dict(N=7),
    "reservoir_exchange": dict(n_cells=150),
    "flame_1d": dict(N=90),
    "fitzhugh_nagumo_2d": dict(N=10),
}


def test_every_problem_is_covered():
    assert set(INSTANCES) == set(PROBLEMS)


def test_instances_are_sparse_fronts_not_one_dense_front():
    for name in INSTANCES:
        pattern, _ = newton_matrix(name, 0.1)
        assert analyze(pattern).stats["fronts"] > 1, name
    small = analyze(SparsityPattern.from_scipy(_random_matrix(40, 0.1, 0, "dominant")))
    assert small.stats["fronts"] == 1  # below Relaxation.dense: one dense front


def newton_matrix(name: str, gamma: float):
    """Pattern (J's plus the diagonal) and CSC values of I - gamma J at a perturbed state (the
    linalg benchmark's matrices, at this instance)."""
    return benchmark_newton_matrix(PROBLEMS[name](**INSTANCES[name]), gamma)


def to_scipy(pattern: SparsityPattern, data) -> sp.csc_matrix:
    return sp.csc_matrix(
        (np.asarray(data), pattern.csc_indices, pattern.csc_indptr), shape=pattern.shape
    )


def solve_fn(lu):
    return jax.jit(lambda d, b: lu.solve_checked(lu.factor(d), b))


def rel_err(x, ref) -> float:
    return float(np.max(np.abs(np.asarray(x) - ref)) / max(np.max(np.abs(ref)), 1e-300))


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_newton_matrices_of_every_problem_match_spsolve(name):
    rng = np.random.default_rng(0)
    for gamma in (1e-3, 0.3):  # near the identity, and far from it
        pattern, data = newton_matrix(name, gamma)
        lu = JaxLU().bind(pattern)
        b = rng.standard_normal(pattern.shape[0])
        x, ok = solve_fn(lu)(data, b)
        assert bool(ok)
        assert rel_err(x, spsolve(to_scipy(pattern, data), b)) < 1e-10, (name, gamma)


@pytest.mark.parametrize("name", ["brusselator_2d", "reservoir_exchange", "allen_cahn_3d"])
def test_xla_kernels_match_spsolve(name):
    """The XLA-only dense kernels (the accelerator default) give the same solves on a CPU,
    with several panels per front (panel width 4)."""
    pattern, data = newton_matrix(name, 0.3)
    lu = JaxLU(kernels="xla", relax=Relaxation(panel=4)).bind(pattern)
    assert max(b.P // b.nb for b in lu.plan.buckets) > 1
    b = np.random.default_rng(2).standard_normal(pattern.shape[0])
    x, ok = solve_fn(lu)(data, b)
    assert bool(ok)
    assert rel_err(x, spsolve(to_scipy(pattern, data), b)) < 1e-10


def test_arrowhead_dense_row_and_column_go_last():
    pattern, data = newton_matrix("reservoir_exchange", 1.0)
    plan = analyze(pattern)
    assert plan.perm[-1] == pattern.shape[0] - 1  # the reservoir couples to every cell
    assert plan.stats["max_front"] < 20  # a chain with a hub: small fronts, not a dense block


def _random_matrix(n, density, seed, kind):
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=density, random_state=rng, format="csc")
    A.data = rng.standard_normal(A.nnz)
    if kind == "dominant":
        A = A + sp.diags(np.abs(A).sum(axis=1).A1 + 1.0)
    else:  # indefinite: random signs on a diagonal that does not dominate
        A = A + sp.diags(rng.choice([-1.0, 1.0], n) * rng.uniform(0.1, 1.0, n))
    A = sp.csc_matrix(A)
    A.sort_indices()
    return A


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["dominant", "indefinite"]),
)
def test_random_matrices_match_spsolve(n, density, seed, kind):
    A = _random_matrix(n, density, seed, kind)
    assume(np.linalg.cond(A.toarray()) < 1e4)
    pattern = SparsityPattern.from_scipy(A)
    data = A.toarray()[pattern.csc_indices, pattern.csc_cols]
    b = np.random.default_rng(seed + 1).standard_normal(n)
    lu = JaxLU().bind(pattern)
    x, ok = lu.solve_checked(lu.factor(jnp.asarray(data)), jnp.asarray(b))
    assert bool(ok)
    assert rel_err(x, spsolve(A, b)) < 1e-10


def _small_case(n=160, seed=3):
    A = _random_matrix(n, 0.02, seed, "dominant")
    pattern = SparsityPattern.from_scipy(A)
    return A, pattern, jnp.asarray(A.toarray()[pattern.csc_indices, pattern.csc_cols])


def test_transpose_solve_and_derivatives_match_dense():
    A, pattern, data = _small_case()
    n = A.shape[0]
    lu = JaxLU().bind(pattern)
    rows, cols = pattern.csc_indices, pattern.csc_cols

    def dense(d):
        return jnp.zeros((n, n), d.dtype).at[rows, cols].set(d)

    b = jnp.asarray(np.random.default_rng(4).standard_normal(n))
    fac = lu.factor(data)
    xt = jax.linear_transpose(lambda v: lu.solve(fac, v), b)(b)[0]
    np.testing.assert_allclose(xt, np.linalg.solve(A.toarray().T, b), rtol=1e-10, atol=1e-12)

    def f(d, b):
        return jnp.sum(jnp.sin(lu.solve(lu.factor(d), b)))

    def f_dense(d, b):
        return jnp.sum(jnp.sin(jnp.linalg.solve(dense(d), b)))

    g, g_ref = jax.grad(f, (0, 1))(data, b), jax.grad(f_dense, (0, 1))(data, b)
    for a, r in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(jax.jacfwd(f)(data, b), g_ref[0], rtol=1e-9, atol=1e-12)
    # central finite differences in one direction of the matrix values
    v = jnp.asarray(np.random.default_rng(5).standard_normal(data.size))
    h = 1e-6
    fd = (f(data + h * v, b) - f(data - h * v, b)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(g[0], v), fd, rtol=1e-6)


def test_vmap_batches_matrices_sharing_the_pattern():
    A, pattern, data = _small_case()
    lu = JaxLU().bind(pattern)
    scales = jnp.asarray([1.0, -2.0, 0.5])
    datas = scales[:, None] * data
    bs = jnp.asarray(np.random.default_rng(6).standard_normal((3, A.shape[0])))
    xs = jax.vmap(lambda d, b: lu.solve(lu.factor(d), b))(datas, bs)
    for k in range(3):
        ref = np.linalg.solve(float(scales[k]) * A.toarray(), bs[k])
        np.testing.assert_allclose(xs[k], ref, rtol=1e-10, atol=1e-12)


def test_complex_and_float32_values():
    A, pattern, data = _small_case()
    lu = JaxLU().bind(pattern)
    b = jnp.asarray(np.random.default_rng(7).standard_normal(A.shape[0]))
    dc, bc = data * (1 + 0.5j), b * (1 - 1j)
    ref = np.linalg.solve(A.toarray() * (1 + 0.5j), np.asarray(bc))
    np.testing.assert_allclose(lu.solve(lu.factor(dc), bc), ref, rtol=1e-10)
    x32 = lu.solve(lu.factor(data.astype(jnp.float32)), b.astype(jnp.float32))
    assert x32.dtype == jnp.float32
    assert rel_err(x32, np.linalg.solve(A.toarray(), b)) < 1e-5


def test_identity_state_solves_as_identity():
    A, pattern, data = _small_case()
    lu = JaxLU().bind(pattern)
    b = jnp.arange(A.shape[0], dtype=float)
    x, ok = lu.solve_checked(lu.identity(data), b)
    assert bool(ok)
    np.testing.assert_array_equal(x, b)


def test_singular_and_nan_matrices_are_reported_not_returned():
    A, pattern, data = _small_case()
    lu = JaxLU().bind(pattern)
    b = jnp.ones(A.shape[0])
    # a zero matrix, a structurally fine but numerically singular one, NaN values
    col0 = np.asarray(pattern.csc_cols) == 0
    for bad in (jnp.zeros_like(data), jnp.where(col0, 0.0, data), data.at[3].set(jnp.nan)):
        x, ok = lu.solve_checked(lu.factor(bad), b)
        assert not bool(ok)


def test_static_pivoting_recovers_a_zero_diagonal():
    """A zero in the pivot block where partial pivoting inside the block finds no better row:
    the pivot is perturbed, counted, and refinement restores the solution."""
    n = 6
    A = np.eye(n) * 3 + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    A[0, 0] = 0.0  # the first pivot of a front whose only other candidate is below it
    pattern = SparsityPattern.from_dense(A != 0)
    data = jnp.asarray(A[pattern.csc_indices, pattern.csc_cols])
    lu = JaxLU().bind(pattern)
    b = jnp.arange(1.0, n + 1)
    fac = lu.factor(data)
    x, ok = lu.solve_checked(fac, b)
    assert bool(ok)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-12)


def test_bad_input_errors_name_the_argument():
    A, pattern, data = _small_case()
    with pytest.raises(TypeError, match="bind"):
        JaxLU().bind(A)
    with pytest.raises(ShapeError, match="square"):
        JaxLU().bind(SparsityPattern.from_dense(np.ones((2, 3), bool)))
    lu = JaxLU().bind(pattern)
    with pytest.raises(ShapeError, match="values of the pattern"):
        lu.factor(data[:-1])
    with pytest.raises(ShapeError, match=r"solve\(b=...\)"):
        lu.solve(lu.factor(data), jnp.ones(3))
    with pytest.raises(ValueError, match="kernels"):
        JaxLU(kernels="cusolver")
    with pytest.raises(ValueError, match="max_refine"):
        JaxLU(max_refine=-1)
    with pytest.raises(ShapeError, match="diagonal"):
        JaxLU().bind(SparsityPattern.from_dense(np.array([[0, 1], [1, 0]], bool))).identity(
            jnp.ones(2)
        )


def test_analysis_is_cached_per_pattern():
    A, pattern, data = _small_case()
    lu1, lu2 = JaxLU().bind(pattern), JaxLU().bind(SparsityPattern.from_scipy(A))
    assert lu1.plan is lu2.plan


@pytest.mark.gpu
def test_gpu_factor_and_solve_match_spsolve():
    if jax.default_backend() != "gpu":
        pytest.skip("no GPU in this environment")
    pattern, data = newton_matrix("brusselator_2d", 0.3)
    lu = JaxLU().bind(pattern)
    assert lu.kernels == "xla"
    b = np.random.default_rng(8).standard_normal(pattern.shape[0])
    x, ok = solve_fn(lu)(data, b)
    assert bool(ok)
    assert rel_err(x, spsolve(to_scipy(pattern, data), b)) < 1e-10


@pytest.mark.parametrize("kernels", ["lapack", "xla"])
def test_strict_promotion_modes(kernels):
    """diffrax's own configuration raises on rank promotion and implicit dtype promotion: the
    factorization, solves, vmap and grad must not rely on either."""
    A, pattern, data = _small_case()
    b = jnp.ones(A.shape[0])
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        lu = JaxLU(kernels=kernels, relax=Relaxation(panel=4)).bind(pattern)
        x, ok = jax.jit(lambda d: lu.solve_checked(lu.factor(d), b))(data)
        jax.grad(lambda d: jnp.sum(lu.solve(lu.factor(d), b)))(data)
        jax.vmap(lambda d: lu.solve(lu.factor(d), b))(jnp.stack([data, 2 * data]))
        lu.solve(lu.identity(data), b)
    assert bool(ok)
    np.testing.assert_allclose(x, np.linalg.solve(A.toarray(), b), rtol=1e-10)


def test_auto_lu_chooses_by_backend_size_and_blas_threads(monkeypatch):
    from stiffasd.linalg import DirectLU, auto
    from stiffasd.linalg.jaxlu import BLAS_THREADED_FRONT

    small = SparsityPattern.from_scipy(_random_matrix(40, 0.1, 0, "dominant"))  # one 40 front
    tiny = SparsityPattern.from_scipy(sp.identity(20, format="csc"))  # 1-by-1 fronts
    big = SparsityPattern.from_scipy(sp.identity(auto.CPU_JAX_MAX_N + 1, format="csc"))
    assert analyze(small).stats["max_front"] >= BLAS_THREADED_FRONT
    assert analyze(tiny).stats["max_front"] < BLAS_THREADED_FRONT

    assert isinstance(auto.AutoLU(backend="gpu").choose(big), JaxLU)
    assert isinstance(auto.AutoLU(backend="cpu").choose(big), DirectLU)
    assert isinstance(auto.AutoLU(backend="cpu", cpu_max_n=10**6).choose(big), JaxLU)
    for threads, small_choice in [(1, JaxLU), (4, DirectLU)]:
        monkeypatch.setattr(auto, "blas_threads", lambda t=threads: t)
        assert isinstance(auto.AutoLU(backend="cpu").choose(small), small_choice)
        assert isinstance(auto.AutoLU(backend="cpu").choose(tiny), JaxLU)  # no BLAS threads woken


def test_multithreaded_blas_warns_once_for_large_cpu_fronts(monkeypatch):
    from stiffasd.errors import PerformanceWarning
    from stiffasd.linalg import jaxlu

    if jax.default_backend() != "cpu":
        pytest.skip("the warning concerns CPU LAPACK kernels")
    monkeypatch.setattr(jaxlu, "blas_threads", lambda: 4)
    monkeypatch.setattr(jaxlu, "_BLAS_WARNED", [])
    small = SparsityPattern.from_scipy(_random_matrix(40, 0.1, 0, "dominant"))
    with pytest.warns(PerformanceWarning, match="OPENBLAS_NUM_THREADS=1"):
        JaxLU().bind(small)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JaxLU().bind(small)  # once per process
        JaxLU(kernels="xla").bind(small)  # the XLA kernels call no BLAS
