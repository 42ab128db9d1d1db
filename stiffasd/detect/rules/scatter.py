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
from ._util import no_interaction, positions
from .movement import index_variants, scatter_window_sizes

__all__ = ["scatter_rule", "scatter_destinations"]


def scatter_destinations(operand_shape, indices, updates_shape, dnums, mode) -> np.ndarray:
    """Operand position hit by each update element (-1: dropped), flattened in C order."""
    op_batch = tuple(getattr(dnums, "operand_batching_dims", ()) or ())
    idx_batch = tuple(getattr(dnums, "scatter_indices_batching_dims", ()) or ())
    slice_sizes = scatter_window_sizes(operand_shape, updates_shape, dnums)
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
    """scatter / scatter-add / scatter-sub / scatter-mul / scatter-min / scatter-max.

    Unknown indices are enumerated like a gather's (`index_variants`): the updates go to the
    union of their possible destinations, and an overwriting scatter hides the operand only
    where every scenario overwrites it. Indices that cannot be enumerated send every update
    element everywhere (sound)."""
    operand, indices, updates = eqn.invals[:3]
    out_size = eqn.out_sizes[0]
    overwrite = eqn.primitive.name == "scatter"
    dnums = eqn.params["dimension_numbers"]
    found = index_variants(ctx, eqn, [1])
    if found is None:
        parts = [operand.deps]
        if updates.has_deps:
            parts.append(repeat_row(collapse(updates.deps), out_size, ctx.n))
        return [union_or_empty(parts, out_size, ctx.n)]
    variants, joint = found
    dests = np.stack(
        [
            scatter_destinations(
                operand.shape,
                indices.value if v is None else v[1],
                updates.shape,
                dnums,
                eqn.params.get("mode"),
            )
            for v in variants
        ]
    )
    ok = dests >= 0
    src = np.broadcast_to(np.arange(updates.size), dests.shape)
    m = from_pairs(dests[ok], src[ok], (out_size, updates.size))
    op = operand.deps if inexact(operand.dtype) else None
    if op is not None and overwrite and joint:
        hit = np.ones(out_size, bool)  # overwritten in every scenario
        for d in dests:
            h = np.zeros(out_size, bool)
            h[d[d >= 0]] = True
            hit &= h
        op = mask_rows(op, ~hit)
    parts = [p for p in (op,) if p is not None]
    if inexact(updates.dtype) and updates.has_deps:
        parts.append(matmul(m, updates.deps))
    return [union_or_empty(parts, out_size, ctx.n)]


# Second order: set/add/sub are linear, min/max piecewise linear; mul couples (the default).
register_by_name(
    (
        "scatter",
        "scatter-add",
        "scatter_add",
        "scatter-sub",
        "scatter_sub",
        "scatter-min",
        "scatter_min",
        "scatter-max",
        "scatter_max",
    ),
    scatter_rule,
    second=no_interaction,
)
register_by_name(("scatter-mul", "scatter_mul"), scatter_rule)
