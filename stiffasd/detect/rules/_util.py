"""Small vectorized helpers shared by the rule families, and the generic second-order rules.

A second-order rule ``rule2(ctx, eqn, outs)`` (Hessian detection, see
:mod:`stiffasd.detect.hessian`) records the pairs of inputs the equation couples nonlinearly with
``ctx.interact(a, b)`` and returns the operands through which a derivative reaches the outputs
(None: every floating-point operand; ``()``: none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._equation import inexact
from .._sets import IndexSets, collapse, empty, take_rows, vstack

__all__ = [
    "bcast_src",
    "bcast_deps",
    "bcast_value",
    "positions",
    "prod",
    "no_interaction",
    "flat",
    "from_outputs",
    "all_inputs",
]


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


# -- generic second-order rules -----------------------------------------------------------------
def no_interaction(ctx, eqn, outs):
    """Linear or piecewise linear (or interpreting its body, which records its own): no pair."""


def flat(ctx, eqn, outs):
    """Zero derivative almost everywhere (``floor``, ``sign``, ``stop_gradient``...): no pair,
    and no derivative reaches the outputs."""
    return ()


def from_outputs(ctx, eqn, outs):
    """Each output element couples everything it depends on: ``D^T D`` (sound for any rule)."""
    ds = [o.deps for o, d in zip(outs, eqn.out_dtypes, strict=True) if inexact(d) and o.has_deps]
    if ds:
        d = vstack(ds)
        ctx.interact(d, d)


def all_inputs(ctx, eqn, outs):
    """No rule at all: every input dependency interacts with every other one."""
    ds = [x.deps for x in eqn.invals if inexact(x.dtype) and x.has_deps]
    if ds:
        cols = collapse(vstack(ds))
        ctx.interact_block(cols, cols)
