"""Star and acyclic coloring of an adjacency graph (Hessians, symmetric Jacobians, and the
augmented bipartite graph of bicoloring), after Gebremedhin, Tarafdar, Manne, Pothen (2007),
"New acyclic and star coloring algorithms with application to computing Hessians",
SIAM J. Sci. Comput. 29(3).

- Star coloring (Algorithm 4.1): a distance-1 coloring in which every path on four vertices
  uses at least three colors. Each 2-colored component is a star; an entry between a hub and a
  leaf is read directly from the compressed column of the hub's color at the leaf's row.
- Acyclic coloring (Algorithm 3.1): a distance-1 coloring in which every cycle uses at least
  three colors. Each 2-colored component is a tree; its entries are recovered by substitution,
  peeling leaves (Section 3.2; see `stiffasd.coloring.decompress.SubstitutionPlan`).

Both kernels take the graph as CSR arrays with an undirected edge id per entry (`Adjacency`).
"""

from __future__ import annotations

import numba
import numpy as np

from ._graph import Adjacency


@numba.njit(cache=True)
def _forbid_around(u, v, ptr, idx, color, forbidden, slot, cnt, tables, maxc):  # pragma: no cover
    """Forbid (for ``v``) every color among the colored neighbours of ``u``."""
    su = slot[u]
    if tables and su >= 0:
        for c in range(maxc + 1):
            if cnt[su, c] > 0:
                forbidden[c] = v
    else:
        for r in range(ptr[u], ptr[u + 1]):
            cx = color[idx[r]]
            if cx >= 0:
                forbidden[cx] = v


@numba.njit(cache=True)
def _star_coloring(order, ptr, idx, edge, ne, slot, nslots, ccap):  # pragma: no cover - compiled
    """Greedy star coloring with star sets, GTMP (2007) Algorithm 4.1.

    While coloring ``v`` the colors of its colored neighbours ``w`` are forbidden (distance 1),
    and two more cases prevent a 2-colored path on four vertices:

    - Case 1: ``v`` already met a neighbour ``q`` with ``color[w]``; then ``v`` would be the
      centre of a 2-colored path ``q - v - w`` and must avoid every color around ``q`` and ``w``
      (``treated`` stamps each such neighbour once per ``v``).
    - Case 2: ``w`` is a leaf of a star whose hub ``x`` is a neighbour of ``w``: taking
      ``color[x]`` would create ``v - w - x - (another leaf)``.

    After the color is chosen every new edge ``v - w`` joins a star (``star[edge]``), whose hub
    is recorded in ``hub`` (-1 while the star is a single edge and either end may serve; a hub,
    once set, never changes).

    Both cases and the star update scan the neighbours of ``w``: on a dense row or column of a
    bicoloring that is O(n) per visit and O(n^2) in all. For the ``nslots`` vertices with
    ``slot[u] >= 0`` (the densest) per-color tables answer the same questions in O(colors):
    ``cnt[s, c]`` colored neighbours of color ``c`` (one of them, and its edge, in ``nbx``,
    ``nbe``) and ``hubcnt[s, c]`` neighbours of color ``c`` that are the hub of the star of their
    edge with ``u``. The tables are exact, so the coloring is the same as without them; they are
    dropped (back to scanning) once a color reaches ``ccap``.
    """
    nv = ptr.size - 1
    color = np.full(nv, -1, dtype=np.int64)
    forbidden = np.full(nv + 1, -1, dtype=np.int64)
    fn_v = np.full(nv + 1, -1, dtype=np.int64)  # first neighbour per color: (v, w, edge)
    fn_w = np.full(nv + 1, -1, dtype=np.int64)
    fn_e = np.full(nv + 1, -1, dtype=np.int64)
    treated = np.full(nv, -1, dtype=np.int64)
    star = np.full(ne, -1, dtype=np.int64)
    hub = np.full(ne + 1, -1, dtype=np.int64)
    cnt = np.zeros((nslots, ccap), dtype=np.int64)
    nbx = np.full((nslots, ccap), -1, dtype=np.int64)
    nbe = np.full((nslots, ccap), -1, dtype=np.int64)
    hubcnt = np.zeros((nslots, ccap), dtype=np.int64)
    tables = nslots > 0
    maxc = -1
    nstar = 0
    for t in range(order.size):
        v = order[t]
        for p in range(ptr[v], ptr[v + 1]):
            w = idx[p]
            cw = color[w]
            if cw < 0:
                continue
            forbidden[cw] = v
            if fn_v[cw] == v:  # Case 1
                q = fn_w[cw]
                if treated[q] != v:
                    _forbid_around(q, v, ptr, idx, color, forbidden, slot, cnt, tables, maxc)
                    treated[q] = v
                _forbid_around(w, v, ptr, idx, color, forbidden, slot, cnt, tables, maxc)
                treated[w] = v
            else:
                fn_v[cw] = v
                fn_w[cw] = w
                fn_e[cw] = edge[p]
                sw = slot[w]
                if tables and sw >= 0:  # Case 2 from the table
                    for c2 in range(maxc + 1):
                        if hubcnt[sw, c2] > 0:
                            forbidden[c2] = v
                else:
                    for r in range(ptr[w], ptr[w + 1]):  # Case 2
                        x = idx[r]
                        if x == v or color[x] < 0:
                            continue
                        if hub[star[edge[r]]] == x:
                            forbidden[color[x]] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        color[v] = c
        if c > maxc:
            maxc = c
        if tables and c >= ccap:
            tables = False
        # update the star sets with the edges v - w
        for p in range(ptr[v], ptr[v + 1]):
            w = idx[p]
            cw = color[w]
            if cw < 0:
                continue
            found = False
            x = -1
            xe = -1
            sw = slot[w]
            if tables and sw >= 0:
                if cnt[sw, c] > 0:
                    x = nbx[sw, c]
                    xe = nbe[sw, c]
                    found = True
            else:
                for r in range(ptr[w], ptr[w + 1]):
                    if idx[r] != v and color[idx[r]] == c:
                        x = idx[r]
                        xe = edge[r]
                        found = True
                        break
            if found:
                s = star[xe]
                if tables:
                    if hub[s] == -1 and slot[x] >= 0:  # x becomes a leaf of hub w
                        hubcnt[slot[x], cw] += 1
                    if slot[v] >= 0:  # so does v
                        hubcnt[slot[v], cw] += 1
                hub[s] = w  # w is the centre of x - w - v
                star[edge[p]] = s
            elif fn_v[cw] == v and fn_w[cw] != w:
                s = star[fn_e[cw]]
                if tables:  # q and w become leaves of hub v
                    q = fn_w[cw]
                    if hub[s] == -1 and slot[q] >= 0:
                        hubcnt[slot[q], c] += 1
                    if sw >= 0:
                        hubcnt[sw, c] += 1
                hub[s] = v  # v is the centre of q - v - w
                star[edge[p]] = s
            else:
                star[edge[p]] = nstar
                hub[nstar] = -1
                nstar += 1
        if tables:  # v is now a colored neighbour of its tracked neighbours
            for p in range(ptr[v], ptr[v + 1]):
                sw = slot[idx[p]]
                if sw >= 0:
                    if cnt[sw, c] == 0:
                        nbx[sw, c] = v
                        nbe[sw, c] = edge[p]
                    cnt[sw, c] += 1
    return color


