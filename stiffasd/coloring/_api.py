"""`color`: the single entry point of the coloring engine."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pattern import SparsityPattern
from ._graph import as_pattern, column_twohop, require_symmetric, row_twohop
from .bidirectional import bicoloring
from .decompress import DirectPlan
from .orders import ORDERS, vertex_order
from .partial import partial_distance2_coloring
from .result import ColoringResult
from .symmetric import symmetric_coloring

STRUCTURES = ("nonsymmetric", "symmetric")
PARTITIONS = ("column", "row", "bidirectional")
DECOMPRESSIONS = ("direct", "substitution")
#: the ``decompression=`` choices of prepared Hessians and symmetric Jacobians
SYMMETRIC_DECOMPRESSIONS = ("auto", "direct", "substitution")
#: the orders ``order="best"`` tries (plus ``random`` with the given seed)
BEST_ORDERS = (
    "natural",
    "largest_first",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "saturation_degree",
    "random",
)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"color({name}=...): expected one of {allowed}, got {value!r}.")
    return value


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a


def _ncolors(c: np.ndarray) -> int:
    return int(c.max()) + 1 if c.size and c.max() >= 0 else 0


def _direct_result(
    pattern: SparsityPattern, structure, partition, order, chosen, postprocess, col, row
) -> ColoringResult:
    kc, kr = _ncolors(col), _ncolors(row)
    m, n = pattern.shape
    # a partial distance-2 coloring is structurally orthogonal by construction: entry (i, j)
    # sits alone at row i of column color c_j (or column j of row color r_i)
    if partition == "column":
        gather = col[pattern.csc_cols] * m + pattern.csc_indices
    else:
        gather = row[pattern.csc_indices] * n + pattern.csc_cols
    gather = _readonly(gather)
    return ColoringResult(
        pattern=pattern,
        structure=structure,
        partition=partition,
        order=order,
        decompression="direct",
        postprocess=bool(postprocess),
        column_colors=_readonly(col),
        row_colors=_readonly(row),
        ncolors_column=kc,
        ncolors_row=kr,
        plan=DirectPlan(gather),
        chosen_order=chosen,
    )


def _color_once(pattern, structure, partition, order, decompression, postprocess, seed):
    m, n = pattern.shape
    if structure == "nonsymmetric" and partition in ("column", "row"):
        graph = column_twohop(pattern) if partition == "column" else row_twohop(pattern)
        colors = partial_distance2_coloring(graph, vertex_order(graph, order, seed))
        none_m = np.full(m, -1, dtype=np.int64)
        none_n = np.full(n, -1, dtype=np.int64)
        col, row = (colors, none_m) if partition == "column" else (none_n, colors)
        return _direct_result(pattern, structure, partition, order, order, postprocess, col, row)
    meta = dict(
        structure=structure,
        partition=partition,
        order=order,
        decompression=decompression,
        postprocess=bool(postprocess),
        chosen_order=order,
    )
    if structure == "symmetric":
        return symmetric_coloring(pattern, order, decompression, postprocess, seed, meta)
    return bicoloring(pattern, order, decompression, postprocess, seed, meta)


def color(
    pattern: Any,
    *,
    structure: str = "nonsymmetric",
    partition: str = "column",
    order: str = "natural",
    decompression: str = "direct",
    postprocess: bool = True,
    seed: int = 0,
) -> ColoringResult:
    """Color a sparsity pattern so that its matrix can be recovered from few compressed
    products (JVPs for column colors, VJPs for row colors).

    Args:
        pattern: a `SparsityPattern` or any scipy sparse matrix (its stored entries).
        structure: ``"nonsymmetric"`` (Jacobians) or ``"symmetric"`` (Hessians, symmetric
            Jacobians; the pattern must be symmetric).
        partition: ``"column"`` (one JVP per color), ``"row"`` (one VJP per color) or
            ``"bidirectional"`` (JVPs and VJPs together; nonsymmetric only). Symmetric
            problems use ``"column"``.
        order: vertex order of the greedy coloring: ``"natural"``, ``"random"``,
            ``"largest_first"``, ``"smallest_last"``, ``"incidence_degree"``,
            ``"dynamic_largest_first"``, ``"saturation_degree"`` (DSatur), or ``"best"`` (try
            them all, keep the fewest passes; ``result.chosen_order`` tells which won).
        decompression: ``"direct"`` (star coloring / bi-orthogonal: one gather) or
            ``"substitution"`` (acyclic coloring: fewer colors, solved along 2-colored trees).
            Column and row partitions are always direct.
        postprocess: make colors that decompression never reads neutral (-1), saving passes
            (symmetric and bidirectional problems).
        seed: seed of the ``"random"`` order.

    Returns:
        A `ColoringResult`.

    Raises:
        ValueError: an unknown option, or a combination that does not exist.
        stiffasd.ShapeError: a non-square or non-symmetric pattern with
            ``structure="symmetric"``.
    """
    pattern = as_pattern(pattern, "color")
    _choice("structure", structure, STRUCTURES)
    _choice("partition", partition, PARTITIONS)
    _choice("order", order, ORDERS + ("best",))
    _choice("decompression", decompression, DECOMPRESSIONS)
    if structure == "nonsymmetric" and partition != "bidirectional" and decompression != "direct":
        raise ValueError(
            f"color(decompression={decompression!r}): column and row colorings are decompressed "
            "directly; use decompression='direct', or partition='bidirectional' / "
            "structure='symmetric' for substitution."
        )
    if structure == "symmetric" and partition != "column":
        raise ValueError(
            f"color(partition={partition!r}): symmetric problems are colored by columns (rows "
            "are the same); use partition='column' with structure='symmetric'."
        )
    if order != "best":
        return _color_once(pattern, structure, partition, order, decompression, postprocess, seed)
    best = None
    for o in BEST_ORDERS:
        r = _color_once(pattern, structure, partition, o, decompression, postprocess, seed)
        if best is None or r.ncolors < best.ncolors:
            best = r
    return ColoringResult(**{**best.__dict__, "order": "best"})


def check_symmetric_decompression(decompression: str, call: str) -> None:
    """Raise `ValueError` unless ``decompression`` is one of `SYMMETRIC_DECOMPRESSIONS`."""
    if decompression not in SYMMETRIC_DECOMPRESSIONS:
        raise ValueError(
            f"{call}: decompression must be one of {SYMMETRIC_DECOMPRESSIONS}, got "
            f"{decompression!r}."
        )


def symmetric_candidates(
    pattern: SparsityPattern,
    decompression: str = "auto",
    order: str = "largest_first",
    call: str = "color",
) -> list[ColoringResult]:
    """Symmetric colorings of ``pattern`` for compressed Hessian-vector products, fewest colors
    first (star before acyclic on ties: its decompression is a single gather).

    Args:
        pattern: a symmetric `SparsityPattern` (a Hessian's, or a symmetric Jacobian's).
        decompression: ``"direct"`` (star coloring), ``"substitution"`` (acyclic coloring), or
            ``"auto"``: both, for the caller to choose from.
        order: vertex order of the greedy coloring.
        call: the caller's name, used in error messages.

    Raises:
        ValueError: an unknown ``decompression``.
        stiffasd.ShapeError: ``pattern`` is not square and symmetric.
    """
    check_symmetric_decompression(decompression, call)
    require_symmetric(pattern, call)
    kinds = ("direct", "substitution") if decompression == "auto" else (decompression,)
    results = [
        color(pattern, structure="symmetric", partition="column", decompression=k, order=order)
        for k in kinds
    ]
    return sorted(results, key=lambda r: r.ncolors)  # stable: direct first on ties
