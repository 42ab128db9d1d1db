"""stiffasd.scipy: drop-in BDF/Radau with fixed-pattern sparse LU, and LSODA's banded layout.

The solvers are compared with scipy's own BDF/Radau (same step sequence, counters and solution up
to rounding) on three JAX-free problems with analytic sparse Jacobians whose CSC index arrays are
cached (as `stiffasd.jac` returns them).
"""

import functools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp
from solver_problems import (
    Brusselator2D,
    DiffusionReaction1D,
    FixedPatternJac,
    Robertson,
)

import stiffasd.scipy as ss
from stiffasd import SparsityPattern
from stiffasd.errors import BandwidthError, MissingDependencyError, ShapeError

PROBLEMS = {
    "brusselator": lambda: Brusselator2D(12, t_end=2.0),
    "robertson": lambda: Robertson(t_end=1e4),
    "diffusion_reaction": lambda: DiffusionReaction1D(120),
}
METHODS = {"BDF": ss.BDF, "Radau": ss.Radau}


def _solve(P, method, **kw):
    kw.setdefault("rtol", 1e-4)
    kw.setdefault("atol", 1e-8)
    return solve_ivp(P.rhs, P.t_span, P.y0, method=method, **kw)


def _assert_same_run(ref, sol, rtol_y=1e-6, rtol_t=1e-6):
    """Same steps and counters; values equal up to rounding amplified by step-size control
    (error estimates are differences of nearly equal numbers)."""
    assert sol.status == ref.status == 0
    assert sol.t.size == ref.t.size, (sol.t.size, ref.t.size)
    np.testing.assert_allclose(sol.t, ref.t, rtol=rtol_t, atol=0)
    assert (sol.nfev, sol.njev, sol.nlu) == (ref.nfev, ref.njev, ref.nlu)
    scale = np.abs(ref.y).max()
    np.testing.assert_allclose(sol.y, ref.y, rtol=rtol_y, atol=rtol_y * scale)


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_same_steps_as_scipy_with_sparse_jac(problem, method):
    P = PROBLEMS[problem]()
    ref = _solve(P, method, jac=P.jac)
    sol = _solve(P, METHODS[method], jac=P.jac)
    _assert_same_run(ref, sol)
    stats = ss.last_lu_stats()
    # ordering/symbolic analysis once per solve, one numeric factorization per LU scipy counts
    assert stats["n_symbolic"] == 1
    assert stats["n_factor"] == sol.nlu


@pytest.mark.parametrize("method", sorted(METHODS))
def test_jac_sparsity_finite_differences(method):
    """No analytic jac: scipy's colored finite differences return fresh index arrays each time."""
    P = Brusselator2D(10, t_end=1.5)
    ref = _solve(P, method, jac_sparsity=P.sparsity)
    sol = _solve(P, METHODS[method], jac_sparsity=P.sparsity)
    _assert_same_run(ref, sol)
    assert ss.last_lu_stats()["n_symbolic"] == 1


@pytest.mark.parametrize("method", sorted(METHODS))
def test_dense_jac_falls_back_to_scipy(method):
    P = Robertson(t_end=1e3)
    dense = lambda t, y: P.jac(t, y).toarray()  # noqa: E731
    ref = _solve(P, method, jac=dense)
    sol = _solve(P, METHODS[method], jac=dense)
    _assert_same_run(ref, sol, rtol_y=0)
    assert ss.last_lu_stats() == {}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_constant_sparse_jac_and_csr(method):
    P = DiffusionReaction1D(60, k=0.0)  # linear: the Jacobian is the constant Laplacian
    J = P.lap.tocsr()
    ref = _solve(P, method, jac=J)
    sol = _solve(P, METHODS[method], jac=J)
    _assert_same_run(ref, sol)
    ref = _solve(P, method, jac=lambda t, y: J)
    sol = _solve(P, METHODS[method], jac=lambda t, y: J)
    _assert_same_run(ref, sol)


