"""Range rules: per-element bounds of integer and boolean results (see :mod:`..._ints`).

A range rule ``rule(eqn, b) -> list`` receives the operands' bounds ``b`` (one ``(lo, hi)`` pair
of int64 arrays per operand, or None where nothing is known) and returns one ``(lo, hi)`` or
None per output. Every rule is interval arithmetic on whole arrays:

* monotone primitives (``max``, ``min``, ``clamp``, ``reduce_max``, ``reduce_min``, ``and`` /
  ``or`` on booleans, conversions) map the lower bounds to the lower bound;
* ``add``, ``sub``, ``mul``, ``div``, ``rem``, ``abs``, ``sign``, ``integer_pow``,
  ``reduce_sum``: the extremes over the corners, in float64 (exact below 2**53; a result that
  leaves the dtype's range, where integers wrap, is unknown);
* ``argmax`` / ``argmin``: ``[0, axis length - 1]``;
* comparisons: true where the intervals decide it, false where they decide the opposite;
* ``select_n``: the hull of the cases the predicate can pick;
* data movement: the bounds move with the elements (the same position map as the dependency
  rule); with unknown indices, the hull of the operand.
"""

from __future__ import annotations

import numpy as np

from .._ints import HIGHEST, LOWEST, dtype_range, full_bounds
from ._registry import register_by_name
from .movement import MOVEMENT_PRIMITIVES, index_operands, position_fn, source_map

__all__ = ["ARITHMETIC", "MONOTONE", "COMPARISONS"]

_INF = np.inf


def _f(b, shape):
    """Float64 bounds broadcast to ``shape`` (None stays None)."""
    if b is None:
        return None
    return (
        np.broadcast_to(np.asarray(b[0], np.float64), shape),
        np.broadcast_to(np.asarray(b[1], np.float64), shape),
    )


def _pack(lo, hi):
    """Float bounds back to int64; elements beyond exact float range lose their bounds."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    bad = ~(np.isfinite(lo) & np.isfinite(hi) & (np.abs(lo) < 2**53) & (np.abs(hi) < 2**53))
    if bad.all():
        return None
    lo, hi = np.where(bad, 0, lo).astype(np.int64), np.where(bad, 0, hi).astype(np.int64)
    lo[bad], hi[bad] = LOWEST, HIGHEST
    return lo, hi


def _filled(eqn, b):
    """Operand bounds, the dtype's range where nothing is known (for monotone rules)."""
    return [bi if bi is not None else full_bounds(x) for bi, x in zip(b, eqn.invals, strict=True)]


def _corners(fn, a, c):
    vals = [fn(x, y) for x in a for y in c]
    return np.minimum.reduce(vals), np.maximum.reduce(vals)


# -- arithmetic ---------------------------------------------------------------------------------
def _binary(fn):
    def rule(eqn, b):
        shape = eqn.out_shapes[0]
        a, c = _f(b[0], shape), _f(b[1], shape)
        if a is None or c is None:
            return [None]
        return [_pack(*fn(a, c))]

    return rule


def _add(a, c):
    return a[0] + c[0], a[1] + c[1]


def _sub(a, c):
    return a[0] - c[1], a[1] - c[0]


def _mul(a, c):
    return _corners(np.multiply, a, c)


