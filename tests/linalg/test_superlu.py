"""The host LU engine (stiffasd.linalg.FixedPatternLU): SuperLU's numeric phase on a pattern
ordered once, against dense LAPACK solves (normwise backward and forward errors)."""

import numpy as np
import pytest
import scipy.sparse as sp
from linalg_matrices import activator_inhibitor, assert_solves, grid_laplacian

from stiffasd import linalg
from stiffasd.errors import ShapeError


@pytest.mark.parametrize(
    "ordering", ["auto", "METIS", "MMD_AT_PLUS_A", "COLAMD", "MMD_ATA", "RCM", "NATURAL", "perm"]
)
@pytest.mark.parametrize("sigma", [1.0, 2.5 + 1.5j])
def test_fixed_pattern_lu_solves(ordering, sigma):
    rng = np.random.default_rng(3)
    n = 80
    J = sp.random(n, n, density=0.05, random_state=4, format="csc") + sp.diags(rng.random(n - 1), 1)
    J = J.tocsc()
    if ordering == "perm":
        ordering = rng.permutation(n)
    F = linalg.FixedPatternLU(J.indptr, J.indices, n, ordering=ordering)
    for alpha in (0.3, 2.0, 0.05):  # same pattern, new values: the first fixes the ordering
        data = rng.standard_normal(J.nnz)
        Jk = sp.csc_matrix((data, J.indices, J.indptr), shape=J.shape)
        A = (sigma * sp.identity(n) - alpha * Jk).tocsc()
        fac = F.factor(data, sigma, alpha)
        b = rng.standard_normal(n)
        assert_solves(A, fac.solve(b), b)
    assert F.stats["n_factor"] == 3
    assert F.fill >= F.nnz


@pytest.mark.parametrize("ordering", ["METIS", "MMD_AT_PLUS_A"])
def test_fixed_pattern_lu_panel_size(ordering):
    """SuperLU's panel width changes how the numeric phase is blocked, not the factorization:
    every width solves the same systems, with the default `PANEL_SIZE` in use."""
    rng = np.random.default_rng(5)
    J = (grid_laplacian(9) + sp.random(81, 81, density=0.03, random_state=6)).tocsc()
    n = J.shape[0]
    engines = {
        w: linalg.FixedPatternLU(J.indptr, J.indices, n, ordering=ordering, panel_size=w)
        for w in (None, 1, 3, linalg.MAX_PANEL_SIZE)
    }
    assert engines[None].panel_size == linalg.PANEL_SIZE
    for alpha in (0.01, 0.5):
        data = rng.standard_normal(J.nnz)
        A = (sp.identity(n) - alpha * sp.csc_matrix((data, J.indices, J.indptr), J.shape)).tocsc()
        b = rng.standard_normal(n)
        for eng in engines.values():
            assert_solves(A, eng.factor(data, 1.0, alpha).solve(b), b)
    for bad in (0, linalg.MAX_PANEL_SIZE + 1, 2.5):  # wider panels corrupt SuperLU's memory
        with pytest.raises(ValueError, match="panel_size"):
            linalg.FixedPatternLU(J.indptr, J.indices, n, panel_size=bad)


def test_default_ordering_is_nested_dissection():
    A = grid_laplacian(16)
    n = A.shape[0]
    F = linalg.FixedPatternLU(A.indptr, A.indices, n)
    assert F.ordering == "auto" and F.chosen_ordering is None
    fac = F.factor(A.data, 1.0, -0.5)  # I + A/2, the Newton matrix of the heat equation
    assert F.chosen_ordering == "METIS"  # a 2D grid: nested dissection predicts less fill
    b = np.arange(n, dtype=float)
    assert_solves(sp.identity(n) + 0.5 * A, fac.solve(b), b)
    assert F.stats["ordering_s"] > 0
    # I - A/2 is indefinite (cond 234): pivoting, and a normwise-accurate solve all the same
    assert_solves(sp.identity(n) - 0.5 * A, F.factor(A.data, 1.0, 0.5).solve(b), b)


