"""Reductions, cumulative reductions, windowed reductions, sort and top_k.

Each rule builds a 0/1 dependency matrix ``M`` (output element x operand element) with numpy and
returns ``M @ deps`` in the (OR, AND) semiring. Local mode refines max/min reductions (only the
maximal elements) and sort / top_k (the actual permutation).
"""

from __future__ import annotations

import numpy as np

from .._equation import concrete_eval, inexact
from .._sets import empty, from_pairs, mask_rows, matmul, take_rows, union_or_empty, vstack
from ._registry import register_by_name
from ._util import flat, no_interaction, positions, prod

__all__ = ["reduce_rule", "cumulative_rule", "window_rule", "sort_rule", "line_union"]


def _group_ids(shape, axes) -> np.ndarray:
    """For each element, the index of its output element after reducing ``axes`` away."""
    axes = tuple(int(a) % len(shape) for a in axes) if len(shape) else ()
    out_shape = tuple(s for i, s in enumerate(shape) if i not in axes)
    keep = tuple(1 if i in axes else s for i, s in enumerate(shape))
    return np.broadcast_to(positions(out_shape).reshape(keep), shape).ravel()


def reduce_deps(x, axes, n):
    """Dependencies of the reduction of ``x`` over ``axes``."""
    gid = _group_ids(x.shape, axes)
    k = (
        int(gid.max()) + 1
        if gid.size
        else prod([s for i, s in enumerate(x.shape) if i not in axes])
    )
    m = from_pairs(gid, np.arange(x.size), (k, x.size))
    return matmul(m, x.deps)


def reduce_rule(ctx, eqn):
    """reduce_sum / reduce_prod / reduce_max / reduce_min over ``axes``."""
    x = eqn.invals[0]
    axes = tuple(eqn.params["axes"])
    if not x.has_deps:
        return [None]
    deps = x.deps
    name = eqn.primitive.name
    if ctx.local and name in ("reduce_max", "reduce_min") and x.value is not None:
        v = np.asarray(x.value)
        ext = (np.max if name == "reduce_max" else np.min)(v, axis=axes, keepdims=True)
        deps = mask_rows(deps, (v == ext).ravel())
    gid = _group_ids(x.shape, axes)
    m = from_pairs(gid, np.arange(x.size), (eqn.out_sizes[0], x.size))
    return [matmul(m, deps)]


def line_union(x, axis: int, n: int):
    """Every element depends on the union of its whole line along ``axis``."""
    axis = axis % len(x.shape)
    red = reduce_deps(x, (axis,), n)
    return take_rows(red, _group_ids(x.shape, (axis,)))


def _prefix_pairs(shape, axis, reverse):
    """(dst, src) pairs of a cumulative operation along ``axis``: dst depends on src <= dst."""
    axis = axis % len(shape)
    L = shape[axis]
    pos = np.moveaxis(positions(shape), axis, -1).reshape(-1, L)  # lines x L
    i, j = np.tril_indices(L)  # j <= i
    if reverse:
        i, j = L - 1 - i, L - 1 - j
    dst = pos[:, i].ravel()
    src = pos[:, j].ravel()
    return dst, src


def cumulative_rule(ctx, eqn):
    """cumsum / cumprod / cummax / cummin / cumlogsumexp: prefix (or suffix) dependencies."""
    x = eqn.invals[0]
    if not x.has_deps:
        return [None]
    dst, src = _prefix_pairs(
        x.shape, int(eqn.params["axis"]), bool(eqn.params.get("reverse", False))
    )
    m = from_pairs(dst, src, (x.size, x.size))
    return [matmul(m, x.deps)]


