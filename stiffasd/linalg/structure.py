"""Structural helpers shared by the linear solvers of fixed-pattern matrices."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..pattern import SparsityPattern

__all__ = ["with_diagonal"]


def with_diagonal(pattern: SparsityPattern) -> tuple[SparsityPattern, np.ndarray, np.ndarray]:
    """Square pattern ``P ∪ I`` with the maps needed to fill it from ``P``'s CSC data.

    Returns:
        ``(full, src_to_full, diag_pos)``: ``full_data[src_to_full] = data`` moves CSC data of
        ``pattern`` into CSC data of ``full``; ``diag_pos[i]`` is the CSC position of ``(i, i)``.
    """
    m, n = pattern.shape
    if m != n:
        raise ShapeError(f"with_diagonal: the pattern must be square, got shape {pattern.shape}.")
    full = pattern.union(SparsityPattern.identity(n))
    full_keys = full.csc_cols * max(n, 1) + full.csc_indices  # sorted: CSC order
    src_keys = pattern.csc_cols * max(n, 1) + pattern.csc_indices
    src_to_full = np.searchsorted(full_keys, src_keys)
    diag_pos = np.searchsorted(full_keys, np.arange(n) * max(n, 1) + np.arange(n))
    return full, src_to_full, diag_pos
