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

import itertools
import math
from collections.abc import Callable

import numpy as np

from .._equation import concrete_eval, conservative_rule, inexact
from .._ints import cases, full_bounds
from .._sets import from_pairs, matmul, take_rows, vstack
from ._registry import register_by_name
from ._util import no_interaction, positions

__all__ = ["move", "movement_rule", "position_fn", "source_map", "index_operands"]


#: Operands that choose positions instead of being moved (the rest are data).
_INDEX_OPERANDS = {"gather": 1, "dynamic_slice": 1, "dynamic_update_slice": 2, "select_n": 0}


def index_operands(eqn) -> list[int]:
    """Positions of the operands that say where elements go (indices, starts, a predicate)."""
    first = _INDEX_OPERANDS.get(eqn.primitive.name)
    if first is None:
        return []
    last = first + 1 if eqn.primitive.name in ("gather", "select_n") else len(eqn.invals)
    return list(range(first, last))


def source_map(eqn, fn: Callable[[list], list], data: list[int], index_values=None) -> list:
    """For each output, the source of every element in the stacked ``data`` operands (-1: none).

    ``fn`` is the primitive on position arrays; ``index_values`` replaces the values of the
    other operands (default: their known values).
    """
    total = sum(eqn.invals[i].size for i in data)
    pdtype = np.int32 if total < 2**31 - 1 else np.int64
    args, off = [], 0
    for i, x in enumerate(eqn.invals):
        if i in data:
            args.append(positions(x.shape, off).astype(pdtype))
            off += x.size
        else:
            args.append(x.value if index_values is None else index_values.get(i, x.value))
    out = []
    for o in fn(args):
        src = np.asarray(o).astype(np.int64).ravel()
        out.append(np.where((src >= 0) & (src < total), src, -1))
    return out


def move(ctx, eqn, fn: Callable[[list], list]):
    """Apply the position-map mechanism with ``fn(args) -> outputs``.

    Unknown index operands are enumerated (`index_variants`): the union over their possible
    values. Returns None when they cannot be enumerated.
    """
    idx = index_operands(eqn)
    data = [i for i, x in enumerate(eqn.invals) if i not in idx and inexact(x.dtype)]
    found = index_variants(ctx, eqn, idx)
    if found is None:
        return None
    variants = found[0]
    stacked = vstack([eqn.invals[i].deps for i in data]) if data else None
    srcs = [source_map(eqn, fn, data, v) for v in variants]
    res = []
    for j, dt in enumerate(eqn.out_dtypes):
        if not inexact(dt) or stacked is None:
            res.append(None)
        elif len(srcs) == 1:
            res.append(take_rows(stacked, srcs[0][j]))
        else:
            src = np.stack([s[j] for s in srcs])  # variants x output elements
            dst = np.broadcast_to(np.arange(src.shape[1]), src.shape)
            ok = src >= 0
            m = from_pairs(dst[ok], src[ok], (src.shape[1], stacked.shape[0]))
            res.append(matmul(m, stacked))
    return res


#: Enumerated index variants per equation, at most (the union costs one position map each).
MAX_VARIANTS = 256