@functools.lru_cache(maxsize=1)
def _brusselator_fine_reference():
    P = Brusselator2D(8, t_end=1.5)
    return P, _solve(P, "Radau", jac=P.jac, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_tight_tolerance_accuracy_matches_scipy(method):
    """At tight tolerances a single run's error is not a property of the solver but a draw:
    Radau's Newton iterations stop at a fraction of the tolerance and its Jacobian-reuse and
    step decisions are discontinuous, so any rounding difference (another LU ordering or panel
    width, or scipy's own Radau with rtol changed by 1e-9) moves the final error over two
    decades (1e-10 to 6e-9 here, for scipy's Radau as for ours; BDF barely moves). Compare
    the error distributions over rounding-level perturbations of rtol instead: the geometric
    means agree within a factor 4 (about 3.5 standard deviations of that ratio over 16 draws;
    a solver that lost a digit fails), and every run meets the tolerance at the end."""
    P, ref_fine = _brusselator_fine_reference()
    scale = np.abs(ref_fine.y[:, -1]).max()
    rtols = 1e-7 * (1 + 1e-9 * np.arange(-8, 8))
    errors, steps = {}, {}
    for name, m in ((method, method), ("stiffasd", METHODS[method])):
        runs = [_solve(P, m, jac=P.jac, rtol=r, atol=1e-10) for r in rtols]
        errors[name] = np.array([np.abs(s.y[:, -1] - ref_fine.y[:, -1]).max() for s in runs])
        steps[name] = np.array([s.t.size for s in runs])
    gmean = {k: np.exp(np.log(v).mean()) for k, v in errors.items()}
    assert gmean["stiffasd"] < 4 * gmean[method], (gmean, errors)
    assert errors["stiffasd"].max() < 1e-7 * scale
    assert abs(steps["stiffasd"].mean() - steps[method].mean()) <= 0.05 * steps[method].mean()


def test_pattern_changes_are_followed():
    """A Jacobian whose pattern shrinks (entries dropped) reuses the analysis; one that grows past
    the analysed pattern triggers a new one; results stay equal to scipy's."""
    P = Brusselator2D(10, t_end=2.0)
    m = P.N * P.N
    calls = {"n": 0}

    def varying(t, y):
        calls["n"] += 1
        J = P.jac(t, y).tocoo()
        if calls["n"] % 3 == 0:  # drop the u-v coupling block: a sub-pattern (approximate J)
            keep = ~((J.row < m) & (J.col >= m))
            J = sp.coo_matrix((J.data[keep], (J.row[keep], J.col[keep])), shape=J.shape)
        J = J.tocsc()
        if calls["n"] == 5:  # a new far entry, too small to matter: outside the pattern
            J = (J + sp.csc_matrix(([1e-300], ([0], [P.n - 1])), shape=J.shape)).tocsc()
        return J

    ref = _solve(P, "BDF", jac=varying)
    n_calls = calls["n"]
    calls["n"] = 0
    sol = _solve(P, ss.BDF, jac=varying)
    _assert_same_run(ref, sol)
    assert n_calls >= 6 and calls["n"] == n_calls
    stats = ss.last_lu_stats()
    assert stats["n_symbolic"] == 2
    assert stats["n_factor"] == sol.nlu


@pytest.mark.parametrize("method", sorted(METHODS))
def test_panel_size_option_reaches_the_lu(method):
    P = PROBLEMS["diffusion_reaction"]()
    ref = _solve(P, METHODS[method], jac=P.jac)
    sol = _solve(P, METHODS[method], jac=P.jac, panel_size=1)
    _assert_same_run(ref, sol)
    solver = METHODS[method](P.rhs, P.t_span[0], P.y0, P.t_span[1], jac=P.jac, panel_size=1)
    solver.step()
    assert solver._newton_lu.flu.panel_size == 1
    with pytest.raises(ValueError, match=r"stiffasd.scipy.\w+\(panel_size=21\)"):
        _solve(P, METHODS[method], jac=P.jac, panel_size=21)


# --------------------------------------------------------------------------------------- banded
def _random_banded(n, lb, ub, seed=0):
    rng = np.random.default_rng(seed)
    A = sp.diags(
        [rng.standard_normal(n - abs(k)) for k in range(-lb, ub + 1)], list(range(-lb, ub + 1))
    ).tocsc()
    keep = rng.random(A.nnz) < 0.7  # holes inside the band
    A.data = A.data * keep
    A.eliminate_zeros()
    return A


@pytest.mark.parametrize("lb,ub", [(0, 0), (1, 1), (2, 0), (0, 3), (3, 2)])
def test_to_banded_matches_dense(lb, ub):
    n = 40
    A = _random_banded(n, lb, ub, seed=lb * 10 + ub)
    pattern = SparsityPattern.from_scipy(A)
    lband, uband, gather = ss.banded_layout(pattern)
    assert (lband, uband) == pattern.bandwidth()
    data = sp.csc_matrix(A).data  # CSC order of the canonical matrix = the pattern's CSC order
    packed = ss.to_banded(data, pattern, lband, uband)
    D = A.toarray()
    expected = np.zeros((lband + uband + 1, n))
    for k in range(-lband, uband + 1):  # loop over diagonals only
        d = np.diagonal(D, k)
        if k >= 0:
            expected[uband - k, k:] = d
        else:
            expected[uband - k, : n + k] = d
    np.testing.assert_array_equal(packed, expected)
    np.testing.assert_array_equal(ss.to_banded(data, pattern, lband, uband, gather=gather), packed)
    out = np.full_like(packed, 7.0)
    assert ss.to_banded(data, A, lband, uband, out=out) is out
    np.testing.assert_array_equal(out, packed)
    # wider bands than needed are fine (zero rows)
    wide = ss.to_banded(data, pattern, lband + 1, uband + 2)
    np.testing.assert_array_equal(wide[2 : 2 + lband + uband + 1], packed)


def test_banded_layout_too_wide_and_errors():
    P = Brusselator2D(8)
    with pytest.raises(BandwidthError, match="stiffasd.scipy.BDF"):
        ss.banded_layout(P.sparsity)
    lb, ub, _ = ss.banded_layout(P.sparsity, max_width_fraction=2.0)
    assert lb > 0 and ub > 0
    A = _random_banded(20, 1, 1)
    with pytest.raises(BandwidthError, match="lband"):
        ss.to_banded(sp.csc_matrix(A).data, A, 0, 1)
    with pytest.raises(ShapeError, match="nnz"):
        ss.to_banded(np.ones(3), A, 1, 1)
    with pytest.raises(ShapeError, match="square"):
        ss.banded_layout(sp.random(3, 4, density=0.5, format="csc"))
    with pytest.raises(TypeError, match="SparsityPattern"):
        ss.banded_layout(np.eye(3))


def test_lsoda_banded_matches_reference():
    P = DiffusionReaction1D(150)
    pattern = SparsityPattern.from_scipy(P.sparsity)
    lband, uband, gather = ss.banded_layout(pattern)
    assert (lband, uband) == (1, 1)
    njac = {"n": 0}

    def jac_banded(t, y):
        njac["n"] += 1
        return ss.to_banded(P.jac.data(t, y), pattern, lband, uband, gather=gather)

    ref = solve_ivp(P.rhs, P.t_span, P.y0, method="Radau", jac=P.jac, rtol=1e-10, atol=1e-12)
    sol = solve_ivp(
        P.rhs,
        P.t_span,
        P.y0,
        method="LSODA",
        jac=jac_banded,
        lband=lband,
        uband=uband,
        rtol=1e-8,
        atol=1e-10,
    )
    assert sol.status == 0 and njac["n"] > 0
    np.testing.assert_allclose(sol.y[:, -1], ref.y[:, -1], rtol=1e-6, atol=1e-8)
    # LSODA really used the analytic banded Jacobian: without it, it differences the band
    fd = solve_ivp(
        P.rhs, P.t_span, P.y0, method="LSODA", lband=lband, uband=uband, rtol=1e-8, atol=1e-10
    )
    assert fd.nfev > sol.nfev


def test_fixed_pattern_jac_helper_is_exact():
    """The test problems' Jacobians equal central finite differences (they are references)."""
    for P in (Brusselator2D(5), Robertson(), DiffusionReaction1D(12)):
        y = P.y0 + 0.1 * np.random.default_rng(0).random(P.n)
        J = P.jac(0.5, y).toarray()
        eps = 1e-6 * np.maximum(1.0, np.abs(y))
        E = np.diag(eps)
        fd = np.stack(
            [(P.rhs(0.5, y + E[j]) - P.rhs(0.5, y - E[j])) / (2 * eps[j]) for j in range(P.n)], 1
        )
        np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-6 * np.abs(J).max())
        assert isinstance(P.jac, FixedPatternJac)
        J1, J2 = P.jac(0.0, y), P.jac(1.0, y)
        assert J1.indices is not J2.indices or J1.indices is P.jac.indices


