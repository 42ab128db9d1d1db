"""Fill-reducing orderings (stiffasd.linalg.ordering): METIS nested dissection, reverse
Cuthill-McKee, the "auto" choice by a symbolic fill count, dense vertices last."""

import numpy as np
import scipy.sparse as sp
from linalg_matrices import grid_laplacian
from scipy.sparse.linalg import splu

from stiffasd import linalg
from stiffasd.linalg import ordering as lo


def test_nested_dissection_is_a_fill_reducing_permutation():
    A = grid_laplacian(24)
    n = A.shape[0]
    rows, cols = A.nonzero()
    order = linalg.nested_dissection(rows, cols, n)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(n))

    def fill(perm):
        B = A[perm][:, perm].tocsc()
        lu = splu(B, permc_spec="NATURAL", diag_pivot_thresh=0.0)
        return lu.L.nnz + lu.U.nnz

    natural = fill(np.arange(n))
    nd = fill(order)
    assert nd < 0.6 * natural, (nd, natural)
    # a pattern with no coupling, a single unknown, and an unsymmetric pattern (A + A^T is used)
    np.testing.assert_array_equal(linalg.nested_dissection([0, 1, 2], [0, 1, 2], 3), np.arange(3))
    np.testing.assert_array_equal(linalg.nested_dissection([0], [0], 1), [0])
    perm = linalg.nested_dissection([0, 1, 2], [1, 2, 3], 4)
    np.testing.assert_array_equal(np.sort(perm), np.arange(4))


def test_auto_ordering_picks_the_band_order_on_a_chain_with_a_hub():
    """A chain coupled to one hub (the reservoir arrowhead): the hub goes last, and the chain is
    ordered as a band (no fill), where nested dissection's separators would cost fill."""
    n = 400
    rows = np.concatenate(
        [np.arange(n - 1), np.arange(1, n), np.zeros(n - 1, int), np.arange(1, n)]
    )
    cols = np.concatenate(
        [np.arange(1, n), np.arange(n - 1), np.arange(1, n), np.zeros(n - 1, int)]
    )
    name, order = linalg.choose_ordering(rows, cols, n)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert name == "RCM"
    sym = lo._symmetric_keys(rows, cols, n)
    fills = {
        k: lo._predicted_fill(sym, n, o)
        for k, o in (("auto", order), ("nd", linalg.nested_dissection(rows, cols, n)))
    }
    assert fills["auto"] <= fills["nd"]
    # the predicted Cholesky count agrees with a dense check on a small case
    A = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).toarray() != 0
    A = A | A.T | np.eye(n, dtype=bool)
    P = A[np.ix_(order, order)].astype(float) + n * np.eye(n)
    L = np.linalg.cholesky(P)
    assert fills["auto"] == int(np.count_nonzero(np.abs(L) > 0))
    # dense vertices go last in nested dissection
    nd = linalg.nested_dissection(rows, cols, n)
    assert nd[-1] == 0


def test_nested_dissection_is_seeded():
    """METIS randomizes its matchings: the seed is fixed, so orderings repeat exactly (another
    seed gives another order of the same quality on this grid)."""
    import pymetis

    A = grid_laplacian(30).tocoo()
    n = A.shape[0]
    order = linalg.nested_dissection(A.row, A.col, n)
    np.testing.assert_array_equal(linalg.nested_dissection(A.row, A.col, n), order)
    keys, dense = lo._split_dense(lo._symmetric_keys(A.row, A.col, n), n)
    starts = np.searchsorted(keys // n, np.arange(n + 1)).astype(np.int32)
    adjacency = pymetis.CSRAdjacency(starts, (keys % n).astype(np.int32))
    options = pymetis.Options()
    options.seed = lo.METIS_SEED + 1
    other, _ = pymetis.nested_dissection(adjacency=adjacency, options=options)
    assert not np.array_equal(other, order)
    options.seed = lo.METIS_SEED
    same, _ = pymetis.nested_dissection(adjacency=adjacency, options=options)
    np.testing.assert_array_equal(same, order)
