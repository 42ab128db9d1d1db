"""`JaxLU`: the multifrontal sparse LU compiled into JAX, with the solver interface shared by
`DirectLU` and `Krylov` (``bind(pattern)``, then ``factor(data)`` once per matrix and
``solve(state, b)`` once per right-hand side).

Unlike `DirectLU` (a host callback into SuperLU) it is a pure JAX program: it jits, runs on CPU
and GPU, batches under `jax.vmap` (a batch of matrices sharing the pattern is one batched
factorization) and differentiates: the solve is a `jax.lax.custom_linear_solve`, so derivatives
with respect to the right-hand side use the transposed solve and derivatives with respect to the
matrix values follow from the implicit-function identity ``dx = -A^-1 (dA) x``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..errors import PerformanceWarning, ShapeError
from ..pattern import SparsityPattern
from . import multifrontal as mf
from .analysis import MultifrontalPlan, Relaxation, plan_cache

__all__ = ["JaxLU"]


@dataclass(frozen=True, eq=False)
class JaxLU:
    """Sparse LU compiled into JAX (multifrontal, fixed pattern); CPU and GPU, vmap, grad.

    The symbolic analysis (METIS nested dissection, elimination tree, supernodes, assembly tree,
    level schedule; `stiffasd.linalg.analyze`) runs once per pattern on the host and is cached;
    each factorization is a static program of batched dense LUs of the fronts of one tree level
    at a time. Pivoting is partial inside each front's fully summed block; pivots below
    ``sqrt(eps) max|a_ij|`` are perturbed to that size (static pivoting) and every solve checks
    its backward error against the original matrix, refining iteratively when needed.

    Args:
        relax: amalgamation and bucketing thresholds of the analysis (`Relaxation`).
        kernels: dense kernels of the fronts: ``"lapack"`` (`jax.lax.linalg`, the CPU default),
            ``"xla"`` (blocked LU written in XLA operations, the default on GPUs and TPUs), or
            ``"auto"`` (by ``jax.default_backend()`` when a pattern is bound: LAPACK on a CPU
            with one device per process, XLA otherwise, since jaxlib's batched CPU LAPACK
            calls of several devices block each other on the shared thread pool; see
            docs/scaling.md); see `stiffasd.linalg.dense`.
        max_refine: most iterative-refinement steps per solve.
        refine_tol: refine while the componentwise backward error is above this (default
            ``16 eps``).
        fail_tol: a solve whose backward error stays above this (default ``sqrt(eps)``) is
            reported as failed (`solve_checked`; in `stiffasd.diffrax` the step is rejected).
    """

    relax: Relaxation | None = None
    kernels: str = "auto"
    max_refine: int = 3
    refine_tol: float | None = None
    fail_tol: float | None = None

    def __post_init__(self):
        if self.kernels not in ("auto", "lapack", "xla"):
            raise ValueError(
                f"JaxLU(kernels=...): expected 'auto', 'lapack' or 'xla', got {self.kernels!r}."
            )
        if isinstance(self.max_refine, bool) or not isinstance(self.max_refine, int):
            raise TypeError(
                f"JaxLU(max_refine=...): expected an int >= 0, got {self.max_refine!r}."
            )
        if self.max_refine < 0:
            raise ValueError(f"JaxLU(max_refine=...): expected an int >= 0, got {self.max_refine}.")
        for name in ("refine_tol", "fail_tol"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"JaxLU({name}=...): expected a positive number, got {v!r}.")

    def bind(self, pattern: SparsityPattern) -> BoundJaxLU:
        """The solver for one square pattern (its analysis is cached per pattern)."""
        if not isinstance(pattern, SparsityPattern):
            raise TypeError(
                "JaxLU.bind(pattern=...): expected a stiffasd.SparsityPattern, got "
                f"{type(pattern).__name__}; build one with SparsityPattern.from_scipy(matrix)."
            )
        if pattern.shape[0] != pattern.shape[1]:
            raise ShapeError(
                f"JaxLU.bind(pattern=...): the pattern must be square, got shape {pattern.shape}."
            )
        kernels = self.kernels
        if kernels == "auto":
            cpu = jax.default_backend() == "cpu"
            kernels = "lapack" if cpu and jax.local_device_count() == 1 else "xla"
        plan = plan_cache.get(pattern, self.relax)
        if (
            kernels == "lapack"
            and jax.default_backend() == "cpu"
            and plan.stats["max_front"] >= BLAS_THREADED_FRONT
        ):
            _check_blas_threads()
        return BoundJaxLU(self, plan, kernels)


_BLAS_WARNED: list = []
#: Fronts from this size on make OpenBLAS wake its threads in the triangular solves (measured:
#: a 48-by-24 solve took 20 ms with two threads on a busy machine, 11 us with one).
BLAS_THREADED_FRONT = 32


def blas_threads() -> int:
    """The number of threads of the BLAS behind JAX's CPU LAPACK calls (scipy's), now."""
    from threadpoolctl import ThreadpoolController

    info = ThreadpoolController().select(user_api="blas").info()
    return max((lib.get("num_threads", 1) for lib in info), default=1)


def _check_blas_threads() -> None:
    """Warn once per process when the BLAS behind JAX's CPU LAPACK calls is multithreaded."""
    if _BLAS_WARNED:
        return
    threads = blas_threads()
    if threads > 1:
        _BLAS_WARNED.append(threads)
        warnings.warn(
            f"stiffasd.linalg.JaxLU on a CPU: the BLAS behind JAX's LAPACK calls runs {threads} "
            "threads, and waking them for each of the many small dense factorizations of a "
            "sparse LU costs more than the work (measured 5-30x slower factorizations). Run with "
            "one BLAS thread: OPENBLAS_NUM_THREADS=1 in the environment, or "
            "threadpoolctl.threadpool_limits(1, 'blas') around the computation; or pass "
            "JaxLU(kernels='xla'), which calls no BLAS.",
            PerformanceWarning,
            stacklevel=3,
        )


