"""Validity checks of a coloring against its pattern.

`check_coloring` raises `stiffasd.InvalidColoringError` naming the conflicting entries, or
returns None. What is checked depends on the problem:

- column / row partition: structurally orthogonal columns / rows (no two columns of one color
  share a row), i.e. every nonzero is alone in its compressed position;
- symmetric, direct: symmetrically orthogonal columns (Coleman & Moré 1984; a star coloring,
  Gebremedhin, Manne, Pothen 2005, Theorem 4.6): every entry ``H[i, j]`` is alone in row ``i``
  of the compressed column of ``j``'s color, or in row ``j`` of the one of ``i``'s color;
- bidirectional, direct: bi-orthogonality (Coleman & Verma 1998): every nonzero is alone in its
  compressed column (JVP) or in its compressed row (VJP);
- substitution (symmetric or bidirectional): the colored vertices form a distance-1 coloring in
  which every 2-colored subgraph is a forest (acyclic coloring), and every unknown can be solved
  by successive substitution (a structural peeling of the compressed system).

Always: color vectors of the right length and integer type, colors in ``-1..k-1``, every color
``0..k-1`` used, the counts stored on the result consistent.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ..errors import InvalidColoringError
from ._graph import as_pattern, augmented_adjacency, symmetric_adjacency
from .decompress import UnknownSystem, build_system


@numba.njit(cache=True)
def _peel(f1, f2, flat_size):  # pragma: no cover - compiled
    """Structural substitution: repeatedly solve an unknown that is the only unsolved one in
    some flat position, until none is left. Returns the solved mask and the solve order.
    This is the Gaussian-elimination-free decompression of Gebremedhin, Tarafdar, Manne,
    Pothen (2007), Section 3.2, phrased on the compressed system itself."""
    nu = f1.size
    cnt = np.zeros(flat_size + 1, dtype=np.int64)
    for u in range(nu):
        if f1[u] >= 0:
            cnt[f1[u]] += 1
        if f2[u] >= 0:
            cnt[f2[u]] += 1
    ptr = np.zeros(flat_size + 1, dtype=np.int64)
    for f in range(flat_size):
        ptr[f + 1] = ptr[f] + cnt[f]
    fill = ptr[:-1].copy()
    members = np.empty(ptr[flat_size], dtype=np.int64)
    for u in range(nu):
        if f1[u] >= 0:
            members[fill[f1[u]]] = u
            fill[f1[u]] += 1
        if f2[u] >= 0:
            members[fill[f2[u]]] = u
            fill[f2[u]] += 1
    solved = np.zeros(nu, dtype=np.bool_)
    order = np.empty(nu, dtype=np.int64)
    nsolved = 0
    stack = np.empty(flat_size + 2 * nu + 1, dtype=np.int64)
    top = 0
    for f in range(flat_size):
        if cnt[f] == 1:
            stack[top] = f
            top += 1
    while top > 0:
        top -= 1
        f = stack[top]
        if cnt[f] != 1:
            continue
        u = -1
        for p in range(ptr[f], ptr[f + 1]):
            if not solved[members[p]]:
                u = members[p]
                break
        solved[u] = True
        order[nsolved] = u
        nsolved += 1
        cnt[f] = 0
        g = f2[u] if f1[u] == f else f1[u]
        if g >= 0:
            cnt[g] -= 1
            if cnt[g] == 1:
                stack[top] = g
                top += 1
    return solved, order[:nsolved]


@numba.njit(cache=True)
def _first_cycle_edge(a, b, nnodes):  # pragma: no cover - compiled
    """Union-find over tree nodes; returns the index of the first edge closing a cycle, or -1."""
    parent = np.arange(nnodes)
    for e in range(a.size):
        x = a[e]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        y = b[e]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x == y:
            return e
        parent[x] = y
    return -1


def _fail(msg: str) -> None:
    raise InvalidColoringError(f"check_coloring: {msg}")


def _check_vector(name: str, colors: Any, length: int, ncolors: int) -> np.ndarray:
    c = np.asarray(colors)
    if c.ndim != 1 or c.shape[0] != length:
        _fail(f"{name} must be a vector of length {length}, got shape {c.shape}.")
    if c.size and not np.issubdtype(c.dtype, np.integer):
        _fail(f"{name} must hold integers, got dtype {c.dtype}.")
    c = c.astype(np.int64)
    if c.size and (c.min() < -1 or c.max() >= ncolors):
        bad = int(np.flatnonzero((c < -1) | (c >= ncolors))[0])
        _fail(
            f"{name}[{bad}] = {int(c[bad])} is out of range: colors must lie in -1..{ncolors - 1} "
            f"(-1 = neutral) for {ncolors} colors."
        )
    used = np.unique(c[c >= 0])
    if used.size != ncolors:
        missing = np.setdiff1d(np.arange(ncolors), used)
        _fail(
            f"{name} uses {used.size} distinct colors but the result claims {ncolors}; "
            f"colors {missing[:5].tolist()} are never used (colors must be contiguous 0..k-1)."
        )
    return c


class _Describe:
    """Turns flat positions back into words for error messages."""

    def __init__(self, shape, symmetric, kc):
        self.m, self.n = shape
        self.symmetric = symmetric
        self.kc = kc

    def __call__(self, f: int) -> str:
        if self.symmetric:
            c, i = divmod(f, self.n)
            return f"compressed column of color {c} at row {i}"
        if f < self.kc * self.m:
            c, i = divmod(f, self.m)
            return f"compressed column (JVP) of column color {c} at row {i}"
        r, j = divmod(f - self.kc * self.m, self.n)
        return f"compressed row (VJP) of row color {r} at column {j}"


def _members(system: UnknownSystem, f: int, exclude: int, k: int = 3) -> str:
    hit = np.flatnonzero((system.f1 == f) | (system.f2 == f))
    hit = hit[hit != exclude][:k]
    return ", ".join(f"({int(system.ui[u])}, {int(system.uj[u])})" for u in hit)


def _direct_conflict(result, system: UnknownSystem, bad: int) -> None:
    i, j = int(system.ui[bad]), int(system.uj[bad])
    f1, f2 = int(system.f1[bad]), int(system.f2[bad])
    if f1 < 0 and f2 < 0:
        who = (
            f"column {j} is neutral (-1)"
            if result.partition == "column" or result.structure == "symmetric"
            else f"row {i} is neutral (-1)"
            if result.partition == "row"
            else f"column {j} and row {i} are both neutral (-1)"
        )
        _fail(f"entry ({i}, {j}) is in no compressed product: {who}.")
    d = _Describe(result.pattern.shape, result.structure == "symmetric", result.ncolors_column)
    if result.partition == "column" and result.structure == "nonsymmetric":
        others = np.flatnonzero(system.f1 == f1)
        ks = sorted({int(system.uj[u]) for u in others} - {j})[:3]
        _fail(
            f"columns {j} and {ks} have the same color {int(result.column_colors[j])} but share "
            f"row {i} (entries ({i}, {j}) and ({i}, {ks[0]})): not structurally orthogonal."
        )
    if result.partition == "row" and result.structure == "nonsymmetric":
        others = np.flatnonzero(system.f2 == f2)
        ks = sorted({int(system.ui[u]) for u in others} - {i})[:3]
        _fail(
            f"rows {i} and {ks} have the same color {int(result.row_colors[i])} but share "
            f"column {j} (entries ({i}, {j}) and ({ks[0]}, {j})): not structurally orthogonal."
        )
    parts = [f"the {d(f)} also sums {_members(system, f, bad)}" for f in (f1, f2) if f >= 0]
    kind = (
        "not symmetrically orthogonal (star coloring violated)"
        if result.structure == "symmetric"
        else "not bi-orthogonal"
    )
    _fail(f"entry ({i}, {j}) cannot be read directly: {'; '.join(parts)}: {kind}.")


def _acyclic_conflicts(result, pattern) -> None:
    """Distance-1 and 2-colored-cycle checks on the colored vertices."""
    if result.structure == "symmetric":
        adj = symmetric_adjacency(pattern)
        key = result.column_colors
        name = lambda v: f"vertex {v}"  # noqa: E731
    else:
        adj = augmented_adjacency(pattern)
        m = pattern.shape[0]
        kc = result.ncolors_column
        key = np.concatenate(
            [np.where(result.row_colors >= 0, result.row_colors + kc, -1), result.column_colors]
        )
        name = lambda v: f"row {v}" if v < m else f"column {v - m}"  # noqa: E731
    nv = adj.nv
    src = np.repeat(np.arange(nv), np.diff(adj.ptr))
    dst = adj.idx
    ks, kd = key[src], key[dst]
    both = (ks >= 0) & (kd >= 0)
    same = both & (ks == kd)
    if np.any(same):
        p = int(np.flatnonzero(same)[0])
        _fail(
            f"{name(int(src[p]))} and {name(int(dst[p]))} are adjacent and share color "
            f"{int(ks[p])}: not a distance-1 coloring, so not acyclic."
        )
    # 2-colored trees: a node is (vertex, color of the neighbours on the other side)
    nk = int(key.max()) + 2 if key.size else 1
    node_key = src * nk + kd
    uniq, node = np.unique(node_key, return_inverse=True)
    node = node.ravel()
    fwd = both & (src < dst)
    a = node[fwd]
    b = node[adj.mate[fwd]]
    e = _first_cycle_edge(a.astype(np.int64), b.astype(np.int64), uniq.size)
    if e >= 0:
        p = int(np.flatnonzero(fwd)[e])
        u, v = int(src[p]), int(dst[p])
        _fail(
            f"the edge between {name(u)} and {name(v)} closes a cycle colored only with colors "
            f"{int(key[u])} and {int(key[v])}: not an acyclic coloring."
        )


def check_coloring(pattern: Any, result: Any) -> None:
    """Raise `stiffasd.InvalidColoringError` if ``result`` is not a valid coloring of
    ``pattern`` for its problem (see the module docstring); return None otherwise.

    Args:
        pattern: the `SparsityPattern` (or scipy sparse matrix) that was colored.
        result: a `ColoringResult` (or any object with the same attributes).
    """
    pattern = as_pattern(pattern, "check_coloring")
    rp = result.pattern
    if rp.shape != pattern.shape or not (
        np.array_equal(rp.indptr, pattern.indptr) and np.array_equal(rp.indices, pattern.indices)
    ):
        _fail(
            f"the result was computed for a different pattern ({rp!r:.60}) than the one given "
            f"({pattern!r:.60})."
        )
    m, n = pattern.shape
    kc, kr = int(result.ncolors_column), int(result.ncolors_row)
    col = _check_vector("column_colors", result.column_colors, n, kc)
    row = _check_vector("row_colors", result.row_colors, m, kr)
    if int(result.ncolors) != kc + kr:
        _fail(f"ncolors = {result.ncolors} but ncolors_column + ncolors_row = {kc + kr}.")
    symmetric = result.structure == "symmetric"
    if (symmetric or result.partition == "column") and kr:
        _fail(f"a {'symmetric' if symmetric else 'column'} coloring must have no row colors.")
    if result.partition == "row" and kc:
        _fail("a row coloring must have no column colors.")
    system = build_system(pattern, symmetric, col, row, kc)
    if result.decompression == "direct":
        choice = system.direct_choice()
        bad = np.flatnonzero(choice < 0)
        if bad.size:
            _direct_conflict(result, system, int(bad[0]))
        return None
    _acyclic_conflicts(result, pattern)
    solved, _ = _peel(system.f1, system.f2, system.flat_size)
    if not solved.all():
        u = int(np.flatnonzero(~solved)[0])
        i, j = int(system.ui[u]), int(system.uj[u])
        _fail(
            f"entry ({i}, {j}) cannot be recovered by substitution: every compressed value "
            f"containing it also contains another unknown entry."
        )
    return None
