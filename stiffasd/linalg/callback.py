"""The host LU inside jit: `DirectLU` reaches `FixedPatternLU` through `jax.pure_callback`.

``factor(data)`` returns an integer *handle* to a factorization kept in a small process-wide LRU
cache (`FactorCache`); ``solve(state, b)`` looks the handle up. The cache holds at most
``maxsize`` factorizations, so memory stays bounded however long the integration runs: an
evicted factorization is simply recomputed from the data vector, which the solver state carries
along (and which a second callback hands over only on such a miss). The handle is therefore only
an optimisation, never a correctness dependency. CPU only (the callback runs on the host).
Supports `jax.vmap` (the callbacks take a batch).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..pattern import SparsityPattern
from .superlu import FixedPatternLU, _check_panel_size

__all__ = ["FactorCache", "factor_cache", "DirectLU"]

IDENTITY_HANDLE = -1  # the matrix is the identity: solve returns the right-hand side
FAILED_HANDLE = -2  # the factorization failed (singular): solve returns NaN


class FactorCache:
    """Bounded, thread-safe LRU map from integer handles to host LU factorizations.

    Every factorization made inside jit lands here; the least recently used one is dropped (and
    freed by reference counting) when more than ``maxsize`` are held. Also counts the work done,
    for benchmarks (``stats()``).
    """

    def __init__(self, maxsize: int = 8):
        # scipy's SuperLU records each allocation in a *thread-local* table and frees memory
        # only from the thread that allocated it: a factorization made in one XLA callback
        # thread and dropped (evicted) in another is never freed (measured: +8 MB per step at
        # N = 64, unbounded). Every factorization and every eviction therefore runs on this
        # one worker thread.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stiffasd-lu")
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, Any] = OrderedDict()
        self._next = 0
        self.maxsize = int(maxsize)
        self._stats = {
            "factorizations": 0,
            "refactorizations": 0,
            "solves": 0,
            "failures": 0,
            "factor_s": 0.0,  # host seconds inside the LU engine
            "solve_s": 0.0,
        }

    def put(self, lu: Any) -> int:
        with self._lock:
            # int32 handles with wrap-around: a reused number can only meet a long-evicted entry
            handle = self._next
            self._next = (self._next + 1) % (2**31 - 1)
            self._entries[handle] = lu
            self._entries.move_to_end(handle)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            return handle

    def reinsert(self, handle: int, lu: Any) -> None:
        with self._lock:
            self._entries[handle] = lu
            self._entries.move_to_end(handle)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def get(self, handle: int) -> Any | None:
        with self._lock:
            lu = self._entries.get(handle)
            if lu is not None:
                self._entries.move_to_end(handle)
            return lu

    def run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the cache's LU thread (where factorizations are made and freed)
        and return its result."""
        if threading.current_thread().name.startswith("stiffasd-lu"):
            return fn(*args)
        return self._worker.submit(fn, *args).result()

    def count(self, key: str, k: float = 1) -> None:
        with self._lock:
            self._stats[key] += k

    def stats(self) -> dict[str, int]:
        """Counters since the last `reset_stats` (factorizations, refactorizations, solves...)."""
        with self._lock:
            return dict(self._stats, cached=len(self._entries))

    def reset_stats(self) -> None:
        with self._lock:
            for key in self._stats:
                self._stats[key] = type(self._stats[key])(0)

    def clear(self) -> None:
        """Drop every cached factorization (handles stay valid: they are refactored on use)."""

        def drop() -> None:
            with self._lock:
                self._entries.clear()

        self.run(drop)

    def __len__(self) -> int:
        return len(self._entries)


factor_cache = FactorCache()


@dataclass(frozen=True, eq=False)
class DirectLU:
    """Direct sparse LU behind `jax.pure_callback`; CPU, vmap-able.

    The host side is `FixedPatternLU`, the fixed-pattern LU that the scipy
    solvers use: the fill-reducing ordering is computed once per pattern and every later
    factorization runs only the numeric phase on the pre-permuted matrix, so both integrator
    families share one engine (and its speed-ups).

    Args:
        permc_spec: fill-reducing ordering (one of ``stiffasd.linalg.ORDERINGS``). The default
            ``"auto"`` is the scipy side's: METIS nested dissection when pymetis is installed,
            else ``"MMD_AT_PLUS_A"`` (minimum degree on A^T + A). On the 2D Brusselator's stage
            matrix METIS gives 7-20% less fill and 6-31% faster factorizations than
            MMD_AT_PLUS_A (benchmarks/results/diffrax_lu_memory.md).
        diag_pivot_thresh: threshold partial pivoting parameter; I - γhJ is usually close to
            diagonally dominant, so a small value keeps the symmetric ordering intact.
        reuse_ordering: compute the ordering once per pattern (it depends on the structure only)
            and factor the permuted matrix with no reordering (20-30% faster factorizations on
            the Brusselator, docs/diffrax.md). False lets SuperLU reorder at every
            factorization (with ``permc_spec`` if it is one of SuperLU's orderings, else
            ``"MMD_AT_PLUS_A"``).
        panel_size: SuperLU's panel width (default `stiffasd.linalg.PANEL_SIZE`).
        cache: the handle cache; the process-wide `factor_cache` by default.
    """

    permc_spec: str = "auto"
    diag_pivot_thresh: float = 0.1
    reuse_ordering: bool = True
    panel_size: int | None = None
    cache: FactorCache = field(default=factor_cache, repr=False)

    def __post_init__(self):
        _check_panel_size(self.panel_size, "DirectLU")  # at construction, not inside a solve

    def bind(self, pattern: SparsityPattern) -> _BoundDirect:
        return _BoundDirect(self, pattern)


