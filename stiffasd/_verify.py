"""Verification of prepared sparse Jacobians and Hessians against plain automatic differentiation.

Used by ``prepare_jacobian(verify=True)`` and ``prepare_hessian(verify=True)``, and public as
`stiffasd.verify_jacobian`. A prepared object is checked at the given arguments and at a random
perturbation of them: entry by entry against a dense Jacobian up to `_DENSE_VERIFY_LIMIT`
unknowns, above that through products with random vectors (a missed nonzero changes ``J v`` for
almost every ``v``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .errors import PatternMismatchError

__all__ = ["verify_jacobian", "verify_hessian", "verify_symmetric"]

# Largest n for which `verify=True` compares with a dense Jacobian entry by entry; above it, the
# check compares Jacobian-vector products with random vectors (same power to detect a miss).
_DENSE_VERIFY_LIMIT = 4000


def verify_jacobian(sj: Any, *args: Any, seed: int = 0, rtol: float = 1e-7) -> None:
    """Check the prepared Jacobian ``sj`` against plain AD at ``args`` and at a random
    perturbation of them.

    Raises:
        PatternMismatchError: naming (some of) the entries the pattern misses.
    """
    _verify(sj, args, seed, rtol, "Jacobian", "JVP")


def verify_hessian(sh: Any, *args: Any, seed: int = 0, rtol: float = 1e-7) -> None:
    """Check the prepared Hessian ``sh`` against dense ``jax.hessian`` at ``args`` and at a random
    perturbation (random Hessian-vector products when ``n`` is large).

    Raises:
        PatternMismatchError: naming (some of) the entries the pattern misses.
    """
    _verify(sh, args, seed, rtol, "Hessian", "Hessian-vector product")


def _verify(sj: Any, args: tuple, seed: int, rtol: float, what: str, product: str) -> None:
    """``sj`` is a `SparseJacobian` (a `SparseHessian` is the one of the gradient)."""
    rng = np.random.default_rng(seed)
    m, n = sj.pattern.shape
    x0 = np.asarray(args[sj.argnums])
    points = [x0, x0 + (0.1 * np.abs(x0) + 1e-3) * rng.standard_normal(x0.shape)]
    for x in points:
        a = list(args)
        a[sj.argnums] = jnp.asarray(x, dtype=sj._in_dtype)
        fx, xflat = sj._flat_fn(a)
        J = sj.csc(*a)
        if n <= _DENSE_VERIFY_LIMIT and m <= _DENSE_VERIFY_LIMIT:
            dense = np.asarray(jax.jacfwd(fx)(xflat) if n <= m else jax.jacrev(fx)(xflat))
            scale = max(np.abs(dense).max(), 1e-300)
            outside = np.abs(dense) > 0
            outside[sj.pattern.rows, sj.pattern.indices] = False
            if outside.any():
                bad = np.argwhere(outside)
                raise PatternMismatchError(
                    f"verify: the sparsity pattern misses {bad.shape[0]} nonzero(s) of the "
                    f"{what}, e.g. (row, col) = {[tuple(map(int, b)) for b in bad[:5]]}. "
                    "Pass sparsity=None to detect the pattern automatically, or add these entries."
                )
            err = np.abs(J.toarray() - dense).max()
            if err > rtol * scale + 1e-300:
                raise PatternMismatchError(
                    f"verify: the sparse {what} differs from dense AD by {err:.3e} "
                    f"(scale {scale:.3e}); the pattern or the coloring is inconsistent."
                )
        else:
            for _ in range(2):
                v = rng.standard_normal(n)
                jv = np.asarray(jax.jvp(fx, (xflat,), (jnp.asarray(v, xflat.dtype),))[1])
                err = np.abs(J @ v - jv).max()
                if err > rtol * max(np.abs(jv).max(), 1e-300) + 1e-300:
                    raise PatternMismatchError(
                        f"verify: the sparse {what} times a random vector differs from a "
                        f"{product} by {err:.3e}: the sparsity pattern misses nonzeros. Pass "
                        "sparsity=None to detect the pattern automatically."
                    )


def verify_symmetric(sj: Any, *args: Any, seed: int = 0, rtol: float = 1e-7) -> None:
    """Check numerically that the Jacobian of ``sj`` is symmetric, as ``structure='symmetric'``
    assumes: ``J v`` (one JVP) against ``J^T v`` (one VJP) for random ``v``.

    Raises:
        PatternMismatchError: the Jacobian is not symmetric.
    """
    rng = np.random.default_rng(seed)
    fx, x = sj._flat_fn(list(args))
    pullback = jax.vjp(fx, x)[1]
    for _ in range(2):
        v = jnp.asarray(rng.standard_normal(x.size), x.dtype)
        jv = np.asarray(jax.jvp(fx, (x,), (v,))[1])
        jtv = np.asarray(pullback(v)[0])
        err = np.abs(jv - jtv).max()
        if err > rtol * max(np.abs(jv).max(), np.abs(jtv).max(), 1e-300):
            raise PatternMismatchError(
                f"verify: structure='symmetric' but the Jacobian is not symmetric: J v and "
                f"J^T v differ by {err:.3e} for a random v. Use structure='nonsymmetric'."
            )
