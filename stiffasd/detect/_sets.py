"""IndexSets: the abstract value of the detection interpreter, and vectorized helpers on it.

An array value with ``k`` elements, in a detection problem with ``n`` tracked input elements, is
described by a ``k``-by-``n`` boolean CSR matrix ``deps``: row ``i`` (element ``i`` of the value in
C order) holds the input elements it may depend on. Compile-time constants (and, in local mode,
every value) also carry their concrete ``value``, which lets rules be exact (a product with a
constant zero has no dependency, a gather with constant indices moves exact rows...).

Every helper here works on whole index arrays with numpy / scipy's sparse kernels (scipy's boolean
sparse product is the (OR, AND) semiring product), never on one element at a time. All CSR
matrices are kept canonical (sorted column indices, no duplicates) so that unions are linear.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "IndexSets",
    "csr",
    "empty",
    "eye_block",
    "take_rows",
    "union",
    "matmul",
    "vstack",
    "widen",
    "collapse",
    "repeat_row",
    "mask_rows",
    "from_pairs",
]


def csr(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """A boolean CSR matrix from canonical index arrays (no copy of the arrays when possible)."""
    data = np.ones(len(indices), dtype=bool)
    m = sp.csr_array((data, indices, indptr), shape=shape)
    m.has_sorted_indices = True
    return m


def empty(k: int, n: int) -> sp.csr_array:
    """k rows with no dependency."""
    return csr(np.zeros(k + 1, np.int64), np.zeros(0, np.int64), (k, n))


def eye_block(k: int, n: int, offset: int) -> sp.csr_array:
    """Row i depends on column offset + i (the seed of an input of k elements)."""
    return csr(
        np.arange(k + 1, dtype=np.int64), np.arange(offset, offset + k, dtype=np.int64), (k, n)
    )


def take_rows(d: sp.csr_array, src: np.ndarray) -> sp.csr_array:
    """Row gather: row i of the result is row ``src[i]`` of ``d``, or empty where ``src[i] < 0``."""
    src = np.asarray(src, dtype=np.int64).ravel()
    k, n = len(src), d.shape[1]
    if d.nnz == 0:
        return empty(k, n)
    indptr_in = d.indptr.astype(np.int64, copy=False)
    if k and src[0] >= 0 and src[-1] == src[0] + k - 1 and (k == 1 or np.all(np.diff(src) == 1)):
        # A contiguous block of rows (slices, splits): no gather needed.
        a, b = int(indptr_in[src[0]]), int(indptr_in[src[-1] + 1])
        return csr(indptr_in[src[0] : src[-1] + 2] - a, d.indices[a:b], (k, n))
    valid = src >= 0
    s = np.where(valid, src, 0)
    if d.nnz <= d.shape[0]:
        lens_all = np.diff(indptr_in)
        if lens_all.max() <= 1:
            # At most one dependency per row (moved / padded input elements): a plain gather.
            has = valid & (lens_all[s] == 1)
            indptr = np.zeros(k + 1, np.int64)
            np.cumsum(has, out=indptr[1:])
            return csr(indptr, d.indices[indptr_in[s[has]]], (k, n))
    starts = indptr_in[s]
    lens = np.where(valid, indptr_in[s + 1] - starts, 0)
    indptr = np.zeros(k + 1, np.int64)
    np.cumsum(lens, out=indptr[1:])
    total = int(indptr[-1])
    offs = np.repeat(starts - indptr[:-1], lens) + np.arange(total, dtype=np.int64)
    return csr(indptr, d.indices[offs], (k, n))


def mask_rows(d: sp.csr_array, keep: np.ndarray) -> sp.csr_array:
    """Empty the rows where ``keep`` is False."""
    keep = np.asarray(keep, dtype=bool).ravel()
    if keep.all() or d.nnz == 0:
        return d
    return take_rows(d, np.where(keep, np.arange(len(keep)), -1))


def union(ds: list[sp.csr_array]) -> sp.csr_array:
    """Element-wise union of same-shape dependency matrices."""
    ds = [d for d in ds if d.nnz]
    if not ds:
        raise ValueError("union of nothing")  # pragma: no cover - callers pass shapes
    out = ds[0]
    for d in ds[1:]:
        if d is out:
            continue
        out = out + d
    return _canonical(out)


def union_or_empty(ds: list[sp.csr_array], k: int, n: int) -> sp.csr_array:
    ds = [d for d in ds if d.nnz]
    return union(ds) if ds else empty(k, n)


def _canonical(m: Any) -> sp.csr_array:
    m = sp.csr_array(m)
    if m.dtype != bool:
        m = m.astype(bool)
    if not m.has_canonical_format:
        m.sum_duplicates()
    return m


def matmul(m: sp.csr_array, d: sp.csr_array) -> sp.csr_array:
    """(OR, AND) product: row i of the result is the union of the rows j of ``d`` with m[i, j]."""
    if m.nnz == 0 or d.nnz == 0:
        return empty(m.shape[0], d.shape[1])
    return _canonical(m @ d)


def from_pairs(dst: np.ndarray, src: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """A 0/1 dependency matrix with entries (dst[t], src[t]) (duplicates allowed)."""
    dst = np.asarray(dst, np.int64).ravel()
    src = np.asarray(src, np.int64).ravel()
    m = sp.coo_array((np.ones(len(dst), bool), (dst, src)), shape=shape).tocsr()
    return _canonical(m)


def vstack(ds: list[sp.csr_array]) -> sp.csr_array:
    """Stack rows (the dependency matrix of a concatenation of flattened values)."""
    if len(ds) == 1:
        return ds[0]
    n = ds[0].shape[1]
    indptrs, idx, off = [np.zeros(1, np.int64)], [], 0
    for d in ds:
        ip = d.indptr.astype(np.int64, copy=False)
        indptrs.append(ip[1:] + off)
        idx.append(d.indices.astype(np.int64, copy=False))
        off += int(ip[-1])
    k = sum(d.shape[0] for d in ds)
    return csr(
        np.concatenate(indptrs), np.concatenate(idx) if idx else np.zeros(0, np.int64), (k, n)
    )


def widen(d: sp.csr_array, width: int, shift: int) -> sp.csr_array:
    """The same rows over ``width`` columns, every column index shifted by ``shift``."""
    return csr(d.indptr.astype(np.int64), d.indices.astype(np.int64) + shift, (d.shape[0], width))


def collapse(d: sp.csr_array) -> np.ndarray:
    """The union of all rows, as sorted column indices."""
    return np.unique(d.indices)


def repeat_row(cols: np.ndarray, k: int, n: int) -> sp.csr_array:
    """k identical rows, each the column set ``cols`` (an all-to-all block)."""
    cols = np.asarray(cols, np.int64)
    indptr = np.arange(k + 1, dtype=np.int64) * len(cols)
    return csr(indptr, np.tile(cols, k), (k, n))


class IndexSets:
    """Abstract value: dependency matrix ``deps`` (size-by-n CSR) and optional concrete ``value``.

    Attributes:
        shape: the array shape.
        dtype: the array dtype.
        deps: ``scipy.sparse.csr_array`` of booleans, shape (prod(shape), n), canonical.
        value: the concrete ``numpy`` value when known (constants; every value in local mode).
        ints: for an integer or boolean value that is not known, what is known of it (bounds
            and cases, see :mod:`stiffasd.detect._ints`), or None.
        second: bookkeeping of second-order detection (see :mod:`stiffasd.detect.hessian`).
    """

    __slots__ = ("shape", "dtype", "deps", "value", "ints", "second")

    def __init__(self, shape, dtype, deps, value=None, ints=None, second=None):
        self.shape = tuple(int(s) for s in shape)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:  # extended dtypes (PRNG keys): no numpy form, never differentiable
            self.dtype = dtype
        self.deps = deps
        self.value = value
        self.ints = ints if value is None else None
        self.second = second
        if deps.shape[0] != self.size:
            raise AssertionError(
                f"internal error: dependency matrix has {deps.shape[0]} rows for a value of "
                f"shape {self.shape}"
            )

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # Python ints: exact, and ~10x cheaper than np.prod

    @property
    def n(self) -> int:
        return self.deps.shape[1]

    @property
    def has_deps(self) -> bool:
        return self.deps.nnz > 0

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def is_const(self) -> bool:
        """A compile-time constant: known value and no dependency on the inputs."""
        return self.value is not None and self.deps.nnz == 0

    def __repr__(self) -> str:
        v = "known" if self.value is not None else "unknown"
        return f"IndexSets(shape={self.shape}, dtype={self.dtype}, nnz={self.deps.nnz}, {v})"
