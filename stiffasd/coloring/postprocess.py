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
def _alone(ptr, idx, color):  # pragma: no cover - compiled
    """For every adjacency entry ``v -> w``: is ``w`` the only neighbour of ``v`` with
    ``color[w]`` (and that color not neutral)? Then the entry between ``v`` and ``w`` is read
    directly at row ``v`` of the compressed product of ``w``'s color (the symmetric
    orthogonality test of Coleman & Moré 1984, per entry). Colors are counted with a stamp."""
    nv = ptr.size - 1
    k = 1
    for v in range(nv):
        if color[v] + 1 > k:
            k = color[v] + 1
    stamp = np.full(k, -1, dtype=np.int64)
    cnt = np.zeros(k, dtype=np.int64)
    out = np.zeros(idx.size, dtype=np.bool_)
    for v in range(nv):
        for p in range(ptr[v], ptr[v + 1]):
            c = color[idx[p]]
            if c < 0:
                continue
            if stamp[c] != v:
                stamp[c] = v
                cnt[c] = 0
            cnt[c] += 1
        for p in range(ptr[v], ptr[v + 1]):
            c = color[idx[p]]
            out[p] = c >= 0 and cnt[c] == 1
    return out


@numba.njit(cache=True)
def _needed_edges(ptr, idx, mate, alone, vkey, nkeys, diag):  # pragma: no cover - compiled
    """Keys needed by direct decompression (a greedy set cover): edge ``v - w`` (entry ``p``) is
    readable with key ``vkey[w]`` if ``alone[p]`` and with key ``vkey[v]`` if
    ``alone[mate[p]]``; a diagonal entry of ``v`` always needs ``vkey[v]``."""
    needed = np.zeros(nkeys, dtype=np.bool_)
    nv = ptr.size - 1
    for v in range(nv):
        if diag[v]:
            needed[vkey[v]] = True
    cnt = np.zeros(nkeys, dtype=np.int64)
    for v in range(nv):
        for p in range(ptr[v], ptr[v + 1]):
            w = idx[p]
            if w < v:
                continue
            a = alone[p]
            b = alone[mate[p]]
            if a and not b:
                needed[vkey[w]] = True
            elif b and not a:
                needed[vkey[v]] = True
            elif a and b:
                cnt[vkey[w]] += 1
                cnt[vkey[v]] += 1
    for v in range(nv):
        for p in range(ptr[v], ptr[v + 1]):
            w = idx[p]
            if w < v or not (alone[p] and alone[mate[p]]):
                continue
            ka, kb = vkey[w], vkey[v]
            if not (needed[ka] or needed[kb]):
                if cnt[ka] >= cnt[kb]:
                    needed[ka] = True
                else:
                    needed[kb] = True
            cnt[ka] -= 1
            cnt[kb] -= 1
    return needed


@numba.njit(cache=True)
def _node_graph(ptr, idx, mate, color, ncolors):  # pragma: no cover - compiled
    """Nodes (vertex, neighbour color) and their adjacency, grouped without sorting: a stamp
    per color gives each vertex one node per distinct neighbour color."""
    nv = ptr.size - 1
    ne2 = idx.size
    stamp = np.full(ncolors, -1, dtype=np.int64)
    cur = np.empty(ncolors, dtype=np.int64)
    node_of = np.empty(ne2, dtype=np.int64)
    nvert = np.empty(ne2, dtype=np.int64)
    cnt = np.zeros(ne2 + 1, dtype=np.int64)
    nn = 0
    for v in range(nv):
        for p in range(ptr[v], ptr[v + 1]):
            c = color[idx[p]]
            if stamp[c] != v:
                stamp[c] = v
                cur[c] = nn
                nvert[nn] = v
                nn += 1
            node_of[p] = cur[c]
            cnt[cur[c]] += 1
    nptr = np.zeros(nn + 1, dtype=np.int64)
    for k in range(nn):
        nptr[k + 1] = nptr[k] + cnt[k]
    fill = nptr[:-1].copy()
    nentry = np.empty(ne2, dtype=np.int64)
    for p in range(ne2):
        k = node_of[p]
        nentry[fill[k]] = p
        fill[k] += 1
    nadj = np.empty(ne2, dtype=np.int64)
    for s in range(ne2):
        nadj[s] = node_of[mate[nentry[s]]]
    return nvert[:nn].copy(), nptr, nadj, nentry