# ------------------------------------------------------------------------- with stiffasd.jac
@pytest.mark.parametrize("method", sorted(METHODS))
def test_with_stiffasd_jac_same_run_as_scipy(method):
    import stiffasd
    from stiffasd.problems import brusselator_2d

    # up to t = 1 (before the forcing switches on: the discontinuity at t = 1.1 makes Radau's
    # step sizes rounding-sensitive, see test_tight_tolerance_accuracy_matches_scipy)
    prob = brusselator_2d(8, t_span=(0.0, 1.0))
    fun = prob.numpy_rhs()
    jac = stiffasd.jac(prob.rhs)
    kw = dict(args=prob.args, jac=jac, rtol=1e-4, atol=1e-8)
    ref = solve_ivp(fun, prob.t_span, prob.y0, method=method, **kw)
    sol = solve_ivp(fun, prob.t_span, prob.y0, method=METHODS[method], **kw)
    _assert_same_run(ref, sol)
    stats = ss.last_lu_stats()
    assert stats["n_symbolic"] == 1 and stats["n_factor"] == sol.nlu
    assert stats["ordering"] == "METIS"  # a 2D grid whose Newton matrices do not pivot
    # the analytic numpy Jacobian of the same problem gives the same run
    P = Brusselator2D(8, t_end=1.0)
    np.testing.assert_allclose(fun(0.3, prob.y0, *prob.args), P.rhs(0.3, prob.y0), rtol=1e-12)
    alt = _solve(P, METHODS[method], jac=P.jac, rtol=1e-4, atol=1e-8)
    _assert_same_run(sol, alt)