@numba.njit(cache=True)
def _find(parent, x):  # pragma: no cover - compiled
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True)
def _union(parent, rank, a, b):  # pragma: no cover - compiled
    a = _find(parent, a)
    b = _find(parent, b)
    if a == b:
        return
    if rank[a] < rank[b]:
        parent[a] = b
    elif rank[a] > rank[b]:
        parent[b] = a
    else:
        parent[b] = a
        rank[a] += 1


@numba.njit(cache=True)
def _acyclic_coloring(order, ptr, idx, edge, ne):  # pragma: no cover - compiled
    """Greedy acyclic coloring with tree sets, GTMP (2007) Algorithm 3.1.

    The 2-colored trees are kept as a disjoint-set forest over edges. While coloring ``v``,
    color ``color[x]`` of a vertex ``x`` two steps away (``v - w - x``) is forbidden when the
    tree containing ``w - x`` is reached from ``v`` through two different neighbours ``w``
    (``first_visit`` records the first one): that color would close a 2-colored cycle. After
    the choice, edges ``v - w`` with a common color ``color[w]`` merge into one star, and
    ``v - w`` merges with every tree ``w - x`` where ``color[x] == color[v]``.
    """
    nv = ptr.size - 1
    color = np.full(nv, -1, dtype=np.int64)
    forbidden = np.full(nv + 1, -1, dtype=np.int64)
    fn_v = np.full(nv + 1, -1, dtype=np.int64)
    fn_e = np.full(nv + 1, -1, dtype=np.int64)
    fv_v = np.full(ne, -1, dtype=np.int64)  # first visit to a tree (indexed by root edge)
    fv_w = np.full(ne, -1, dtype=np.int64)
    parent = np.arange(ne)
    rank = np.zeros(ne, dtype=np.int64)
    for t in range(order.size):
        v = order[t]
        for p in range(ptr[v], ptr[v + 1]):
            cw = color[idx[p]]
            if cw >= 0:
                forbidden[cw] = v
        for p in range(ptr[v], ptr[v + 1]):
            w = idx[p]
            if color[w] < 0:
                continue
            for r in range(ptr[w], ptr[w + 1]):
                x = idx[r]
                cx = color[x]
                if x == v or cx < 0 or forbidden[cx] == v:
                    continue
                root = _find(parent, edge[r])
                if fv_v[root] != v:
                    fv_v[root] = v
                    fv_w[root] = w
                elif fv_w[root] != w:
                    forbidden[cx] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        color[v] = c
        for p in range(ptr[v], ptr[v + 1]):  # grow 2-colored stars around v
            w = idx[p]
            cw = color[w]
            if cw < 0:
                continue
            if fn_v[cw] != v:
                fn_v[cw] = v
                fn_e[cw] = edge[p]
            else:
                _union(parent, rank, edge[p], fn_e[cw])
        for p in range(ptr[v], ptr[v + 1]):  # merge with trees w - x, color[x] == color[v]
            w = idx[p]
            if color[w] < 0:
                continue
            for r in range(ptr[w], ptr[w + 1]):
                x = idx[r]
                if x != v and color[x] == c:
                    _union(parent, rank, edge[p], edge[r])
    return color


