"""Second-order sparsity detection: the sparsity pattern of the Hessian of a scalar function.

Method (Walther 2008; Gower & Mello 2012; Hill & Dalle 2025): the jaxpr is interpreted with the
first-order index sets of :mod:`stiffasd.detect` (every value carries the pattern of its gradient,
one boolean CSR matrix per array), and every equation additionally records its *second-order
interactions* in one global symmetric boolean matrix ``I`` (``n``-by-``n``). By the chain rule,

    H(f o g) = J_g^T H_f J_g + sum_k (df/dg_k) H(g_k),

so the Hessian of the output is covered by the union over equations of the pairs of inputs that
each primitive couples *nonlinearly* (the sum term is covered because every intermediate's own
interactions are already in ``I``). Rules classify primitives:

* linear and piecewise-linear primitives (add, reshape, gather, reduce_sum, max, abs, sort...)
  add nothing;
* a nonlinear element-wise primitive ``y_i = g(u_i, v_i)`` adds ``S_i x S_i`` for the union
  ``S_i`` of its operands' index sets at element ``i``: over all elements that is the boolean
  product ``S^T S`` (``S`` the k-by-n dependency matrix), one sparse product;
* ``u * v`` adds ``U_i x V_i`` only (``U^T V``), ``u / v`` adds ``U^T V`` and ``V^T V``;
* ``dot_general`` adds, per batch and contracted index, the union over free indices of each side
  (``L_r^T R_r``), with no interaction when one side is a constant;
* any other primitive with a first-order rule adds ``D^T D`` for its output dependency matrix
  ``D`` (sound: each output element couples only what it depends on); a primitive without any
  rule couples all of its inputs' dependencies (a :class:`~stiffasd.ConservativePatternWarning`,
  or :class:`~stiffasd.UnsupportedPrimitiveError` under ``strict=True``).

Higher-order primitives recurse through the same interpreter, so their bodies record their own
interactions; ``custom_jvp`` functions are analysed through the JVP rule JAX differentiates;
long loops record the interactions of one body evaluation on the union (fixed point) of their
carries, which covers every iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ShapeError
from ..pattern import SparsityPattern
from . import _primitives as P
from ._api import trace_and_seed
from ._equation import Equation, aval_info, inexact
from ._sets import (
    IndexSets,
    collapse,
    csr,
    empty,
    from_pairs,
    matmul,
    union_or_empty,
    vstack,
)
from .interpreter import Context
from .rules import get_rule
from .rules._util import bcast_deps, positions, prod
from .rules.control import (
    SCAN_UNROLL,
    WHILE_SIMULATE,
    _forget_values,
    _union_fixpoint,
    jvp_jaxpr,
)
from .rules.movement import MOVEMENT_PRIMITIVES

__all__ = ["hessian_sparsity", "HessianContext", "register_second_order_rule"]


# A second-order rule: rule2(ctx, eqn, outs) records interactions with ctx.interact(...).
Rule2 = Callable[["HessianContext", Equation, list], None]
_RULES2: dict[Any, Rule2] = {}


def register_second_order_rule(primitive: Any, rule: Rule2) -> None:
    """Register how a primitive couples its inputs at second order.

    Without a registration, a primitive that has a first-order rule couples, for every output
    element, all the inputs it depends on (sound, possibly coarse).

    Args:
        primitive: the JAX ``Primitive`` object.
        rule: ``rule(ctx, eqn, outs) -> None``; ``eqn.invals`` are the operands' index sets,
            ``outs`` the first-order outputs; record pairs with ``ctx.interact(a, b)`` (adds
            ``a^T b`` for same-height dependency matrices ``a``, ``b``).
    """
    if not isinstance(primitive, P.Primitive):
        raise TypeError(
            "register_second_order_rule(primitive=...) expects a JAX Primitive object, got "
            f"{type(primitive).__name__} {primitive!r}."
        )
    if not callable(rule):
        raise TypeError("register_second_order_rule(rule=...) must be callable.")
    _RULES2[primitive] = rule


def _by_name(names, rule):
    for name in (names,) if isinstance(names, str) else names:
        p = P.get(name)
        if p is not None:
            _RULES2[p] = rule


# ---------------------------------------------------------------------------------- context
class Curvature:
    """The interactions that reach a value: those recorded by the equation that made it
    (``pieces``) and those reaching its operands through a nonzero derivative (``parents``).

    By the chain rule the curvature of an intermediate ``g`` enters the Hessian of ``f`` weighted
    by ``df/dg``: interactions reachable from the output through nonzero derivatives are the
    ones that count. A value multiplied by a constant zero (or only used where the derivative
    vanishes: ``stop_gradient``, ``floor``...) passes none on.
    """

    __slots__ = ("pieces", "parents")

    def __init__(self, pieces: list, parents: list):
        self.pieces, self.parents = pieces, parents


#: The curvature of a value that no interaction reaches.
FLAT = Curvature([], [])


def reachable(nodes: list) -> list:
    """Every interaction piece reachable from ``nodes`` (iterative depth-first search)."""
    seen, out, stack = set(), [], [c for c in nodes if c is not None]
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        out.extend(c.pieces)
        stack.extend(p for p in c.parents if p is not None)
    return out


@dataclass
class HessianContext(Context):
    """A detection context that also records second-order interactions.

    ``pieces`` holds sparse ``n``-by-``n`` boolean matrices (not yet symmetrized), each recorded
    by one equation; every inexact value carries its `Curvature` (``IndexSets.second``), and the
    Hessian is the union of the pieces reachable from the output.
    """

    pieces: list = field(default_factory=list)
    in_jvp_rule: bool = False

    def child(self, n: int) -> Context:
        # Transfer patterns (loop fixed points) are first-order only: their local columns are not
        # the Hessian's, and the loop rules below record the loop's interactions on global columns.
        return Context(n=n, mode=self.mode, strict=self.strict, warned=self.warned, envs=self.envs)

    def first_order(self) -> Context:
        """A first-order context over the same columns and scenarios (for values that are not
        differentiated, such as loop predicates)."""
        return Context(
            n=self.n,
            mode=self.mode,
            strict=self.strict,
            warned=self.warned,
            world=self.world,
            envs=self.envs,
        )

    def captured(self, x: IndexSets) -> IndexSets:
        # Inside a JVP rule's analysis the primal values keep their dependencies (columns
        # [0, n)): a value the rule captured by closure is one of them.
        if self.in_jvp_rule and 2 * x.n == self.n:
            return IndexSets(x.shape, x.dtype, _widen(x.deps, self.n, 0), x.value, x.ints)
        return super().captured(x)

    # -- recording --------------------------------------------------------------------------
    def interact(self, a: Any, b: Any) -> None:
        """Record the pairs ``a_i x b_i`` for every row ``i`` (the boolean product ``a^T b``)."""
        if a is None or b is None or a.nnz == 0 or b.nnz == 0:
            return
        self._add(sp.csr_array(a.T @ b))

    def interact_block(self, cols_a: np.ndarray, cols_b: np.ndarray) -> None:
        """Record the dense block ``cols_a x cols_b``."""
        if len(cols_a) == 0 or len(cols_b) == 0:
            return
        r = np.repeat(np.asarray(cols_a, np.int64), len(cols_b))
        c = np.tile(np.asarray(cols_b, np.int64), len(cols_a))
        self._add(from_pairs(r, c, (self.n, self.n)))

    def _add(self, m: Any) -> None:
        if m.nnz:
            self.pieces.append(m)

    def interactions(self, outs: list[IndexSets]) -> sp.csr_array:
        """The symmetric interaction matrix of the pieces that reach ``outs`` (canonical CSR)."""
        pieces = reachable([o.second for o in outs])
        if not pieces:
            return empty(self.n, self.n)
        if len(pieces) == 1:
            m = pieces[0]
        else:  # one sort over all pieces' entries, instead of a chain of pairwise sums
            coos = [sp.coo_array(p) for p in pieces]
            rows = np.concatenate([c.row for c in coos])
            cols = np.concatenate([c.col for c in coos])
            m = from_pairs(rows, cols, (self.n, self.n))
        m = sp.csr_array(m + m.T)
        if m.dtype != bool:
            m = m.astype(bool)
        m.sum_duplicates()
        m.sort_indices()
        return m

    # -- the interpreter hook ---------------------------------------------------------------
    def apply(self, primitive, params, ins, infos, effects=False):
        hot = any(x.has_deps and inexact(x.dtype) for x in ins) and any(
            inexact(d) for _, d in infos
        )
        mark = len(self.pieces)
        flowing = None
        if hot and primitive is P.get("while"):
            outs = _while2(self, params, ins)
        else:
            outs = super().apply(primitive, params, ins, infos, effects)
            if hot:
                rule2 = _RULES2.get(primitive)
                if rule2 is None:
                    rule2 = _from_outputs if get_rule(primitive) is not None else _all_inputs
                shapes = [s for s, _ in infos]
                dtypes = [d for _, d in infos]
                flowing = rule2(self, Equation(primitive, params, ins, shapes, dtypes, None), outs)
        # The curvature of outputs built by the rule (those interpreted inside a sub-jaxpr carry
        # their own): the pieces recorded now, and the operands' through a nonzero derivative.
        parents = [
            x.second
            for i, x in enumerate(ins)
            if inexact(x.dtype) and (flowing is None or i in flowing)
        ]
        pieces = self.pieces[mark:]
        constant = not any(o.has_deps for o in outs if inexact(o.dtype))  # nothing to curve
        node = Curvature(pieces, parents) if not constant and (pieces or any(parents)) else FLAT
        return [
            o
            if o.second is not None or not inexact(o.dtype)
            else IndexSets(o.shape, o.dtype, o.deps, o.value, o.ints, node)
            for o in outs
        ]


# ---------------------------------------------------------------------------------- rules
# A second-order rule records the equation's interactions and returns the operands through which
# a derivative flows to the outputs (None: every inexact operand).
def _none(ctx, eqn, outs):
    """Linear or piecewise-linear: no second-order interaction."""


def _flat(ctx, eqn, outs):
    """Zero derivative almost everywhere (``floor``, ``sign``, ``stop_gradient``...): no
    interaction, and nothing reaches the outputs."""
    return ()


def _zero(x) -> bool:
    """A constant that is zero everywhere."""
    return x.is_const and not np.any(np.asarray(x.value))


def _from_outputs(ctx, eqn, outs):
    """Each output element couples everything it depends on: ``D^T D``."""
    ds = [o.deps for o, d in zip(outs, eqn.out_dtypes, strict=True) if inexact(d) and o.has_deps]
    if ds:
        d = vstack(ds)
        ctx.interact(d, d)


def _all_inputs(ctx, eqn, outs):
    """No rule at all: every input dependency interacts with every other one."""
    ds = [x.deps for x in eqn.invals if inexact(x.dtype) and x.has_deps]
    if ds:
        cols = collapse(vstack(ds))
        ctx.interact_block(cols, cols)


def _operands(ctx, eqn):
    shape = eqn.out_shapes[0]
    return [
        bcast_deps(x, shape, ctx.n) if (inexact(x.dtype) and x.has_deps) else None
        for x in eqn.invals
    ]


def _elementwise(ctx, eqn, outs):
    """Nonlinear element-wise: ``S^T S`` with ``S`` the union of the operands at each element."""
    ds = [d for d in _operands(ctx, eqn) if d is not None]
    if ds:
        s = union_or_empty(ds, prod(eqn.out_shapes[0]), ctx.n)
        ctx.interact(s, s)


def _abs_sign(ctx, eqn, outs):
    """Piecewise linear (abs) or constant (sign) on real numbers; the modulus (and phase) of a
    complex number is not."""
    if np.issubdtype(np.dtype(eqn.invals[0].dtype), np.complexfloating):
        _elementwise(ctx, eqn, outs)
    elif eqn.primitive.name == "sign":
        return ()


def _integer_pow(ctx, eqn, outs):
    y = int(eqn.params["y"])
    if y == 0:
        return ()
    if y != 1:
        _elementwise(ctx, eqn, outs)


def _mul(ctx, eqn, outs):
    """``a * b`` is bilinear: only ``a_i x b_i``; a constant zero factor stops the other's."""
    a, b = _operands(ctx, eqn)
    ctx.interact(a, b)
    return [i for i in (0, 1) if not _zero(eqn.invals[1 - i])]


