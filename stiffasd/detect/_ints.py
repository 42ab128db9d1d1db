"""Integer knowledge: what detection knows about integer and boolean values it cannot compute.

An index computed from the input (``argmax`` of two elements, a clamped start, the
``floor_divide`` of a bounded index) decides which elements a gather, dynamic_slice or scatter
moves. Its value is unknown, but its possible values often are not, and they make the pattern
exact. Two layers, both vectorized over the elements:

* **bounds**: a per-element interval ``[lo, hi]`` (int64 arrays of the value's shape), computed
  by the range rules of :mod:`stiffasd.detect.rules.integers` (interval arithmetic, exact for
  clamps, argmax, comparisons...). An interval that decides a comparison makes its result known.
* **cases**: a joint enumeration. A (non-boolean) integer with at most `SOURCE_MAX` possible
  values becomes a *source* of the run's scenario space (a mixed-radix counter of at most
  `SCENARIOS_MAX` scenarios); a value computed from sources and constants is evaluated once per
  scenario (one vmapped call of its primitive), which keeps correlations exact: ``idx * 2`` for
  ``idx`` in ``{0, 1}`` takes the values ``{0, 2}``, not the interval ``[0, 2]``, and
  ``floor_divide`` (a sign test, a remainder and a select) gives exactly the quotient.

A value whose cases agree in every scenario, or whose interval is a point, is simply known.
Consumers take the union over the scenarios (exact) or over each element's interval.

Soundness: the scenarios treat the sources as independent, so they cover every execution (and
maybe more); unions over them are supersets, intersections (elements a scatter surely
overwrites) are subsets of the truth, both sound.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from . import _primitives as P
from ._equation import _cpu
from ._sets import IndexSets

__all__ = ["Ints", "Scenarios", "bounds", "cases", "from_bounds", "from_cases", "eval_cases"]

#: A value with at most this many joint possibilities becomes a source of cases.
SOURCE_MAX = 16
#: Scenarios per detection context (the product of the sources' sizes).
SCENARIOS_MAX = 256
#: Bounds that say nothing (int64's range).
LOWEST, HIGHEST = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


class Scenarios:
    """The scenario space of one detection context: ``size`` joint cases of its sources.

    A source added later is the least significant digit, so a value made when the space had
    ``s`` scenarios is expanded to the current space by repeating each of its rows.
    """

    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 1


class Ints:
    """Knowledge of an unknown integer/boolean value: ``lo``/``hi`` (per-element bounds, int64,
    or None) and/or ``cases`` (one row per scenario of ``world`` when it had ``size``
    scenarios)."""

    __slots__ = ("lo", "hi", "world", "size", "cases")

    def __init__(self, lo=None, hi=None, world=None, size=0, cases=None):
        self.lo, self.hi = lo, hi
        self.world, self.size, self.cases = world, size, cases


def dtype_range(dtype: Any) -> tuple[int, int] | None:
    """(min, max) of an integer or boolean dtype that int64 holds, else None."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return None
    if dt == np.bool_:
        return 0, 1
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        if info.max <= np.iinfo(np.int64).max:
            return int(info.min), int(info.max)
    return None


def bounds(x: IndexSets) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-element bounds (int64 arrays of ``x.shape``) of an integer/boolean value, or None."""
    rng = dtype_range(x.dtype)
    if rng is None:
        return None
    if x.value is not None:
        v = np.asarray(x.value).astype(np.int64)
        return v, v
    k = x.ints
    if k is not None and k.cases is not None:
        return k.cases.min(axis=0), k.cases.max(axis=0)
    if k is not None and k.lo is not None:
        return k.lo, k.hi
    if rng == (0, 1):
        return np.zeros(x.shape, np.int64), np.ones(x.shape, np.int64)
    return None


def full_bounds(x: IndexSets) -> tuple[np.ndarray, np.ndarray] | None:
    """`bounds`, with the dtype's range for an integer value nothing is known of."""
    b = bounds(x)
    rng = dtype_range(x.dtype)
    if b is None and rng is not None:
        return np.full(x.shape, rng[0], np.int64), np.full(x.shape, rng[1], np.int64)
    return b