def window_rule(ctx, eqn):
    """reduce_window_sum / max / min (and generic reduce_window): every element of the window."""
    p = eqn.params
    wd = tuple(p["window_dimensions"])
    ws = tuple(p["window_strides"])
    pad = tuple(tuple(q) for q in p["padding"])
    bd = tuple(p.get("base_dilation") or (1,) * len(wd))
    wdil = tuple(p.get("window_dilation") or (1,) * len(wd))
    ops = [x for x in eqn.invals if inexact(x.dtype)]
    n_ops = len(eqn.out_shapes)
    operands = eqn.invals[:n_ops]
    out_shape = eqn.out_shapes[0]
    res_all = []
    for x in operands:
        if not (inexact(x.dtype) and x.has_deps):
            res_all.append(empty(prod(out_shape), ctx.n))
            continue
        # Dilate and pad the position array with -1 ("no source"), via lax.pad on the CPU.
        import jax.lax as lax

        pos = positions(x.shape).astype(np.int64 if x.size >= 2**31 - 1 else np.int32)
        cfg = [(lo, hi, b - 1) for (lo, hi), b in zip(pad, bd, strict=False)]
        padded = np.asarray(
            concrete_eval(
                lax.pad_p, {"padding_config": tuple(cfg)}, [pos, np.asarray(-1, pos.dtype)]
            )[0]
        )
        ds = []
        for off in np.ndindex(*wd):
            idx = tuple(
                slice(o * d, o * d + (m - 1) * s + 1, s)
                for o, d, m, s in zip(off, wdil, out_shape, ws, strict=False)
            )
            src = padded[idx].ravel()
            ds.append(take_rows(x.deps, src))
        res_all.append(union_or_empty(ds, prod(out_shape), ctx.n))
    if eqn.primitive.name == "reduce_window" and len(ops) > 0:
        # Generic reduce_window with a user reducer: outputs may mix operands, and the init
        # values enter every output element.
        inits = [x.deps for x in eqn.invals[n_ops:] if inexact(x.dtype) and x.has_deps]
        if inits:
            from .._sets import collapse, repeat_row

            res_all.append(repeat_row(collapse(vstack(inits)), prod(out_shape), ctx.n))
        u = union_or_empty(res_all, prod(out_shape), ctx.n)
        return [u] * n_ops
    return res_all


def sort_rule(ctx, eqn):
    """sort: each output depends on the whole sorted line of its operand (local: permutation)."""
    axis = int(eqn.params["dimension"])
    xs = eqn.invals
    if ctx.local and all(x.known for x in xs):
        shape = xs[0].shape
        posv = positions(shape)
        params = dict(eqn.params)
        params["num_keys"] = int(eqn.params.get("num_keys", 1))
        outs = concrete_eval(eqn.primitive, params, [x.value for x in xs] + [posv])
        perm = np.asarray(outs[-1]).ravel()
        return [take_rows(x.deps, perm) if inexact(x.dtype) else None for x in xs]
    return [line_union(x, axis, ctx.n) if (inexact(x.dtype) and x.has_deps) else None for x in xs]


def top_k_rule(ctx, eqn):
    """top_k along ``axis``: values depend on the whole line (local: the selected elements)."""
    x = eqn.invals[0]
    if not x.has_deps:
        return [None, None]
    axis = int(eqn.params.get("axis", -1)) % len(x.shape)
    if eqn.out_values is not None:
        idx = np.asarray(eqn.out_values[1]).astype(np.int64)
        src = np.take_along_axis(positions(x.shape), idx, axis=axis).ravel()
        return [take_rows(x.deps, src), None]
    red = reduce_deps(x, (axis,), ctx.n)
    return [take_rows(red, _group_ids(eqn.out_shapes[0], (axis,))), None]


def argminmax_rule(ctx, eqn):
    """argmax / argmin: integer result, zero derivative."""
    return [None]


# Second order: sums are linear, max/min/sort piecewise linear (no interaction); products and
# user reducers couple what each output depends on (the default).
register_by_name(("reduce_sum", "reduce_max", "reduce_min"), reduce_rule, second=no_interaction)
register_by_name("reduce_prod", reduce_rule)
register_by_name(("cumsum", "cummax", "cummin"), cumulative_rule, second=no_interaction)
register_by_name(("cumprod", "cumlogsumexp"), cumulative_rule)
register_by_name(
    ("reduce_window_sum", "reduce_window_max", "reduce_window_min"),
    window_rule,
    second=no_interaction,
)
register_by_name("reduce_window", window_rule)
register_by_name(("sort", "top_k"), None, second=no_interaction)
register_by_name("sort", sort_rule)
register_by_name("top_k", top_k_rule)
register_by_name(("argmax", "argmin"), argminmax_rule, second=flat)
