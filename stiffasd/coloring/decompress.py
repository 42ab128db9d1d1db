"""Decompression plans: how the entries of the pattern are read back from the compressed
products.

The compressed products of one evaluation live in ONE flat buffer

    flat = concat(Bc.ravel(), Br.ravel())

where ``Bc`` has shape ``(ncolors_column, m)`` with ``Bc[c] = A @ onehot(column_colors == c)``
(one JVP per column color) and ``Br`` has shape ``(ncolors_row, n)`` with
``Br[r] = onehot(row_colors == r) @ A`` (one VJP per row color). For a symmetric matrix
``H`` (``n``-by-``n``), ``Bc[c] = H @ onehot(colors == c)``.

Every position of ``flat`` is a sum of pattern entries: ``Bc[c, i]`` is the sum of ``A[i, j]``
over the columns ``j`` of color ``c``. A plan turns ``flat`` into the pattern's data vector in
CSC order (``pattern.csc_indices`` / ``pattern.csc_cols``):

- `DirectPlan`: every entry is alone in some position, so decompression is one gather,
  ``data = flat[gather]`` (Coleman & Moré 1983; Gebremedhin, Manne, Pothen 2005, Section 2).
- `SubstitutionPlan`: entries are solved from 2-colored trees of an acyclic coloring
  (Gebremedhin, Tarafdar, Manne, Pothen 2007, Section 3.2) with a fixed sequence of vectorized
  steps that work in numpy and in ``jax.numpy`` under ``jit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..pattern import SparsityPattern

_I = np.int64


def _ro(a: np.ndarray, dtype=_I) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class DirectPlan:
    """Direct decompression: ``data_csc = flat[gather]``."""

    gather: np.ndarray

    def apply(self, flat: Any, xp: Any = np) -> Any:
        """The pattern's data vector (CSC order) from the flat compressed buffer."""
        return xp.asarray(flat)[self.gather]


@dataclass(frozen=True, eq=False)
class SubstitutionPlan:
    """Decompression by substitution along 2-colored trees, fully vectorized.

    Each 2-colored tree of an acyclic coloring is rooted; a vertex ``d`` at depth ``k`` carries
    ``s_d = (-1)**k`` and reads ``b_d``, the compressed value at row ``d`` of its parent's
    color. Since ``b_d = H[d, parent] + sum_{children x} H[d, x]`` (only tree neighbours of
    ``d`` have the parent's color), the tree edge to the parent is the alternating subtree sum

        H[u, parent(u)] = s_u * sum_{d in subtree(u)} s_d * b_d.

    Listing the tree vertices in DFS preorder makes every subtree a contiguous range, so all
    edges come from one exclusive prefix sum ``S``: ``H[u, parent(u)] = s_u * (S[end_u] -
    S[start_u])``. Steps: one gather, one multiply, one cumsum, two gathers, one final gather.

    Accuracy: the root of each listed tree is included with ``b_root`` (its compressed value at
    its children's color), which makes the tree's signed values sum to zero exactly; the prefix
    sum therefore returns to ~0 between trees and rounding errors do not drift across the
    forest. Leaf edges, and all edges of depth-1 trees (stars rooted at their centre), are read
    directly and never enter the prefix sum. The error is then that of sequential substitution
    (measured equal on a badly scaled 2D Laplacian).

    Attributes:
        pre_gather: flat position of ``b_d`` for every listed tree vertex, in preorder.
        pre_sign: ``s_d`` (float64, +-1) in the same order.
        start, end: range of each solved edge's subtree in the preorder list.
        edge_sign: ``s_u`` of the child end of each solved edge.
        final: for every pattern entry (CSC order), an index into
            ``concat(flat, edge_values)``: directly readable entries point into ``flat``,
            the others at ``len(flat) + edge``.
    """

    pre_gather: np.ndarray
    pre_sign: np.ndarray
    start: np.ndarray
    end: np.ndarray
    edge_sign: np.ndarray
    final: np.ndarray
    flat_size: int

    def apply(self, flat: Any, xp: Any = np) -> Any:
        """The pattern's data vector (CSC order) from the flat compressed buffer."""
        flat = xp.asarray(flat)
        if self.pre_gather.size == 0:
            return flat[self.final]
        v = flat[self.pre_gather] * self.pre_sign.astype(flat.dtype)
        s = xp.concatenate([xp.zeros((1,), dtype=flat.dtype), xp.cumsum(v)])
        e = (s[self.end] - s[self.start]) * self.edge_sign.astype(flat.dtype)
        return xp.concatenate([flat, e])[self.final]


