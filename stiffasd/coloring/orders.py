"""Vertex orderings for greedy coloring.

All orders work on a `TwoHop` structure, so the same code orders the columns of a Jacobian by
their degree in the column intersection graph (partial distance-2 coloring, as ColPack does) and
the vertices of an adjacency graph by their ordinary degree (star / acyclic / bicoloring).

Orders (Gebremedhin, Manne, Pothen 2005, Section 4.2, after Matula & Beck 1983 for
smallest-last and Coleman & Moré 1983 for incidence-degree):

- ``natural``: ``0, 1, ..., N - 1``.
- ``random``: a permutation drawn from ``numpy.random.default_rng(seed)``.
- ``largest_first``: decreasing degree (static).
- ``smallest_last``: repeatedly remove a vertex of minimum degree in the remaining graph; color in
  the reverse removal order.
- ``incidence_degree``: repeatedly pick the vertex with the most already-picked neighbours.
- ``dynamic_largest_first``: repeatedly pick the vertex with the most not-yet-picked neighbours.
- ``saturation_degree``: the order in which DSatur (Brélaz 1979) colors the two-hop graph:
  repeatedly the vertex whose colored neighbours show the most distinct colors. It finds the
  optimal 5-coloring of the periodic 2D 5-point stencil where the static orders do not.
"""

from __future__ import annotations

import numba
import numpy as np

from ._graph import TwoHop

ORDERS = (
    "natural",
    "random",
    "largest_first",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "saturation_degree",
)

#: above this many bytes of seen-color bitsets, ``saturation_degree`` falls back to
#: ``incidence_degree`` (only patterns with very dense rows get there, and need ~n colors)
SATURATION_MEMORY = 1 << 28

_I = np.int64


@numba.njit(cache=True)
def _twohop_degrees(ptr1, idx1, ptr2, idx2):  # pragma: no cover - compiled
    """Number of distinct two-hop neighbours of every vertex (a vertex is not its own
    neighbour). Uses a stamp array so nothing is cleared between vertices."""
    nv = ptr1.size - 1
    nmark = 0
    for x in range(ptr2.size - 1):
        for q in range(ptr2[x], ptr2[x + 1]):
            if idx2[q] + 1 > nmark:
                nmark = idx2[q] + 1
    mark = np.full(max(nmark, nv), -1, dtype=np.int64)
    deg = np.zeros(nv, dtype=np.int64)
    for v in range(nv):
        mark[v] = v
        d = 0
        for p in range(ptr1[v], ptr1[v + 1]):
            x = idx1[p]
            for q in range(ptr2[x], ptr2[x + 1]):
                w = idx2[q]
                if mark[w] != v:
                    mark[w] = v
                    d += 1
        deg[v] = d
    return deg


@numba.njit(cache=True)
def _dynamic_order(ptr1, idx1, ptr2, idx2, init, select_max, increment):  # pragma: no cover
    """Dynamic degree-based order with bucket lists (Matula & Beck 1983; ColPack's bucket
    implementation, Gebremedhin et al. 2013, Section 3).

    Vertices sit in doubly linked buckets indexed by their current key (``init`` at the start).
    At each step the vertex at the head of the largest (``select_max``) or smallest non-empty
    bucket is picked; the key of each not-yet-picked two-hop neighbour is then incremented
    (``increment``) or decremented by one. Returns the pick order.

    - smallest-last: init = degree, select min, decrement (the caller reverses the result);
    - incidence-degree: init = 0, select max, increment;
    - dynamic-largest-first: init = degree, select max, decrement.
    """
    nv = ptr1.size - 1
    out = np.empty(nv, dtype=np.int64)
    if nv == 0:
        return out
    key = init.copy()
    maxkey = 0
    for v in range(nv):
        if key[v] > maxkey:
            maxkey = key[v]
    nb = maxkey + nv + 2  # incremented keys never exceed maxkey + nv
    head = np.full(nb, -1, dtype=np.int64)
    nxt = np.full(nv, -1, dtype=np.int64)
    prv = np.full(nv, -1, dtype=np.int64)
    done = np.zeros(nv, dtype=np.bool_)
    nmark = nv
    for x in range(ptr2.size - 1):
        for q in range(ptr2[x], ptr2[x + 1]):
            if idx2[q] + 1 > nmark:
                nmark = idx2[q] + 1
    mark = np.full(nmark, -1, dtype=np.int64)
    # fill buckets so that, within a bucket, lower vertex indices come out first
    for v in range(nv - 1, -1, -1):
        k = key[v]
        h = head[k]
        nxt[v] = h
        if h >= 0:
            prv[h] = v
        head[k] = v
    cur = maxkey if select_max else 0
    if not select_max:
        cur = maxkey
        for v in range(nv):
            if key[v] < cur:
                cur = key[v]
    for t in range(nv):
        if select_max:
            while head[cur] < 0:
                cur -= 1
        else:
            while head[cur] < 0:
                cur += 1
        v = head[cur]
        # unlink v
        head[cur] = nxt[v]
        if nxt[v] >= 0:
            prv[nxt[v]] = -1
        done[v] = True
        out[t] = v
        mark[v] = v
        for p in range(ptr1[v], ptr1[v + 1]):
            x = idx1[p]
            for q in range(ptr2[x], ptr2[x + 1]):
                w = idx2[q]
                if mark[w] == v or done[w]:
                    continue
                mark[w] = v
                k = key[w]
                # unlink w from bucket k
                if prv[w] >= 0:
                    nxt[prv[w]] = nxt[w]
                else:
                    head[k] = nxt[w]
                if nxt[w] >= 0:
                    prv[nxt[w]] = prv[w]
                k = k + 1 if increment else k - 1
                key[w] = k
                # push w at the head of bucket k
                h = head[k]
                nxt[w] = h
                prv[w] = -1
                if h >= 0:
                    prv[h] = w
                head[k] = w
                if select_max and k > cur:
                    cur = k
                if (not select_max) and k < cur:
                    cur = k
    return out