def _div(ctx, eqn, outs):
    """``a / b``: linear in ``a``; couples ``a`` with ``b`` and ``b`` with itself; a constant
    zero numerator stops the denominator's derivative."""
    if _zero(eqn.invals[0]):
        return [0]
    a, b = _operands(ctx, eqn)
    ctx.interact(a, b)
    ctx.interact(b, b)


def _pow(ctx, eqn, outs):
    """``x ** y``: linear only for a constant exponent that is 1 everywhere."""
    x, y = eqn.invals
    if not y.has_deps and y.value is not None and np.all(np.asarray(y.value) == 1):
        return
    _elementwise(ctx, eqn, outs)


def _dot_general(ctx, eqn, outs):
    """Bilinear: for each (batch, contracted) index, the lhs entries it multiplies (union over
    the lhs free indices) times the rhs entries (union over the rhs free indices)."""
    lhs, rhs = eqn.invals[:2]
    if not (inexact(lhs.dtype) and lhs.has_deps and inexact(rhs.dtype) and rhs.has_deps):
        return
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lc, rc, lb, rb = (tuple(int(d) for d in t) for t in (lc, rc, lb, rb))
    lf = tuple(d for d in range(len(lhs.shape)) if d not in lb and d not in lc)
    rf = tuple(d for d in range(len(rhs.shape)) if d not in rb and d not in rc)
    B = prod([lhs.shape[d] for d in lb])
    K = prod([lhs.shape[d] for d in lc])
    lpos = positions(lhs.shape).transpose(lb + lf + lc).reshape(B, -1, K)
    rpos = positions(rhs.shape).transpose(rb + rc + rf).reshape(B, K, -1)
    bk = np.arange(B * K, dtype=np.int64).reshape(B, 1, K)
    lgid = np.broadcast_to(bk, lpos.shape)
    rgid = np.broadcast_to(bk.reshape(B, K, 1), rpos.shape)
    lr = matmul(from_pairs(lgid.ravel(), lpos.ravel(), (B * K, lhs.size)), lhs.deps)
    rr = matmul(from_pairs(rgid.ravel(), rpos.ravel(), (B * K, rhs.size)), rhs.deps)
    ctx.interact(lr, rr)


