"""Bicoloring: JVPs and VJPs together, for patterns with both dense rows and dense columns.

Following Montoison, Dalle, Gebremedhin (2025), "Revisiting sparse matrix coloring and
bicoloring" (arXiv 2505.07308), Section 5, the ``m``-by-``n`` pattern ``A`` is turned into the
symmetric pattern of ``[[0, A], [A^T, 0]]`` and colored by the star (direct decompression) or
acyclic (substitution) algorithm. A compressed product of that symmetric matrix with the seed of
color ``c`` is the pair ``(A @ s_columns, A^T @ s_rows)``, so colors are split by side:
the colors of column vertices become JVP seeds, those of row vertices VJP seeds, and
postprocessing keeps, per side, only the colors decompression reads (Section 6). Direct
bicoloring is the bi-orthogonal partition of Coleman & Verma (1998) and Hossain & Steihaug
(1998); substitution recovers the entries along 2-colored trees.
"""

from __future__ import annotations

from ..pattern import SparsityPattern
from ._assemble import _Problem, assemble_direct, assemble_substitution
from ._graph import augmented_adjacency
from .orders import vertex_order
from .result import ColoringResult
from .symmetric import acyclic_coloring, star_coloring


def bicoloring(
    pattern: SparsityPattern,
    order: str,
    decompression: str,
    postprocess: bool,
    seed: int,
    meta: dict,
) -> ColoringResult:
    """Bidirectional coloring of ``pattern``; see the module docstring."""
    adj = augmented_adjacency(pattern)
    vo = vertex_order(adj.twohop(), order, seed)
    if decompression == "direct":
        raw = star_coloring(adj, vo)
        return assemble_direct(_Problem(pattern, raw, True), adj, meta, postprocess)
    raw = acyclic_coloring(adj, vo)
    return assemble_substitution(_Problem(pattern, raw, True), adj, meta, postprocess)
