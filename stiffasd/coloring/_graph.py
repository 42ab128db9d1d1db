"""Graph views of a `SparsityPattern` as plain int64 index arrays, ready for numba kernels.

Every kernel in this package walks "two-hop" structures: from a vertex ``v`` it follows
``idx1[ptr1[v]:ptr1[v + 1]]`` to intermediate vertices ``x``, then ``idx2[ptr2[x]:ptr2[x + 1]]``.

- Column (partial distance-2) coloring of an ``m``-by-``n`` pattern: ``v`` is a column, ``(ptr1,
  idx1)`` is the CSC structure (column -> rows), ``(ptr2, idx2)`` the CSR structure (row ->
  columns). The two-hop neighbours of a column are the columns it shares a row with, i.e. its
  neighbours in the column intersection graph (Gebremedhin, Manne, Pothen 2005, Section 3).
- Row coloring: the same on the transpose.
- Distance-1 structures (adjacency graph of a symmetric pattern, augmented bipartite graph of a
  bicoloring problem): ``(ptr1, idx1)`` is the adjacency, ``(ptr2, idx2)`` the identity, so the
  two-hop neighbours are the ordinary neighbours.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ..errors import ShapeError
from ..pattern import SparsityPattern

_I = np.int64


def as_pattern(obj: Any, where: str = "color") -> SparsityPattern:
    """Accept a `SparsityPattern` or any scipy sparse matrix/array."""
    if isinstance(obj, SparsityPattern):
        return obj
    if sp.issparse(obj):
        return SparsityPattern.from_scipy(obj)
    raise TypeError(
        f"{where}(pattern=...): expected a stiffasd.SparsityPattern or a scipy sparse matrix, got "
        f"{type(obj).__name__}; for a dense array use stiffasd.SparsityPattern.from_dense(array)."
    )


class TwoHop(NamedTuple):
    """A vertex set with its two-hop walk arrays (see module docstring)."""

    ptr1: np.ndarray
    idx1: np.ndarray
    ptr2: np.ndarray
    idx2: np.ndarray

    @property
    def nv(self) -> int:
        return int(self.ptr1.size - 1)


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=_I)


def column_twohop(p: SparsityPattern) -> TwoHop:
    """Columns of ``p`` as vertices of the column intersection graph."""
    return TwoHop(_c(p.csc_indptr), _c(p.csc_indices), _c(p.indptr), _c(p.indices))


def row_twohop(p: SparsityPattern) -> TwoHop:
    """Rows of ``p`` as vertices of the row intersection graph."""
    return TwoHop(_c(p.indptr), _c(p.indices), _c(p.csc_indptr), _c(p.csc_indices))


class Adjacency(NamedTuple):
    """Undirected graph without self loops, CSR with sorted neighbours.

    Attributes:
        ptr, idx: CSR arrays (both directions of every edge are stored).
        mate: ``mate[p]`` is the position of the reverse entry ``(idx[p], row(p))``.
        edge: ``edge[p]`` is the undirected edge id of position ``p`` (``0 .. ne - 1``).
        ne: number of undirected edges.
    """

    ptr: np.ndarray
    idx: np.ndarray
    mate: np.ndarray
    edge: np.ndarray
    ne: int

    @property
    def nv(self) -> int:
        return int(self.ptr.size - 1)

    def twohop(self) -> TwoHop:
        ident = np.arange(self.nv + 1, dtype=_I)
        return TwoHop(self.ptr, self.idx, ident, ident[:-1].copy())


def _adjacency_from_coo(nv: int, rows: np.ndarray, cols: np.ndarray) -> Adjacency:
    """Build an `Adjacency` from a symmetric, duplicate-free, loop-free COO edge list."""
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    ptr = np.zeros(nv + 1, dtype=_I)
    np.cumsum(np.bincount(rows, minlength=nv), out=ptr[1:])
    # the reverse entry of (r, c) is (c, r): its rank in (row, col) order is its rank in the
    # (col, row) order of the forward entries, because the edge set is symmetric
    mate = np.empty(rows.size, dtype=_I)
    mate[np.lexsort((rows, cols))] = np.arange(rows.size, dtype=_I)
    upper = rows < cols
    ne = int(np.count_nonzero(upper))
    edge = np.empty(rows.size, dtype=_I)
    edge[upper] = np.arange(ne, dtype=_I)
    lower = ~upper
    edge[lower] = edge[mate[lower]]
    return Adjacency(_c(ptr), _c(cols), _c(mate), _c(edge), ne)


def require_symmetric(p: SparsityPattern, where: str) -> None:
    m, n = p.shape
    if m != n:
        raise ShapeError(
            f"{where}: structure='symmetric' needs a square pattern, got shape {p.shape}; use "
            "structure='nonsymmetric' for a rectangular Jacobian."
        )
    t = p.T
    if not (np.array_equal(t.indptr, p.indptr) and np.array_equal(t.indices, p.indices)):
        raise ShapeError(
            f"{where}: structure='symmetric' needs a symmetric pattern (a Hessian's); this one "
            f"has {p.missing_from(t).shape[0]} entries whose transpose is missing. Symmetrize "
            "it with pattern.union(pattern.T) or use structure='nonsymmetric'."
        )


def symmetric_adjacency(p: SparsityPattern) -> Adjacency:
    """Adjacency graph of a symmetric pattern (diagonal entries dropped)."""
    off = p.rows != p.indices
    return _adjacency_from_coo(p.shape[0], _c(p.rows[off]), _c(p.indices[off]))


def augmented_adjacency(p: SparsityPattern) -> Adjacency:
    """Adjacency graph of ``[[0, A], [A^T, 0]]``: vertices ``0..m-1`` are the rows of ``A``,
    ``m..m+n-1`` its columns (Montoison, Dalle, Gebremedhin 2025, Section 5)."""
    m, n = p.shape
    r = _c(p.rows)
    c = _c(p.indices) + m
    return _adjacency_from_coo(m + n, np.concatenate([r, c]), np.concatenate([c, r]))