def _conv(ctx, eqn, outs):
    """Bilinear in (input, kernel): no interaction unless both carry dependencies."""
    lhs, rhs = eqn.invals[:2]
    if lhs.has_deps and rhs.has_deps and inexact(lhs.dtype) and inexact(rhs.dtype):
        ctx.interact_block(collapse(lhs.deps), collapse(rhs.deps))


def _widen(d: Any, width: int, shift: int) -> Any:
    """The same dependency rows over ``width`` columns, column indices shifted by ``shift``."""
    return csr(d.indptr.astype(np.int64), d.indices.astype(np.int64) + shift, (d.shape[0], width))


def _custom_jvp(ctx, eqn, outs):
    """Analyse the JVP rule that JAX differentiates (Hessians differentiate the rule, not the
    primal function). ``jax.jvp`` of the call is traced and interpreted over ``2n`` columns: the
    primal inputs carry their dependencies in columns ``[0, n)``, the tangents the same ones
    shifted to ``[n, 2n)``. The Hessian contribution of the call is the coupling of a
    primal-dependent coefficient with a tangent, i.e. the (primal, tangent) block of the
    recorded interactions (plus any tangent-tangent block, empty for a linear JVP rule); the
    primal-primal block only concerns third derivatives and is dropped. Inside the analysis,
    nested custom_jvp calls use the sound output rule, which also ends the recursion of rules
    that call their own function for the primal output."""
    if ctx.in_jvp_rule:
        return _from_outputs(ctx, eqn, outs)
    ins = eqn.invals
    diff = [i for i, x in enumerate(ins) if inexact(x.dtype) and x.has_deps]
    closed = jvp_jaxpr(eqn, diff)
    n = ctx.n
    sub = HessianContext(
        n=2 * n,
        mode=ctx.mode,
        strict=ctx.strict,
        warned=ctx.warned,
        world=ctx.world,
        envs=ctx.envs,
        in_jvp_rule=True,
    )
    primal = [IndexSets(x.shape, x.dtype, _widen(x.deps, 2 * n, 0), x.value, x.ints) for x in ins]
    tangents = [
        IndexSets(ins[i].shape, ins[i].dtype, _widen(ins[i].deps, 2 * n, n), None) for i in diff
    ]
    inter = sub.interactions(sub.eval_jaxpr(closed, [], primal + tangents))
    ctx._add(sp.csr_array(inter[:n, n:]))
    ctx._add(sp.csr_array(inter[n:, n:]))


