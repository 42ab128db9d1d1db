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

    With ``Pr`` the row order the pivoting chose inside a front's pivot block,
    ``Pr F11 = L11 U11``:

    Attributes:
        lu: ``(B, P, P)``: ``L11`` (unit lower, diagonal implicit) and ``U11`` packed.
        w: ``(B, P, P)``: ``L11^-1 Pr``, so the forward solve is one matrix-vector product and
            needs no permutation.
        uinv: ``(B, P / nb, nb, nb)``: inverses of the diagonal blocks of ``U11`` (XLA kernels'
            blocked backward solve; empty for the LAPACK kernels).
        u12: ``(B, P, U)``: ``L11^-1 Pr F12``.
        l21: ``(B, U, P)``: ``F21 U11^-1``.
        rscale, cscale: ``(n,)`` row and column equilibration: the factors are those of
            ``diag(rscale) A diag(cscale)``.
        data: the matrix values (pattern CSC order), for residuals.
        perturbed: number of pivots replaced by static pivoting.
    """

    lu: tuple
    w: tuple
    uinv: tuple
    u12: tuple
    l21: tuple
    rscale: jax.Array
    cscale: jax.Array
    data: jax.Array
    perturbed: jax.Array


_PARTS = ("lu", "w", "uinv", "u12", "l21")


def _index(a: np.ndarray) -> np.ndarray:
    """Index arrays go into the program as int32."""
    return np.asarray(a, dtype=np.int32)


def _get(x: jax.Array, idx: Any) -> jax.Array:
    """``x[idx]`` for plan indices (always in bounds: no clamping code)."""
    if isinstance(idx, np.ndarray):
        idx = _index(idx)
    return x.at[idx].get(mode="promise_in_bounds")


def equilibrate(plan: MultifrontalPlan, data: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Row and column scalings, powers of two (exact), that bring every row's and then every
    column's largest entry to [0.5, 1] (LAPACK's ``xGEEQU`` scheme); empty rows and columns keep
    scale 1. Static pivoting's threshold is then meaningful for badly scaled matrices, such as
    Newton matrices coupling species whose rates differ by orders of magnitude."""
    mag = jnp.abs(data)
    real = mag.dtype

    def power_of_two_inverse(m):
        safe = jnp.where(m > 0, m, 1)
        return jnp.where(m > 0, jnp.exp2(-jnp.ceil(jnp.log2(safe))), 1).astype(real)

    rmax = jax.ops.segment_max(mag, plan.rows, num_segments=plan.n)
    rscale = power_of_two_inverse(jnp.where(jnp.isfinite(rmax), rmax, 0))
    cmax = jax.ops.segment_max(mag * rscale[plan.rows], plan.cols, num_segments=plan.n)
    cscale = power_of_two_inverse(jnp.where(jnp.isfinite(cmax), cmax, 0))
    return rscale, cscale


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
    rscale, cscale = equilibrate(plan, data)
    scaled = data * (rscale[plan.rows] * cscale[plan.cols])
    tau = pivot_threshold(scaled)
    cbs: list[Any] = []
    out: dict[str, list] = {k: [] for k in _PARTS}
    perturbed = jnp.zeros((), jnp.int32)
    for b in plan.buckets:
        P, U, B = b.P, b.U, b.size
        M = P + U
        # assembly: entries of A, unit diagonals on padding pivots, children's blocks
        dst = [_index(b.entry_dst), _index(b.pad_dst)]
        vals = [_get(scaled, b.entry_src), jnp.ones((b.pad_dst.size,), dtype)]
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
            perm = jax.nn.one_hot(local, P, dtype=dtype)  # Pr: row i is e_local[i]
            w = dense.forward(lu, linv, perm, b.nb)
        else:
            if out["l21"]:
                # One batched LAPACK call at a time: jaxlib spreads a call's batch over XLA's
                # intra-op thread pool and blocks until it is done, so two independent calls
                # of one level run side by side can each hold a pool thread while waiting for
                # the other's queued work (a hang on 2-core machines from about n = 8,000).
                # Adding zero times an entry of the previous bucket's last LAPACK result makes
                # this bucket's input wait for it (XLA drops `optimization_barrier`s on the CPU
                # and keeps this: a float times zero is not folded, for NaN's sake).
                prev = out["l21"][-1]
                if prev.size:
                    F = F.at[0, 0, 0].add(0 * prev[0, 0, 0])
            lu, w, u12, l21, schur, count = dense.partial_lu_lapack(F, P, tau, real)
            uinv = jnp.zeros((0,), dtype)
        perturbed = perturbed + count
        for k, v in zip(_PARTS, (lu, w, uinv, u12, l21), strict=True):
            out[k].append(v)
        cbs.append(schur)
    return Factors(
        **{k: tuple(v) for k, v in out.items()},
        rscale=rscale,
        cscale=cscale,
        data=data,
        perturbed=perturbed,
    )


