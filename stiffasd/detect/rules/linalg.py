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
from .._sets import from_pairs, mask_rows, matmul, take_rows, union_or_empty
from ._registry import register_by_name
from ._util import no_interaction, positions, prod

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


def qr_rule(ctx, eqn):
    """qr without pivoting, following the columns as JAX's derivative of ``a = q r`` does
    (``dr = q^H da - omega r``, with triangular solves against ``r``): column ``k`` of ``q``
    depends on the input's columns ``0..k`` (all of them for the columns past ``n`` of a
    ``full_matrices`` ``q``), ``r[i, j]`` for ``i <= j`` on the columns ``0..j`` (``0..i`` and
    ``j`` past the ``m`` leading columns of a wide input, ``dr_2 = dq^H a_2 + q^H da_2``), and
    the strict lower triangle of ``r`` is zero. (Mathematically ``r[i, j]`` needs only the
    columns ``0..i`` and ``j``; JAX's formula leaves rounding residue in the others, which a
    pattern must cover.) With pivoting: dense blocks, ``r`` upper triangular."""
    a = eqn.invals[0]
    r_shape = eqn.out_shapes[1]
    if eqn.params.get("pivoting", False) or not a.has_deps:
        res = dense_block_rule(ctx, eqn)
        if res[1] is not None:
            rows, cols = np.indices(r_shape[-2:])
            res[1] = mask_rows(res[1], np.broadcast_to(rows <= cols, r_shape).ravel())
        return res
    *batch, m, n = a.shape
    B = prod(batch)
    q_shape = eqn.out_shapes[0]
    pos = positions(a.shape).reshape(B, m, n)
    # column unions: row (b, c) is the union of the input's column c in batch b
    col_id = np.broadcast_to(np.arange(B * n).reshape(B, 1, n), pos.shape)
    cols = matmul(from_pairs(col_id.ravel(), pos.ravel(), (B * n, a.size)), a.deps)
    # prefix unions: row (b, c) is the union of the columns 0..c
    b, c, c2 = np.nonzero(np.broadcast_to(np.tril(np.ones((n, n), bool)), (B, n, n)))
    prefix = matmul(from_pairs(b * n + c, b * n + c2, (B * n, B * n)), cols)
    kq = q_shape[-1]
    qb, _, qk = (g.ravel() for g in np.indices((B, m, kq)))
    q = take_rows(prefix, qb * n + np.minimum(qk, n - 1))
    kr = r_shape[-2]
    rb, ri, rj = (g.ravel() for g in np.indices((B, kr, n)))
    upper = ri <= rj
    r = union_or_empty(
        [
            take_rows(prefix, np.where(upper, rb * n + np.where(rj < m, rj, ri), -1)),
            take_rows(cols, np.where(upper, rb * n + rj, -1)),
        ],
        B * kr * n,
        ctx.n,
    )
    return [q, r] + [None] * (len(eqn.out_shapes) - 2)


def linear_solve_rule(ctx, eqn):
    """custom_linear_solve: each solution element depends on every right-hand side element and
    every operand of the matrix (dense coupling: the inverse of a sparse matrix is dense)."""
    return conservative_rule(ctx, eqn)


def fft_rule(ctx, eqn):
    """fft: dense coupling along the transformed axes (conservatively: the whole operand)."""
    return conservative_rule(ctx, eqn)


register_by_name(tuple(_CORE_DIMS), dense_block_rule)
register_by_name("qr", qr_rule)
register_by_name(("custom_linear_solve", "linear_solve"), linear_solve_rule)
register_by_name("fft", fft_rule, second=no_interaction)
