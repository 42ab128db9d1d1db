"""What a rule receives (`Equation`) and the helpers every rule may use.

This module sits below both the interpreter and the rule families: rules import it, the
interpreter imports it and the registry, and nothing here imports either of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from . import _primitives as P
from ._sets import IndexSets, collapse, repeat_row, vstack

__all__ = ["Equation", "conservative_rule", "concrete_eval", "inexact", "aval_info", "to_numpy"]

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
    """Whether values of this dtype carry a derivative (floating or complex; not PRNG keys)."""
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


def conservative_rule(ctx: Any, eqn: Equation) -> list[Any]:
    """Sound fallback: every inexact output element depends on all of the operands' dependencies."""
    ds = [x.deps for x in eqn.invals if x.has_deps]
    cols = collapse(vstack(ds)) if ds else np.zeros(0, np.int64)
    return [
        repeat_row(cols, k, ctx.n) if inexact(d) else None
        for k, d in zip(eqn.out_sizes, eqn.out_dtypes, strict=False)
    ]
