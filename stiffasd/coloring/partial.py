"""Greedy partial distance-2 coloring of one side of a bipartite graph (column or row
coloring of a Jacobian pattern): two columns that share a row get different colors, so each
color class is structurally orthogonal and one JVP per class recovers all its entries directly.
"""

from __future__ import annotations

import numba
import numpy as np

from ._graph import TwoHop


@numba.njit(cache=True)
def _partial_d2(order, ptr1, idx1, ptr2, idx2):  # pragma: no cover - compiled
    """Greedy partial distance-2 coloring (Gebremedhin, Manne, Pothen 2005, Algorithm 3.2).

    Vertices (columns) are colored in ``order`` with the smallest color not used by any
    two-hop neighbour. ``forbidden[c] == v`` marks color ``c`` as taken while coloring ``v`` (a
    stamp, never cleared). Vertices with no neighbour at all (empty columns) are never read by
    decompression and stay neutral (-1). Colors come out contiguous ``0..k-1``.
    """
    nv = ptr1.size - 1
    color = np.full(nv, -1, dtype=np.int64)
    forbidden = np.full(nv + 1, -1, dtype=np.int64)
    for t in range(order.size):
        v = order[t]
        if ptr1[v] == ptr1[v + 1]:
            continue
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
    return color


def partial_distance2_coloring(graph: TwoHop, order: np.ndarray) -> np.ndarray:
    """Colors (int64, -1 for empty vertices) of the vertices of ``graph`` in ``order``."""
    return _partial_d2(np.ascontiguousarray(order, dtype=np.int64), *graph)