def _div(a, c):
    """Integer division truncates toward zero; a divisor interval containing 0 says nothing."""
    zero = (c[0] <= 0) & (c[1] >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = _corners(lambda x, y: np.trunc(x / y), a, c)
    return np.where(zero, -_INF, lo), np.where(zero, _INF, hi)


def _rem(a, c):
    """``rem`` has the dividend's sign and a magnitude below the divisor's."""
    zero = (c[0] <= 0) & (c[1] >= 0)
    m = np.maximum(np.abs(c[0]), np.abs(c[1])) - 1
    small = np.minimum(np.abs(c[0]), np.abs(c[1]))
    lo = np.where(a[0] >= 0, 0, np.maximum(a[0], -m))
    hi = np.where(a[1] <= 0, 0, np.minimum(a[1], m))
    same = (a[0] >= 0) & (a[1] < small)  # the dividend is its own remainder
    lo, hi = np.where(same, a[0], lo), np.where(same, a[1], hi)
    return np.where(zero, -_INF, lo), np.where(zero, _INF, hi)


def _unary(fn):
    def rule(eqn, b):
        a = _f(b[0], eqn.out_shapes[0])
        return [None if a is None else _pack(*fn(a, eqn.params))]

    return rule


def _neg(a, p):
    return -a[1], -a[0]


def _abs(a, p):
    lo = np.where(a[0] >= 0, a[0], np.where(a[1] <= 0, -a[1], 0))
    return lo, np.maximum(np.abs(a[0]), np.abs(a[1]))


def _sign(a, p):
    return np.sign(a[0]), np.sign(a[1])


def _integer_pow(a, p):
    y = int(p["y"])
    if y < 0:
        return np.full(a[0].shape, -_INF), np.full(a[0].shape, _INF)
    lo, hi = a[0] ** y, a[1] ** y
    if y % 2:  # odd powers are increasing
        return lo, hi
    straddle = (a[0] < 0) & (a[1] > 0)
    return np.where(straddle, 0, np.minimum(lo, hi)), np.maximum(lo, hi)


def _reduce_sum(eqn, b):
    if b[0] is None:
        return [None]
    axes = tuple(eqn.params["axes"])
    lo, hi = (np.asarray(v, np.float64).sum(axis=axes) for v in b[0])
    return [_pack(lo, hi)]


# -- monotone -----------------------------------------------------------------------------------
def _monotone(fn):
    """Increasing in every operand: the lower bounds map to the lower bound."""

    def rule(eqn, b):
        f = _filled(eqn, b)
        if any(v is None for v in f):
            return [None]
        lo = fn(eqn, [v[0] for v in f])
        hi = fn(eqn, [v[1] for v in f])
        return [(np.asarray(lo, np.int64), np.asarray(hi, np.int64))]

    return rule


def _clamp(eqn, v):
    lo, x, hi = v
    return np.minimum(np.maximum(x, lo), hi)  # XLA's clamp: min(max(x, lo), hi)


def _reduce(fn):
    return lambda eqn, v: fn(v[0], axis=tuple(eqn.params["axes"]))


def _convert(eqn, b):
    x = eqn.invals[0]
    if dtype_range(x.dtype) is None or b[0] is None:
        return [None]  # from floating point: nothing known
    lo, hi = b[0]
    if np.dtype(eqn.out_dtypes[0]) == np.bool_:
        nonzero = (lo > 0) | (hi < 0)  # surely true
        maybe = (lo != 0) | (hi != 0)
        return [(np.asarray(nonzero, np.int64), np.asarray(maybe, np.int64))]
    return [(lo, hi)]


def _bool_only(fn):
    """``and`` / ``or`` / ``not`` are monotone on booleans only (bitwise on integers)."""

    def rule(eqn, b):
        if np.dtype(eqn.out_dtypes[0]) != np.bool_:
            return [None]
        return fn(eqn, b)

    return rule


def _not(eqn, b):
    lo, hi = b[0] if b[0] is not None else (np.zeros(eqn.out_shapes[0]), np.ones(eqn.out_shapes[0]))
    return [((1 - hi).astype(np.int64), (1 - lo).astype(np.int64))]


def _arg(eqn, b):
    x = eqn.invals[0]
    n = int(np.prod([x.shape[a] for a in eqn.params["axes"]], dtype=np.int64))
    shape = eqn.out_shapes[0]
    return [(np.zeros(shape, np.int64), np.full(shape, max(n - 1, 0), np.int64))]


# -- comparisons --------------------------------------------------------------------------------
def _compare(true_fn, false_fn):
    """Boolean result: 1 where the intervals force true, 0 where they force false."""

    def rule(eqn, b):
        shape = eqn.out_shapes[0]
        a, c = _f(b[0], shape), _f(b[1], shape)
        if a is None or c is None:
            return [None]
        t, f = true_fn(a, c), false_fn(a, c)
        return [(t.astype(np.int64), (~f).astype(np.int64))]

    return rule


def _lt(a, c):
    return a[1] < c[0]


def _ge(a, c):
    return a[0] >= c[1]


def _eq(a, c):
    return (a[0] == a[1]) & (c[0] == c[1]) & (a[0] == c[0])


def _disjoint(a, c):
    return (a[1] < c[0]) | (c[1] < a[0])


COMPARISONS = {
    "lt": (_lt, _ge),
    "ge": (_ge, _lt),
    "gt": (lambda a, c: _lt(c, a), lambda a, c: _ge(c, a)),
    "le": (lambda a, c: _ge(c, a), lambda a, c: _lt(c, a)),
    "eq": (_eq, _disjoint),
    "ne": (_disjoint, _eq),
}


# -- select and movement ------------------------------------------------------------------------
def _select_n(eqn, b):
    """The hull of the cases the predicate can pick, element by element."""
    shape = eqn.out_shapes[0]
    p = _f(b[0], shape)
    if p is None:
        return [None]
    lo, hi = np.full(shape, _INF), np.full(shape, -_INF)
    for k, bk in enumerate(b[1:]):
        can = (p[0] <= k) & (k <= p[1])
        if not can.any():
            continue
        c = _f(bk, shape)
        if c is None:
            c = (np.full(shape, -_INF), np.full(shape, _INF))
        lo = np.where(can, np.minimum(lo, c[0]), lo)
        hi = np.where(can, np.maximum(hi, c[1]), hi)
    return [_pack(lo, hi)]


def _movement(eqn, b):
    """Bounds move with the elements; unknown indices give the operand's hull."""
    idx = index_operands(eqn)
    data = [i for i in range(len(eqn.invals)) if i not in idx]
    f = _filled(eqn, b)
    if any(f[i] is None for i in data):
        return [None] * len(eqn.out_shapes)
    shape = eqn.out_shapes[0]
    if any(eqn.invals[i].value is None for i in idx):
        lo = min(int(f[i][0].min(initial=HIGHEST)) for i in data)
        hi = max(int(f[i][1].max(initial=LOWEST)) for i in data)
        return [(np.full(shape, lo, np.int64), np.full(shape, hi, np.int64))] * len(eqn.out_shapes)
    srcs = source_map(eqn, position_fn(eqn), data)
    los = np.concatenate([np.ravel(f[i][0]) for i in data])
    his = np.concatenate([np.ravel(f[i][1]) for i in data])
    out = []
    for src, s in zip(srcs, eqn.out_shapes, strict=True):
        ok = src >= 0  # a gather's out-of-bounds fill: nothing known
        lo = np.where(ok, los[np.where(ok, src, 0)], LOWEST).reshape(s)
        hi = np.where(ok, his[np.where(ok, src, 0)], HIGHEST).reshape(s)
        out.append((lo, hi))
    return out


register_by_name(("add", "add_any"), ranges=_binary(_add))
register_by_name("sub", ranges=_binary(_sub))
register_by_name("mul", ranges=_binary(_mul))
register_by_name("div", ranges=_binary(_div))
register_by_name("rem", ranges=_binary(_rem))
register_by_name("neg", ranges=_unary(_neg))
register_by_name("abs", ranges=_unary(_abs))
register_by_name("sign", ranges=_unary(_sign))
register_by_name("integer_pow", ranges=_unary(_integer_pow))
register_by_name("reduce_sum", ranges=_reduce_sum)
register_by_name("max", ranges=_monotone(lambda e, v: np.maximum(v[0], v[1])))
register_by_name("min", ranges=_monotone(lambda e, v: np.minimum(v[0], v[1])))
register_by_name("clamp", ranges=_monotone(_clamp))
register_by_name("reduce_max", ranges=_monotone(_reduce(np.max)))
register_by_name("reduce_min", ranges=_monotone(_reduce(np.min)))
register_by_name("and", ranges=_bool_only(_monotone(lambda e, v: v[0] & v[1])))
register_by_name("or", ranges=_bool_only(_monotone(lambda e, v: v[0] | v[1])))
register_by_name("not", ranges=_bool_only(_not))
register_by_name(("convert_element_type", "copy", "copy_p"), ranges=_convert)
register_by_name(("argmax", "argmin"), ranges=_arg)
for _name, (_t, _f_) in COMPARISONS.items():
    register_by_name(_name, ranges=_compare(_t, _f_))
register_by_name("select_n", ranges=_select_n)
register_by_name(MOVEMENT_PRIMITIVES, ranges=_movement)

ARITHMETIC = ("add", "add_any", "sub", "mul", "div", "rem", "neg", "abs", "sign", "integer_pow")
MONOTONE = ("max", "min", "clamp", "reduce_max", "reduce_min", "and", "or", "not")
