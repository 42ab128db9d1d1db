"""Timing helper shared by the benchmarks that compile a whole JAX solve."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def compile_and_time(
    fn: Callable, *args: Any, repeat: int = 1, before: Callable[[], Any] | None = None
) -> tuple[float, list[float], Any]:
    """jit-compile ``fn`` for ``args`` (timed apart), then run the compiled function ``repeat``
    times, calling ``before()`` ahead of each run (to reset counters).

    Returns:
        ``(compile seconds, wall seconds of every run, output of the last run)``.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    walls, out = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        walls.append(time.perf_counter() - start)
    return compile_s, walls, out


def loop_time(fn: Callable, x: Any, k: int) -> float:
    """Seconds per call of ``fn`` (an array -> same-shape array) inside a jitted ``fori_loop`` of
    ``k`` iterations, best of 3: the cost inside a compiled solve, without dispatch overhead."""

    @jax.jit
    def many(x, k):
        return jax.lax.fori_loop(0, k, lambda i, acc: acc + 1e-30 * fn(acc), x)

    many(x, 2).block_until_ready()
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        many(x, k).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return best / k
