"""Integer indices computed from the input: what detection knows of their values makes gathers,
dynamic slices, scatters, selects and switches exact.

Every case is checked twice: against the dense truth (the union of the nonzeros of the dense
Jacobian over many random inputs, which visit every possible index value) and against the
pattern written out by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detect_helpers import observed
from jax import lax

from stiffasd.detect import jacobian_sparsity


def exact(f, xs, expected):
    """The detected pattern equals the observed truth at ``xs`` and the pattern ``expected``."""
    pat = jacobian_sparsity(f, xs[0]).to_dense()
    truth = observed(f, xs)
    assert not (truth & ~pat).any(), f"UNSOUND: misses {np.argwhere(truth & ~pat)[:5].tolist()}"
    assert np.array_equal(pat, truth), f"not exact: extra {np.argwhere(pat & ~truth)[:5].tolist()}"
    assert np.array_equal(pat, np.asarray(expected, bool))


def normal(n, k=40, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n) for _ in range(k)]


def with_first(n, firsts, seed=0):
    """Random points whose first element runs through ``firsts``."""
    xs = normal(n, len(firsts), seed)
    for x, v in zip(xs, firsts, strict=True):
        x[0] = v
    return xs


def rows(n, *cols):
    """A pattern with one row per entry of ``cols`` (the input elements of that row)."""
    m = np.zeros((len(cols), n), bool)
    for i, c in enumerate(cols):
        m[i, list(c)] = True
    return m


def test_argmax_of_two_starts_a_dynamic_slice():
    f = lambda x: lax.dynamic_slice(x, (jnp.argmax(x[:2]),), (3,))  # noqa: E731
    exact(f, normal(5), rows(5, {0, 1}, {1, 2}, {2, 3}))


def test_argmax_of_two_offsets_a_gather():
    f = lambda x: jnp.take(x, jnp.array([0, 1]) + jnp.argmax(x[:2]))  # noqa: E731
    exact(f, normal(4), rows(4, {0, 1}, {1, 2}))


def test_argmax_of_two_starts_a_dynamic_update_slice():
    # start 0: [x2, x3, x2, x3]; start 1: [x0, x2, x3, x3]
    f = lambda x: lax.dynamic_update_slice(x, x[2:4], (jnp.argmax(x[:2]),))  # noqa: E731
    exact(f, normal(4), rows(4, {0, 2}, {2, 3}, {2, 3}, {3}))


def test_mul_of_a_bounded_index_keeps_its_values():
    # 2 * argmax takes the values {0, 2}, not the whole interval [0, 2]
    f = lambda x: lax.dynamic_slice(x, (2 * jnp.argmax(x[:2]),), (2,))  # noqa: E731
    exact(f, normal(5), rows(5, {0, 2}, {1, 3}))


def test_floor_divide_of_a_bounded_index_is_exact():
    # floor_divide is a sign test, a remainder and a select: exact only with the correlations
    f = lambda x: jnp.stack([x[jnp.argmax(x[:4]) // 2], x[5 - jnp.argmax(x[:4]) // 2]])  # noqa: E731
    exact(f, normal(6), rows(6, {0, 1}, {4, 5}))
    g = lambda x: lax.dynamic_slice(x, (jnp.argmax(x[:4]) // 2,), (3,))  # noqa: E731
    exact(g, normal(6), rows(6, {0, 1}, {1, 2}, {2, 3}))


def test_integer_pow_of_a_bounded_index():
    f = lambda x: jnp.stack([x[jnp.argmax(x[:3]) ** 2], x[jnp.argmax(x[:3]) ** 3 % 5]])  # noqa: E731
    exact(f, normal(6), rows(6, {0, 1, 4}, {0, 1, 3}))


def test_clamped_start_of_an_unbounded_index():
    firsts = [-0.5, 0.05, 0.15, 0.25, 0.5, -3.0, 7.0]
    i = lambda x: jnp.floor(10 * x[0]).astype(jnp.int32)  # noqa: E731
    f = lambda x: lax.dynamic_slice(x, (jnp.clip(i(x), 0, 2),), (2,))  # noqa: E731
    exact(f, with_first(6, firsts), rows(6, {0, 1, 2}, {1, 2, 3}))
    # dynamic_slice clamps its start itself: 4 of 6 elements start at 0, 1 or 2
    g = lambda x: lax.dynamic_slice(x, (i(x),), (4,))  # noqa: E731
    exact(g, with_first(6, firsts), rows(6, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}))


def test_count_of_positive_elements_clipped():
    f = lambda x: lax.dynamic_slice(x, (jnp.clip(jnp.sum(x > 0), 0, 2),), (2,))  # noqa: E731
    exact(f, normal(4, k=60), rows(4, {0, 1, 2}, {1, 2, 3}))


def test_scatter_to_a_bounded_index():
    f = lambda x: x.at[jnp.argmax(x[:2])].set(3.0 * x[3])  # noqa: E731
    exact(f, normal(5), rows(5, {0, 3}, {1, 3}, {2}, {3}, {4}))
    # argmax // 2 is 0 in every case: the first element is surely overwritten
    g = lambda x: x.at[jnp.argmax(x[:2]) // 2].set(3.0 * x[3])  # noqa: E731
    exact(g, normal(5), rows(5, {3}, {1}, {2}, {3}, {4}))
    h = lambda x: x.at[jnp.argmax(x[:2]) + 2].add(x[0] * x[1])  # noqa: E731
    exact(h, normal(5), rows(5, {0}, {1}, {0, 1, 2}, {0, 1, 3}, {4}))


def test_bounds_decide_a_select():
    f = lambda x: jnp.where(jnp.clip(jnp.argmax(x[:4]), 0, 3) < 8, 2.0 * x, jnp.sum(x))  # noqa: E731
    exact(f, normal(8), np.eye(8, dtype=bool))


def test_select_with_integer_cases():
    # the predicate argmax(x[:3]) picks case 0, 1 or 2 of four
    def f(x):
        i = jnp.argmax(x[:3])
        return lax.select_n(i, x[::-1], 2.0 * x, jnp.roll(x, 1), jnp.full_like(x, jnp.sum(x)))

    n = 5
    expect = (
        np.eye(n, dtype=bool) | np.eye(n, dtype=bool)[::-1] | np.roll(np.eye(n, dtype=bool), 1, 0)
    )
    exact(f, normal(n), expect)


def test_switch_with_a_bounded_index():
    branches = [lambda x: x, lambda x: 2.0 * x[::-1], lambda x: jnp.full_like(x, jnp.sum(x))]
    f = lambda x: lax.switch(jnp.argmax(x[:2]), branches, x)  # noqa: E731
    exact(f, normal(4), np.eye(4, dtype=bool) | np.eye(4, dtype=bool)[::-1])


def test_per_row_indices_too_many_for_cases():
    # 8 rows with 2 possible columns each: 256 joint cases, enumerated row by row instead
    def f(x):
        X = x.reshape(8, 3)
        return X[jnp.arange(8), jnp.clip(jnp.argmax(X, axis=1), 1, 2)]

    exact(f, normal(24, k=60), rows(24, *[{3 * r + 1, 3 * r + 2} for r in range(8)]))


def test_correlated_indices_are_one_source():
    # i and 1 - i come from one argmax: the outputs always read different elements
    def f(x):
        i = jnp.argmax(x[:2])
        return jnp.stack([x[i] * x[2], x[1 - i], x[2 * i + 1]])

    exact(f, normal(4), rows(4, {0, 1, 2}, {0, 1}, {1, 3}))


@pytest.mark.parametrize("n", [40, 300])
def test_many_values(n):
    # argmax over n elements: too many values for cases; its interval is enumerated (n = 40)
    # or, beyond the enumeration, the gather is conservative (n = 300); both exact here
    f = lambda x: jnp.stack([x[jnp.argmax(x)], x[jnp.clip(jnp.argmax(x), 0, 3)]])  # noqa: E731
    xs = normal(n, k=n)
    for i, x in enumerate(xs):  # the maximum at every position
        x[i] = 10.0
    exact(f, xs, rows(n, range(n), range(4)))


def test_local_mode_is_unchanged():
    x = np.array([0.3, 0.9, 0.1, 0.2, 0.5])
    f = lambda x: lax.dynamic_slice(x, (jnp.argmax(x[:2]),), (3,))  # noqa: E731
    pat = jacobian_sparsity(f, x, mode="local").to_dense()
    assert np.array_equal(pat, rows(5, {1}, {2}, {3}))
    assert np.array_equal(pat, np.asarray(jax.jacfwd(f)(x)) != 0)


# -- the range rules against brute force --------------------------------------------------------
RANGE_CASES = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: lax.div(a, jnp.where(b == 0, 1, b)),
    "rem": lambda a, b: lax.rem(a, jnp.where(b == 0, 1, b)),
    "floor_divide": lambda a, b: a // jnp.where(b == 0, 1, b),
    "neg_abs_sign": lambda a, b: -jnp.abs(a) + jnp.sign(b),
    "pow": lambda a, b: a**2 + b**3,
    "max_min": lambda a, b: jnp.maximum(a, b) - jnp.minimum(a, 1),
    "clamp": lambda a, b: lax.clamp(jnp.int32(-1), b, jnp.int32(2)) * a,
    "compare": lambda a, b: (a < b).astype(jnp.int32) + 2 * (a >= b) + 4 * (a == b),
    "select": lambda a, b: jnp.where(a > 0, a, b),
    "bool": lambda a, b: (~(a.astype(bool) & (b > 1)) | (a < -2)).astype(jnp.int32),
    "reduce": lambda a, b: jnp.sum(a) + jnp.max(b) - jnp.min(a),
    "argmax": lambda a, b: jnp.argmax(a.astype(jnp.float32)) + b,
    "movement": lambda a, b: jnp.concatenate([a[::-1], jnp.pad(b, 1)])[1:4],
}


@pytest.mark.parametrize("name", sorted(RANGE_CASES))
def test_range_rules_are_sound(name):
    """Bounds of the result from bounds of the inputs contain every value the function takes on
    the whole box of inputs (all combinations, evaluated by JAX)."""
    import itertools

    from stiffasd.detect._ints import Ints, bounds
    from stiffasd.detect._sets import IndexSets, empty
    from stiffasd.detect.interpreter import Context

    f = RANGE_CASES[name]
    rng = np.random.default_rng(0)
    for trial in range(6):
        los = [rng.integers(-4, 3, size=2) for _ in range(2)]
        his = [lo + rng.integers(0, 4, size=2) for lo in los]
        ctx = Context(n=1)
        ctx.world.size = 10**9  # no room for cases: the bounds alone
        ins = [
            IndexSets((2,), np.int32, empty(2, 1), None, Ints(lo=lo, hi=hi))
            for lo, hi in zip(los, his, strict=True)
        ]
        closed = jax.make_jaxpr(f)(np.zeros(2, np.int32), np.zeros(2, np.int32))
        (out,) = ctx.eval_jaxpr(closed, [], ins)
        b = bounds(out)
        grids = [
            np.array(list(itertools.product(*[range(lo[i], hi[i] + 1) for i in range(2)])))
            for lo, hi in zip(los, his, strict=True)
        ]
        pairs = [(a, c) for a in grids[0] for c in grids[1]]
        vals = np.stack([np.asarray(f(a.astype(np.int32), c.astype(np.int32))) for a, c in pairs])
        assert b is not None, "the bounds of the inputs bound the result"
        lo, hi = (np.broadcast_to(v, vals.shape[1:]) for v in b)
        assert (vals >= lo).all() and (vals <= hi).all(), (name, trial, los, his)