def test_radau_where_newton_matrices_pivot():
    """FitzHugh-Nagumo settling into Turing patterns: at its large late steps the Newton
    matrices pivot off the diagonal, "auto" adds COLAMD for those shifts, and the run is
    still scipy's own."""
    import stiffasd
    from stiffasd.problems import fitzhugh_nagumo_2d

    prob = fitzhugh_nagumo_2d(16)
    fun = prob.numpy_rhs()
    kw = dict(args=prob.args, jac=stiffasd.jac(prob.rhs), rtol=1e-4, atol=1e-8)
    ref = solve_ivp(fun, prob.t_span, prob.y0, method="Radau", **kw)
    sol = solve_ivp(fun, prob.t_span, prob.y0, method=ss.Radau, **kw)
    _assert_same_run(ref, sol)
    stats = ss.last_lu_stats()
    assert stats["ordering"] == "METIS+COLAMD" and stats["n_symbolic"] == 1


def test_stiffasd_jac_banded_lsoda_layout_matches():
    """stiffasd.jac(format="banded") (which calls banded_layout/to_banded) equals to_banded of
    the CSC values."""
    import jax.numpy as jnp

    import stiffasd

    n = 30

    def rhs(t, y):
        lap = jnp.concatenate(
            [y[1:2] - 2 * y[:1], y[2:] - 2 * y[1:-1] + y[:-2], y[-2:-1] - 2 * y[-1:]]
        )
        return 50.0 * lap - y**3

    y = np.linspace(0.1, 1.0, n)
    jb = stiffasd.jac(rhs, format="banded")
    jc = stiffasd.jac(rhs)
    packed = jb(0.0, y)
    J = jc(0.0, y)
    lband, uband, _ = ss.banded_layout(jc.pattern)
    np.testing.assert_allclose(packed, ss.to_banded(J.data, jc.pattern, lband, uband))
    P = DiffusionReaction1D(n)  # same kind of tridiagonal structure
    assert (lband, uband) == ss.banded_layout(P.sparsity)[:2]


