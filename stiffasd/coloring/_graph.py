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


def require_symmetric(p: SparsityPattern, where: str) -> None:
    """Raise `ShapeError` unless ``p`` is square and symmetric (``where``: the caller's name)."""
    m, n = p.shape
    if m != n:
        raise ShapeError(
            f"{where}: a symmetric coloring needs a square pattern, got shape {p.shape}; use "
            "structure='nonsymmetric' for a rectangular Jacobian."
        )
    t = p.T
    if not (np.array_equal(t.indptr, p.indptr) and np.array_equal(t.indices, p.indices)):
        missing = np.asarray(p.missing_from(t))
        raise ShapeError(
            f"{where}: a symmetric coloring needs a symmetric pattern (a Hessian's), but "
            f"{len(missing)} entries have no transposed partner, e.g. (row, col) = "
            f"{[tuple(map(int, e)) for e in missing[:3]]}. Use structure='nonsymmetric' (the "
            "Jacobian is not symmetric), or symmetrize a hand-made pattern with "
            "pattern.union(pattern.T)."
        )


def symmetric_adjacency(p: SparsityPattern) -> Adjacency:
    """Adjacency graph of a symmetric pattern (diagonal entries dropped).

    No sorting: the pattern's CSR rows are already sorted, and for a symmetric pattern the
    cached ``csr_to_csc`` permutation maps every entry to its transpose.
    """
    n = p.shape[0]
    rows, cols = p.rows, p.indices
    off = rows != cols
    newpos = np.cumsum(off) - 1
    ptr = np.zeros(n + 1, dtype=_I)
    np.cumsum(np.bincount(rows[off], minlength=n), out=ptr[1:])
    mate = newpos[p.csr_to_csc[off]]
    upper = rows[off] < cols[off]
    ne = int(np.count_nonzero(upper))
    edge = np.empty(mate.size, dtype=_I)
    edge[upper] = np.arange(ne, dtype=_I)
    edge[~upper] = edge[mate[~upper]]
    return Adjacency(_c(ptr), _c(cols[off]), _c(mate), _c(edge), ne)


def augmented_adjacency(p: SparsityPattern) -> Adjacency:
    """Adjacency graph of ``[[0, A], [A^T, 0]]``: vertices ``0..m-1`` are the rows of ``A``,
    ``m..m+n-1`` its columns (Montoison, Dalle, Gebremedhin 2025, Section 5).

    Entry ``k < nnz`` is the CSR entry ``k`` of ``A`` (row ``i`` -> column vertex ``m + j``),
    entry ``nnz + q`` the CSC entry ``q`` (column vertex -> row); the undirected edge id is
    the CSR position of the nonzero.
    """
    m, n = p.shape
    nnz = p.nnz
    ptr = np.concatenate([p.indptr, nnz + p.csc_indptr[1:]])
    idx = np.concatenate([p.indices + m, p.csc_indices])
    to_csr = p.csr_to_csc  # CSC position -> CSR position
    to_csc = np.empty(nnz, dtype=_I)
    to_csc[to_csr] = np.arange(nnz, dtype=_I)
    mate = np.concatenate([nnz + to_csc, to_csr])
    edge = np.concatenate([np.arange(nnz, dtype=_I), to_csr])
    return Adjacency(_c(ptr), _c(idx), _c(mate), _c(edge), nnz)
