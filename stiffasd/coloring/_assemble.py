"""From raw colors of an adjacency graph (symmetric problem or augmented bipartite graph) to a
`ColoringResult`: postprocessing, renumbering, decompression plan."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidColoringError
from ..pattern import SparsityPattern
from ._graph import Adjacency
from .decompress import DirectPlan, SubstitutionPlan, build_system
from .postprocess import NodeGraph, forest_plan, needed_direct, renumber
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

    def raw_system(self):
        m, K = self.m, self.K
        if self.bidirectional:
            col, row = self.raw[m:], self.raw[:m]
            s = build_system(self.pattern, False, col, row, K)
            return s, col[s.uj], K + row[s.ui]
        s = build_system(self.pattern, True, self.raw, np.full(m, -1, dtype=_I), K)
        key2 = np.where(s.ui != s.uj, self.raw[s.ui], -1)
        return s, self.raw[s.uj], key2

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


def assemble_direct(prob: _Problem, meta: dict, postprocess: bool) -> ColoringResult:
    """Star coloring / bi-orthogonal bicoloring: choose the keys read, one gather."""
    if postprocess:
        s, key1, key2 = prob.raw_system()
        ok1, ok2 = s.direct_ok()
        if not np.all(ok1 | ok2):
            raise InvalidColoringError("internal: star coloring is not direct; please report.")
        needed = needed_direct(ok1, ok2, key1, key2, prob.nkeys)
    else:
        needed = np.ones(prob.nkeys, dtype=bool)
    col, row = prob.final_colors(needed)
    s = build_system(prob.pattern, not prob.bidirectional, col, row, _ncolors(col))
    choice = s.direct_choice()
    if np.any(choice < 0):
        raise InvalidColoringError("internal: postprocessing broke direct decompression.")
    return _result(prob, meta, col, row, DirectPlan(_ro(choice[s.entry_unknown])))


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
    child, parent, sign, end = forest_plan(nodes, prob.vkey, needed, postprocess)
    col, row = prob.final_colors(needed)
    kc, kr = _ncolors(col), _ncolors(row)
    flat_size = kc * m + kr * n
    L = child.size
    pre_gather = prob.flatpos(parent, child, col, row)
    final = np.full(p.nnz, -1, dtype=_I)
    if prob.bidirectional:
        i = np.where(child < m, child, parent)
        j = np.where(child < m, parent, child) - m
        pos = np.searchsorted(p.csc_cols * max(m, 1) + p.csc_indices, j * max(m, 1) + i)
        final[pos] = flat_size + np.arange(L)
    else:
        s = build_system(p, True, col, row, kc)
        ukeys = s.ui * max(n, 1) + s.uj
        hi, lo = np.maximum(child, parent), np.minimum(child, parent)
        uid = np.searchsorted(ukeys, hi * max(n, 1) + lo)
        fin_u = np.full(ukeys.size, -1, dtype=_I)
        fin_u[uid] = flat_size + np.arange(L)
        d = s.ui == s.uj
        fin_u[d] = col[s.uj[d]] * n + s.ui[d]
        final = fin_u[s.entry_unknown]
    if np.any(final < 0):
        raise InvalidColoringError("internal: an entry is in no 2-colored tree; please report.")
    plan = SubstitutionPlan(
        pre_gather=_ro(pre_gather),
        pre_sign=_ro(sign, np.float64),
        start=_ro(np.arange(L)),
        end=_ro(end),
        edge_sign=_ro(sign, np.float64),
        final=_ro(final),
        flat_size=int(flat_size),
    )
    return _result(prob, meta, col, row, plan)
