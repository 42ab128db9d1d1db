"""Elimination trees of symmetric sparsity patterns: the tree, its postorder, and the column counts
and row structures of the Cholesky factor, without forming the factor.

All kernels take the *strict lower* triangle of a structurally symmetric pattern in CSR form
(row ``i`` lists the columns ``k < i`` with ``S[i, k] != 0``) and run in O(nnz(L)) or less. The
algorithms are those of Liu, "The role of elimination trees in sparse factorization", SIAM J.
Matrix Anal. Appl. 11 (1990) 134-172, as presented by Davis, "Direct Methods for Sparse Linear
Systems", SIAM 2006, chapter 4 (elimination tree with path compression, Alg. 4.1; postorder;
row subtrees, Alg. 4.2).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["lower_csr", "elimination_tree", "postorder", "column_counts", "structures"]


def lower_csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (``ptr``, ``idx``) of the strict lower triangle from sorted unique keys ``i * n + j`` of
    a symmetric off-diagonal pattern."""
    i, j = keys // n, keys % n
    low = j < i
    i, j = i[low], j[low]  # keys sorted by i then j: already in CSR order
    ptr = np.searchsorted(i, np.arange(n + 1)).astype(np.int64)
    return ptr, j.astype(np.int64)


@numba.njit(cache=True)
def elimination_tree(n, ptr, idx):  # pragma: no cover - compiled
    """``parent[j]`` of every column (-1 for a root): Liu's algorithm with path compression."""
    parent = np.full(n, -1, np.int64)
    ancestor = np.full(n, -1, np.int64)
    for i in range(n):
        for p in range(ptr[i], ptr[i + 1]):
            k = idx[p]
            while k != -1 and k < i:
                nxt = ancestor[k]
                ancestor[k] = i
                if nxt == -1:
                    parent[k] = i
                k = nxt
    return parent


@numba.njit(cache=True)
def postorder(parent):  # pragma: no cover - compiled
    """A postorder of the forest ``parent`` (children in increasing order, each subtree
    contiguous and ending with its root): ``post[k]`` is the k-th vertex."""
    n = parent.size
    head = np.full(n, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    for j in range(n - 1, -1, -1):
        p = parent[j]
        if p != -1:
            nxt[j] = head[p]
            head[p] = j
    post = np.empty(n, np.int64)
    stack = np.empty(n, np.int64)
    k = 0
    for root in range(n):
        if parent[root] != -1:
            continue
        top = 0
        stack[0] = root
        while top >= 0:
            j = stack[top]
            c = head[j]
            if c == -1:
                top -= 1
                post[k] = j
                k += 1
            else:
                head[j] = nxt[c]
                top += 1
                stack[top] = c
    return post


@numba.njit(cache=True)
def column_counts(n, ptr, idx, parent):  # pragma: no cover - compiled
    """Entries of every column of the Cholesky factor L, diagonal included, by walking the row
    subtrees: row ``i`` of L is the union of the tree paths from each ``k`` in row ``i`` of the
    lower pattern up to ``i``. O(nnz(L))."""
    count = np.ones(n, np.int64)
    mark = np.full(n, -1, np.int64)
    for i in range(n):
        mark[i] = i
        for p in range(ptr[i], ptr[i + 1]):
            k = idx[p]
            while k != -1 and mark[k] != i:
                mark[k] = i
                count[k] += 1
                k = parent[k]
    return count


@numba.njit(cache=True)
def structures(n, ptr, idx, parent, owner_of_last, sptr):  # pragma: no cover - compiled
    """Row structures below selected columns: for every column ``j`` with
    ``owner_of_last[j] = s >= 0``, the rows ``i > j`` with ``L[i, j] != 0`` are written, sorted,
    into ``out[sptr[s]:sptr[s + 1]]``."""
    out = np.empty(sptr[-1], np.int64)
    fill = sptr[:-1].copy()
    mark = np.full(n, -1, np.int64)
    for i in range(n):
        mark[i] = i
        for p in range(ptr[i], ptr[i + 1]):
            k = idx[p]
            while k != -1 and mark[k] != i:
                mark[k] = i
                s = owner_of_last[k]
                if s >= 0:
                    out[fill[s]] = i
                    fill[s] += 1
                k = parent[k]
    return out
