"""Batched dense kernels of the multifrontal LU, in two families.

``kernels="xla"`` (`partial_lu`, `forward`, `backward`): XLA programs only (loops, gathers,
matrix products), the same on every backend; the default on GPUs, where a front bucket's work is a
fixed number of batched kernels whatever its batch size. ``kernels="lapack"``
(`partial_lu_lapack`, `forward_lapack`, `backward_lapack`): `jax.lax.linalg`'s LU and triangular
solves (LAPACK on a CPU, cuSOLVER/cuBLAS on a GPU), one call per matrix; the default on CPUs,
where they compile in a fraction of the time and run faster.

A front is factored by a blocked right-looking LU (column panels of ``nb`` columns; inside a
panel, one column at a time with partial pivoting; between panels, the trailing block is updated
by one matrix product), restricted to the first ``P`` rows and columns (the fully summed block):
pivots are searched among those rows only, so the front's structure never changes, and the
elimination is applied to all its rows, which leaves ``L21``, ``U12`` and the Schur complement in
place (Golub & Van Loan, "Matrix Computations", 4th ed., 3.2.9-3.2.11 and 3.4.7). A pivot below
``tau`` in magnitude is replaced by ``tau`` with its sign during the elimination (static
pivoting; Li & Demmel, "SuperLU_DIST", ACM TOMS 29 (2003) 110-140).

On a CPU, the LAPACK family runs on scipy's OpenBLAS, whose threads are woken for each
mid-sized call: on a loaded machine, a factorization of the 2D Brusselator's Newton matrix
(n = 2048) measured 0.63 s with two BLAS threads against 5 ms with one. Limit that BLAS to one
thread (``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl.threadpool_limits(1, "blas")``) when
factoring many small systems; `stiffasd.linalg.blas_threads` reports the setting.

Triangular solves are blocked the same way: the ``nb``-by-``nb`` diagonal blocks are inverted
once per factorization, and a solve is one matrix-vector product per panel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "partial_lu",
    "partial_lu_lapack",
    "diagonal_block_inverses",
    "forward",
    "backward",
    "forward_lapack",
    "backward_lapack",
]

_HI = lax.Precision.HIGHEST


def _sign(x: jax.Array) -> jax.Array:
    """``x / |x|``, 1 for 0 (real or complex)."""
    a = jnp.abs(x)
    return jnp.where(a == 0, 1, x / jnp.where(a == 0, 1, a))


def _col(x: jax.Array, i: jax.Array) -> jax.Array:
    return lax.dynamic_index_in_dim(x, i, axis=2, keepdims=False)


def _row(x: jax.Array, i: jax.Array) -> jax.Array:
    return lax.dynamic_index_in_dim(x, i, axis=1, keepdims=False)


def partial_lu(
    F: jax.Array, P: int, nb: int, tau: jax.Array, real: np.ndarray
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Eliminate the first ``P`` columns of the fronts ``F`` (``(B, M, M)``).

    Args:
        F: the assembled fronts.
        P: pivots (a multiple of ``nb``).
        nb: panel width.
        tau: static-pivoting threshold (a scalar).
        real: ``(B, P)`` mask of the true pivots (padding pivots are never perturbed).

    Returns:
        ``(F, rows, perturbed)``: ``F`` with ``L`` (unit lower, strict part) and ``U`` packed in
        its first ``P`` columns and rows and the Schur complement in the rest; ``rows[b, i]`` is
        the front-local row that became pivot row ``i``; the number of perturbed pivots.
    """
    B, M, _ = F.shape
    npan = P // nb
    rows = jnp.arange(M)
    pcols = jnp.arange(nb)
    cols = jnp.arange(M)
    real = jnp.asarray(real)

    def column(i, carry, j0):
        panel, order, count = carry
        k = j0 + i
        col = _col(panel, i)
        cand = (rows >= k) & (rows < P)
        p = jnp.argmax(jnp.where(cand[None, :], jnp.abs(col), -1.0), axis=1)
        r2 = rows[None, :]
        swap = jnp.where(r2 == k, p[:, None], jnp.where(r2 == p[:, None], k, r2))
        panel = jnp.take_along_axis(panel, swap[:, :, None], axis=1)
        order = jnp.take_along_axis(order, swap, axis=1)
        col = jnp.take_along_axis(col, swap, axis=1)
        piv = lax.dynamic_index_in_dim(col, k, axis=1, keepdims=False)
        small = (jnp.abs(piv) < tau) & lax.dynamic_index_in_dim(real, k, axis=1, keepdims=False)
        piv = jnp.where(small, tau * _sign(piv), piv)
        below = rows > k
        lcol = jnp.where(below[None, :], col / piv[:, None], col)
        lcol = jnp.where((rows == k)[None, :], piv[:, None], lcol)
        urow = _row(panel, k)
        mask = below[:, None] & (pcols > i)[None, :]
        panel = panel - jnp.where(mask[None], lcol[:, :, None] * urow[:, None, :], 0)
        panel = jnp.where((pcols == i)[None, None, :], lcol[:, :, None], panel)
        return panel, order, count + jnp.sum(small, dtype=jnp.int32)

    def block(j, carry):
        F, perm, count = carry
        j0 = j * nb
        panel = lax.dynamic_slice_in_dim(F, j0, nb, axis=2)
        order = jnp.broadcast_to(rows, (B, M))
        panel, order, count = lax.fori_loop(
            0, nb, lambda i, c: column(i, c, j0), (panel, order, count)
        )
        F = jnp.take_along_axis(F, order[:, :, None], axis=1)  # the panel's row swaps
        F = lax.dynamic_update_slice_in_dim(F, panel, j0, axis=2)
        perm = jnp.take_along_axis(perm, order[:, :P], axis=1)
        # block row of U right of the panel: L_panel^-1 times those rows
        right = cols >= j0 + nb
        lpp = lax.dynamic_slice_in_dim(panel, j0, nb, axis=1)

        def row(i, R):
            li = _col(lpp, i)
            ri = _row(R, i)
            mask = (pcols > i)[:, None] & right[None, :]
            return R - jnp.where(mask[None], li[:, :, None] * ri[:, None, :], 0)

        R = lax.fori_loop(0, nb, row, lax.dynamic_slice_in_dim(F, j0, nb, axis=1))
        F = lax.dynamic_update_slice_in_dim(F, R, j0, axis=1)
        # trailing update
        lcol = jnp.where((rows >= j0 + nb)[None, :, None], panel, 0)
        urow = jnp.where(right[None, None, :], R, 0)
        F = F - jnp.einsum("bmk,bkn->bmn", lcol, urow, precision=_HI)
        return F, perm, count

    perm = jnp.broadcast_to(jnp.arange(P, dtype=jnp.int32), (B, P))
    return lax.fori_loop(0, npan, block, (F, perm, jnp.zeros((), jnp.int32)))