def test_auto_falls_back_on_colamd_where_pivoting_spoils_the_ordering():
    """At small shifts the activator-inhibitor Newton matrix pivots off the diagonal and the
    nested-dissection fill more than doubles; "auto" then takes COLAMD for the shifts up to that
    one (COLAMD's fill bounds every row pivoting) and keeps METIS for the larger ones, where it
    does not pivot, storing fewer entries over the sequence than either ordering alone. Every
    factorization solves accurately, and the choice repeats exactly."""
    J = activator_inhibitor(16)
    n = J.shape[0]
    b = np.linspace(-1.0, 1.0, n)
    shifts = [1000.0, 10.0, 1.0, 0.1, 100.0, 0.3 + 0.5j, 50.0 + 20.0j, 0.01]
    runs = {}
    for ordering in ("auto", "METIS", "COLAMD", "auto again"):
        F = linalg.FixedPatternLU(J.indptr, J.indices, n, ordering=ordering.split()[0])
        runs[ordering] = []
        for s in shifts:
            fac = F.factor(J.data, s, 1.0)
            assert_solves(s * sp.identity(n) - J, fac.solve(b), b, forward=False)
            runs[ordering].append((fac.lu.nnz, F.chosen_ordering))
    auto, metis = runs["auto"], runs["METIS"]
    assert runs["auto again"] == auto
    assert auto[0] == (metis[0][0], "METIS") and auto[-1][1] == "METIS+COLAMD"
    assert metis[3][0] > 1.5 * metis[0][0]  # pivoting: METIS's fill grows by half and more
    for (z, _), (zm, _), s in zip(auto, metis, shifts, strict=True):
        if abs(s) >= 50:  # no pivoting: the METIS layout, as METIS alone
            assert z == zm, s
        elif abs(s) <= 1:  # pivoting: COLAMD's layout stores fewer entries
            assert z < zm, s
    total = {k: sum(z for z, _ in v) for k, v in runs.items()}
    assert total["auto"] < min(total["METIS"], total["COLAMD"]), total


def test_superlu_runs_on_one_blas_thread():
    """SuperLU's level-2 BLAS calls on small supernodes lose to the cost of waking BLAS
    threads: factorizations and complex solves run with BLAS limited to one thread (real
    solves gain nothing and keep the caller's setting), which is back afterwards."""
    from threadpoolctl import ThreadpoolController, threadpool_info

    from stiffasd.linalg import superlu

    def blas_threads():
        return {
            i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"
        }

    seen = []
    real_splu = superlu.splu

    class Spy:
        def __init__(self, lu):
            self.lu = lu

        def solve(self, b):
            seen.append(("solve", blas_threads()))
            return self.lu.solve(b)

        def __getattr__(self, name):
            return getattr(self.lu, name)

    def spy(*args, **kw):
        seen.append(("factor", blas_threads()))
        return Spy(real_splu(*args, **kw))

    A = grid_laplacian(12)
    n = A.shape[0]
    with ThreadpoolController().limit(limits=2, user_api="blas"):
        before = blas_threads()
        assert before and set(before.values()) == {2}
        try:
            superlu.splu = spy
            F = linalg.FixedPatternLU(A.indptr, A.indices, n)
            b = np.ones(n)
            for sigma in (1.0, 1.0 + 2.0j):  # I + A/10: no pivoting, no second look
                x = F.factor(A.data, sigma, -0.1).solve(b)
                assert_solves(sigma * sp.identity(n) + 0.1 * A, x, b)
        finally:
            superlu.splu = real_splu
        assert blas_threads() == before
    threads = [(k, set(t.values())) for k, t in seen]
    assert threads == [("factor", {1}), ("solve", {2}), ("factor", {1}), ("solve", {1})]


def test_fixed_pattern_lu_duplicates_and_subpattern():
    n = 30
    rows = np.array([0, 0, 5, 7, 7, 29])
    cols = np.array([0, 0, 3, 7, 7, 1])
    indptr = np.searchsorted(np.sort(cols), np.arange(n + 1))
    order = np.argsort(cols, kind="stable")
    F = linalg.FixedPatternLU(indptr, rows[order], n)
    vals = np.arange(1.0, 7.0)[order]
    fac = F.factor(vals, 10.0, 1.0)
    A = (
        10.0 * np.eye(n)
        - sp.coo_matrix((np.arange(1.0, 7.0), (rows, cols)), shape=(n, n)).toarray()
    )
    b = np.arange(n, dtype=float)
    assert_solves(A, fac.solve(b), b)
    sub = sp.csc_matrix(([2.0], ([5], [3])), shape=(n, n))
    pos = F.contains(sub.indptr, sub.indices)
    assert pos is not None
    fac = F.factor(sub.data, 1.0, 1.0, keypos=pos)
    assert_solves(np.eye(n) - sub.toarray(), fac.solve(b), b)
    far = sp.csc_matrix(([1.0], ([20], [10])), shape=(n, n))
    assert F.contains(far.indptr, far.indices) is None


def test_fixed_pattern_lu_errors():
    with pytest.raises(ValueError, match="ordering"):
        linalg.FixedPatternLU([0, 1, 2], [0, 1], 2, ordering="AMD")
    with pytest.raises(ValueError, match="permutation"):
        linalg.FixedPatternLU([0, 1, 2], [0, 1], 2, ordering=[0, 0])
    with pytest.raises(ShapeError, match="indptr"):
        linalg.FixedPatternLU([0, 1], [0, 1], 2)
