"""The detection interpreter: walks a ClosedJaxpr with IndexSets instead of arrays.

The loop is as small as ``jax.core.eval_jaxpr``: an environment from variables to
:class:`~stiffasd.detect._sets.IndexSets`, one rule call per equation. Higher-order primitives
(jit, cond, scan, custom_jvp...) are ordinary rules that call back into :meth:`Context.eval_jaxpr`.

Method: sparsity detection by abstract interpretation of the traced program with index sets, as in
Hill & Dalle (2025), "Sparser, better, faster, stronger: sparsity detection for efficient automatic
differentiation", here with one CSR matrix per array value instead of one set per element.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConservativePatternWarning, UnsupportedPrimitiveError
from . import _primitives as P
from ._equation import Equation, aval_info, concrete_eval, conservative_rule, inexact, to_numpy
from ._ints import Scenarios, bounds, dtype_range, eval_cases, from_bounds, from_cases
from ._sets import IndexSets, _canonical, empty, eye_block
from .rules import get_range_rule, get_rule, get_value_rule

__all__ = ["Context"]


@dataclass
class Context:
    """State of one detection run: number of tracked inputs ``n``, mode, strictness, warnings,
    the scenario space of integer cases (`stiffasd.detect._ints`) and the environments being
    interpreted (to resolve values that custom derivative rules capture by closure)."""

    n: int
    mode: str = "global"
    strict: bool = False
    warned: set = field(default_factory=set)
    world: Scenarios = field(default_factory=Scenarios)
    envs: list = field(default_factory=list)

    @property
    def local(self) -> bool:
        return self.mode == "local"

    def child(self, n: int) -> Context:
        """A context over another column space (transfer patterns of loop bodies): a fresh
        scenario space, since its values stand for every iteration at once."""
        return Context(n=n, mode=self.mode, strict=self.strict, warned=self.warned, envs=self.envs)

    def first_order(self) -> Context:
        """The context for values that are never differentiated (loop predicates): this one."""
        return self

    def cover(self, jaxpr: Any, make_inputs: Any) -> None:
        """A loop rule's hook: one evaluation of ``jaxpr`` on ``make_inputs()`` (unions of the
        loop's values) would cover every iteration. First-order detection needs none; the
        Hessian's context records the body's interactions there."""

    # -- values ---------------------------------------------------------------------------------
    def const(self, value: Any, shape=None, dtype=None) -> IndexSets:
        value = to_numpy(value)
        shape = np.shape(value) if shape is None else shape
        dtype = value.dtype if dtype is None else dtype
        return IndexSets(shape, dtype, empty(int(np.prod(shape, dtype=np.int64)), self.n), value)

    def unknown(self, shape, dtype) -> IndexSets:
        return IndexSets(shape, dtype, empty(int(np.prod(shape, dtype=np.int64)), self.n), None)

    def _constant(self, c: Any, var: Any) -> IndexSets:
        """The abstract value of a constant of a jaxpr. A custom derivative rule that captured a
        traced value by closure, retraced here, holds that value as a constant of the new jaxpr:
        it is looked up in the environments being interpreted (JAX passes no tangent for it)."""
        if isinstance(c, IndexSets):
            return c
        shape, dtype = aval_info(var.aval)
        outer = P.traced_var(c)
        if outer is None:
            return self.const(c, shape, dtype)
        for env in reversed(self.envs):
            x = env.get(outer)
            if x is not None:
                return self.captured(x)
        return self.unknown(shape, dtype)

    def captured(self, x: IndexSets) -> IndexSets:
        """A value captured by a custom rule's closure: its value, no derivative."""
        return IndexSets(x.shape, x.dtype, empty(x.size, self.n), x.value, x.ints)

    # -- the interpreter loop -------------------------------------------------------------------
    def eval_jaxpr(self, jaxpr: Any, consts: list[Any], invals: list[IndexSets]) -> list[IndexSets]:
        """Interpret ``jaxpr`` (Jaxpr or ClosedJaxpr) on abstract inputs; returns its outputs."""
        if isinstance(jaxpr, P.ClosedJaxpr):
            jaxpr, consts = jaxpr.jaxpr, list(jaxpr.consts) + list(consts)
        env: dict[Any, IndexSets] = {}

        def read(v):
            if P.is_literal(v):
                shape, dtype = aval_info(v.aval)
                return self.const(
                    np.asarray(v.val, dtype=dtype) if dtype is not object else v.val, shape, dtype
                )
            return env[v]

        for v, c in zip(jaxpr.constvars, consts, strict=False):
            env[v] = self._constant(c, v)
        if len(invals) != len(jaxpr.invars):
            raise AssertionError(
                f"internal error: {len(invals)} inputs for {len(jaxpr.invars)} invars"
            )
        for v, x in zip(jaxpr.invars, invals, strict=False):
            env[v] = x
        self.envs.append(env)
        try:
            for eqn in jaxpr.eqns:
                ins = [read(v) for v in eqn.invars]
                infos = [aval_info(v.aval) for v in eqn.outvars]
                outs = self.apply(eqn.primitive, eqn.params, ins, infos, bool(eqn.effects))
                for v, o in zip(eqn.outvars, outs, strict=False):
                    if not P.is_dropvar(v):
                        env[v] = o
            return [read(v) for v in jaxpr.outvars]
        finally:
            self.envs.pop()

    def apply(self, primitive, params, ins, infos, effects=False) -> list[IndexSets]:
        """Abstract evaluation of one equation."""
        shapes = [s for s, _ in infos]
        dtypes = [d for _, d in infos]
        values = None
        if all(x.known for x in ins) and not effects and not P.runs_python(primitive):
            try:
                values = concrete_eval(primitive, params, [x.value for x in ins])
            except Exception:
                values = None
        eqn = Equation(primitive, params, ins, shapes, dtypes, values)
        if not any(x.has_deps for x in ins) or not any(inexact(d) for d in dtypes):
            # No derivative to follow: constants fold; higher-order primitives are interpreted
            # for the values of their results; integer results get what is known of them.
            if values is not None:
                return [self.const(v, s, d) for v, s, d in zip(values, shapes, dtypes, strict=True)]
            vrule = get_value_rule(primitive)
            if vrule is not None:
                return self._outputs(eqn, vrule(self, eqn), vrule)
            return self._integer_outputs(eqn)
        rule = get_rule(primitive)
        if rule is None:
            self._unsupported(primitive)
            res = conservative_rule(self, eqn)
        else:
            res = rule(self, eqn)
        return self._outputs(eqn, res, rule)

    def _outputs(self, eqn: Equation, res: list, rule: Any) -> list[IndexSets]:
        """IndexSets of the outputs from a rule's results (matrices, IndexSets or None)."""
        if len(res) != len(eqn.out_shapes):
            raise AssertionError(
                f"rule for {eqn.primitive} returned {len(res)} outputs, the equation has "
                f"{len(eqn.out_shapes)}"
            )
        user = not getattr(rule, "__module__", "").startswith("stiffasd.detect")
        outs = []
        for i, (r, s, d) in enumerate(zip(res, eqn.out_shapes, eqn.out_dtypes, strict=True)):
            v = eqn.out_values[i] if eqn.out_values is not None else None
            k = int(np.prod(s, dtype=np.int64))
            ints = second = None
            if isinstance(r, IndexSets):
                v = r.value if r.value is not None else v
                ints, second = r.ints, r.second
                r = r.deps
            if r is None or not inexact(d):
                r = empty(k, self.n)
            elif user:
                r = _canonical(r)  # a user rule may return any sparse matrix
            if r.shape != (k, self.n):
                raise AssertionError(
                    f"rule for primitive '{eqn.primitive}' returned a dependency matrix of shape "
                    f"{r.shape} for output {i} of shape {s} (expected {(k, self.n)})"
                )
            outs.append(IndexSets(s, d, r, v, ints, second))
        return outs

    def _integer_outputs(self, eqn: Equation) -> list[IndexSets]:
        """Outputs without derivatives, with what is known of their integer values: evaluated
        in every scenario when the operands allow it, else bounds from the range rules."""
        if not any(dtype_range(d) is not None for d in eqn.out_dtypes):
            return [self.unknown(s, d) for s, d in zip(eqn.out_shapes, eqn.out_dtypes, strict=True)]
        known = [(None, None)] * len(eqn.out_shapes)
        per_case = eval_cases(self.world, eqn.primitive, eqn.params, eqn.invals)
        if per_case is not None:
            known = [
                from_cases(self.world, c, d) if dtype_range(d) is not None else (None, None)
                for c, d in zip(per_case, eqn.out_dtypes, strict=True)
            ]
        else:
            rrule = get_range_rule(eqn.primitive)
            if rrule is not None:
                found = rrule(eqn, [bounds(x) for x in eqn.invals])
                known = [
                    (None, None) if b is None else from_bounds(self.world, b[0], b[1], d)
                    for b, d in zip(found, eqn.out_dtypes, strict=True)
                ]
        return [
            IndexSets(s, d, empty(int(np.prod(s, dtype=np.int64)), self.n), v, ints)
            for s, d, (v, ints) in zip(eqn.out_shapes, eqn.out_dtypes, known, strict=True)
        ]

    def _unsupported(self, primitive) -> None:
        msg = (
            f"stiffasd sparsity detection has no rule for the JAX primitive '{primitive}'. "
            "Every output of this primitive is assumed to depend on every input element it "
            "receives (a sound but possibly dense pattern). To get a precise pattern, register a "
            "rule: `stiffasd.register_rule(prim, rule)` where `prim` is the Primitive object "
            "(e.g. taken from `jax.make_jaxpr(f)(x).eqns[i].primitive`) and "
            "`rule(ctx, eqn) -> list` returns one dependency matrix per output "
            "(see docs/detection.md)."
        )
        if self.strict:
            raise UnsupportedPrimitiveError(msg + " (raised because strict=True)")
        if primitive not in self.warned:
            self.warned.add(primitive)
            warnings.warn(msg, ConservativePatternWarning, stacklevel=4)

    # -- composition helpers used by higher-order rules -----------------------------------------
    def transfer(self, jaxpr, consts, specs):
        """Transfer pattern of ``jaxpr``, evaluated once over a local column space.

        Args:
            jaxpr: a Jaxpr or ClosedJaxpr.
            consts: its constants (for an open Jaxpr).
            specs: one ``(shape, dtype, value, seed)`` per input: ``seed`` gives the input fresh
                columns (one per element), ``value`` is its concrete value or None.

        Returns:
            (outputs as IndexSets over the local columns, input column offsets, local width).
            Output ``j``'s dependency matrix restricted to input ``i``'s columns is the block of
            the jaxpr's own input->output pattern.
        """
        sizes = [int(np.prod(s, dtype=np.int64)) for s, _, _, _ in specs]
        offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        m = int(offs[-1])
        sub = self.child(m)
        local_in = []
        for i, (shape, dtype, value, seed) in enumerate(specs):
            d = (
                eye_block(sizes[i], m, int(offs[i]))
                if (seed and inexact(dtype))
                else empty(sizes[i], m)
            )
            local_in.append(IndexSets(shape, dtype, d, value))
        outs = sub.eval_jaxpr(jaxpr, consts, local_in)
        return outs, offs, m
