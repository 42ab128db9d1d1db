"""`SparsityPattern`: the immutable boolean structure of a sparse matrix.

The pattern is stored as sorted, duplicate-free CSR index arrays; the CSC arrays (and the
permutation taking CSR data order to CSC data order) are computed once, on first use, and cached.
Every later stage (coloring, compressed evaluation, solver glue) works from these arrays, so a
Jacobian evaluation only ever fills a data vector.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import ShapeError

__all__ = ["SparsityPattern"]

_INDEX = np.int64


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


class SparsityPattern:
    """Immutable sparsity pattern of an ``m``-by-``n`` matrix.

    Build it with `SparsityPattern.from_scipy`, `SparsityPattern.from_dense`,
    `SparsityPattern.from_coo` or directly from CSR arrays (``indptr`` of length ``m + 1``
    and sorted, unique column ``indices`` per row).

    Attributes:
        shape: ``(m, n)``.
        indptr: CSR row pointer, ``int64`` of length ``m + 1`` (read-only).
        indices: CSR column indices, ``int64`` of length ``nnz`` (read-only).
    """

    __slots__ = ("shape", "indptr", "indices", "__dict__")

    def __init__(self, shape: tuple[int, int], indptr: Any, indices: Any, *, check: bool = True):
        m, n = (int(s) for s in shape)
        indptr = np.asarray(indptr, dtype=_INDEX)
        indices = np.asarray(indices, dtype=_INDEX)
        if check:
            if m < 0 or n < 0:
                raise ShapeError(f"SparsityPattern: shape must be non-negative, got {shape}.")
            if indptr.shape != (m + 1,) or indptr[0] != 0 or indptr[-1] != indices.size:
                raise ShapeError(
                    f"SparsityPattern: indptr must have length m + 1 = {m + 1}, start at 0 and "
                    f"end at nnz = {indices.size}; got length {indptr.size}."
                )
            if np.any(np.diff(indptr) < 0):
                raise ShapeError("SparsityPattern: indptr must be non-decreasing.")
            if indices.size and (indices.min() < 0 or indices.max() >= n):
                raise ShapeError(
                    f"SparsityPattern: column indices must lie in [0, {n}); got range "
                    f"[{indices.min()}, {indices.max()}]."
                )
            rows = np.repeat(np.arange(m, dtype=_INDEX), np.diff(indptr))
            key = rows * max(n, 1) + indices
            if key.size > 1 and np.any(np.diff(key) <= 0):
                # unsorted or duplicated entries: canonicalize instead of refusing
                key = np.unique(key)
                rows, indices = np.divmod(key, max(n, 1))
                indptr = np.searchsorted(rows, np.arange(m + 1), side="left").astype(_INDEX)
        object.__setattr__(self, "shape", (m, n))
        object.__setattr__(self, "indptr", _readonly(indptr))
        object.__setattr__(self, "indices", _readonly(indices))

    def __setattr__(self, name, value):
        if name in ("shape", "indptr", "indices"):
            raise AttributeError("SparsityPattern is immutable.")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_coo(cls, shape: tuple[int, int], rows: Any, cols: Any) -> SparsityPattern:
        """Pattern from (possibly unsorted, duplicated) coordinate lists."""
        m, n = (int(s) for s in shape)
        rows = np.asarray(rows, dtype=_INDEX).ravel()
        cols = np.asarray(cols, dtype=_INDEX).ravel()
        if rows.shape != cols.shape:
            raise ShapeError(
                f"SparsityPattern.from_coo: rows and cols must have the same length, got "
                f"{rows.size} and {cols.size}."
            )
        if rows.size and (rows.min() < 0 or rows.max() >= m or cols.min() < 0 or cols.max() >= n):
            raise ShapeError(
                f"SparsityPattern.from_coo: coordinates out of range for shape {shape}."
            )
        key = np.unique(rows * max(n, 1) + cols)
        r, c = np.divmod(key, max(n, 1))
        indptr = np.searchsorted(r, np.arange(m + 1), side="left").astype(_INDEX)
        return cls((m, n), indptr, c, check=False)

    @classmethod
    def from_scipy(cls, matrix: Any) -> SparsityPattern:
        """Pattern of the *stored* entries of a scipy sparse matrix or array.

        Explicitly stored zeros count as structural nonzeros (they are part of the structure the
        caller declared); use ``matrix.eliminate_zeros()`` first to drop them.
        """
        if not sp.issparse(matrix):
            raise TypeError(
                f"SparsityPattern.from_scipy: expected a scipy sparse matrix, got "
                f"{type(matrix).__name__}; use SparsityPattern.from_dense for arrays."
            )
        csr = sp.csr_array(matrix)
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(csr.shape, csr.indptr, csr.indices, check=False)

    @classmethod
    def from_dense(cls, array: Any) -> SparsityPattern:
        """Pattern of the nonzero entries of a dense 2D array (``!= 0``)."""
        a = np.asarray(array)
        if a.ndim != 2:
            raise ShapeError(
                f"SparsityPattern.from_dense: expected a 2D array, got shape {a.shape}."
            )
        rows, cols = np.nonzero(a)
        return cls.from_coo(a.shape, rows, cols)

    @classmethod
    def identity(cls, n: int) -> SparsityPattern:
        """The diagonal pattern of size ``n``."""
        return cls((n, n), np.arange(n + 1), np.arange(n), check=False)

    # ------------------------------------------------------------------ basic properties
    @property
    def nnz(self) -> int:
        """Number of structural nonzeros."""
        return int(self.indices.size)

    @property
    def density(self) -> float:
        m, n = self.shape
        return self.nnz / (m * n) if m * n else 0.0

    @cached_property
    def rows(self) -> np.ndarray:
        """Row index of each nonzero, in CSR order."""
        return _readonly(np.repeat(np.arange(self.shape[0], dtype=_INDEX), np.diff(self.indptr)))

    @property
    def cols(self) -> np.ndarray:
        """Column index of each nonzero, in CSR order."""
        return self.indices

    @cached_property
    def csr_to_csc(self) -> np.ndarray:
        """Permutation ``p`` with ``csc_data = csr_data[p]``."""
        return _readonly(np.lexsort((self.rows, self.indices)).astype(_INDEX))

    @cached_property
    def csc_indptr(self) -> np.ndarray:
        """CSC column pointer, length ``n + 1``."""
        counts = np.bincount(self.indices, minlength=self.shape[1])
        return _readonly(np.concatenate([[0], np.cumsum(counts)]).astype(_INDEX))

    @cached_property
    def csc_indices(self) -> np.ndarray:
        """CSC row indices (sorted within each column)."""
        return _readonly(self.rows[self.csr_to_csc])

    @cached_property
    def csc_cols(self) -> np.ndarray:
        """Column index of each nonzero, in CSC order."""
        return _readonly(self.indices[self.csr_to_csc])

    @cached_property
    def row_counts(self) -> np.ndarray:
        """Number of nonzeros in each row."""
        return _readonly(np.diff(self.indptr))

    @cached_property
    def col_counts(self) -> np.ndarray:
        """Number of nonzeros in each column."""
        return _readonly(np.diff(self.csc_indptr))

    def bandwidth(self) -> tuple[int, int]:
        """``(lower, upper)`` bandwidths: the largest ``i - j`` and ``j - i`` over the nonzeros
        (0 for an empty pattern), as LSODA's ``lband``/``uband`` expect."""
        if self.nnz == 0:
            return (0, 0)
        d = self.rows - self.indices
        return (max(int(d.max()), 0), max(int(-d.min()), 0))

    @property
    def T(self) -> SparsityPattern:
        """The transposed pattern."""
        return SparsityPattern(
            (self.shape[1], self.shape[0]), self.csc_indptr, self.csc_indices, check=False
        )

    # ------------------------------------------------------------------ conversions
    def to_scipy(self, format: str = "csr", dtype: Any = np.float64) -> sp.sparray:
        """A scipy sparse array with ones at the nonzeros, in ``format`` ("csr", "csc" or any
        scipy format name)."""
        data = np.ones(self.nnz, dtype=dtype)
        if format == "csc":
            return sp.csc_array(
                (data, self.csc_indices.copy(), self.csc_indptr.copy()), shape=self.shape
            )
        csr = sp.csr_array((data, self.indices.copy(), self.indptr.copy()), shape=self.shape)
        return csr if format == "csr" else csr.asformat(format)

    def to_dense(self) -> np.ndarray:
        """Boolean dense array (only for small patterns: ``m * n`` booleans)."""
        out = np.zeros(self.shape, dtype=bool)
        out[self.rows, self.indices] = True
        return out

    def to_bcoo(self, data: Any = None):
        """A `jax.experimental.sparse.BCOO` with ones (or ``data`` in CSR order)."""
        import jax.numpy as jnp
        from jax.experimental import sparse as jsparse

        idx = np.stack([self.rows, self.indices], axis=1)
        if data is None:
            data = jnp.ones(self.nnz)
        return jsparse.BCOO(
            (data, jnp.asarray(idx)), shape=self.shape, indices_sorted=True, unique_indices=True
        )

    # ------------------------------------------------------------------ set relations
    def _keys(self) -> np.ndarray:
        return self.rows * max(self.shape[1], 1) + self.indices

    def _check_same_shape(self, other: SparsityPattern, what: str) -> None:
        if self.shape != other.shape:
            raise ShapeError(
                f"SparsityPattern.{what}: shapes differ, {self.shape} vs {other.shape}."
            )

    def missing_from(self, other: SparsityPattern) -> np.ndarray:
        """Coordinates ``(k, 2)`` of the entries of ``other`` that are not in ``self``."""
        self._check_same_shape(other, "missing_from")
        miss = np.setdiff1d(other._keys(), self._keys(), assume_unique=True)
        return np.stack(np.divmod(miss, max(self.shape[1], 1)), axis=1)

    def issuperset(self, other: SparsityPattern) -> bool:
        """True if every nonzero of ``other`` is a nonzero of ``self``."""
        return self.missing_from(other).shape[0] == 0

    def union(self, other: SparsityPattern) -> SparsityPattern:
        self._check_same_shape(other, "union")
        key = np.union1d(self._keys(), other._keys())
        r, c = np.divmod(key, max(self.shape[1], 1))
        return SparsityPattern.from_coo(self.shape, r, c)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparsityPattern):
            return NotImplemented
        return (
            self.shape == other.shape
            and np.array_equal(self.indptr, other.indptr)
            and np.array_equal(self.indices, other.indices)
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.indptr.tobytes(), self.indices.tobytes()))

    # ------------------------------------------------------------------ pictures
    def braille(self, max_width: int = 40, max_height: int = 20) -> str:
        """A text picture: one braille character per 4-by-2 block of (binned) entries."""
        m, n = self.shape
        if m == 0 or n == 0:
            return ""
        w = min(max_width, -(-n // 2))
        h = min(max_height, -(-m // 4))
        # map each nonzero to a (char row, char col, dot row, dot col) cell
        ry = (self.rows * (4 * h)) // m
        cx = (self.indices * (2 * w)) // n
        # braille dot numbering: (dy, dx) -> bit
        bits = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)
        cells = np.zeros((h, w), dtype=np.int64)
        np.bitwise_or.at(cells, (ry // 4, cx // 2), bits[ry % 4, cx % 2])
        codes = (0x2800 + cells).astype("<u4")
        return "\n".join(row.tobytes().decode("utf-32-le") for row in codes)

    def __repr__(self) -> str:
        m, n = self.shape
        head = f"SparsityPattern({m}x{n}, nnz={self.nnz}, density={self.density:.3g})"
        pic = self.braille()
        return head + ("\n" + pic if pic else "")

    def spy(self, ax=None, **kwargs):
        """Plot the pattern with matplotlib (optional dependency)."""
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.gca()
        ax.spy(self.to_scipy("coo"), markersize=kwargs.pop("markersize", 1), **kwargs)
        return ax