def _scan(ctx, eqn, outs):
    """Long scans: one body evaluation on the union (fixed point) of the carries and of the
    scanned slices covers the interactions of every iteration (short scans were unrolled by the
    first-order rule through this context, which recorded them exactly)."""
    p = eqn.params
    if int(p["length"]) <= SCAN_UNROLL:
        return
    nc, nh = P.scan_counts(p, len(eqn.invals))
    consts = list(eqn.invals[:nc])
    carry = _forget_values(eqn.invals[nc : nc + nh])
    xs = eqn.invals[nc + nh :]
    xs_u = []
    for x in xs:
        s = prod(x.shape[1:])
        if x.has_deps:
            gid = np.tile(np.arange(s, dtype=np.int64), x.shape[0])
            d = matmul(from_pairs(gid, np.arange(x.size), (s, x.size)), x.deps)
        else:
            d = empty(s, ctx.n)
        xs_u.append(IndexSets(x.shape[1:], x.dtype, d, None))
    h, _ = _union_fixpoint(ctx, p["jaxpr"], consts, carry, xs_u, n_carry_out=nh)
    fixed = [IndexSets(x.shape, x.dtype, d, None) for x, d in zip(carry, h, strict=True)]
    ctx.eval_jaxpr(p["jaxpr"], [], consts + fixed + xs_u)