class BoundJaxLU:
    """`JaxLU` for one pattern: ``factor``, ``identity``, ``solve``, ``solve_checked``."""

    def __init__(self, cfg: JaxLU, plan: MultifrontalPlan, kernels: str):
        self.cfg = cfg
        self.plan = plan
        self.kernels = kernels
        self.n = plan.n

    def _check_data(self, data: jax.Array) -> jax.Array:
        data = jnp.asarray(data)
        if data.shape[-1:] != (self.plan.nnz,) or data.ndim != 1:
            raise ShapeError(
                f"JaxLU: expected the {self.plan.nnz} values of the pattern in its CSC order (a "
                f"1D array), got shape {data.shape}; batch with jax.vmap."
            )
        if not jnp.issubdtype(data.dtype, jnp.inexact):
            data = data.astype(jnp.result_type(float))
        return data

    def factor(self, data: jax.Array) -> mf.Factors:
        """Factor the matrix with values ``data`` (the pattern's CSC order)."""
        data = self._check_data(data)
        fac = mf.factor(self.plan, jax.lax.stop_gradient(data), self.kernels)
        # the factors are constants for differentiation: derivatives flow through ``data`` (the
        # matrix the solve's implicit differentiation uses), never through the LU itself
        return fac._replace(data=data)

    def identity(self, data: jax.Array) -> mf.Factors:
        """The factorization of the identity (shapes as `factor` gives), without arithmetic."""
        data = self._check_data(data)
        if (self.plan.diag_positions < 0).any():
            raise ShapeError(
                "JaxLU.identity: the pattern has no entry on some of its diagonal, so the "
                "identity has no values in it; add the diagonal (stiffasd.linalg.with_diagonal)."
            )
        fac = mf.identity_factors(self.plan, data.dtype, self.kernels)
        eye = jnp.zeros_like(data).at[self.plan.diag_positions].set(1)
        return fac._replace(data=eye)

    def _solve(
        self, fac: mf.Factors, b: jax.Array, transpose: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        if b.shape != (self.n,):
            raise ShapeError(
                f"JaxLU.solve(b=...): expected a vector of shape ({self.n},), got {b.shape}; "
                "batch right-hand sides with jax.vmap."
            )
        numeric = jax.lax.stop_gradient(fac._replace(data=jnp.zeros((0,), fac.data.dtype)))
        data = fac.data
        dtype = jnp.result_type(data.dtype, b.dtype)
        b = b.astype(dtype)
        opts = dict(
            kernels=self.kernels,
            max_refine=self.cfg.max_refine,
            refine_tol=self.cfg.refine_tol,
            fail_tol=self.cfg.fail_tol,
        )

        def factors(d):
            return numeric._replace(data=jax.lax.stop_gradient(d))

        def matvec(x):
            if transpose:
                return mf.matvec_transpose(self.plan, data, x)
            return mf.matvec(self.plan, data, x)

        def solve(_, r):
            return mf.refined_solve(self.plan, factors(data), r, transpose=transpose, **opts)

        def transpose_solve(_, r):
            return mf.refined_solve(self.plan, factors(data), r, transpose=not transpose, **opts)

        return jax.lax.custom_linear_solve(
            matvec, b, solve, transpose_solve=transpose_solve, has_aux=True
        )

    def solve(self, state: mf.Factors, b: jax.Array, *, transpose: bool = False) -> jax.Array:
        """``A^-1 b``, or ``A^-T b`` with ``transpose=True`` (same factors; refined;
        differentiable in ``b`` and in the matrix values)."""
        return self._solve(state, b, transpose)[0]

    def solve_checked(
        self, state: mf.Factors, b: jax.Array, *, transpose: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """``(x, ok)``: ``ok`` is False when the solve's backward error check failed (singular
        or too ill-conditioned matrix, NaN values). ``transpose=True`` solves with ``A^T``."""
        return self._solve(state, b, transpose)