class NodeGraph:
    """The 2-colored forests of an acyclic coloring as one graph of *nodes*.

    A node is a pair (vertex ``v``, color ``c`` of some neighbour of ``v``): the membership of
    ``v`` in its tree of colors ``{color[v], c}``. Trees of different color pairs share
    vertices but not nodes, so the nodes form a forest with one edge per graph edge.
    ``entry[s]`` is the adjacency entry (vertex -> neighbour) behind node-adjacency slot ``s``.
    """

    def __init__(self, adj: Adjacency, color: np.ndarray):
        k = int(color.max()) + 1 if color.size else 1
        self.vertex, self.ptr, self.adj, self.entry = _node_graph(
            adj.ptr, adj.idx, adj.mate, np.ascontiguousarray(color, np.int64), k
        )


@numba.njit(cache=True)
def _forest_plan(nptr, nadj, nentry, nvert, vkey, needed, postprocess):  # pragma: no cover
    """Root every 2-colored tree and list its non-root nodes in DFS preorder.

    Roots are chosen so that few keys are read (GTMP 2007, Section 3.2 decompresses a tree
    from the leaves; every non-root node reads its parent's color): a star is rooted at its
    centre (only the centre's color is read), a single edge at the end whose key is already
    needed (else the key more single edges share), any other tree at a node of maximum degree
    (both of its colors are read anyway). ``needed`` (keys already required, e.g. by the
    diagonal) is updated in place.

    Returns the prefix-sum list (seed vertex, target vertex and sign ``(-1)**depth`` of every
    node of a deep tree, in preorder) and, per tree edge (non-root node): child and parent
    vertex, adjacency entry (parent -> child), sign of the child, whether it is read directly,
    and the child's subtree range in the list.
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
    # DFS from the roots. Trees of depth 1 (stars rooted at their centre, single edges) are
    # read directly. Deeper trees are listed in preorder, root included with its value
    # (the compressed row of the root at its children's color, available since both colors
    # of a deep tree are read), so that every tree's signed values sum to zero exactly and
    # the running prefix sum returns to ~0 between trees (no drift of rounding errors).
    ne_ = nn - nc
    lc_seed = np.empty(nn, dtype=np.int64)
    lc_target = np.empty(nn, dtype=np.int64)
    lc_sign = np.empty(nn, dtype=np.float64)
    e_child = np.empty(ne_, dtype=np.int64)
    e_parent = np.empty(ne_, dtype=np.int64)
    e_entry = np.empty(ne_, dtype=np.int64)
    e_sign = np.empty(ne_, dtype=np.float64)
    e_direct = np.zeros(ne_, dtype=np.bool_)
    e_start = np.zeros(ne_, dtype=np.int64)
    e_end = np.zeros(ne_, dtype=np.int64)
    it = nptr[:-1].copy()
    par = np.full(nn, -1, dtype=np.int64)
    depth = np.zeros(nn, dtype=np.int64)
    kidx = np.full(nn, -1, dtype=np.int64)
    pos = 0
    k = 0
    for t in range(nc):
        r = roots[t]
        if csize[t] < 2:
            continue
        deep = nptr[r + 1] - nptr[r] != csize[t] - 1
        if deep:
            lc_seed[pos] = nvert[nadj[nptr[r]]]
            lc_target[pos] = nvert[r]
            lc_sign[pos] = 1.0
            pos += 1
        stack[0] = r
        top = 1
        while top > 0:
            a = stack[top - 1]
            if it[a] < nptr[a + 1]:
                b = nadj[it[a]]
                e = nentry[it[a]]
                it[a] += 1
                if b == par[a]:
                    continue
                par[b] = a
                depth[b] = depth[a] + 1
                sg = 1.0 if depth[b] % 2 == 0 else -1.0
                e_child[k] = nvert[b]
                e_parent[k] = nvert[a]
                e_entry[k] = e
                e_sign[k] = sg
                # a leaf edge is its own compressed value: read it directly
                e_direct[k] = (not deep) or (nptr[b + 1] - nptr[b] == 1)
                if deep:
                    lc_seed[pos] = nvert[a]
                    lc_target[pos] = nvert[b]
                    lc_sign[pos] = sg
                    e_start[k] = pos
                    pos += 1
                kidx[b] = k
                k += 1
                stack[top] = b
                top += 1
            else:
                top -= 1
                if a != r and deep:
                    e_end[kidx[a]] = pos
    return (
        lc_seed[:pos],
        lc_target[:pos],
        lc_sign[:pos],
        e_child[:k],
        e_parent[:k],
        e_entry[:k],
        e_sign[:k],
        e_direct[:k],
        e_start[:k],
        e_end[:k],
    )


def forest_plan(nodes: NodeGraph, vkey: np.ndarray, needed: np.ndarray, postprocess: bool):
    return _forest_plan(
        nodes.ptr,
        nodes.adj,
        nodes.entry,
        nodes.vertex,
        np.ascontiguousarray(vkey, np.int64),
        needed,
        bool(postprocess),
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
