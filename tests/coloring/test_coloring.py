"""The workhorse: color -> check -> compress -> decompress == A, over problems and orders."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from coloring_strategies import (
    arrowhead,
    banded,
    dense_row,
    patterns,
    random_pattern,
    random_symmetric_values,
    random_values,
    symmetric_patterns,
    symmetrize,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import stiffasd
from stiffasd.coloring import ColoringResult, check_coloring, color
from stiffasd.errors import InvalidColoringError, ShapeError
from stiffasd.pattern import SparsityPattern

ORDERS = [
    "natural",
    "random",
    "largest_first",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "saturation_degree",
    "best",
]
NONSYM = [
    ("column", "direct"),
    ("row", "direct"),
    ("bidirectional", "direct"),
    ("bidirectional", "substitution"),
]


def roundtrip(p: SparsityPattern, r: ColoringResult, symmetric: bool = False, seed: int = 0):
    """check_coloring, then decompress(compress(A)) == A for random values on the pattern."""
    check_coloring(p, r)
    a = random_symmetric_values(p, seed) if symmetric else random_values(p, seed)
    for mat in (a, a.toarray()):
        d = r.decompress(r.compress(mat))
        assert isinstance(d, sp.csc_matrix)
        assert d.shape == p.shape
        np.testing.assert_allclose(d.toarray(), a.toarray(), rtol=1e-12, atol=1e-12)
    # the flat-buffer contract used by the compressed evaluation
    flat = r.flatten(r.compress(a))
    assert flat.shape == (r.flat_size,)
    data = r.decompress_flat(flat)
    want = a.tocsc()
    want.sort_indices()
    np.testing.assert_allclose(data, want.data, rtol=1e-12, atol=1e-12)
    if r.decompression == "direct":
        assert r.gather.shape == (p.nnz,) and r.gather.dtype == np.int64
        np.testing.assert_array_equal(flat[r.gather], data)


def assert_contract(p: SparsityPattern, r: ColoringResult):
    m, n = p.shape
    assert r.column_colors.shape == (n,) and r.column_colors.dtype == np.int64
    assert r.row_colors.shape == (m,) and r.row_colors.dtype == np.int64
    assert r.ncolors == r.ncolors_column + r.ncolors_row
    assert not r.column_colors.flags.writeable
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.ncolors_column = 0  # type: ignore[misc]
    if r.partition == "column" or r.structure == "symmetric":
        assert np.all(r.row_colors == -1)
    if r.partition == "row":
        assert np.all(r.column_colors == -1)


@settings(max_examples=80, deadline=None)
@given(
    patterns(), st.sampled_from(ORDERS), st.sampled_from(NONSYM), st.integers(0, 3), st.booleans()
)
def test_nonsymmetric_roundtrip(p, order, prob, seed, postprocess):
    partition, decompression = prob
    r = color(
        p,
        partition=partition,
        order=order,
        decompression=decompression,
        seed=seed,
        postprocess=postprocess,
    )
    assert_contract(p, r)
    roundtrip(p, r, seed=seed)
    # a lower bound: every row (column) needs distinct column (row) colors
    if partition == "column" and p.nnz:
        assert r.ncolors >= p.row_counts.max()
    if partition == "row" and p.nnz:
        assert r.ncolors >= p.col_counts.max()


@settings(max_examples=60, deadline=None)
@given(
    symmetric_patterns(),
    st.sampled_from(ORDERS),
    st.sampled_from(["direct", "substitution"]),
    st.integers(0, 3),
    st.booleans(),
)
def test_symmetric_roundtrip(p, order, decompression, seed, postprocess):
    r = color(
        p,
        structure="symmetric",
        order=order,
        decompression=decompression,
        seed=seed,
        postprocess=postprocess,
    )
    assert_contract(p, r)
    roundtrip(p, r, symmetric=True, seed=seed)
    if p.nnz:
        # the diagonal block of any row forces distinct colors among its... at least 1 pass
        assert r.ncolors >= 1


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("prob", NONSYM)
def test_fixed_families(order, prob):
    partition, decompression = prob
    for p in [
        banded(40, 40, 2, 1),
        random_pattern(50, 30, 0.1, 3),
        dense_row(20, 25, 5),
        dense_row(25, 20, 3).T,
        SparsityPattern.from_coo((5, 7), [], []),
        SparsityPattern.from_dense(np.ones((1, 1))),
        SparsityPattern.from_coo((0, 4), [], []),
    ]:
        r = color(p, partition=partition, order=order, decompression=decompression)
        assert_contract(p, r)
        roundtrip(p, r)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("decompression", ["direct", "substitution"])
def test_fixed_symmetric_families(order, decompression):
    for p in [
        symmetrize(banded(30, 30, 2, 2)),
        symmetrize(random_pattern(40, 40, 0.08, 5)),
        symmetrize(random_pattern(40, 40, 0.08, 6), diagonal=False),
        arrowhead(15),
        SparsityPattern.identity(4),
        SparsityPattern.from_coo((3, 3), [], []),
        SparsityPattern.from_coo((0, 0), [], []),
    ]:
        for postprocess in (True, False):
            r = color(
                p,
                structure="symmetric",
                order=order,
                decompression=decompression,
                postprocess=postprocess,
            )
            assert_contract(p, r)
            roundtrip(p, r, symmetric=True)


def test_banded_is_optimal_with_natural_order():
    # a band of width w needs exactly w colors, greedy in natural order achieves it
    p = banded(100, 100, 2, 2)
    assert color(p).ncolors == 5
    assert color(p, partition="row").ncolors == 5


def test_accepts_scipy_and_reexports():
    a = sp.random(20, 15, density=0.2, random_state=0, format="coo")
    r = stiffasd.color(a, order="largest_first")
    assert isinstance(r, stiffasd.ColoringResult)
    assert r.pattern == SparsityPattern.from_scipy(a)
    stiffasd.check_coloring(a, r)


def test_empty_columns_are_neutral():
    p = SparsityPattern.from_coo((3, 4), [0, 1], [0, 2])
    r = color(p)
    assert r.column_colors.tolist() == [0, -1, 0, -1]
    assert r.ncolors == 1
    roundtrip(p, r)


# ---------------------------------------------------------------------- checker catches errors
def test_check_names_column_conflict():
    p = SparsityPattern.from_dense(np.array([[1, 1, 0], [0, 1, 1]]))
    r = color(p)
    bad = dataclasses.replace(r, column_colors=np.array([0, 1, 0]), ncolors_column=2)
    check_coloring(p, bad)  # columns 0 and 2 share no row: fine
    bad = dataclasses.replace(r, column_colors=np.array([0, 0, 1]), ncolors_column=2)
    with pytest.raises(InvalidColoringError, match=r"columns 0 and \[1\].*share row 0"):
        check_coloring(p, bad)


def test_check_names_row_conflict():
    p = SparsityPattern.from_dense(np.array([[1, 0], [1, 1], [0, 1]]))
    r = color(p, partition="row")
    bad = dataclasses.replace(r, row_colors=np.array([0, 1, 1]), ncolors_row=2)
    with pytest.raises(InvalidColoringError, match=r"rows 1 and \[2\].*share column 1"):
        check_coloring(p, bad)


def test_check_lengths_ranges_and_counts():
    p = banded(6, 6, 1, 1)
    r = color(p)
    with pytest.raises(InvalidColoringError, match="length 6"):
        check_coloring(p, dataclasses.replace(r, column_colors=np.zeros(5, dtype=np.int64)))
    with pytest.raises(InvalidColoringError, match="out of range"):
        check_coloring(p, dataclasses.replace(r, column_colors=r.column_colors + 1))
    cc = r.column_colors.copy()
    cc[cc == 1] = 2  # color 1 unused, but 2 is "used" -> out of range for k=3? no: k=3 here
    with pytest.raises(InvalidColoringError, match="never used"):
        check_coloring(p, dataclasses.replace(r, column_colors=cc))
    cc = r.column_colors.copy()
    cc[0] = -1
    with pytest.raises(InvalidColoringError, match=r"entry \(0, 0\) is in no compressed product"):
        check_coloring(p, dataclasses.replace(r, column_colors=cc))
    with pytest.raises(InvalidColoringError, match="different pattern"):
        check_coloring(banded(6, 6, 1, 2), r)


def test_bad_arguments():
    p = banded(5, 5, 1, 1)
    with pytest.raises(ValueError, match="order"):
        color(p, order="fastest")
    with pytest.raises(ValueError, match="partition"):
        color(p, partition="diagonal")
    with pytest.raises(ValueError, match="decompression='direct'"):
        color(p, decompression="substitution")
    with pytest.raises(TypeError, match="SparsityPattern.from_dense"):
        color(np.eye(3))
    r = color(p)
    with pytest.raises(ShapeError):
        r.compress(np.eye(4))


def _path_or_cycle(n: int, cycle: bool) -> SparsityPattern:
    i = np.arange(n - (0 if cycle else 1))
    j = (i + 1) % n
    d = np.eye(n, dtype=bool)
    d[i, j] = d[j, i] = True
    return SparsityPattern.from_dense(d)


def test_check_names_star_violation():
    p = _path_or_cycle(4, cycle=False)
    r = color(p, structure="symmetric")
    check_coloring(p, r)
    bad = dataclasses.replace(r, column_colors=np.array([0, 1, 0, 1]), ncolors_column=2)
    with pytest.raises(InvalidColoringError, match="not symmetrically orthogonal"):
        check_coloring(p, bad)
    # the same colors are a fine acyclic coloring of the path
    sub = color(p, structure="symmetric", decompression="substitution")
    check_coloring(
        p, dataclasses.replace(sub, column_colors=np.array([0, 1, 0, 1]), ncolors_column=2)
    )


def test_check_names_acyclic_violations():
    p = _path_or_cycle(4, cycle=True)
    r = color(p, structure="symmetric", decompression="substitution")
    check_coloring(p, r)
    assert r.ncolors == 3
    bad = dataclasses.replace(r, column_colors=np.array([0, 1, 0, 1]), ncolors_column=2)
    with pytest.raises(InvalidColoringError, match="closes a cycle colored only with colors"):
        check_coloring(p, bad)
    bad = dataclasses.replace(r, column_colors=np.array([0, 0, 1, 2]), ncolors_column=3)
    with pytest.raises(InvalidColoringError, match="vertex 0 and vertex 1 are adjacent"):
        check_coloring(p, bad)


def test_check_names_bidirectional_violation():
    p = SparsityPattern.from_dense(np.ones((2, 2)))
    r = color(p, partition="bidirectional")
    check_coloring(p, r)
    bad = dataclasses.replace(
        r,
        column_colors=np.array([0, 0]),
        row_colors=np.array([-1, -1]),
        ncolors_column=1,
        ncolors_row=0,
    )
    with pytest.raises(InvalidColoringError, match="not bi-orthogonal"):
        check_coloring(p, bad)


def test_symmetric_needs_symmetric_pattern():
    p = SparsityPattern.from_dense(np.array([[1, 1], [0, 1]]))
    with pytest.raises(ShapeError, match="pattern.union"):
        color(p, structure="symmetric")
    with pytest.raises(ShapeError, match="square"):
        color(SparsityPattern.from_dense(np.ones((2, 3))), structure="symmetric")
    with pytest.raises(ValueError, match="partition='column'"):
        color(_path_or_cycle(3, False), structure="symmetric", partition="bidirectional")


def test_best_keeps_fewest():
    p = random_pattern(60, 60, 0.05, 11)
    best = color(p, order="best")
    assert best.order == "best" and best.chosen_order != "best"
    for o in ORDERS[:-1]:
        assert best.ncolors <= color(p, order=o).ncolors


def test_cli_color(tmp_path, capsys):
    import scipy.io

    from stiffasd.coloring import cli_color

    f = tmp_path / "a.mtx"
    scipy.io.mmwrite(str(f), random_values(banded(30, 30, 1, 1)))
    assert cli_color([str(f), "--partition", "row", "--order", "largest_first", "--check"]) == 0
    out = capsys.readouterr().out
    assert "30 x 30, 88 nonzeros" in out
    assert "0 column colors + 3 row colors = 3 passes" in out and "[checked]" in out
    assert "column coloring >= 3" in out


def test_merging_colors_keeps_direct_decompression():
    # the merge step re-verifies every merge; compare with the unmerged (postprocess=False)
    for seed in range(5):
        p = random_pattern(40, 35, 0.08, seed)
        d = p.to_dense()
        d[seed, :] = True
        d[:, seed] = True
        p = SparsityPattern.from_dense(d)
        on = color(p, partition="bidirectional", order="random", seed=seed)
        off = color(p, partition="bidirectional", order="random", seed=seed, postprocess=False)
        check_coloring(p, on)
        assert on.ncolors <= off.ncolors
        roundtrip(p, on)


@pytest.mark.parametrize("symmetric", [False, True])
def test_star_kernel_dense_vertex_tables_change_nothing(symmetric, monkeypatch):
    """The per-color tables of the densest vertices (which make a dense row or column O(colors)
    instead of O(n) per visit) give exactly the coloring of the plain neighbour scans."""
    import scipy.sparse as sp

    from stiffasd.coloring import _graph as graph
    from stiffasd.coloring import symmetric as sym

    monkeypatch.setattr(sym, "DENSE_SLOTS", 1000)
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.integers(5, 90))
        A = sp.random(n, n, density=float(rng.choice([0.03, 0.1, 0.3])), random_state=rng)
        A = (A + A.T if symmetric else A).tolil()
        for _ in range(int(rng.integers(0, 3))):
            r, c = int(rng.integers(n)), int(rng.integers(n))
            A[r, :] = 1
            A[:, c] = 1
            if symmetric:
                A[:, r] = 1
                A[c, :] = 1
        P = SparsityPattern.from_scipy(A.tocsr())
        adj = graph.symmetric_adjacency(P) if symmetric else graph.augmented_adjacency(P)
        order = rng.permutation(adj.nv)
        plain = sym._star_coloring(
            order, adj.ptr, adj.idx, adj.edge, adj.ne, np.full(adj.nv, -1, np.int64), 0, 1
        )
        for min_degree in (0, 2, None):
            np.testing.assert_array_equal(
                sym.star_coloring(adj, order, min_degree=min_degree), plain
            )


def test_bicoloring_of_a_wide_arrowhead_is_fast_and_valid():
    n = 20_000
    rows = np.concatenate([np.zeros(n, int), np.arange(n), np.arange(n)])
    cols = np.concatenate([np.arange(n), np.zeros(n, int), np.arange(n)])
    P = SparsityPattern.from_coo((n, n), rows, cols)
    res = stiffasd.color(P, partition="bidirectional", order="random")
    stiffasd.check_coloring(P, res)
    assert res.ncolors <= 8
