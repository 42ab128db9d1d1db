"""From raw colors of an adjacency graph (symmetric problem or augmented bipartite graph) to a
`ColoringResult`: postprocessing, renumbering, decompression plan."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidColoringError
from ..pattern import SparsityPattern
from ._graph import Adjacency
from .decompress import DirectPlan, SubstitutionPlan
from .postprocess import NodeGraph, _alone, _needed_edges, forest_plan, renumber
from .result import ColoringResult

_I = np.int64


def _ro(a, dtype=_I):
    a = np.ascontiguousarray(a, dtype=dtype)
    a.flags.writeable = False
    return a


class _Problem:
    """Keys and flat positions of a symmetric (``bidirectional=False``) or bicoloring problem
    whose graph vertices carry the raw colors ``raw`` (``0..K-1``)."""

    def __init__(self, pattern: SparsityPattern, raw: np.ndarray, bidirectional: bool):
        self.pattern = pattern
        self.raw = raw
        self.bidirectional = bidirectional
        self.m, self.n = pattern.shape
        self.K = int(raw.max()) + 1 if raw.size else 0
        if bidirectional:
            self.vkey = np.where(np.arange(raw.size) < self.m, raw + self.K, raw)
            self.nkeys = 2 * self.K
        else:
            self.vkey = raw
            self.nkeys = self.K

    def final_colors(self, needed: np.ndarray):
        m, K = self.m, self.K
        if self.bidirectional:
            col = renumber(self.raw[m:], needed[:K])
            row = renumber(self.raw[:m], needed[K:])
            return col, row
        return renumber(self.raw, needed), np.full(m, -1, dtype=_I)

    def flatpos(self, seed: np.ndarray, target: np.ndarray, col, row) -> np.ndarray:
        m, n = self.m, self.n
        if not self.bidirectional:
            c = col[seed]
            f = c * n + target
        else:
            kc = int(col.max()) + 1 if col.size and col.max() >= 0 else 0
            is_col = seed >= m
            c = np.where(is_col, col[np.where(is_col, seed - m, 0)], row[np.where(is_col, 0, seed)])
            f = np.where(is_col, c * m + target, kc * m + c * n + (target - m))
        if np.any(c < 0):
            raise InvalidColoringError("internal: a tree reads a neutral color; please report.")
        return f


def _ncolors(c):
    return int(c.max()) + 1 if c.size and c.max() >= 0 else 0


def _result(prob: _Problem, meta: dict, col, row, plan) -> ColoringResult:
    return ColoringResult(
        pattern=prob.pattern,
        column_colors=_ro(col),
        row_colors=_ro(row),
        ncolors_column=_ncolors(col),
        ncolors_row=_ncolors(row),
        plan=plan,
        **meta,
    )


def assemble_direct(prob: _Problem, adj: Adjacency, meta: dict, postprocess: bool):
    """Star coloring / bi-orthogonal bicoloring: choose the keys read, one gather."""
    p = prob.pattern
    m, n = p.shape
    is_diag = p.rows == p.indices
    diag = np.zeros(adj.nv, dtype=bool)
    if not prob.bidirectional:
        diag[p.rows[is_diag]] = True
    if postprocess:
        alone = _alone(adj.ptr, adj.idx, prob.raw)
        if not np.all(alone | alone[adj.mate]):
            raise InvalidColoringError("internal: star coloring is not direct; please report.")
        needed = _needed_edges(adj.ptr, adj.idx, adj.mate, alone, prob.vkey, prob.nkeys, diag)
    else:
        needed = np.ones(prob.nkeys, dtype=bool)
    col, row = prob.final_colors(needed)
    if prob.bidirectional:
        final_color = np.concatenate([row, col])
    else:
        final_color = col
    alone = _alone(adj.ptr, adj.idx, final_color)
    here = alone  # entry v -> w read at row v with w's color
    there = alone[adj.mate]  # read at row w with v's color
    if not np.all(here | there):
        raise InvalidColoringError("internal: postprocessing broke direct decompression.")
    src = np.repeat(np.arange(adj.nv, dtype=_I), np.diff(adj.ptr))
    dst = adj.idx
    gather = np.empty(p.nnz, dtype=_I)
    if prob.bidirectional:
        nnz = p.nnz
        kc = _ncolors(col)
        i, j = src[:nnz], dst[:nnz] - m  # entries row i -> column vertex m + j, CSR order
        flat = np.where(here[:nnz], col[j] * m + i, kc * m + row[i] * n + j)
        to_csc = np.empty(nnz, dtype=_I)
        to_csc[p.csr_to_csc] = np.arange(nnz, dtype=_I)
        gather[to_csc] = flat
    else:
        flat = np.where(here, col[dst] * n + src, col[src] * n + dst)
        q = np.flatnonzero(~is_diag)
        gather[p.csr_to_csc[q]] = flat  # CSR entry q = (v, w) sits at CSC position T(q)
        d = np.flatnonzero(is_diag)
        gather[d] = col[p.rows[d]] * n + p.rows[d]
    return _result(prob, meta, col, row, DirectPlan(_ro(gather)))


def assemble_substitution(
    prob: _Problem, adj: Adjacency, meta: dict, postprocess: bool
) -> ColoringResult:
    """Acyclic coloring: root the 2-colored trees, choose the keys read, build the plan."""
    p = prob.pattern
    m, n = p.shape
    needed = np.zeros(prob.nkeys, dtype=bool)
    diag = np.zeros(0, dtype=_I)
    if not prob.bidirectional:
        diag = p.rows[p.rows == p.indices]
        needed[prob.raw[diag]] = True
    if not postprocess:
        needed[:] = True
    nodes = NodeGraph(adj, prob.raw)
    (lc_seed, lc_target, lc_sign, child, parent, entry, sign, direct, start, end) = forest_plan(
        nodes, prob.vkey, needed, postprocess
    )
    col, row = prob.final_colors(needed)
    kc, kr = _ncolors(col), _ncolors(row)
    flat_size = kc * m + kr * n
    pre_gather = prob.flatpos(lc_seed, lc_target, col, row)
    # every pattern entry (CSC position) -> flat position (direct) or flat_size + solved edge
    final = np.full(p.nnz, -1, dtype=_I)
    solved = ~direct
    tree_edge = np.empty(child.size, dtype=_I)
    tree_edge[direct] = prob.flatpos(parent[direct], child[direct], col, row)
    tree_edge[solved] = flat_size + np.arange(int(solved.sum()), dtype=_I)
    if prob.bidirectional:
        nnz = p.nnz
        to_csc = np.empty(nnz, dtype=_I)
        to_csc[p.csr_to_csc] = np.arange(nnz, dtype=_I)
        final[np.where(entry < nnz, to_csc[np.minimum(entry, nnz - 1)], entry - nnz)] = tree_edge
    else:
        # adjacency entries are the off-diagonal CSR entries; for a symmetric pattern the CSC
        # position of CSR entry q is its mirror csr_to_csc[q], and the mirror's is q
        is_diag = p.rows == p.indices
        q = np.flatnonzero(~is_diag)[entry]
        final[q] = tree_edge
        final[p.csr_to_csc[q]] = tree_edge
        d = np.flatnonzero(is_diag)
        final[d] = col[p.rows[d]] * n + p.rows[d]
    if np.any(final < 0):
        raise InvalidColoringError("internal: an entry is in no 2-colored tree; please report.")
    plan = SubstitutionPlan(
        pre_gather=_ro(pre_gather),
        pre_sign=_ro(lc_sign, np.float64),
        start=_ro(start[solved]),
        end=_ro(end[solved]),
        edge_sign=_ro(sign[solved], np.float64),
        final=_ro(final),
        flat_size=int(flat_size),
    )
    return _result(prob, meta, col, row, plan)
