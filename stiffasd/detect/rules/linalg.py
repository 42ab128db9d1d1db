"""Linear-algebra primitives: documented conservative dense blocks.

Factorizations and solves (lu, cholesky, qr, eigh, svd, triangular_solve, custom_linear_solve
from ``jnp.linalg.solve`` / lineax-style solves, fft...) couple their operands densely: every
output element depends on every input element of the same batch. These rules give exactly that
(batched: leading batch dimensions shared by all operands and outputs are kept separate), without
a warning, because it is the generic pattern of these operations.
"""

from __future__ import annotations

import numpy as np

from .._equation import conservative_rule, inexact
from .._sets import from_pairs, matmul, take_rows, union_or_empty
from ._registry import register_by_name
from ._util import prod

__all__ = ["dense_block_rule"]

#: Number of trailing (matrix) dimensions per primitive; everything before is a batch dimension.
_CORE_DIMS = {
    "lu": 2,
    "cholesky": 2,
    "qr": 2,
    "eigh": 2,
    "svd": 2,
    "triangular_solve": 2,
    "tridiagonal_solve": 2,
}


def _batch_dims(eqn, core):
    """Number of leading batch dims shared by all inexact operands and outputs (0 if unsure)."""
    shapes = [x.shape for x in eqn.invals if inexact(x.dtype)] + list(eqn.out_shapes)
    nb = min(len(s) for s in shapes) - core if shapes else 0
    while nb > 0:
        lead = {tuple(s[:nb]) for s in shapes}
        if len(lead) == 1:
            return nb, prod(next(iter(lead)))
        nb -= 1
    return 0, 1


def dense_block_rule(ctx, eqn):
    """Every output element depends on every input element of the same batch."""
    core = _CORE_DIMS.get(eqn.primitive.name)
    if core is None:
        return conservative_rule(ctx, eqn)
    nb, B = _batch_dims(eqn, core)
    if B == 1:
        return conservative_rule(ctx, eqn)
    red = []
    for x in eqn.invals:
        if inexact(x.dtype) and x.has_deps:
            per = x.size // B
            red.append(
                matmul(
                    from_pairs(np.repeat(np.arange(B), per), np.arange(x.size), (B, x.size)), x.deps
                )
            )
    per_batch = union_or_empty(red, B, ctx.n)
    res = []
    for k, dt in zip(eqn.out_sizes, eqn.out_dtypes, strict=False):
        res.append(take_rows(per_batch, np.repeat(np.arange(B), k // B)) if inexact(dt) else None)
    return res


def linear_solve_rule(ctx, eqn):
    """custom_linear_solve: each solution element depends on every right-hand side element and
    every operand of the matrix (dense coupling: the inverse of a sparse matrix is dense)."""
    return conservative_rule(ctx, eqn)


def fft_rule(ctx, eqn):
    """fft: dense coupling along the transformed axes (conservatively: the whole operand)."""
    return conservative_rule(ctx, eqn)


register_by_name(tuple(_CORE_DIMS), dense_block_rule)
register_by_name(("custom_linear_solve", "linear_solve"), linear_solve_rule)
register_by_name("fft", fft_rule)
