"""Postprocessing: decide which colors decompression actually reads, and make the others
neutral (-1) so that they cost no pass (Gebremedhin, Tarafdar, Manne, Pothen 2007,
Section 4.2 for stars; Montoison, Dalle, Gebremedhin 2025, Section 6 for bicoloring).

A *key* names one compressed pass: for symmetric problems the color itself; for bicoloring the
pair (side, color), keys ``0..K-1`` being column colors (JVPs) and ``K..2K-1`` row colors
(VJPs), since a color shared by rows and columns of the augmented graph still costs one JVP
and one VJP.
"""

from __future__ import annotations

import numba
import numpy as np

from ._graph import Adjacency


@numba.njit(cache=True)
def _needed_direct(ok1, ok2, key1, key2, nkeys):  # pragma: no cover - compiled
    """Keys needed by direct decompression. An unknown readable from one key only forces it;
    one readable from two keys uses a key already needed if any, else the key shared by more
    still-undecided unknowns (a greedy set cover)."""
    needed = np.zeros(nkeys, dtype=np.bool_)
    nu = ok1.size
    for u in range(nu):
        if ok1[u] and not ok2[u]:
            needed[key1[u]] = True
        elif ok2[u] and not ok1[u]:
            needed[key2[u]] = True
    cnt = np.zeros(nkeys, dtype=np.int64)
    for u in range(nu):
        if ok1[u] and ok2[u]:
            cnt[key1[u]] += 1
            cnt[key2[u]] += 1
    for u in range(nu):
        if ok1[u] and ok2[u]:
            a, b = key1[u], key2[u]
            if not (needed[a] or needed[b]):
                if cnt[a] >= cnt[b]:
                    needed[a] = True
                else:
                    needed[b] = True
            cnt[a] -= 1
            cnt[b] -= 1
    return needed


def needed_direct(ok1, ok2, key1, key2, nkeys) -> np.ndarray:
    return _needed_direct(
        np.ascontiguousarray(ok1), np.ascontiguousarray(ok2),
        np.ascontiguousarray(key1, np.int64), np.ascontiguousarray(key2, np.int64), int(nkeys)
    )


