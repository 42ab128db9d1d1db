"""Second-order sparsity detection: the sparsity pattern of the Hessian of a scalar function.

Method (Walther 2008; Gower & Mello 2012; Hill & Dalle 2025): the jaxpr is interpreted with the
first-order index sets of :mod:`stiffasd.detect` (every value carries the pattern of its gradient,
one boolean CSR matrix per array), and every equation additionally records its *second-order
interactions* in one global symmetric boolean matrix ``I`` (``n``-by-``n``). By the chain rule,

    H(f o g) = J_g^T H_f J_g + sum_k (df/dg_k) H(g_k),

so the Hessian of the output is covered by the union over equations of the pairs of inputs that
each primitive couples *nonlinearly* and that reach the output through nonzero derivatives (the
sum term: every intermediate's own interactions, weighted by ``df/dg_k``). The second-order
rules are registered with the first-order rules, family by family, in
:mod:`stiffasd.detect.rules` (one table), and classify primitives:

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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ShapeError
from ..pattern import SparsityPattern
from ._api import trace_and_seed
from ._equation import Equation, aval_info, inexact
from ._sets import IndexSets, empty, from_pairs, widen
from .interpreter import Context
from .rules import get_rule, get_second_order_rule
from .rules._registry import register_second_order_rule
from .rules._util import all_inputs, from_outputs, prod

__all__ = ["hessian_sparsity", "HessianContext", "register_second_order_rule"]


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
        # the Hessian's; the loop rules call `cover`, which records on the global columns.
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

    def cover(self, jaxpr: Any, make_inputs: Any) -> None:
        """Record the interactions of one body evaluation on the loop's union of values (it
        covers those of every iteration)."""
        self.eval_jaxpr(jaxpr, [], make_inputs())

    def tangent_context(self) -> HessianContext:
        """The context of a JVP rule's analysis: ``2n`` columns (primal, tangent)."""
        return HessianContext(
            n=2 * self.n,
            mode=self.mode,
            strict=self.strict,
            warned=self.warned,
            world=self.world,
            envs=self.envs,
            in_jvp_rule=True,
        )

    def captured(self, x: IndexSets) -> IndexSets:
        # Inside a JVP rule's analysis the primal values keep their dependencies (columns
        # [0, n)): a value the rule captured by closure is one of them.
        if self.in_jvp_rule and 2 * x.n == self.n:
            return IndexSets(x.shape, x.dtype, widen(x.deps, self.n, 0), x.value, x.ints)
        return super().captured(x)

    # -- recording --------------------------------------------------------------------------
    def interact(self, a: Any, b: Any) -> None:
        """Record the pairs ``a_i x b_i`` for every row ``i`` (the boolean product ``a^T b``)."""
        if a is None or b is None or a.nnz == 0 or b.nnz == 0:
            return
        self.record(sp.csr_array(a.T @ b))

    def interact_block(self, cols_a: np.ndarray, cols_b: np.ndarray) -> None:
        """Record the dense block ``cols_a x cols_b``."""
        if len(cols_a) == 0 or len(cols_b) == 0:
            return
        r = np.repeat(np.asarray(cols_a, np.int64), len(cols_b))
        c = np.tile(np.asarray(cols_b, np.int64), len(cols_a))
        self.record(from_pairs(r, c, (self.n, self.n)))

    def record(self, m: Any) -> None:
        """Record the pairs of the ``n``-by-``n`` boolean matrix ``m``."""
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
        outs = super().apply(primitive, params, ins, infos, effects)
        if hot:
            rule2 = get_second_order_rule(primitive)
            if rule2 is None:
                rule2 = from_outputs if get_rule(primitive) is not None else all_inputs
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
