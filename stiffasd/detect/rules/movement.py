"""Data-movement primitives: one generic mechanism, running the primitive on element positions.

For reshape, transpose, slice, pad, concatenate, rev, broadcast_in_dim, squeeze, gather,
dynamic_slice, dynamic_update_slice, split, select_n with a known predicate... every output
element is a copy of at most one input element. Running the primitive itself on arrays of
*element positions* (inexact operands replaced by ``arange`` positions, offset per operand;
index operands given their concrete values) yields, for every output element, the position of
its source, and a single row gather of the stacked dependency matrices finishes the job. Padding
and out-of-bounds fills are recognised as positions outside ``[0, total)``.

A few common primitives have numpy implementations of the same position map (no XLA
compilation); every other one runs through JAX on the CPU. When an index operand is not a known
constant (global mode, data-dependent index), the rule falls back to the conservative
all-to-all pattern of that primitive.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._equation import concrete_eval, conservative_rule, inexact
from .._sets import take_rows, vstack
from ._registry import register_by_name
from ._util import positions

__all__ = ["move", "movement_rule"]


def move(ctx, eqn, fn: Callable[[list], list]):
    """Apply the position-map mechanism with ``fn(args) -> outputs`` (None if indices unknown)."""
    data = [i for i, x in enumerate(eqn.invals) if inexact(x.dtype)]
    if any(not eqn.invals[i].known for i in range(len(eqn.invals)) if i not in data):
        return None
    total = sum(eqn.invals[i].size for i in data)
    pdtype = np.int32 if total < 2**31 - 1 else np.int64
    args, off = [], 0
    for i, x in enumerate(eqn.invals):
        if i in data:
            args.append(positions(x.shape, off).astype(pdtype))
            off += x.size
        else:
            args.append(x.value)
    outs = fn(args)
    stacked = vstack([eqn.invals[i].deps for i in data]) if data else None
    res = []
    for o, dt in zip(outs, eqn.out_dtypes, strict=False):
        if not inexact(dt) or stacked is None:
            res.append(None)
            continue
        src = np.asarray(o).astype(np.int64).ravel()
        src = np.where((src >= 0) & (src < total), src, -1)
        res.append(take_rows(stacked, src))
    return res


def _jax_impl(eqn, override=None):
    params = dict(eqn.params)
    if override:
        params.update(override)

    def fn(args):
        return concrete_eval(eqn.primitive, params, args)

    return fn


def _np_reshape(p):
    def f(a):
        x = a[0]
        if p.get("dimensions") is not None:
            x = np.transpose(x, p["dimensions"])
        return [np.reshape(x, tuple(p["new_sizes"]))]

    return f


def _np_broadcast_in_dim(p):
    def f(a):
        x, shape = a[0], tuple(p["shape"])
        target = [1] * len(shape)
        for i, d in enumerate(p["broadcast_dimensions"]):
            target[d] = x.shape[i]
        return [np.broadcast_to(x.reshape(target), shape)]

    return f


def _np_slice(p):
    def f(a):
        strides = p.get("strides") or (1,) * len(p["start_indices"])
        idx = tuple(
            slice(s, e, st)
            for s, e, st in zip(p["start_indices"], p["limit_indices"], strides, strict=False)
        )
        return [a[0][idx]]

    return f


def _clamped_starts(starts, shape, sizes):
    triples = zip(starts, shape, sizes, strict=False)
    return [int(min(max(int(np.asarray(s)), 0), d - z)) for s, d, z in triples]


def _np_dynamic_slice(p):
    def f(a):
        x, sizes = a[0], p["slice_sizes"]
        st = _clamped_starts(a[1 : 1 + x.ndim], x.shape, sizes)
        return [x[tuple(slice(s, s + z) for s, z in zip(st, sizes, strict=False))]]

    return f


def _np_dynamic_update_slice(p):
    def f(a):
        x, u = a[0].copy(), a[1]
        st = _clamped_starts(a[2 : 2 + x.ndim], x.shape, u.shape)
        x[tuple(slice(s, s + z) for s, z in zip(st, u.shape, strict=False))] = u
        return [x]

    return f


_NUMPY = {
    "reshape": _np_reshape,
    "broadcast_in_dim": _np_broadcast_in_dim,
    "transpose": lambda p: lambda a: [np.transpose(a[0], p["permutation"])],
    "rev": lambda p: lambda a: [np.flip(a[0], tuple(p["dimensions"]))],
    "squeeze": lambda p: (
        lambda a: [
            np.reshape(
                a[0],
                tuple(
                    s
                    for i, s in enumerate(a[0].shape)
                    if i not in set(int(d) % max(a[0].ndim, 1) for d in p["dimensions"])
                ),
            )
        ]
    ),
    "slice": _np_slice,
    "concatenate": lambda p: lambda a: [np.concatenate(a, axis=p["dimension"])],
    "dynamic_slice": _np_dynamic_slice,
    "dynamic_update_slice": _np_dynamic_update_slice,
}


def movement_rule(ctx, eqn):
    """Exact source map by running the primitive on element positions."""
    name = eqn.primitive.name
    dyn_shape = any(
        k == "shape" and v is not None and any(not isinstance(s, (int, np.integer)) for s in v)
        for k, v in eqn.params.items()
    )
    if name in _NUMPY and not dyn_shape:
        fn = _NUMPY[name](eqn.params)
    elif name == "pad":
        cfg = eqn.params["padding_config"]
        if all(lo >= 0 and hi >= 0 and it == 0 for lo, hi, it in cfg):

            def fn(a, cfg=cfg):
                return [np.pad(a[0], [(lo, hi) for lo, hi, _ in cfg], constant_values=a[1])]
        else:
            fn = _jax_impl(eqn)
    elif name == "gather":
        # Out-of-bounds fills must not look like a position: -1 is recognised as "no source".
        fn = _jax_impl(eqn, {"fill_value": -1})
    else:
        fn = _jax_impl(eqn)
    res = move(ctx, eqn, fn)
    if res is None:  # data-dependent indices: conservative for this primitive
        return conservative_rule(ctx, eqn)
    return res


#: Pure data-movement primitives: each output element is one input element (or padding).
# The second-order detector (detect/hessian.py) reads the same list: they are linear.
MOVEMENT_PRIMITIVES = (
    "reshape",
    "broadcast_in_dim",
    "transpose",
    "rev",
    "squeeze",
    "slice",
    "concatenate",
    "pad",
    "dynamic_slice",
    "dynamic_update_slice",
    "gather",
    "split",
    "tile",
    "stack",
    "unstack",
    "expand_dims",
)


register_by_name(
    MOVEMENT_PRIMITIVES,
    movement_rule,
)