def identity_factors(plan: MultifrontalPlan, dtype: Any, kernels: str = "lapack") -> Factors:
    """The factorization of the identity, with the shapes `factor` gives (no arithmetic)."""
    out: dict[str, list] = {k: [] for k in _PARTS}
    for b in plan.buckets:
        B, P, U, nb = b.size, b.P, b.U, b.nb
        eye = jnp.broadcast_to(jnp.eye(P, dtype=dtype), (B, P, P))
        out["lu"].append(eye)
        out["w"].append(eye)
        blocks = jnp.broadcast_to(jnp.eye(nb, dtype=dtype), (B, P // nb, nb, nb))
        out["uinv"].append(blocks if kernels == "xla" else jnp.zeros((0,), dtype))
        out["u12"].append(jnp.zeros((B, P, U), dtype))
        out["l21"].append(jnp.zeros((B, U, P), dtype))
    real = jnp.finfo(dtype).dtype
    return Factors(
        **{k: tuple(v) for k, v in out.items()},
        rscale=jnp.ones((plan.n,), real),
        cscale=jnp.ones((plan.n,), real),
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
    x = jnp.concatenate([b * fac.rscale, jnp.zeros((2,), b.dtype)])
    for k, bk in enumerate(plan.buckets):
        # y (pivot-row order) is kept in the pivot unknowns' slots until the backward pass
        g = _get(x, bk.piv)
        y = jnp.einsum("bpq,bq->bp", fac.w[k], g, precision=_HI)
        vals = jnp.concatenate([y - g, -jnp.einsum("bup,bp->bu", fac.l21[k], y, precision=_HI)], 1)
        x = x.at[bk.fwd_dst].add(vals, mode="promise_in_bounds")
    for k in range(len(plan.buckets) - 1, -1, -1):
        bk = plan.buckets[k]
        P = bk.P
        t = _get(x, bk.bwd_src)
        y = t[:, :P] - jnp.einsum("bpu,bu->bp", fac.u12[k], t[:, P:], precision=_HI)
        if kernels == "xla":
            z = dense.backward(fac.lu[k], fac.uinv[k], y, bk.nb)
        else:
            z = dense.backward_lapack(fac.lu[k], y)
        x = x.at[bk.fwd_dst[:, :P]].add(z - t[:, :P], mode="promise_in_bounds")
    return x[:n] * fac.cscale


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
    """Solve with the factors, check the componentwise backward error
    ``max_i |b - A x|_i / (|A| |x| + |b|)_i`` (Oettli & Prager 1964) against the original matrix,
    and refine iteratively while it is above ``refine_tol`` (default ``16 eps``) and halves at
    each step, at most ``max_refine`` times (Arioli, Demmel & Duff, "Solving sparse linear
    systems with sparse backward error", SIAM J. Matrix Anal. Appl. 10 (1989) 165-190; the
    criterion SuperLU's refinement uses). Componentwise, because Newton matrices of stiff
    problems have rows of very different scales.

    Returns:
        ``(x, ok)``: ``ok`` is False when the backward error stays above ``fail_tol`` (default
        ``sqrt(eps)``) or ``x`` is not finite.
    """
    real = jnp.finfo(b.dtype).dtype
    eps = float(jnp.finfo(real).eps)
    refine_tol = 16 * eps if refine_tol is None else refine_tol
    fail_tol = float(np.sqrt(eps)) if fail_tol is None else fail_tol
    data = fac.data
    rows, cols = (plan.cols, plan.rows) if transpose else (plan.rows, plan.cols)
    if transpose:

        def base(r):
            return jax.linear_transpose(lambda v: lu_solve(plan, fac, v, kernels), r)(r)[0]

    else:

        def base(r):
            return lu_solve(plan, fac, r, kernels)

    tiny = float(jnp.finfo(real).tiny) * max(plan.n, 1)

    def backward_error(x):
        # A x and |A| |x| in one sparse product
        xc = _get(x, cols)
        both = jnp.stack([data * xc, (jnp.abs(data) * jnp.abs(xc)).astype(data.dtype)], 1)
        prod = jax.ops.segment_sum(both, rows, num_segments=plan.n)
        r = b - prod[:, 0]
        den = jnp.real(prod[:, 1]) + jnp.abs(b)
        ar = jnp.abs(r)
        om = jnp.where(
            den > tiny, ar / jnp.where(den > tiny, den, 1), jnp.where(ar > 0, jnp.inf, 0)
        )
        om = jnp.max(om, initial=0.0)
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
