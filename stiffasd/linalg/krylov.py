"""Restarted GMRES on a fixed-pattern sparse matrix with a block-Jacobi preconditioner; pure JAX
(segment-sum CSC matvec, batched dense block inverses), so it runs on CPU and GPU and under
`jax.vmap`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..pattern import SparsityPattern

__all__ = ["Krylov"]


@dataclass(frozen=True, eq=False)
class Krylov:
    """Restarted GMRES on the sparse matrix with a block-Jacobi preconditioner; pure JAX.

    Args:
        rtol: relative residual tolerance of each linear solve.
        atol: absolute residual tolerance.
        restart: Krylov subspace size before a restart.
        maxiter: maximum number of restarts.
        block_size: size of the contiguous diagonal blocks inverted for the preconditioner
            (1 = Jacobi; for a state laid out grid-point by grid-point, the number of species
            couples all species of a point; larger blocks capture more of the stencil).
    """

    rtol: float = 1e-6
    atol: float = 0.0
    restart: int = 30
    maxiter: int = 10
    block_size: int = 2

    def bind(self, pattern: SparsityPattern) -> _BoundKrylov:
        return _BoundKrylov(self, pattern)


class _BoundKrylov:
    def __init__(self, cfg: Krylov, pattern: SparsityPattern):
        self.cfg = cfg
        n = self.n = pattern.shape[0]
        self.rows = np.asarray(pattern.csc_indices, dtype=np.int32)
        self.cols = np.asarray(pattern.csc_cols, dtype=np.int32)
        bs = self.bs = max(1, min(int(cfg.block_size), max(n, 1)))
        self.nb = -(-n // bs)
        # entries of the diagonal blocks, and where they go in the (nb, bs, bs) block array
        inblock = (self.rows // bs) == (self.cols // bs)
        self.sel = np.flatnonzero(inblock).astype(np.int32)
        r, c = self.rows[self.sel], self.cols[self.sel]
        self.blk, self.lr, self.lc = r // bs, r % bs, c % bs
        # padding rows of the last block get a unit diagonal so the block stays invertible
        pad = np.arange(n, self.nb * bs)
        self.pad_b, self.pad_l = pad // bs, pad % bs

    def matvec(self, data: jax.Array, x: jax.Array) -> jax.Array:
        return jax.ops.segment_sum(
            data * x[self.cols], self.rows, num_segments=self.n, indices_are_sorted=False
        )

    def _block_inverse(self, data: jax.Array) -> jax.Array:
        blocks = jnp.zeros((self.nb, self.bs, self.bs), data.dtype)
        blocks = blocks.at[self.blk, self.lr, self.lc].add(data[self.sel])
        blocks = blocks.at[self.pad_b, self.pad_l, self.pad_l].set(1.0)
        return jnp.linalg.inv(blocks)

    def factor(self, data: jax.Array) -> Any:
        return (data, self._block_inverse(data))

    def identity(self, data: jax.Array) -> Any:
        eye = jnp.broadcast_to(jnp.eye(self.bs, dtype=data.dtype), (self.nb, self.bs, self.bs))
        return (data, eye)

    def precondition(self, inv: jax.Array, r: jax.Array) -> jax.Array:
        pad = self.nb * self.bs - self.n
        rb = jnp.pad(r, (0, pad)).reshape(self.nb, self.bs)
        return jnp.einsum("kij,kj->ki", inv, rb).reshape(-1)[: self.n]

    def solve(self, state: Any, b: jax.Array) -> jax.Array:
        data, inv = state
        x, _ = jax.scipy.sparse.linalg.gmres(
            lambda v: self.matvec(data, v),
            b,
            tol=self.cfg.rtol,
            atol=self.cfg.atol,
            restart=self.cfg.restart,
            maxiter=self.cfg.maxiter,
            M=lambda v: self.precondition(inv, v),
            solve_method="batched",
        )
        return x

    def solve_checked(self, state: Any, b: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(x, ok)``, ``ok`` False when the iteration gave non-finite values."""
        x = self.solve(state, b)
        return x, jnp.all(jnp.isfinite(x))