@numba.njit(cache=True)
def _saturation_order(ptr1, idx1, ptr2, idx2, maxc):  # pragma: no cover - compiled
    """DSatur (Brélaz 1979, "New methods to color the vertices of a graph", CACM 22(4)) on the
    two-hop graph: repeatedly color the uncolored vertex whose colored two-hop neighbours show
    the most distinct colors, with the smallest color available; returns the coloring order
    (greedy coloring in that order reproduces the DSatur colors).

    Saturation only grows, so vertices sit in bucket lists by saturation (newest first inside
    a bucket, which keeps the sweep local on stencils). Seen colors are bitsets of
    ``ceil(maxc / 64)`` words per vertex.
    """
    nv = ptr1.size - 1
    out = np.empty(nv, dtype=np.int64)
    if nv == 0:
        return out
    nw = (maxc + 63) // 64
    seen = np.zeros((nv, nw), dtype=np.uint64)
    sat = np.zeros(nv, dtype=np.int64)
    color = np.full(nv, -1, dtype=np.int64)
    forbidden = np.full(maxc + 1, -1, dtype=np.int64)
    nmark = nv
    for x in range(ptr2.size - 1):
        for q in range(ptr2[x], ptr2[x + 1]):
            if idx2[q] + 1 > nmark:
                nmark = idx2[q] + 1
    mark = np.full(nmark, -1, dtype=np.int64)
    head = np.full(maxc + 2, -1, dtype=np.int64)
    nxt = np.full(nv, -1, dtype=np.int64)
    prv = np.full(nv, -1, dtype=np.int64)
    for v in range(nv - 1, -1, -1):
        h = head[0]
        nxt[v] = h
        if h >= 0:
            prv[h] = v
        head[0] = v
    cur = 0
    for t in range(nv):
        while head[cur] < 0:
            cur -= 1
        v = head[cur]
        head[cur] = nxt[v]
        if nxt[v] >= 0:
            prv[nxt[v]] = -1
        out[t] = v
        for p in range(ptr1[v], ptr1[v + 1]):
            x = idx1[p]
            for q in range(ptr2[x], ptr2[x + 1]):
                c = color[idx2[q]]
                if c >= 0:
                    forbidden[c] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        color[v] = c
        word = c // 64
        bit = np.uint64(1) << np.uint64(c % 64)
        mark[v] = v
        for p in range(ptr1[v], ptr1[v + 1]):
            x = idx1[p]
            for q in range(ptr2[x], ptr2[x + 1]):
                w = idx2[q]
                if mark[w] == v or color[w] >= 0:
                    continue
                mark[w] = v
                if seen[w, word] & bit:
                    continue
                seen[w, word] |= bit
                k = sat[w]
                if prv[w] >= 0:
                    nxt[prv[w]] = nxt[w]
                else:
                    head[k] = nxt[w]
                if nxt[w] >= 0:
                    prv[nxt[w]] = prv[w]
                k += 1
                sat[w] = k
                h = head[k]
                nxt[w] = h
                prv[w] = -1
                if h >= 0:
                    prv[h] = w
                head[k] = w
                if k > cur:
                    cur = k
    return out


def vertex_order(graph: TwoHop, order: str, seed: int = 0) -> np.ndarray:
    """The coloring order of the vertices of ``graph`` (an int64 permutation).

    Args:
        graph: the two-hop structure whose vertices are ordered.
        order: one of `ORDERS`.
        seed: seed of ``numpy.random.default_rng`` for ``order="random"``.
    """
    nv = graph.nv
    if order == "natural":
        return np.arange(nv, dtype=_I)
    if order == "random":
        return np.random.default_rng(seed).permutation(nv).astype(_I)
    deg = _twohop_degrees(*graph)
    if order == "largest_first":
        return np.argsort(-deg, kind="stable").astype(_I)
    if order == "smallest_last":
        return _dynamic_order(*graph, deg, False, False)[::-1].copy()
    if order == "incidence_degree":
        return _dynamic_order(*graph, np.zeros(nv, dtype=_I), True, True)
    if order == "dynamic_largest_first":
        return _dynamic_order(*graph, deg, True, False)
    if order == "saturation_degree":
        maxc = int(deg.max()) + 1 if nv else 1
        if nv * ((maxc + 63) // 64) * 8 > SATURATION_MEMORY:
            return _dynamic_order(*graph, np.zeros(nv, dtype=_I), True, True)
        return _saturation_order(*graph, maxc)
    raise ValueError(
        f"color(order=...): unknown order {order!r}; choose one of {ORDERS + ('best',)}."
    )
