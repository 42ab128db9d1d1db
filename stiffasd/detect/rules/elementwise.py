"""Element-wise primitives (with numpy-style broadcasting of lower-rank operands).

Families (each registered with its first-order rule and its second-order rule, the pairs of
inputs it couples nonlinearly for Hessian detection):

* :func:`elementwise_rule` -- every inexact operand contributes (``sin``, ``add``, ``atan2``...).
* :func:`zero_rule` -- zero derivative almost everywhere (``sign``, ``floor``, ``stop_gradient``).
* hand-written rules where constants make the pattern sparser: ``mul`` (a constant zero factor
  kills the dependency), ``div`` (a constant zero numerator kills the denominator's),
  ``integer_pow`` with exponent 0, ``select_n`` (a known predicate moves exact rows), and
  ``max``/``min``/``clamp`` which in local mode keep only the selected operand.
"""

from __future__ import annotations

import numpy as np

from .._equation import inexact
from .._ints import case_masks
from .._sets import IndexSets, mask_rows, union_or_empty
from ._registry import register_by_name
from ._util import bcast_deps, bcast_value, flat, no_interaction, prod
from .movement import move

__all__ = ["elementwise_rule", "zero_rule", "identity_rule", "nonlinear2"]

#: Linear: no second-order interaction.
LINEAR = ("neg", "add", "sub", "add_any", "real", "imag", "complex", "conj")
#: Piecewise linear: zero Hessian almost everywhere.
PIECEWISE_LINEAR = ("rem",)
#: Nonlinear: every element couples the inputs it depends on.
NONLINEAR = (
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "exp",
    "exp2",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "rsqrt",
    "cbrt",
    "logistic",
    "erf",
    "erfc",
    "erf_inv",
    "lgamma",
    "digamma",
    "igamma",
    "igammac",
    "igamma_grad_a",
    "random_gamma_grad",
    "bessel_i0e",
    "bessel_i1e",
    "polygamma",
    "zeta",
    "regularized_incomplete_beta",
    "atan2",
    "square",
)
#: Zero derivative almost everywhere (JAX defines ``sign``'s as zero, also for complex numbers).
ZERO = ("sign", "floor", "ceil", "round", "stop_gradient", "is_finite")
#: Output ``i`` is operand ``i``, in value and derivative: copies, conversions (a non-floating
#: operand carries no derivative), barriers.
IDENTITY = (
    "convert_element_type",
    "copy",
    "copy_p",
    "reduce_precision",
    "optimization_barrier",
)


def elementwise_rule(ctx, eqn):
    """Every output element depends on the same-position element of every inexact operand."""
    out_shape = eqn.out_shapes[0]
    ds = [bcast_deps(x, out_shape, ctx.n) for x in eqn.invals if inexact(x.dtype)]
    d = union_or_empty(ds, prod(out_shape), ctx.n)
    return [d] * len(eqn.out_shapes)


def zero_rule(ctx, eqn):
    """Zero derivative (piecewise constant functions, ``stop_gradient``)."""
    return [None] * len(eqn.out_shapes)


def identity_rule(ctx, eqn):
    """Output ``i`` is operand ``i`` (``convert_element_type``, ``optimization_barrier``...)."""
    return [x.deps if inexact(x.dtype) else None for x in eqn.invals[: len(eqn.out_shapes)]]


def _masked_products(ctx, eqn, masks_for):
    out_shape = eqn.out_shapes[0]
    ds = []
    for i, x in enumerate(eqn.invals):
        if not (inexact(x.dtype) and x.has_deps):
            continue
        d = bcast_deps(x, out_shape, ctx.n)
        keep = masks_for(i, out_shape)
        if keep is not None:
            d = mask_rows(d, keep)
        ds.append(d)
    return [union_or_empty(ds, prod(out_shape), ctx.n)]


def mul_rule(ctx, eqn):
    """d(a*b) = b da + a db: a known zero of ``b`` removes ``a``'s dependency there (and back)."""
    a, b = eqn.invals

    def keep(i, shape):
        other = bcast_value(b if i == 0 else a, shape)
        return None if other is None else (other != 0)

    return _masked_products(ctx, eqn, keep)


def div_rule(ctx, eqn):
    """d(a/b) = da/b - a db/b^2: a known zero numerator removes the denominator's dependency."""
    a, _ = eqn.invals

    def keep(i, shape):
        if i == 0:
            return None
        va = bcast_value(a, shape)
        return None if va is None else (va != 0)

    return _masked_products(ctx, eqn, keep)


def integer_pow_rule(ctx, eqn):
    """x**0 is constant; any other integer power keeps the element's dependencies."""
    if int(eqn.params["y"]) == 0:
        return [None]
    return elementwise_rule(ctx, eqn)


def maxmin_rule(is_max):
    def rule(ctx, eqn):
        """Union of both operands; local mode keeps the selected one (both at ties)."""
        a, b = eqn.invals
        shape = eqn.out_shapes[0]
        va, vb = bcast_value(a, shape), bcast_value(b, shape)
        if not ctx.local or va is None or vb is None:
            return elementwise_rule(ctx, eqn)
        sel_a = va >= vb if is_max else va <= vb
        sel_b = vb >= va if is_max else vb <= va
        return _masked_products(ctx, eqn, lambda i, s: sel_a if i == 0 else sel_b)

    return rule


