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

import jax
import numpy as np

from ..errors import ConservativePatternWarning, UnsupportedPrimitiveError
from . import _primitives as P
from ._sets import IndexSets, _canonical, collapse, empty, repeat_row, vstack

__all__ = ["Context", "Equation", "conservative_rule"]

_CPU = None


def _cpu():
    global _CPU
    if _CPU is None:
        # this process's own CPU (under jax.distributed, jax.devices() lists every process's)
        _CPU = jax.local_devices(backend="cpu")[0]
    return _CPU


def aval_info(aval: Any) -> tuple[tuple[int, ...], Any]:
    """(shape, dtype) of an abstract value; non-array values (tokens...) count as bool scalars."""
    shape = getattr(aval, "shape", None)
    dtype = getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return (), np.dtype(bool)
    return tuple(int(s) for s in shape), dtype


def inexact(dtype: Any) -> bool:
    try:
        return bool(jax.dtypes.issubdtype(dtype, np.inexact))
    except Exception:
        return False


def to_numpy(x: Any) -> Any:
    try:
        return np.asarray(x)
    except Exception:  # extended dtypes (PRNG keys) stay JAX arrays
        return x


def concrete_eval(primitive, params, values):
    """Evaluate one equation on concrete values, on the CPU, outside any trace."""
    with jax.ensure_compile_time_eval(), jax.default_device(_cpu()):
        outs = P.bind_eqn(primitive, params, list(values))
    return [to_numpy(o) for o in outs]


@dataclass
class Equation:
    """What a rule receives: one equation with abstract inputs.

    Attributes:
        primitive: the JAX primitive.
        params: its parameters (as in the jaxpr).
        invals: one IndexSets per operand.
        out_shapes / out_dtypes: the outputs' shapes and dtypes.
        out_values: concrete outputs when every operand is known (local mode), else None.
    """

    primitive: Any
    params: dict
    invals: list[IndexSets]
    out_shapes: list[tuple[int, ...]]
    out_dtypes: list[Any]
    out_values: list[Any] | None = None

    @property
    def out_sizes(self) -> list[int]:
        return [int(np.prod(s, dtype=np.int64)) for s in self.out_shapes]


@dataclass
class Context:
    """State of one detection run: number of tracked inputs ``n``, mode, strictness, warnings."""

    n: int
    mode: str = "global"
    strict: bool = False
    warned: set = field(default_factory=set)

    @property
    def local(self) -> bool:
        return self.mode == "local"

    def child(self, n: int) -> Context:
        """A context over another column space (transfer patterns of loop bodies)."""
        return Context(n=n, mode=self.mode, strict=self.strict, warned=self.warned)

    # -- values ---------------------------------------------------------------------------------
    def const(self, value: Any, shape=None, dtype=None) -> IndexSets:
        value = to_numpy(value)
        shape = np.shape(value) if shape is None else shape
        dtype = value.dtype if dtype is None else dtype
        return IndexSets(shape, dtype, empty(int(np.prod(shape, dtype=np.int64)), self.n), value)

    def unknown(self, shape, dtype) -> IndexSets:
        return IndexSets(shape, dtype, empty(int(np.prod(shape, dtype=np.int64)), self.n), None)

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
            env[v] = c if isinstance(c, IndexSets) else self.const(c, *aval_info(v.aval))
        if len(invals) != len(jaxpr.invars):
            raise AssertionError(
                f"internal error: {len(invals)} inputs for {len(jaxpr.invars)} invars"
            )
        for v, x in zip(jaxpr.invars, invals, strict=False):
            env[v] = x
        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            infos = [aval_info(v.aval) for v in eqn.outvars]
            outs = self.apply(eqn.primitive, eqn.params, ins, infos, bool(eqn.effects))
            for v, o in zip(eqn.outvars, outs, strict=False):
                if not P.is_dropvar(v):
                    env[v] = o
        return [read(v) for v in jaxpr.outvars]

    def apply(self, primitive, params, ins, infos, effects=False) -> list[IndexSets]:
        """Abstract evaluation of one equation."""
        shapes = [s for s, _ in infos]
        dtypes = [d for _, d in infos]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        values = None
        if all(x.known for x in ins) and not effects:
            try:
                values = concrete_eval(primitive, params, [x.value for x in ins])
            except Exception:
                values = None
        no_deps = not any(x.has_deps for x in ins)
        if no_deps or not any(inexact(d) for d in dtypes):
            # Constants fold; integer / boolean results carry no derivative.
            vals = values if values is not None else [None] * len(infos)
            if no_deps and values is None and self.mode == "global" and all(x.known for x in ins):
                pass  # evaluation failed: unknown values, still no dependency
            return [
                IndexSets(s, d, empty(k, self.n), v)
                for s, d, k, v in zip(shapes, dtypes, sizes, vals, strict=False)
            ]
        from .rules import get_rule  # late import: rules import this module

        rule = get_rule(primitive)
        eqn = Equation(primitive, params, ins, shapes, dtypes, values)
        if rule is None:
            self._unsupported(primitive)
            res = conservative_rule(self, eqn)
        else:
            res = rule(self, eqn)
        if len(res) != len(infos):
            raise AssertionError(
                f"rule for {primitive} returned {len(res)} outputs, the equation has {len(infos)}"
            )
        outs = []
        for i, (r, s, d, k) in enumerate(zip(res, shapes, dtypes, sizes, strict=False)):
            v = values[i] if values is not None else None
            if isinstance(r, IndexSets):
                v = r.value if r.value is not None else v
                r = r.deps
            if r is None or not inexact(d):
                r = empty(k, self.n)
            elif not getattr(rule, "__module__", "").startswith("stiffasd.detect"):
                r = _canonical(r)  # a user rule may return any sparse matrix
            if r.shape != (k, self.n):
                raise AssertionError(
                    f"rule for primitive '{primitive}' returned a dependency matrix of shape "
                    f"{r.shape} for output {i} of shape {s} (expected {(k, self.n)})"
                )
            outs.append(IndexSets(s, d, r, v))
        return outs

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
        from ._sets import eye_block

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


def conservative_rule(ctx: Context, eqn: Equation) -> list[Any]:
    """Sound fallback: every inexact output element depends on all of the operands' dependencies."""
    ds = [x.deps for x in eqn.invals if x.has_deps]
    cols = collapse(vstack(ds)) if ds else np.zeros(0, np.int64)
    return [
        repeat_row(cols, k, ctx.n) if inexact(d) else None
        for k, d in zip(eqn.out_sizes, eqn.out_dtypes, strict=False)
    ]