class NodeGraph:
    """The 2-colored forests of an acyclic coloring as one graph of *nodes*.

    A node is a pair (vertex ``v``, color ``c`` of some neighbour of ``v``): the membership of
    ``v`` in its tree of colors ``{color[v], c}``. Trees of different color pairs share
    vertices but not nodes, so the nodes form a forest with one edge per graph edge.
    """

    def __init__(self, adj: Adjacency, color: np.ndarray):
        nv = adj.nv
        k = int(color.max()) + 1 if color.size else 1
        src = np.repeat(np.arange(nv, dtype=np.int64), np.diff(adj.ptr))
        node_key = src * k + color[adj.idx]
        uniq, node_of = np.unique(node_key, return_inverse=True)
        node_of = node_of.ravel().astype(np.int64)
        eord = np.argsort(node_of, kind="stable")
        self.vertex = np.ascontiguousarray(uniq // k, dtype=np.int64)
        self.ptr = np.zeros(uniq.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(node_of, minlength=uniq.size), out=self.ptr[1:])
        self.adj = np.ascontiguousarray(node_of[adj.mate[eord]], dtype=np.int64)


@numba.njit(cache=True)
def _forest_plan(nptr, nadj, nvert, vkey, needed, postprocess):  # pragma: no cover - compiled
    """Root every 2-colored tree and list its non-root nodes in DFS preorder.

    Roots are chosen so that few keys are read (GTMP 2007, Section 3.2 decompresses a tree
    from the leaves; every non-root node reads its parent's color): a star is rooted at its
    centre (only the centre's color is read), a single edge at the end whose key is already
    needed (else the key more single edges share), any other tree at a node of maximum degree
    (both of its colors are read anyway). ``needed`` (keys already required, e.g. by the
    diagonal) is updated in place.

    Returns, per non-root node in preorder: child vertex, parent vertex, sign ``(-1)**depth``
    and the end of its subtree's preorder range.
    """
    nn = nptr.size - 1
    comp = np.full(nn, -1, dtype=np.int64)
    stack = np.empty(nn + 1, dtype=np.int64)
    roots = np.empty(nn, dtype=np.int64)
    csize = np.empty(nn, dtype=np.int64)
    nc = 0
    for s in range(nn):
        if comp[s] >= 0:
            continue
        comp[s] = nc
        top = 1
        stack[0] = s
        size = 0
        best = s
        while top > 0:
            top -= 1
            a = stack[top]
            size += 1
            if nptr[a + 1] - nptr[a] > nptr[best + 1] - nptr[best]:
                best = a
            for p in range(nptr[a], nptr[a + 1]):
                b = nadj[p]
                if comp[b] < 0:
                    comp[b] = nc
                    stack[top] = b
                    top += 1
        roots[nc] = best
        csize[nc] = size
        nc += 1
    # keys read by trees with three nodes or more
    for t in range(nc):
        r = roots[t]
        if csize[t] < 3:
            continue
        needed[vkey[nvert[r]]] = True
        if nptr[r + 1] - nptr[r] != csize[t] - 1:  # not a star: its other color is read too
            needed[vkey[nvert[nadj[nptr[r]]]]] = True
    # single edges: prefer a key already read, else the more popular one
    cnt = np.zeros(needed.size, dtype=np.int64)
    for t in range(nc):
        if csize[t] == 2:
            r = roots[t]
            cnt[vkey[nvert[r]]] += 1
            cnt[vkey[nvert[nadj[nptr[r]]]]] += 1
    for t in range(nc):
        if csize[t] != 2:
            continue
        a = roots[t]
        b = nadj[nptr[a]]
        ka = vkey[nvert[a]]
        kb = vkey[nvert[b]]
        if postprocess:
            if needed[ka]:
                pass
            elif needed[kb]:
                roots[t] = b
            elif cnt[kb] > cnt[ka]:
                roots[t] = b
                needed[kb] = True
            else:
                needed[ka] = True
        else:
            needed[ka] = True
        cnt[ka] -= 1
        cnt[kb] -= 1
    # DFS from the roots: preorder of non-root nodes, subtree ranges
    L = nn - nc
    child_v = np.empty(L, dtype=np.int64)
    parent_v = np.empty(L, dtype=np.int64)
    sign = np.empty(L, dtype=np.float64)
    end = np.empty(L, dtype=np.int64)
    it = nptr[:-1].copy()
    par = np.full(nn, -1, dtype=np.int64)
    depth = np.zeros(nn, dtype=np.int64)
    start = np.full(nn, -1, dtype=np.int64)
    pos = 0
    for t in range(nc):
        r = roots[t]
        stack[0] = r
        top = 1
        while top > 0:
            a = stack[top - 1]
            if it[a] < nptr[a + 1]:
                b = nadj[it[a]]
                it[a] += 1
                if b == par[a]:
                    continue
                par[b] = a
                depth[b] = depth[a] + 1
                start[b] = pos
                child_v[pos] = nvert[b]
                parent_v[pos] = nvert[a]
                sign[pos] = 1.0 if depth[b] % 2 == 0 else -1.0
                pos += 1
                stack[top] = b
                top += 1
            else:
                top -= 1
                if a != r:
                    end[start[a]] = pos
    return child_v[:pos], parent_v[:pos], sign[:pos], end[:pos]


def forest_plan(nodes: NodeGraph, vkey: np.ndarray, needed: np.ndarray, postprocess: bool):
    return _forest_plan(
        nodes.ptr, nodes.adj, nodes.vertex, np.ascontiguousarray(vkey, np.int64), needed,
        bool(postprocess)
    )


def renumber(raw: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Colors ``raw`` (-1 allowed) with the colors not in ``keep`` made neutral and the kept
    ones renumbered ``0..k-1`` in increasing order."""
    on = raw >= 0
    # a color counts only if some vertex of this side carries it
    keep = keep & (np.bincount(raw[on], minlength=keep.size)[: keep.size] > 0)
    new = np.cumsum(keep) - 1
    out = np.full(raw.size, -1, dtype=np.int64)
    out[on] = np.where(keep[raw[on]], new[raw[on]], -1)
    return out