def diagonal_block_inverses(lu: jax.Array, nb: int) -> tuple[jax.Array, jax.Array]:
    """Inverses of the ``nb``-by-``nb`` diagonal blocks of the packed ``L`` (unit lower) and
    ``U`` of ``lu`` (``(B, P, P)``), each ``(B, P // nb, nb, nb)``."""
    B, P, _ = lu.shape
    npan = P // nb
    blocks = jnp.diagonal(lu.reshape(B, npan, nb, npan, nb), axis1=1, axis2=3)
    blocks = jnp.moveaxis(blocks, -1, 1)  # (B, npan, nb, nb)
    idx = jnp.arange(nb)
    eye = jnp.eye(nb, dtype=lu.dtype)

    def lower(i, X):  # forward elimination of [L | I]
        li = lax.dynamic_index_in_dim(blocks, i, axis=3, keepdims=False)
        xi = lax.dynamic_index_in_dim(X, i, axis=2, keepdims=False)
        mask = (idx > i)[None, None, :, None]
        return X - jnp.where(mask, li[..., :, None] * xi[..., None, :], 0)

    def upper(ii, X):  # back substitution of [U | I], last row first
        i = nb - 1 - ii
        ui = lax.dynamic_index_in_dim(blocks, i, axis=2, keepdims=False)
        diag = lax.dynamic_index_in_dim(ui, i, axis=-1, keepdims=False)
        strict = jnp.where((idx > i)[None, None, :], ui, 0)
        unit = (idx == i).astype(lu.dtype)[None, None, :]
        rhs = unit - jnp.einsum("...k,...kn->...n", strict, X, precision=_HI)
        return lax.dynamic_update_index_in_dim(X, rhs / diag[..., None], i, axis=2)

    shape = blocks.shape
    linv = lax.fori_loop(0, nb, lower, jnp.broadcast_to(eye, shape))
    uinv = lax.fori_loop(0, nb, upper, jnp.zeros(shape, lu.dtype))
    return linv, uinv