#: vertices tracked by per-color tables in `_star_coloring`: at most this many of the densest ...
DENSE_SLOTS = 16
#: ... whose degree exceeds max(DENSE_MIN_DEGREE, 8 x the average degree)
DENSE_MIN_DEGREE = 64


def _dense_slots(adj: Adjacency, min_degree: int | None = None) -> tuple[np.ndarray, int, int]:
    """``slot`` (index of a tracked vertex's table, -1 elsewhere), the number of tables and their
    color capacity (half the smallest tracked degree: beyond it scanning is as cheap)."""
    deg = np.diff(adj.ptr)
    nv = deg.size
    slot = np.full(nv, -1, dtype=np.int64)
    if nv == 0:
        return slot, 0, 1
    if min_degree is None:
        min_degree = max(DENSE_MIN_DEGREE, int(8 * deg.mean()))
    cand = np.flatnonzero(deg > min_degree)
    if cand.size == 0:
        return slot, 0, 1
    cand = cand[np.argsort(-deg[cand], kind="stable")[:DENSE_SLOTS]]
    slot[cand] = np.arange(cand.size)
    return slot, int(cand.size), int(max(2, min(nv + 1, deg[cand].min() // 2)))


def star_coloring(
    adj: Adjacency, order: np.ndarray, *, min_degree: int | None = None
) -> np.ndarray:
    """Star coloring (colors ``0..k-1``) of ``adj`` in ``order``.

    ``min_degree`` overrides the degree above which vertices get per-color tables (for tests)."""
    slot, nslots, ccap = _dense_slots(adj, min_degree)
    return _star_coloring(
        np.ascontiguousarray(order, np.int64),
        adj.ptr,
        adj.idx,
        adj.edge,
        adj.ne,
        slot,
        nslots,
        ccap,
    )


def acyclic_coloring(adj: Adjacency, order: np.ndarray) -> np.ndarray:
    """Acyclic coloring (colors ``0..k-1``) of ``adj`` in ``order``."""
    return _acyclic_coloring(
        np.ascontiguousarray(order, np.int64), adj.ptr, adj.idx, adj.edge, adj.ne
    )


def symmetric_coloring(pattern, order, decompression, postprocess, seed, meta):
    """Star (direct) or acyclic (substitution) coloring of a symmetric pattern, postprocessed,
    with its decompression plan."""
    from ._assemble import _Problem, assemble_direct, assemble_substitution
    from ._graph import require_symmetric, symmetric_adjacency
    from .orders import vertex_order

    require_symmetric(pattern, "color")
    adj = symmetric_adjacency(pattern)
    vo = vertex_order(adj.twohop(), order, seed)
    if decompression == "direct":
        raw = star_coloring(adj, vo)
        return assemble_direct(_Problem(pattern, raw, False), adj, meta, postprocess)
    raw = acyclic_coloring(adj, vo)
    return assemble_substitution(_Problem(pattern, raw, False), adj, meta, postprocess)