def cases(world: Scenarios, x: IndexSets) -> np.ndarray | None:
    """The value of ``x`` in each scenario of ``world`` (``(world.size, *x.shape)``), or None."""
    if x.value is not None:
        v = np.asarray(x.value)
        return np.broadcast_to(v[None], (world.size,) + v.shape)
    k = x.ints
    if k is None or k.cases is None or k.world is not world:
        return None
    return k.cases if k.size == world.size else np.repeat(k.cases, world.size // k.size, axis=0)


def from_cases(world: Scenarios, arr: np.ndarray, dtype: Any) -> tuple[Any, Ints | None]:
    """(value, ints) of a value with the per-scenario values ``arr``: known if they agree."""
    arr = np.asarray(arr)
    if arr.shape[0] == 1 or (arr == arr[:1]).all():
        return np.asarray(arr[0], dtype=dtype), None
    return None, Ints(world=world, size=world.size, cases=arr)


def from_bounds(
    world: Scenarios | None, lo: np.ndarray, hi: np.ndarray, dtype: Any
) -> tuple[Any, Ints | None]:
    """(value, ints) of a value with per-element bounds: known if they meet; a new source of
    cases in ``world`` if few values are possible; else the bounds (None if they say nothing)."""
    rng = dtype_range(dtype)
    if rng is None:
        return None, None
    lo, hi = np.array(lo, np.int64), np.array(hi, np.int64)
    outside = (lo < rng[0]) | (hi > rng[1])  # may have wrapped around: nothing known
    lo[outside], hi[outside] = rng
    if (lo > hi).any():  # unreachable code (an empty set): claim nothing
        return None, None
    if (lo == hi).all():
        return lo.astype(dtype), None
    if (lo == rng[0]).all() and (hi == rng[1]).all():
        return None, None
    if world is not None and rng != (0, 1):
        widths = (hi.astype(np.float64) - lo.astype(np.float64) + 1).ravel()
        if widths.max() <= SOURCE_MAX:
            count = math.prod(int(w) for w in widths)
            if count <= SOURCE_MAX and world.size * count <= SCENARIOS_MAX:
                # Every joint value, in mixed radix over the elements (C order).
                grid = np.indices(tuple(int(w) for w in widths)).reshape(len(widths), -1).T
                combos = (grid + lo.ravel()).reshape((count,) + lo.shape)
                arr = np.tile(combos, (world.size,) + (1,) * lo.ndim)
                world.size *= count
                return None, Ints(world=world, size=world.size, cases=arr)
    return None, Ints(lo=lo, hi=hi)


def eval_cases(world: Scenarios, primitive, params, ins: list[IndexSets]) -> list | None:
    """Evaluate one equation in every scenario (operands known or with cases), or None.

    Scenarios with equal operands are evaluated once; the rest is one vmapped call.
    """
    args = [cases(world, x) for x in ins]
    if any(a is None for a in args) or not args or P.runs_python(primitive):
        return None
    S = world.size
    varying = [
        np.asarray(a).reshape(S, -1) for a, x in zip(args, ins, strict=True) if x.value is None
    ]
    if not varying:
        return None
    flat = np.concatenate([v.astype(np.int64) for v in varying], axis=1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    distinct = [np.asarray(a)[first] for a in args]

    def one(*a):
        return P.bind_eqn(primitive, params, list(a))

    try:
        with jax.ensure_compile_time_eval(), jax.default_device(_cpu()):
            try:
                outs = jax.vmap(one)(*distinct)
            except Exception:  # a primitive without a batching rule: one call per scenario
                rows = [one(*[d[i] for d in distinct]) for i in range(len(first))]
                outs = [np.stack([np.asarray(r[j]) for r in rows]) for j in range(len(rows[0]))]
    except Exception:
        return None
    return [np.asarray(o)[inverse.ravel()] for o in outs]


def choices(world: Scenarios, x: IndexSets, n: int) -> list[int]:
    """The values in ``[0, n)`` a scalar index clamped to that range can take (a cond's branch)."""
    c = cases(world, x)
    if c is not None:
        return [int(v) for v in np.unique(np.clip(c, 0, n - 1))]
    b = bounds(x)
    if b is None:
        return list(range(n))
    lo, hi = (int(np.clip(v.min() if i == 0 else v.max(), 0, n - 1)) for i, v in enumerate(b))
    return list(range(lo, hi + 1))


def case_masks(world: Scenarios, pred: IndexSets, k: int, shape) -> list[np.ndarray]:
    """For each case ``c < k`` of a select, where (elements of ``shape``) the predicate can be
    ``c``: from its cases, else its bounds, else everywhere."""
    c = cases(world, pred)
    if c is not None:
        lead = (c.shape[0],) + (1,) * (len(shape) - c.ndim + 1)  # a scalar predicate
        c = np.broadcast_to(c.reshape(lead + c.shape[1:]), (c.shape[0],) + tuple(shape))
        return [(c == j).any(axis=0) for j in range(k)]
    b = bounds(pred)
    if b is None:
        return [np.ones(shape, bool)] * k
    lo, hi = (np.broadcast_to(v, shape) for v in b)
    return [(lo <= j) & (j <= hi) for j in range(k)]


def merge(world: Scenarios, index: IndexSets, branches: list[int], outs: list[IndexSets], dtype):
    """(value, ints) of an integer result that is ``outs[i]`` when ``index`` picks
    ``branches[i]``: per scenario when everything has cases, else the hull of the bounds."""
    c = cases(world, index)
    per = [cases(world, o) for o in outs]
    if c is not None and all(p is not None for p in per):
        pick = np.searchsorted(branches, np.clip(c, branches[0], branches[-1]))
        stacked = np.stack(per)  # branches x scenarios x ...
        return from_cases(world, stacked[pick, np.arange(world.size)], dtype)
    bs = [bounds(o) for o in outs]
    if any(b is None for b in bs):
        return None, None
    lo = np.minimum.reduce([b[0] for b in bs])
    hi = np.maximum.reduce([b[1] for b in bs])
    return from_bounds(world, lo, hi, dtype)