def select_n_rule(ctx, eqn):
    """``select_n(pred, *cases)``: a known predicate selects exact rows; otherwise each element
    is the union of the cases its predicate can pick (all of them, unless the predicate's
    integer cases or bounds say otherwise)."""
    pred = eqn.invals[0]
    if pred.value is None:
        out_shape = eqn.out_shapes[0]
        masks = case_masks(ctx.world, pred, len(eqn.invals) - 1, out_shape)
        ds = [
            mask_rows(bcast_deps(x, out_shape, ctx.n), m)
            for x, m in zip(eqn.invals[1:], masks, strict=True)
            if inexact(x.dtype) and x.has_deps and m.any()
        ]
        return [union_or_empty(ds, prod(out_shape), ctx.n)]

    res = move(ctx, eqn, lambda args: [np.choose(np.asarray(args[0]).astype(np.int64), args[1:])])
    return res


def clamp_rule(ctx, eqn):
    """``clamp(lo, x, hi)``: union (global); local mode keeps the active operand."""
    lo, x, hi = eqn.invals
    shape = eqn.out_shapes[0]
    vs = [bcast_value(v, shape) for v in (lo, x, hi)]
    if not ctx.local or any(v is None for v in vs):
        return elementwise_rule(ctx, eqn)
    vl, vx, vh = vs
    # JAX's clamp JVP: x's tangent strictly inside, a bound's tangent where it is active; ties
    # keep both (a superset, whatever convention JAX uses at the tie).
    sel = [vx <= vl, (vx >= vl) & (vx <= vh), vx >= vh]
    return _masked_products(ctx, eqn, lambda i, s: sel[i])


# -- second order -------------------------------------------------------------------------------
def _operands(ctx, eqn):
    shape = eqn.out_shapes[0]
    return [
        bcast_deps(x, shape, ctx.n) if (inexact(x.dtype) and x.has_deps) else None
        for x in eqn.invals
    ]


def _zero(x) -> bool:
    """A constant that is zero everywhere."""
    return x.is_const and not np.any(np.asarray(x.value))


def nonlinear2(ctx, eqn, outs):
    """Nonlinear element-wise: ``S^T S`` with ``S`` the union of the operands at each element."""
    ds = [d for d in _operands(ctx, eqn) if d is not None]
    if ds:
        s = union_or_empty(ds, prod(eqn.out_shapes[0]), ctx.n)
        ctx.interact(s, s)


def abs2(ctx, eqn, outs):
    """Piecewise linear on real numbers; the modulus of a complex number is not."""
    if np.issubdtype(np.dtype(eqn.invals[0].dtype), np.complexfloating):
        nonlinear2(ctx, eqn, outs)


def integer_pow2(ctx, eqn, outs):
    """``x ** 0`` is constant, ``x ** 1`` linear, other powers nonlinear."""
    y = int(eqn.params["y"])
    if y == 0:
        return ()
    if y != 1:
        nonlinear2(ctx, eqn, outs)


def mul2(ctx, eqn, outs):
    """``a * b`` is bilinear: only ``a_i x b_i``; a constant zero factor stops the other's
    derivative."""
    a, b = _operands(ctx, eqn)
    ctx.interact(a, b)
    return [i for i in (0, 1) if not _zero(eqn.invals[1 - i])]


def div2(ctx, eqn, outs):
    """``a / b``: linear in ``a``; couples ``a`` with ``b`` and ``b`` with itself; a constant
    zero numerator stops everything but itself."""
    if _zero(eqn.invals[0]):
        return [0]
    a, b = _operands(ctx, eqn)
    ctx.interact(a, b)
    ctx.interact(b, b)


def pow2(ctx, eqn, outs):
    """``x ** y``: linear only for a constant exponent that is 1 everywhere."""
    y = eqn.invals[1]
    if not (y.is_const and np.all(np.asarray(y.value) == 1)):
        nonlinear2(ctx, eqn, outs)


def select_n2(ctx, eqn, outs):
    """Linear in the cases; only the cases the predicate can pick carry a derivative on."""
    pred = eqn.invals[0]
    k = len(eqn.invals) - 1
    if pred.value is not None:
        picked = np.unique(np.asarray(pred.value).astype(np.int64))
        return [1 + int(c) for c in picked]
    masks = case_masks(ctx.world, pred, k, eqn.out_shapes[0])
    return [1 + c for c in range(k) if masks[c].any()]


register_by_name(LINEAR, elementwise_rule, second=no_interaction)
register_by_name(PIECEWISE_LINEAR, elementwise_rule, second=no_interaction)
register_by_name(NONLINEAR, elementwise_rule, second=nonlinear2)
register_by_name("abs", elementwise_rule, second=abs2)
register_by_name("pow", elementwise_rule, second=pow2)
register_by_name(ZERO, zero_rule, second=flat)
register_by_name(IDENTITY, identity_rule, second=no_interaction)
register_by_name("mul", mul_rule, second=mul2)
register_by_name("div", div_rule, second=div2)
register_by_name("integer_pow", integer_pow_rule, second=integer_pow2)
register_by_name("max", maxmin_rule(True), second=no_interaction)
register_by_name("min", maxmin_rule(False), second=no_interaction)
register_by_name("clamp", clamp_rule, second=no_interaction)
register_by_name("select_n", select_n_rule, second=select_n2)

_ = IndexSets  # re-exported type for rule authors