def test_bdf_complex_state_and_options_pass_through():
    """Complex y (BDF supports it): the Newton matrix and its LU are complex; scipy options
    (first_step, max_step, vectorized) reach scipy unchanged."""
    n = 40
    L = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="csc")
    A = (200.0 * L + 5j * sp.identity(n)).tocsc()

    def f(t, y):
        return A @ y

    y0 = np.exp(1j * np.linspace(0, 3, n)) * np.linspace(0, 1, n)
    kw = dict(jac=lambda t, y: A, rtol=1e-6, atol=1e-9, first_step=1e-4, max_step=0.05)
    ref = solve_ivp(f, (0, 0.5), y0, method="BDF", **kw)
    sol = solve_ivp(f, (0, 0.5), y0, method=ss.BDF, **kw)
    _assert_same_run(ref, sol)
    assert np.iscomplexobj(sol.y)
    vec = solve_ivp(f, (0, 0.5), y0, method=ss.BDF, vectorized=True, **kw)
    np.testing.assert_allclose(vec.y[:, -1], ref.y[:, -1], rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------- reproducibility
def _solve_digests() -> list[str]:
    """SHA-256 of (t, y) of a full-stack solve (stiffasd.jac + stiffasd.scipy) per method: the
    pattern, coloring, compiled Jacobian, METIS ordering and SuperLU factorizations all
    contribute. Run in this process and in fresh ones."""
    import hashlib

    import jax

    import stiffasd
    from stiffasd.problems import brusselator_2d

    jax.config.update("jax_enable_x64", True)
    prob = brusselator_2d(12, t_span=(0.0, 2.0))
    fun = prob.numpy_rhs()
    out = []
    for method in sorted(METHODS):
        sol = solve_ivp(
            fun,
            prob.t_span,
            prob.y0,
            method=METHODS[method],
            args=prob.args,
            jac=stiffasd.jac(prob.rhs),  # a fresh one: detection and coloring again
            rtol=1e-6,
            atol=1e-9,
        )
        assert sol.status == 0
        data = np.ascontiguousarray(sol.y).tobytes() + sol.t.tobytes()
        out.append(f"{method}:{hashlib.sha256(data).hexdigest()}")
    return out


def test_solves_are_reproducible_bit_for_bit():
    """Rerunning a solve gives the same numbers, bit for bit: twice in this process, and in two
    fresh processes with other hash seeds and single-threaded BLAS/OpenMP/XLA (METIS runs with
    a fixed seed; SuperLU's numeric phase is sequential)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    first = _solve_digests()
    assert _solve_digests() == first
    code = "from test_scipy_solvers import _solve_digests; print(' '.join(_solve_digests()))"
    single = dict(
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false",
    )
    envs = [dict(PYTHONHASHSEED="0"), dict(PYTHONHASHSEED="12345", **single)]
    procs = []
    for extra in envs:
        env = {**os.environ, **extra}
        env["PYTHONPATH"] = os.pathsep.join([str(here), str(here.parent)])
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=env,
                cwd=here.parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        assert out.split() == first


# ------------------------------------------------------------------------- progress
@pytest.mark.parametrize("method", sorted(METHODS))
def test_progress_callback_and_bar(method, capsys):
    """progress=callable is called after every step with (t, y); progress=True draws a tqdm bar
    that ends at the end of the span; neither changes the run."""
    P = PROBLEMS["diffusion_reaction"]()
    ref = _solve(P, METHODS[method], jac=P.jac)
    seen = []
    sol = _solve(P, METHODS[method], jac=P.jac, progress=lambda t, y: seen.append((t, y.copy())))
    _assert_same_run(ref, sol, rtol_y=0, rtol_t=0)
    np.testing.assert_array_equal([t for t, _ in seen], sol.t[1:])
    np.testing.assert_array_equal(np.stack([y for _, y in seen], 1), sol.y[:, 1:])
    capsys.readouterr()
    bar = _solve(P, METHODS[method], jac=P.jac, progress=True)
    _assert_same_run(ref, bar, rtol_y=0, rtol_t=0)
    err = capsys.readouterr().err
    assert f"stiffasd.scipy.{method}" in err and "100%" in err, err[-500:]


def test_progress_errors(monkeypatch):
    import sys

    P = PROBLEMS["diffusion_reaction"]()
    with pytest.raises(TypeError, match=r"stiffasd.scipy.BDF\(progress='yes'\)"):
        _solve(P, ss.BDF, jac=P.jac, progress="yes")
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    with pytest.raises(MissingDependencyError, match="pip install tqdm"):
        _solve(P, ss.Radau, jac=P.jac, progress=True)