def _while2(ctx: HessianContext, params, ins):
    """while_loop: simulate exactly while the predicate is known (recording each iteration),
    then one body evaluation on the union fixed point of the carry (covering every later
    iteration). The predicate is evaluated first-order only: it is never differentiated."""
    cn, bn = int(params["cond_nconsts"]), int(params["body_nconsts"])
    cconsts, bconsts = list(ins[:cn]), list(ins[cn : cn + bn])
    carry = list(ins[cn + bn :])
    fo = ctx.first_order()
    for _ in range(WHILE_SIMULATE):
        pred = fo.eval_jaxpr(params["cond_jaxpr"], [], cconsts + carry)[0]
        if pred.value is None:
            break
        if not bool(np.asarray(pred.value)):
            return carry
        carry = ctx.eval_jaxpr(params["body_jaxpr"], [], bconsts + carry)
    carry = _forget_values(carry)
    h, _ = _union_fixpoint(ctx, params["body_jaxpr"], bconsts, carry)
    fixed = [IndexSets(x.shape, x.dtype, d, None) for x, d in zip(carry, h, strict=True)]
    ctx.eval_jaxpr(params["body_jaxpr"], [], bconsts + fixed)
    return fixed


_LINEAR = (
    # linear
    "neg",
    "add",
    "sub",
    "add_any",
    "convert_element_type",
    "copy",
    "copy_p",
    "reduce_precision",
    "real",
    "imag",
    "complex",
    "conj",
    "pvary",
    "optimization_barrier",
    "reduce_sum",
    "cumsum",
    "reduce_window_sum",
    "select_n",
    "fft",
    *MOVEMENT_PRIMITIVES,
    "scatter",
    "scatter-add",
    "scatter_add",
    "scatter-sub",
    "scatter_sub",
    # piecewise linear: zero Hessian almost everywhere
    "max",
    "min",
    "clamp",
    "rem",
    "reduce_max",
    "reduce_min",
    "cummax",
    "cummin",
    "reduce_window_max",
    "reduce_window_min",
    "sort",
    "top_k",
    "nextafter",
    "scatter-min",
    "scatter_min",
    "scatter-max",
    "scatter_max",
    # higher-order primitives whose bodies are interpreted by this context
    "pjit",
    "jit",
    "closed_call",
    "core_call",
    "call",
    "remat",
    "remat2",
    "checkpoint",
    "cond",
)
_UNARY = (
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
    "square",
    "bessel_i0e",
    "bessel_i1e",
    "atan2",
    "igamma",
    "igammac",
    "igamma_grad_a",
    "random_gamma_grad",
    "polygamma",
    "zeta",
    "regularized_incomplete_beta",
)