def _host_dtype(a: Any) -> Any:
    """float64 or complex128: SuperLU's double precisions (complex states factor complex
    matrices)."""
    return np.result_type(np.asarray(a).dtype, np.float64)


class _Unordered:
    """Factor with SuperLU's own ordering at every call (``reuse_ordering=False``); same
    ``factor(jdata, sigma, alpha) -> .solve(b)`` interface as `FixedPatternLU`."""

    def __init__(self, indptr, indices, n, permc_spec, diag_pivot_thresh, panel_size):
        self.indptr, self.indices, self.n = indptr, indices, n
        self.permc_spec, self.diag_pivot_thresh = permc_spec, diag_pivot_thresh
        self.panel_size = _check_panel_size(panel_size, "DirectLU")

    def factor(self, jdata, sigma=0.0, alpha=-1.0):
        a = sp.csc_matrix((-alpha * jdata, self.indices, self.indptr), shape=(self.n, self.n))
        if sigma != 0:
            a = (a + sigma * sp.identity(self.n, format="csc")).tocsc()
        return spla.splu(
            a,
            permc_spec=self.permc_spec,
            diag_pivot_thresh=self.diag_pivot_thresh,
            panel_size=self.panel_size,
        )


class _BoundDirect:
    """`DirectLU` specialised to one pattern: holds the host-side fixed-pattern LU engine."""

    def __init__(self, cfg: DirectLU, pattern: SparsityPattern):
        self.cfg = cfg
        self.n = n = pattern.shape[0]
        indptr = np.asarray(pattern.csc_indptr)
        indices = np.asarray(pattern.csc_indices)
        if cfg.reuse_ordering and n > 1:
            self.engine = FixedPatternLU(
                indptr,
                indices,
                n,
                ordering=cfg.permc_spec,
                diag_pivot_thresh=cfg.diag_pivot_thresh,
                panel_size=cfg.panel_size,
            )
            # The ordering depends on the structure only: fix it now, on a diagonally dominant
            # matrix with this pattern, so that factorizations made inside jit (possibly from
            # several threads) only read the engine's layout.
            probe = np.ones(indices.size)
            # on the LU thread, and the result dropped there (see FactorCache)
            cfg.cache.run(lambda: self.engine.factor(probe, float(n + 1), 1.0) and None)
        else:
            spec = cfg.permc_spec
            if spec in ("auto", "METIS", "RCM") or not isinstance(spec, str):
                spec = "MMD_AT_PLUS_A"  # orderings SuperLU computes itself at every call
            self.engine = _Unordered(
                indptr, indices, n, spec, cfg.diag_pivot_thresh, cfg.panel_size
            )

    # host side -----------------------------------------------------------------------
    def _factor_one(self, data: np.ndarray) -> Any | None:
        t0 = time.perf_counter()
        try:
            # the data already holds the whole stage matrix: factor 0 * I - (-1) * A
            return self.engine.factor(data, 0.0, -1.0)
        except RuntimeError:  # exactly singular: report through NaNs, let the step shrink
            self.cfg.cache.count("failures")
            return None
        finally:
            self.cfg.cache.count("factor_s", time.perf_counter() - t0)

    def _host_factor(self, data: np.ndarray) -> np.ndarray:
        # copy out of the XLA buffer here, factor and evict on the LU thread
        return self.cfg.cache.run(self._factor_batch, np.array(data, dtype=_host_dtype(data)))

    def _factor_batch(self, data: np.ndarray) -> np.ndarray:
        batch = data.shape[:-1]
        flat = data.reshape(-1, data.shape[-1])
        out = np.empty(flat.shape[0], np.int32)
        for i in range(flat.shape[0]):  # loop over a vmap batch, not over matrix entries
            lu = self._factor_one(np.array(flat[i]))
            self.cfg.cache.count("factorizations")
            out[i] = FAILED_HANDLE if lu is None else self.cfg.cache.put(lu)
        return out.reshape(batch)

    def _refactor(self, h: int, data: np.ndarray) -> Any | None:
        """Refactor an evicted handle (on the LU thread) and put it back in the cache."""
        lu = self._factor_one(data)
        self.cfg.cache.count("refactorizations")
        if lu is not None:
            self.cfg.cache.reinsert(h, lu)
        return lu

    def _solve_one(self, h: int, data: np.ndarray | None, b: np.ndarray) -> np.ndarray | None:
        """Solve with the factorization of handle ``h``; None when it was evicted and no
        ``data`` was given to refactor it."""
        if h == IDENTITY_HANDLE:
            return b
        if h == FAILED_HANDLE:
            return np.full_like(b, np.nan)
        lu = self.cfg.cache.get(h)
        if lu is None:  # evicted (or another process): refactor from the data we carry
            if data is None:
                return None
            lu = self.cfg.cache.run(self._refactor, h, np.array(data, dtype=_host_dtype(data)))
            if lu is None:
                return np.full_like(b, np.nan)
        t0 = time.perf_counter()
        x = lu.solve(np.asarray(b, dtype=_host_dtype(b)))
        self.cfg.cache.count("solve_s", time.perf_counter() - t0)
        return x

    def _host_solve_cached(self, handles: np.ndarray, b: np.ndarray) -> tuple:
        """Fast path: solve with cached factorizations only (no matrix data crosses over);
        ``hit`` is False where the factorization was evicted."""
        b = np.asarray(b)
        batch = b.shape[:-1]
        hs = np.asarray(handles).reshape(-1)
        bs = b.reshape(-1, b.shape[-1])
        out = np.empty(bs.shape, b.dtype)
        hit = np.ones(bs.shape[0], dtype=bool)
        for i in range(bs.shape[0]):  # loop over a vmap batch
            x = self._solve_one(int(hs[i]), None, bs[i])
            if x is None:
                hit[i] = False
                out[i] = 0.0
            else:
                self.cfg.cache.count("solves")
                out[i] = x
        return out.reshape(b.shape), hit.reshape(batch)

    def _host_solve(
        self,
        handles: np.ndarray,
        data: np.ndarray,
        b: np.ndarray,
        hit: np.ndarray | None = None,
        x: np.ndarray | None = None,
    ) -> np.ndarray:
        """Slow path: refactor evicted factorizations from ``data``; entries already solved
        by the fast path (``hit``) are copied from ``x``."""
        b = np.asarray(b)
        hs = np.asarray(handles).reshape(-1)
        ds = np.asarray(data).reshape(-1, np.shape(data)[-1])
        bs = b.reshape(-1, b.shape[-1])
        hits = None if hit is None else np.asarray(hit).reshape(-1)
        xs = None if x is None else np.asarray(x).reshape(bs.shape)
        out = np.empty(bs.shape, b.dtype)
        for i in range(bs.shape[0]):  # loop over a vmap batch
            if hits is not None and hits[i]:
                out[i] = xs[i]
                continue
            self.cfg.cache.count("solves")
            out[i] = self._solve_one(int(hs[i]), ds[i], bs[i])
        return out.reshape(b.shape)

    # traced side ---------------------------------------------------------------------
    def factor(self, data: jax.Array) -> Any:
        handle = jax.pure_callback(
            self._host_factor,
            jax.ShapeDtypeStruct((), jnp.int32),
            data,
            vmap_method="broadcast_all",
        )
        return (data, handle)

    def identity(self, data: jax.Array) -> Any:
        return (data, jnp.asarray(IDENTITY_HANDLE, jnp.int32))

    def solve(self, state: Any, b: jax.Array) -> jax.Array:
        data, handle = state
        # Fast path without the matrix data (copying it into every callback costs ~0.1 ms at
        # n = 2048 and ~1.5 ms at n = 32768 per solve); only when the factorization was
        # evicted does a second callback carry the data to refactor it. Under vmap the cond
        # becomes a select, so the second callback runs but only copies the hits through.
        x, hit = jax.pure_callback(
            self._host_solve_cached,
            (jax.ShapeDtypeStruct(b.shape, b.dtype), jax.ShapeDtypeStruct((), jnp.bool_)),
            handle,
            b,
            vmap_method="broadcast_all",
        )

        def refactor(x):
            return jax.pure_callback(
                self._host_solve,
                jax.ShapeDtypeStruct(b.shape, b.dtype),
                handle,
                data,
                b,
                hit,
                x,
                vmap_method="broadcast_all",
            )

        return jax.lax.cond(hit, lambda x: x, refactor, x)

    def solve_checked(self, state: Any, b: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(x, ok)``, ``ok`` False when the solve gave non-finite values (a singular matrix
        returns NaN)."""
        x = self.solve(state, b)
        return x, jnp.all(jnp.isfinite(x))
