"""Small vectorized helpers shared by the rule families."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._sets import IndexSets, empty, take_rows

__all__ = ["bcast_src", "bcast_deps", "bcast_value", "positions", "prod"]


def prod(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def positions(shape, offset: int = 0) -> np.ndarray:
    """Element positions (C order) of an array of ``shape``, as an int64 array of that shape."""
    return np.arange(offset, offset + prod(shape), dtype=np.int64).reshape(shape)


def bcast_src(in_shape, out_shape) -> np.ndarray | None:
    """Source element of each output element under numpy broadcasting (None: identity)."""
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if in_shape == out_shape:
        return None
    return np.broadcast_to(positions(in_shape), out_shape).ravel()


def bcast_deps(x: IndexSets, out_shape, n: int):
    """Dependencies of ``x`` broadcast to ``out_shape``."""
    if not x.has_deps:
        return empty(prod(out_shape), n)
    src = bcast_src(x.shape, out_shape)
    return x.deps if src is None else take_rows(x.deps, src)


def bcast_value(x: IndexSets, out_shape) -> Any:
    """Concrete value of ``x`` broadcast to ``out_shape`` (None if unknown)."""
    if x.value is None:
        return None
    return np.broadcast_to(np.asarray(x.value), tuple(out_shape))
