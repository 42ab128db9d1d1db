"""Scatter primitives (``.at[].set/.add/.mul/.min/.max``), exact with known indices.

The destination of every update element is found by the *gather* that is the transpose of the
scatter (same dimension numbers, as in JAX's own transpose rule for scatter-add), applied to the
operand's element positions: one JAX call, then a 0/1 matrix (operand element x update element).
With data-dependent indices (global mode), every output element may receive any update element
(sound).
"""

from __future__ import annotations

import jax.lax as lax
import numpy as np

from .._equation import concrete_eval, inexact
from .._sets import collapse, from_pairs, mask_rows, matmul, repeat_row, union_or_empty
from ._registry import register_by_name
from ._util import positions

__all__ = ["scatter_rule", "scatter_destinations"]


def scatter_destinations(operand_shape, indices, updates_shape, dnums, mode) -> np.ndarray:
    """Operand position hit by each update element (-1: dropped), flattened in C order."""
    op_batch = tuple(getattr(dnums, "operand_batching_dims", ()) or ())
    idx_batch = tuple(getattr(dnums, "scatter_indices_batching_dims", ()) or ())
    slice_sizes, pos = [], 0
    for i in range(len(operand_shape)):
        if i in dnums.inserted_window_dims or i in op_batch:
            slice_sizes.append(1)
        else:
            slice_sizes.append(updates_shape[dnums.update_window_dims[pos]])
            pos += 1
    kwargs = {}
    if op_batch:
        kwargs = {"operand_batching_dims": op_batch, "start_indices_batching_dims": idx_batch}
    gd = lax.GatherDimensionNumbers(
        offset_dims=tuple(dnums.update_window_dims),
        collapsed_slice_dims=tuple(dnums.inserted_window_dims),
        start_index_map=tuple(dnums.scatter_dims_to_operand_dims),
        **kwargs,
    )
    size = int(np.prod(operand_shape, dtype=np.int64))
    pdt = np.int32 if size < 2**31 - 1 else np.int64
    gmode = mode
    if mode is not None and getattr(mode, "name", str(mode)) == "PROMISE_IN_BOUNDS":
        gmode = lax.GatherScatterMode.CLIP  # sound: a clamped destination is a superset guess
    params = {
        "dimension_numbers": gd,
        "slice_sizes": tuple(slice_sizes),
        "unique_indices": False,
        "indices_are_sorted": False,
        "mode": lax.GatherScatterMode.from_any(gmode),
        "fill_value": -1,
    }
    out = concrete_eval(
        lax.gather_p, params, [positions(operand_shape).astype(pdt), np.asarray(indices)]
    )[0]
    dest = np.asarray(out).astype(np.int64).ravel()
    return np.where((dest >= 0) & (dest < size), dest, -1)


def scatter_rule(ctx, eqn):
    """scatter / scatter-add / scatter-sub / scatter-mul / scatter-min / scatter-max."""
    operand, indices, updates = eqn.invals[:3]
    out_size = eqn.out_sizes[0]
    name = eqn.primitive.name
    overwrite = name == "scatter"
    if indices.value is None:
        parts = [operand.deps]
        if updates.has_deps:
            parts.append(repeat_row(collapse(updates.deps), out_size, ctx.n))
        return [union_or_empty(parts, out_size, ctx.n)]
    dest = scatter_destinations(
        operand.shape,
        indices.value,
        updates.shape,
        eqn.params["dimension_numbers"],
        eqn.params.get("mode"),
    )
    ok = dest >= 0
    m = from_pairs(dest[ok], np.flatnonzero(ok), (out_size, updates.size))
    hit = np.zeros(out_size, bool)
    hit[dest[ok]] = True
    op = operand.deps if inexact(operand.dtype) else None
    if op is not None and overwrite:
        op = mask_rows(op, ~hit)
    parts = [p for p in (op,) if p is not None]
    if inexact(updates.dtype) and updates.has_deps:
        parts.append(matmul(m, updates.deps))
    return [union_or_empty(parts, out_size, ctx.n)]


register_by_name(
    (
        "scatter",
        "scatter-add",
        "scatter_add",
        "scatter-sub",
        "scatter_sub",
        "scatter-mul",
        "scatter_mul",
        "scatter-min",
        "scatter_min",
        "scatter-max",
        "scatter_max",
    ),
    scatter_rule,
)
