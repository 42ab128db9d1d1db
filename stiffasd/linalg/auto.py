"""`AutoLU`: the sparse direct solver the diffrax side uses by default, chosen per pattern and
backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from ..pattern import SparsityPattern
from .callback import DirectLU
from .jaxlu import JaxLU

__all__ = ["AutoLU", "CPU_JAX_MAX_N"]

#: Largest system that `AutoLU` factors with `JaxLU` on a CPU; larger ones go to `DirectLU`
#: (SuperLU through a host callback). Measured crossover: docs/gpu.md.
CPU_JAX_MAX_N = 4096


@dataclass(frozen=True, eq=False)
class AutoLU:
    """`JaxLU` on GPUs and TPUs and, on a CPU, for systems of at most ``cpu_max_n`` unknowns
    (tiny systems included: no host round trip per solve); `DirectLU` for larger systems on a
    CPU, where SuperLU's supernodal code is faster.

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
        if backend != "cpu" or pattern.shape[0] <= limit:
            return JaxLU()
        return DirectLU()

    def bind(self, pattern: SparsityPattern) -> Any:
        return self.choose(pattern).bind(pattern)
