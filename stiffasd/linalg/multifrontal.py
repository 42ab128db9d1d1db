"""Numeric multifrontal LU in JAX for the plan of `stiffasd.linalg.analysis`.

The factorization walks the plan's levels bottom-up. For each bucket (fronts of one level and one
padded shape ``P + U``) it

1. assembles the fronts: the matrix entries they own (one scatter-add), unit diagonals on padding
   pivots, and the children's contribution blocks (extend-add, one scatter-add per child bucket);
2. factors the fully summed block ``F11`` with partial pivoting inside it (batched dense LU),
   perturbs pivots smaller than ``sqrt(eps) * max|a_ij|`` to that size (static pivoting in the
   spirit of SuperLU_DIST's GESP: Li & Demmel, "SuperLU_DIST", ACM TOMS 29 (2003) 110-140),
3. computes ``U12 = L11^-1 P F12``, ``L21 = F21 U11^-1`` (batched triangular solves) and the
   contribution block ``F22 - L21 U12`` (batched matrix product) for the parent.

Everything is batched dense linear algebra and gathers/scatters with the plan's constant index
arrays: it jits, vmaps over matrices sharing the pattern, differentiates, and runs on CPU and
GPU. The triangular solves walk the levels up (L) and down (U). A solve is followed by a residual
check against the original sparse matrix and, where the backward error is not small (perturbed
pivots, growth inside a front), by iterative refinement; its outcome is reported, never hidden.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import dense
from .analysis import MultifrontalPlan

_HI = jax.lax.Precision.HIGHEST

__all__ = ["Factors", "factor", "identity_factors", "lu_solve", "refined_solve", "matvec"]


class Factors(NamedTuple):
    """A numeric factorization (a pytree of arrays; tuples hold one array per bucket).

    Attributes:
        lu: ``(B, P, P)``: ``L11`` (unit lower, diagonal implicit) and ``U11`` packed, with
            ``L11 U11`` the pivot block with its rows in pivot order.
        linv, uinv: ``(B, P / nb, nb, nb)``: inverses of the diagonal blocks of ``L11`` and
            ``U11`` (for the blocked triangular solves).
        u12: ``(B, P, U)``: ``L11^-1`` times the pivot rows' update columns.
        l21: ``(B, U, P)``: the update rows' pivot columns times ``U11^-1``.
        rows: ``(B, P)``: the unknown of each pivot row, in pivot order (``n`` for padding).
        fwd_dst: ``(B, M)``: where the forward solve writes: the pivot rows' unknowns (padding
            ``n + 1``), then the update rows'.
        bwd_src: ``(B, 2 P + U)``: what the backward solve reads: the pivot rows' unknowns, the
            update rows', then the pivot columns' (padding ``n``).
        data: the matrix values (pattern CSC order), for residuals.
        perturbed: number of pivots replaced by static pivoting.
    """

    lu: tuple
    linv: tuple
    uinv: tuple
    u12: tuple
    l21: tuple
    rows: tuple
    fwd_dst: tuple
    bwd_src: tuple
    data: jax.Array
    perturbed: jax.Array


_PARTS = ("lu", "linv", "uinv", "u12", "l21", "rows", "fwd_dst", "bwd_src")


def _index(a: np.ndarray) -> np.ndarray:
    """Index arrays go into the program as int32."""
    return np.asarray(a, dtype=np.int32)


def _get(x: jax.Array, idx: Any) -> jax.Array:
    """``x[idx]`` for plan indices (always in bounds: no clamping code)."""
    if isinstance(idx, np.ndarray):
        idx = _index(idx)
    return x.at[idx].get(mode="promise_in_bounds")


def pivot_threshold(data: jax.Array) -> jax.Array:
    """Static-pivoting threshold ``sqrt(eps) * max|a_ij|`` (``sqrt(eps)`` for a zero matrix)."""
    real = jnp.finfo(data.dtype).dtype
    eps = jnp.finfo(real).eps
    amax = jnp.max(jnp.abs(data), initial=0.0).astype(real)
    return jnp.sqrt(eps) * jnp.where(amax > 0, amax, 1.0)


def factor(plan: MultifrontalPlan, data: jax.Array, kernels: str = "lapack") -> Factors:
    """Numeric factorization of the matrix with values ``data`` (the plan pattern's CSC order),
    with the dense kernels ``kernels`` (``"lapack"`` or ``"xla"``, see `stiffasd.linalg.dense`)."""
    data = jnp.asarray(data)
    if data.shape != (plan.nnz,):
        raise ValueError(
            f"factor(data=...): expected the {plan.nnz} values of the pattern (CSC order), got "
            f"shape {data.shape}."
        )
    dtype = data.dtype
    tau = pivot_threshold(data)
    cbs: list[Any] = []
    out: dict[str, list] = {k: [] for k in _PARTS}
    perturbed = jnp.zeros((), jnp.int32)
    for b in plan.buckets:
        P, U, B = b.P, b.U, b.size
        M = P + U
        # assembly: entries of A, unit diagonals on padding pivots, children's blocks
        dst = [_index(b.entry_dst), _index(b.pad_dst)]
        vals = [_get(data, b.entry_src), jnp.ones((b.pad_dst.size,), dtype)]
        for cm in b.children:
            cb = cbs[cm.src]
            if cm.sel.size != cb.shape[0] or np.any(cm.sel != np.arange(cm.sel.size)):
                cb = _get(cb, cm.sel)
            dst.append((_index(cm.row_base)[:, :, None] + _index(cm.col)[:, None, :]).reshape(-1))
            vals.append(cb.reshape(-1))
        F = jnp.zeros((B * M * M,), dtype)
        F = F.at[jnp.concatenate(dst)].add(jnp.concatenate(vals), mode="promise_in_bounds")
        # partial LU: pivoting inside the fully summed block, static pivoting below tau
        real = np.arange(P)[None, :] < np.asarray(b.npiv)[:, None]
        F = F.reshape(B, M, M)
        if kernels == "xla":
            F, local, count = dense.partial_lu(F, P, b.nb, tau, real)
            lu, u12, l21, schur = F[:, :P, :P], F[:, :P, P:], F[:, P:, :P], F[:, P:, P:]
            linv, uinv = dense.diagonal_block_inverses(lu, b.nb)
        else:
            lu, u12, l21, schur, local, count = dense.partial_lu_lapack(F, P, tau, real)
            linv = uinv = jnp.zeros((0,), dtype)
        perturbed = perturbed + count
        for k, v in zip(_PARTS[:5], (lu, linv, uinv, u12, l21), strict=True):
            out[k].append(v)
        _append_indices(out, plan.n, b, jnp.take_along_axis(jnp.asarray(_index(b.piv)), local, 1))
        cbs.append(schur)
    return Factors(**{k: tuple(v) for k, v in out.items()}, data=data, perturbed=perturbed)


def _append_indices(out: dict, n: int, b: Any, rows: jax.Array) -> None:
    """The solve's index arrays of one bucket, given the unknowns of its pivot rows."""
    out["rows"].append(rows)
    upd_w = np.where(b.upd == n, n + 1, b.upd)
    out["fwd_dst"].append(jnp.concatenate([jnp.where(rows == n, n + 1, rows), _index(upd_w)], 1))
    out["bwd_src"].append(jnp.concatenate([rows, _index(b.upd), _index(b.piv)], 1))


def identity_factors(plan: MultifrontalPlan, dtype: Any, kernels: str = "lapack") -> Factors:
    """The factorization of the identity, with the shapes `factor` gives (no arithmetic)."""
    out: dict[str, list] = {k: [] for k in _PARTS}
    for b in plan.buckets:
        B, P, U, nb = b.size, b.P, b.U, b.nb
        out["lu"].append(jnp.broadcast_to(jnp.eye(P, dtype=dtype), (B, P, P)))
        blocks = jnp.broadcast_to(jnp.eye(nb, dtype=dtype), (B, P // nb, nb, nb))
        if kernels != "xla":
            blocks = jnp.zeros((0,), dtype)
        out["linv"].append(blocks)
        out["uinv"].append(blocks)
        out["u12"].append(jnp.zeros((B, P, U), dtype))
        out["l21"].append(jnp.zeros((B, U, P), dtype))
        _append_indices(out, plan.n, b, jnp.asarray(_index(b.piv)))
    return Factors(
        **{k: tuple(v) for k, v in out.items()},
        data=jnp.zeros((plan.nnz,), dtype),
        perturbed=jnp.zeros((), jnp.int32),
    )


def lu_solve(
    plan: MultifrontalPlan, fac: Factors, b: jax.Array, kernels: str = "lapack"
) -> jax.Array:
    """``x = A^-1 b`` with the factors (no refinement). Linear in ``b``: its transpose (the solve
    with ``A^T``) is `jax.linear_transpose` of this function."""
    n = plan.n
    # slot n reads as zero (padding rows gather it), slot n + 1 takes padding writes
    # Slot n reads as zero (padding rows gather it), slot n + 1 takes padding writes. Writes are
    # scatter-adds (an overwrite is added as new - old), so the whole solve is linear and
    # transposes without uniqueness promises.
    x = jnp.concatenate([b, jnp.zeros((2,), b.dtype)])
    for k, bk in enumerate(plan.buckets):
        # y_i is kept in the slot of the unknown of pivot row i until the backward pass
        g = _get(x, fac.rows[k])
        if kernels == "xla":
            y = dense.forward(fac.lu[k], fac.linv[k], g, bk.nb)
        else:
            y = dense.forward_lapack(fac.lu[k], g)
        vals = jnp.concatenate([y - g, -jnp.einsum("bup,bp->bu", fac.l21[k], y, precision=_HI)], 1)
        x = x.at[fac.fwd_dst[k]].add(vals, mode="promise_in_bounds")
    for k in range(len(plan.buckets) - 1, -1, -1):
        bk = plan.buckets[k]
        P, U = bk.P, bk.U
        t = _get(x, fac.bwd_src[k])
        y = t[:, :P] - jnp.einsum("bpu,bu->bp", fac.u12[k], t[:, P : P + U], precision=_HI)
        if kernels == "xla":
            z = dense.backward(fac.lu[k], fac.uinv[k], y, bk.nb)
        else:
            z = dense.backward_lapack(fac.lu[k], y)
        pw = _index(np.where(bk.piv == n, n + 1, bk.piv))
        x = x.at[pw].add(z - t[:, P + U :], mode="promise_in_bounds")
    return x[:n]


def matvec(plan: MultifrontalPlan, data: jax.Array, x: jax.Array) -> jax.Array:
    """``A x`` for the pattern's CSC values ``data``."""
    rows, cols = plan.rows, plan.cols
    return jax.ops.segment_sum(data * x[cols], rows, num_segments=plan.n)


def refined_solve(
    plan: MultifrontalPlan,
    fac: Factors,
    b: jax.Array,
    *,
    transpose: bool = False,
    kernels: str = "lapack",
    max_refine: int = 3,
    refine_tol: float | None = None,
    fail_tol: float | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Solve with the factors, check the normwise backward error
    ``|b - A x|_inf / (|A|_inf |x|_inf + |b|_inf)`` (Rigal & Gaches 1967) against the original
    matrix, and refine iteratively while it is above ``refine_tol`` (default ``64 eps``) and
    still decreasing, at most ``max_refine`` times.

    Returns:
        ``(x, ok)``: ``ok`` is False when the backward error stays above ``fail_tol`` (default
        ``sqrt(eps)``) or ``x`` is not finite.
    """
    real = jnp.finfo(b.dtype).dtype
    eps = float(jnp.finfo(real).eps)
    refine_tol = 64 * eps if refine_tol is None else refine_tol
    fail_tol = float(np.sqrt(eps)) if fail_tol is None else fail_tol
    data = fac.data
    if transpose:

        def base(r):
            return jax.linear_transpose(lambda v: lu_solve(plan, fac, v, kernels), r)(r)[0]

        def mv(v):
            return matvec_transpose(plan, data, v)

    else:

        def base(r):
            return lu_solve(plan, fac, r, kernels)

        def mv(v):
            return matvec(plan, data, v)

    anorm = jnp.max(
        jax.ops.segment_sum(
            jnp.abs(data), plan.cols if transpose else plan.rows, num_segments=plan.n
        ),
        initial=0.0,
    )
    bnorm = jnp.max(jnp.abs(b), initial=0.0)

    def backward_error(x):
        r = b - mv(x)
        den = anorm * jnp.max(jnp.abs(x), initial=0.0) + bnorm
        om = jnp.max(jnp.abs(r), initial=0.0) / jnp.where(den > 0, den, 1.0)
        return r, jnp.where(jnp.isfinite(om), om, jnp.inf)

    # One copy of the solve in the program: the first pass of the loop is the plain solve
    # (x = 0, r = b), later passes refine.
    def cond(state):
        _, _, om, om_prev, k = state
        again = (k < max_refine + 1) & (om > refine_tol) & (om < 0.5 * om_prev)
        return (k == 0) | again

    def body(state):
        x, r, om, _, k = state
        x1 = x + base(r)
        r1, om1 = backward_error(x1)
        better = (om1 < om) | (k == 0)
        return (
            jnp.where(better, x1, x),
            jnp.where(better, r1, r),
            jnp.where(better, om1, om),
            om,
            k + 1,
        )

    inf = jnp.asarray(jnp.inf, real)
    x, _, om, _, _ = jax.lax.while_loop(
        cond, body, (jnp.zeros_like(b), b, inf, inf, jnp.zeros((), jnp.int32))
    )
    ok = (om <= fail_tol) & jnp.all(jnp.isfinite(x))
    return x, ok


def matvec_transpose(plan: MultifrontalPlan, data: jax.Array, x: jax.Array) -> jax.Array:
    """``A^T x`` for the pattern's CSC values ``data``."""
    return jax.ops.segment_sum(data * x[plan.rows], plan.cols, num_segments=plan.n)