_by_name(_LINEAR, _none)
_by_name(("floor", "ceil", "round", "stop_gradient", "is_finite", "argmax", "argmin"), _flat)
_by_name(_UNARY, _elementwise)
_by_name(("abs", "sign"), _abs_sign)
_by_name("integer_pow", _integer_pow)
_by_name("mul", _mul)
_by_name("div", _div)
_by_name("pow", _pow)
_by_name("dot_general", _dot_general)
_by_name("conv_general_dilated", _conv)
_by_name("custom_jvp_call", _custom_jvp)
_by_name("custom_vjp_call", _from_outputs)
_by_name("scan", _scan)


# ---------------------------------------------------------------------------------- entry point
def hessian_sparsity(
    f: Any,
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "global",
    strict: bool = False,
) -> SparsityPattern:
    """Sparsity pattern of the Hessian of the scalar function ``f`` w.r.t. ``args[argnums]``.

    ``f`` is traced once with ``jax.make_jaxpr``; its jaxpr is interpreted with first-order
    index sets while every primitive records which pairs of inputs it couples nonlinearly
    (see the module documentation for the method and the per-primitive classification).

    Args:
        f: a JAX-traceable function of ``*args`` returning a scalar (an array of size 1).
        *args: example arguments (arrays or pytrees of arrays); only their shapes and dtypes
            matter in global mode.
        argnums: which positional argument(s) to differentiate with respect to (their leaves
            are raveled and concatenated, as in `jacobian_sparsity`).
        mode: ``"global"`` (a pattern valid for every input value) or ``"local"`` (the pattern
            at exactly the given ``args``: branches and data-dependent indices resolved).
        strict: raise `UnsupportedPrimitiveError` on a primitive without a rule instead of a
            `ConservativePatternWarning` and a dense block.

    Returns:
        A symmetric `SparsityPattern` of shape ``(n, n)``, ``n`` the total size of the
        differentiated arguments. Linear functions give an empty pattern.

    Raises:
        ValueError: unknown ``mode`` or bad ``argnums``.
        ShapeError: ``f`` does not return a scalar.
        TracingError: ``f`` cannot be traced by JAX.
        UnsupportedPrimitiveError: ``strict=True`` and a primitive has no rule.
    """
    return traced_hessian_sparsity(f, args, argnums, mode, strict)


def traced_hessian_sparsity(
    f: Any, args: tuple, argnums: Any, mode: str, strict: bool, closed: Any = None
) -> SparsityPattern:
    """`hessian_sparsity` with the arguments as a tuple and, optionally, the closed jaxpr of
    ``f(*args)`` already traced by the caller (see `trace_and_seed`)."""
    call = "hessian_sparsity"
    closed, invals, n = trace_and_seed(call, f, args, argnums, mode, closed)
    jaxpr = closed.jaxpr
    outs_info = [aval_info(v.aval) for v in jaxpr.outvars]
    if len(outs_info) != 1 or prod(outs_info[0][0]) != 1:
        got = [s for s, _ in outs_info]
        raise ShapeError(
            f"{call}(f, ...): `f` must return a scalar (one array of size 1), got output "
            f"shape(s) {got}. For a vector function use jacobian_sparsity, or reduce it "
            "(e.g. jnp.sum) to the scalar whose Hessian you need."
        )
    ctx = HessianContext(n=n, mode=mode, strict=strict)
    h = ctx.interactions(ctx.eval_jaxpr(jaxpr, list(closed.consts), invals))
    return SparsityPattern(
        (n, n), h.indptr.astype(np.int64), h.indices.astype(np.int64), check=False
    )