def forward(lu: jax.Array, linv: jax.Array, g: jax.Array, nb: int) -> jax.Array:
    """Solve ``L y = g`` for the unit lower ``L`` packed in ``lu`` (``(B, P, P)``; ``g`` of shape
    ``(B, P)`` or ``(B, P, K)``), panel by panel with the inverted diagonal blocks ``linv``."""
    npan = lu.shape[1] // nb
    vec = g.ndim == 2
    g = g[..., None] if vec else g

    def step(j, y):
        j0 = j * nb
        # y is still zero from j0 on, so the diagonal block and U's entries add nothing
        r = lax.dynamic_slice_in_dim(g, j0, nb, axis=1) - jnp.einsum(
            "bkp,bpm->bkm", lax.dynamic_slice_in_dim(lu, j0, nb, axis=1), y, precision=_HI
        )
        inv = lax.dynamic_index_in_dim(linv, j, axis=1, keepdims=False)
        return lax.dynamic_update_slice_in_dim(
            y, jnp.einsum("bkl,blm->bkm", inv, r, precision=_HI), j0, axis=1
        )

    y = lax.fori_loop(0, npan, step, jnp.zeros_like(g))
    return y[..., 0] if vec else y


def backward(lu: jax.Array, uinv: jax.Array, c: jax.Array, nb: int) -> jax.Array:
    """Solve ``U z = c`` for the upper ``U`` packed in ``lu``, last panel first."""
    npan = lu.shape[1] // nb

    def step(jj, z):
        j = npan - 1 - jj
        j0 = j * nb
        # z is still zero up to the end of this panel: L's entries and the block add nothing
        r = lax.dynamic_slice_in_dim(c, j0, nb, axis=1) - jnp.einsum(
            "bkp,bp->bk", lax.dynamic_slice_in_dim(lu, j0, nb, axis=1), z, precision=_HI
        )
        inv = lax.dynamic_index_in_dim(uinv, j, axis=1, keepdims=False)
        return lax.dynamic_update_slice_in_dim(
            z, jnp.einsum("bkl,bl->bk", inv, r, precision=_HI), j0, axis=1
        )

    return lax.fori_loop(0, npan, step, jnp.zeros_like(c))


def partial_lu_lapack(
    F: jax.Array, P: int, tau: jax.Array, real: np.ndarray
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """`partial_lu` with `jax.lax.linalg`: one LU with partial pivoting of the pivot rows with
    an identity appended, ``[F11 F12 I]`` (pivots come from those rows only; the identity block
    comes out as ``L11^-1 Pr``, so no permutation vector is needed), its small pivots perturbed
    afterwards (a perturbation of ``tau`` times L's column: Li & Demmel's static pivoting), then
    ``L21 = F21 U11^-1`` and the Schur complement.

    Returns:
        ``(lu11, w, u12, l21, schur, perturbed)`` with ``w = L11^-1 Pr``.
    """
    B, M, _ = F.shape
    eye = jnp.broadcast_to(jnp.eye(P, dtype=F.dtype), (B, P, P))
    lu = lax.linalg.lu(jnp.concatenate([F[:, :P, :], eye], axis=2))[0]
    d = jnp.diagonal(lu, axis1=-2, axis2=-1)
    small = (jnp.abs(d) < tau) & jnp.asarray(real)
    d = jnp.where(small, tau * _sign(d), d)
    lu11 = jnp.where(np.eye(P, dtype=bool), d[:, :, None], lu[:, :, :P])
    u12 = lu[:, :, P:M]
    l21 = lax.linalg.triangular_solve(lu11, F[:, P:, :P], left_side=False, lower=False)
    schur = F[:, P:, P:] - jnp.einsum("bup,bpv->buv", l21, u12, precision=_HI)
    return lu11, lu[:, :, M:], u12, l21, schur, jnp.sum(small, dtype=jnp.int32)


def forward_lapack(lu: jax.Array, g: jax.Array) -> jax.Array:
    """Solve ``L y = g`` (unit lower ``L`` packed in ``lu``) with `jax.lax.linalg`."""
    return lax.linalg.triangular_solve(
        lu, g[..., None], left_side=True, lower=True, unit_diagonal=True
    )[..., 0]


def backward_lapack(lu: jax.Array, c: jax.Array) -> jax.Array:
    """Solve ``U z = c`` (upper ``U`` packed in ``lu``) with `jax.lax.linalg`."""
    return lax.linalg.triangular_solve(lu, c[..., None], left_side=True, lower=False)[..., 0]