def index_variants(ctx, eqn, idx: list[int]) -> tuple[list, bool] | None:
    """The values the index operands ``idx`` can take: ``(variants, joint)`` with one
    ``{operand: value}`` per variant (``[None]``: all known), or None when they cannot be
    enumerated.

    Operands with cases give one variant per distinct scenario (``joint``: each variant is one
    possible execution). Otherwise their bounds are enumerated element by element: each scalar
    start (or each component of gather/scatter index vectors) runs through its interval,
    clamped to the starts the primitive can use. Every output (update) element reads one index
    vector, so unions over these variants cover it; they are not joint executions.
    """
    ins = eqn.invals
    if all(ins[i].known for i in idx):
        return [None], True
    world = ctx.world
    per = {i: cases(world, ins[i]) for i in idx}
    if all(c is not None for c in per.values()):
        flat = np.concatenate([per[i].reshape(world.size, -1) for i in idx], axis=1)
        _, first = np.unique(flat, axis=0, return_index=True)
        return [{i: per[i][s] for i in idx} for s in np.sort(first)], True
    limits = start_limits(eqn)
    if limits is None:
        return None
    comps = []  # (operand, component index or None, lo, hi)
    for i in idx:
        b = full_bounds(ins[i])
        if b is None:
            return None
        lo, hi = b
        if i == 1 and eqn.primitive.name not in ("dynamic_slice", "dynamic_update_slice"):
            lim = limits[1]
            lo = np.clip(lo, 0, lim)  # index vectors along the last axis
            hi = np.clip(hi, 0, lim)
            for k in range(lo.shape[-1]):
                comps.append((i, k, lo[..., k], hi[..., k]))
        else:
            lo, hi = np.clip(lo, 0, limits[i]), np.clip(hi, 0, limits[i])
            comps.append((i, None, lo, hi))
    widths = [int((hi - lo).max(initial=0)) + 1 for _, _, lo, hi in comps]
    if math.prod(widths) > MAX_VARIANTS:
        return None
    out = []
    for t in itertools.product(*[range(w) for w in widths]):
        vals = {i: np.array(full_bounds(ins[i])[0]) for i in idx}
        for (i, k, lo, hi), tk in zip(comps, t, strict=True):
            v = np.minimum(lo + tk, hi)
            if k is None:
                vals[i] = v.astype(vals[i].dtype)
            else:
                vals[i][..., k] = v
        out.append({i: v.astype(ins[i].dtype) for i, v in vals.items()})
    return out, False


def scatter_window_sizes(operand_shape, updates_shape, dnums) -> list[int]:
    """The extent of one update window in each operand dimension."""
    op_batch = tuple(getattr(dnums, "operand_batching_dims", ()) or ())
    sizes, pos = [], 0
    for i in range(len(operand_shape)):
        if i in dnums.inserted_window_dims or i in op_batch:
            sizes.append(1)
        else:
            sizes.append(updates_shape[dnums.update_window_dims[pos]])
            pos += 1
    return sizes


def start_limits(eqn):
    """The largest start each index operand can select (the primitive clamps to it), or None."""
    name, ins, p = eqn.primitive.name, eqn.invals, eqn.params
    if name == "dynamic_slice":
        sizes = p["slice_sizes"]
        return {1 + d: ins[0].shape[d] - sizes[d] for d in range(len(sizes))}
    if name == "dynamic_update_slice":
        upd = ins[1].shape
        return {2 + d: ins[0].shape[d] - upd[d] for d in range(len(upd))}
    if name == "gather":
        dims = tuple(p["dimension_numbers"].start_index_map)
        lim = np.array([ins[0].shape[d] - p["slice_sizes"][d] for d in dims], np.int64)
        return {1: lim}
    if name.startswith("scatter"):
        dn = p["dimension_numbers"]
        sizes = scatter_window_sizes(ins[0].shape, ins[2].shape, dn)
        dims = tuple(dn.scatter_dims_to_operand_dims)
        return {1: np.array([ins[0].shape[d] - sizes[d] for d in dims], np.int64)}
    return None


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


def position_fn(eqn) -> Callable[[list], list]:
    """The primitive as a function of position arrays (numpy when possible, else JAX on CPU)."""
    name = eqn.primitive.name
    dyn_shape = any(
        k == "shape" and v is not None and any(not isinstance(s, (int, np.integer)) for s in v)
        for k, v in eqn.params.items()
    )
    if name in _NUMPY and not dyn_shape:
        return _NUMPY[name](eqn.params)
    if name == "pad":
        cfg = eqn.params["padding_config"]
        if all(lo >= 0 and hi >= 0 and it == 0 for lo, hi, it in cfg):

            def fn(a, cfg=cfg):
                return [np.pad(a[0], [(lo, hi) for lo, hi, _ in cfg], constant_values=a[1])]

            return fn
    if name == "gather":
        # Out-of-bounds fills must not look like a position: -1 is recognised as "no source".
        return _jax_impl(eqn, {"fill_value": -1})
    return _jax_impl(eqn)


def movement_rule(ctx, eqn):
    """Exact source map by running the primitive on element positions."""
    res = move(ctx, eqn, position_fn(eqn))
    if res is None:  # indices that cannot be enumerated: conservative for this primitive
        return conservative_rule(ctx, eqn)
    return res


#: Pure data-movement primitives: each output element is one input element (or padding); they
#: are linear (no second-order interaction).
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


register_by_name(MOVEMENT_PRIMITIVES, movement_rule, second=no_interaction)