@dataclass(frozen=True, eq=False)
class UnknownSystem:
    """The unknowns of a coloring problem and where each one is summed in the flat buffer.

    For nonsymmetric problems the unknowns are the pattern's nonzeros (CSC order). For
    symmetric problems ``H[i, j]`` and ``H[j, i]`` are one unknown (stored at ``i >= j``).
    Each unknown ``u`` appears in up to two flat positions ``f1[u]``, ``f2[u]`` (-1: absent):
    the compressed column of the column-side color at the row, and the compressed row of the
    row-side color at the column (or, symmetric, the two columns' colors).

    Attributes:
        f1, f2: candidate flat positions of each unknown.
        entry_unknown: the unknown of each pattern entry (CSC order).
        ui, uj: row and column of each unknown.
        flat_size: length of the flat buffer.
    """

    f1: np.ndarray
    f2: np.ndarray
    entry_unknown: np.ndarray
    ui: np.ndarray
    uj: np.ndarray
    flat_size: int

    def counts_at(self, f: np.ndarray) -> np.ndarray:
        """How many unknowns are summed at each flat position of ``f`` (0 where ``f < 0``;
        the positions must be ones of this system)."""
        allf = np.concatenate([self.f1[self.f1 >= 0], self.f2[self.f2 >= 0]])
        out = np.zeros(f.shape, dtype=np.int64)
        valid = f >= 0
        if allf.size == 0:
            return out
        if self.flat_size <= 4 * allf.size + 1024:
            out[valid] = np.bincount(allf, minlength=self.flat_size)[f[valid]]
        else:
            # many colors (a raw coloring before postprocessing): count by sorting instead
            uniq, cnt = np.unique(allf, return_counts=True)
            out[valid] = cnt[np.searchsorted(uniq, f[valid])]
        return out

    def direct_ok(self) -> tuple[np.ndarray, np.ndarray]:
        """Whether each unknown is alone at ``f1`` / at ``f2``."""
        return self.counts_at(self.f1) == 1, self.counts_at(self.f2) == 1

    def direct_choice(self) -> np.ndarray:
        """Flat position where each unknown is alone (-1 when there is none)."""
        ok1, ok2 = self.direct_ok()
        return np.where(ok1, self.f1, np.where(ok2, self.f2, -1))


def build_system(
    pattern: SparsityPattern,
    symmetric: bool,
    column_colors: np.ndarray,
    row_colors: np.ndarray,
    ncolors_column: int,
) -> UnknownSystem:
    """The `UnknownSystem` of a coloring (colors contiguous, -1 neutral)."""
    m, n = pattern.shape
    ci = pattern.csc_indices
    cj = pattern.csc_cols
    if symmetric:
        # unknowns are the lower-triangle entries in CSC order; for a symmetric pattern the
        # cached csr_to_csc permutation maps each CSC entry to the CSC position of its mirror
        lower = ci >= cj
        uid = np.cumsum(lower) - 1
        inv = np.where(lower, uid, uid[pattern.csr_to_csc])
        ui, uj = ci[lower], cj[lower]  # ui >= uj
        col = column_colors
        f1 = np.where(col[uj] >= 0, col[uj] * n + ui, -1)
        f2 = np.where((col[ui] >= 0) & (ui != uj), col[ui] * n + uj, -1)
        size = ncolors_column * n
        return UnknownSystem(_ro(f1), _ro(f2), _ro(inv.ravel()), _ro(ui), _ro(uj), int(size))
    cc = column_colors[cj]
    rc = row_colors[ci]
    f1 = np.where(cc >= 0, cc * m + ci, -1)
    f2 = np.where(rc >= 0, ncolors_column * m + rc * n + cj, -1)
    nr = int(row_colors.max()) + 1 if row_colors.size and row_colors.max() >= 0 else 0
    size = ncolors_column * m + nr * n
    return UnknownSystem(_ro(f1), _ro(f2), _ro(np.arange(ci.size)), _ro(ci), _ro(cj), int(size))
