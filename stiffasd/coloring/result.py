"""`ColoringResult`: the colors of a coloring problem and everything needed to evaluate and
decompress the compressed products."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ShapeError
from ..pattern import SparsityPattern
from .decompress import DirectPlan, SubstitutionPlan


@dataclass(frozen=True, eq=False)
class ColoringResult:
    """Result of `stiffasd.color` (immutable; arrays are read-only).

    Attributes:
        pattern: the colored `SparsityPattern` (``m``-by-``n``).
        structure: ``"nonsymmetric"`` or ``"symmetric"``.
        partition: ``"column"``, ``"row"`` or ``"bidirectional"``.
        order: the requested vertex order (``chosen_order`` says which one ``"best"`` kept).
        decompression: ``"direct"`` or ``"substitution"``.
        postprocess: whether unneeded colors were made neutral.
        column_colors: int64, length ``n``; ``-1`` = neutral (column not seeded). For symmetric
            problems these are the colors (rows = columns).
        row_colors: int64, length ``m``; ``-1`` = neutral.
        ncolors_column, ncolors_row: number of JVP and VJP passes (colors ``0..k-1``).
        plan: `DirectPlan` or `SubstitutionPlan`; see `decompress_flat`.
        chosen_order: the order that produced these colors.
    """

    pattern: SparsityPattern
    structure: str
    partition: str
    order: str
    decompression: str
    postprocess: bool
    column_colors: np.ndarray
    row_colors: np.ndarray
    ncolors_column: int
    ncolors_row: int
    plan: DirectPlan | SubstitutionPlan = field(repr=False)
    chosen_order: str = ""

    # ------------------------------------------------------------------ counts
    @property
    def ncolors(self) -> int:
        """Total number of compressed passes (JVPs + VJPs)."""
        return self.ncolors_column + self.ncolors_row

    @property
    def flat_size(self) -> int:
        """Length of ``concat(Bc.ravel(), Br.ravel())``."""
        m, n = self.pattern.shape
        return self.ncolors_column * m + self.ncolors_row * n

    @property
    def gather(self) -> np.ndarray | None:
        """For direct decompression, ``data_csc = flat[gather]`` (int64, length ``nnz``);
        None for substitution (use `decompress_flat`)."""
        return self.plan.gather if isinstance(self.plan, DirectPlan) else None

    # ------------------------------------------------------------------ seeds
    def column_seeds(self) -> np.ndarray:
        """Dense ``n``-by-``ncolors_column`` 0/1 seed matrix (small problems, tests)."""
        return _onehot(self.column_colors, self.ncolors_column)

    def row_seeds(self) -> np.ndarray:
        """Dense ``m``-by-``ncolors_row`` 0/1 seed matrix (small problems, tests)."""
        return _onehot(self.row_colors, self.ncolors_row)

    # ------------------------------------------------------------------ compress / decompress
    def compress(self, A: Any) -> Any:
        """The compressed products of a concrete matrix with this pattern.

        Args:
            A: numpy array or scipy sparse matrix of shape ``pattern.shape``.

        Returns:
            column (and symmetric) partition: ``A @ S`` (``m``-by-``ncolors_column``);
            row partition: ``S^T A`` (``ncolors_row``-by-``n``);
            bidirectional: the pair ``(A @ Sc, Sr^T A)``.
        """
        A = _as_csr(A, self.pattern.shape)
        m, n = self.pattern.shape
        out = []
        if self.partition in ("column", "bidirectional"):
            sc = _sparse_onehot(self.column_colors, self.ncolors_column)
            out.append(np.asarray((A @ sc).toarray()).reshape(m, self.ncolors_column))
        if self.partition in ("row", "bidirectional"):
            sr = _sparse_onehot(self.row_colors, self.ncolors_row)
            out.append(np.asarray((sr.T @ A).toarray()).reshape(self.ncolors_row, n))
        return tuple(out) if self.partition == "bidirectional" else out[0]

    def flatten(self, B: Any) -> np.ndarray:
        """The flat buffer ``concat(Bc.ravel(), Br.ravel())`` of `compress`'s output."""
        m, n = self.pattern.shape
        if self.partition == "bidirectional":
            bc, br = B
        elif self.partition == "row":
            bc, br = np.zeros((m, 0)), B
        else:
            bc, br = B, np.zeros((0, n))
        bc = np.asarray(bc)
        br = np.asarray(br)
        if bc.shape != (m, self.ncolors_column) or br.shape != (self.ncolors_row, n):
            raise ShapeError(
                f"ColoringResult.decompress: expected compressed shapes {(m, self.ncolors_column)}"
                f" (columns) and {(self.ncolors_row, n)} (rows), got {bc.shape} and {br.shape}."
            )
        return np.concatenate([bc.T.ravel(), br.ravel()])

    def decompress_flat(self, flat: Any, xp: Any = np) -> Any:
        """The pattern's data vector in CSC order from the flat buffer
        ``concat(Bc.ravel(), Br.ravel())``, using only array operations of ``xp`` (numpy or
        ``jax.numpy``, also under ``jit``)."""
        return self.plan.apply(flat, xp)

    def decompress(self, B: Any) -> sp.csc_matrix:
        """The matrix (scipy ``csc_matrix`` with this pattern) from `compress`'s output."""
        data = np.asarray(self.decompress_flat(self.flatten(B)))
        p = self.pattern
        return sp.csc_matrix((data, p.csc_indices.copy(), p.csc_indptr.copy()), shape=p.shape)

    def __repr__(self) -> str:
        m, n = self.pattern.shape
        return (
            f"ColoringResult({m}x{n}, structure={self.structure!r}, "
            f"partition={self.partition!r}, order={self.chosen_order or self.order!r}, "
            f"decompression={self.decompression!r}, ncolors={self.ncolors} "
            f"[{self.ncolors_column} column + {self.ncolors_row} row])"
        )


def _onehot(colors: np.ndarray, k: int) -> np.ndarray:
    s = np.zeros((colors.size, k))
    on = colors >= 0
    s[np.flatnonzero(on), colors[on]] = 1.0
    return s


def _sparse_onehot(colors: np.ndarray, k: int) -> sp.csr_matrix:
    on = np.flatnonzero(colors >= 0)
    return sp.csr_matrix((np.ones(on.size), (on, colors[on])), shape=(colors.size, k))


def _as_csr(A: Any, shape: tuple[int, int]) -> sp.csr_matrix:
    if sp.issparse(A):
        A = sp.csr_matrix(A)
    else:
        A = np.asarray(A)
        if A.ndim != 2:
            raise ShapeError(f"ColoringResult.compress: expected a 2D matrix, got shape {A.shape}.")
        A = sp.csr_matrix(A)
    if A.shape != tuple(shape):
        raise ShapeError(
            f"ColoringResult.compress: matrix has shape {A.shape}, the pattern {tuple(shape)}."
        )
    return A
