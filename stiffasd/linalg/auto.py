"""`AutoLU`: the sparse direct solver the diffrax side uses by default, chosen per pattern and
backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from ..pattern import SparsityPattern
from .analysis import plan_cache
from .callback import DirectLU
from .jaxlu import BLAS_THREADED_FRONT, JaxLU, blas_threads

__all__ = ["AutoLU", "CPU_JAX_MAX_N"]

#: Largest system that `AutoLU` factors with `JaxLU` on a CPU; larger ones go to `DirectLU`
#: (SuperLU through a host callback). Measured crossover: docs/gpu.md ("On a CPU").
CPU_JAX_MAX_N = 1024


@dataclass(frozen=True, eq=False)
class AutoLU:
    """`JaxLU` on GPUs and TPUs; on a CPU, `JaxLU` for systems of at most ``cpu_max_n``
    unknowns (no host round trip per solve) unless its fronts are large enough to wake a
    multithreaded BLAS for every small dense factorization, and `DirectLU` (SuperLU through a
    host callback) otherwise, where SuperLU's supernodal code is faster.

    Under ``jax.vmap`` (ensembles) pass ``linear_solver="jax"`` explicitly: `DirectLU` loops
    over a batch on the host. Gradients of diffrax solves work with either (the root finds are
    differentiated implicitly, with `stiffasd.lineax.SparseLU`), but `DirectLU`'s own solve has
    no derivative rule when differentiated directly.

    Args:
        cpu_max_n: the CPU crossover (default `CPU_JAX_MAX_N`).
        backend: the JAX backend the solve runs on (default: ``jax.default_backend()`` when the
            pattern is bound).
    """

    cpu_max_n: int | None = None
    backend: str | None = None

    def choose(self, pattern: SparsityPattern) -> Any:
        """The configured solver this pattern gets (`JaxLU` or `DirectLU`)."""
        backend = self.backend or jax.default_backend()
        limit = CPU_JAX_MAX_N if self.cpu_max_n is None else self.cpu_max_n
        if backend != "cpu":
            return JaxLU()
        if pattern.shape[0] > limit:
            return DirectLU()
        jax_lu = JaxLU()
        if plan_cache.get(pattern, jax_lu.relax).stats["max_front"] < BLAS_THREADED_FRONT:
            return jax_lu
        return jax_lu if blas_threads() == 1 else DirectLU()

    def bind(self, pattern: SparsityPattern) -> Any:
        return self.choose(pattern).bind(pattern)
