"""Prepared sparse Jacobians: compressed AD passes and decompression.

Given a pattern and its coloring, a Jacobian costs one forward pass (JVP) per column color and
one reverse pass (VJP) per row color, batched with `jax.vmap` in a single jit-compiled function.
The compressed results are laid out flat, color-major — ``concat(Bc.ravel(), Br.ravel())`` with
``Bc`` of shape ``(ncolors_column, m)`` and ``Br`` of shape ``(ncolors_row, n)`` — and the
coloring's decompression plan turns them into the nonzero values in the pattern's CSC order with
one gather (direct decompression) or a short vectorized sequence (substitution).

References:
    A. Griewank and A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM, 2008, ch. 8 (compressed
    Jacobians). T. F. Coleman and J. J. Moré, "Estimation of sparse Jacobian matrices and graph
    coloring problems", SIAM J. Numer. Anal. 20 (1983).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ._verify import verify_jacobian, verify_symmetric
from .coloring._api import symmetric_candidates
from .errors import (
    NonFiniteError,
    PrecisionError,
    ShapeError,
    TracingError,
)
from .pattern import SparsityPattern

__all__ = ["SparseJacobian", "prepare_jacobian", "jacobian"]

_MODES = ("auto", "forward", "reverse", "bidirectional")
_SEEDS = ("auto", "constant", "colors")
# seeds="auto" embeds the one-hot seeds as constants up to this many seed entries (4 MB of
# float64). Constant seeds let XLA fold every part of the tangent computation that depends on the
# seeds alone (a linear stencil's contribution) at compile time: 1.3-4x faster Jacobians on the
# example problems with equal compile time up to ~4e5 entries; at 1.6e6 entries (Brusselator
# N = 256) compilation took 2.2x longer, so larger problems build the seeds from the colors.
_CONSTANT_SEEDS_MAX = 1 << 19
# fast_compile=None compiles small programs for compile speed: XLA's CPU compile has a fixed cost
# of ~25-40 ms per program, and for small programs LLVM's optimizations and the MLIR fusion
# emitters add as much again while saving only 0.01-0.15 ms per evaluation. Measured (JAX 0.10,
# compile ms / evaluation us, default -> fast): Brusselator N = 16 99 -> 44 / 49 -> 130,
# flame_1d(250) 153 -> 51 / 47 -> 101, reservoir(300) 148 -> 51 / 53 -> 118, Brusselator N = 32
# 119 -> 55 / 123 -> 280; the optimized compile repays itself only after 400-3000 Jacobians
# (solve_ivp's BDF and Radau take 5-200). JAX 0.11+ has no legacy emitters; level 0 alone saves
# 23-41% of the compile there.
_FAST_COMPILE_MAX = 1 << 15
_FAST_COMPILE_OPTIONS = {
    "xla_backend_optimization_level": 0,
    "xla_cpu_use_fusion_emitters": False,
}
_UNSUPPORTED_COMPILE_OPTIONS: set[str] = set()  # options this process's XLA refused


def _compiler_options(fast: bool) -> dict | None:
    if not fast:
        return None
    return {k: v for k, v in _FAST_COMPILE_OPTIONS.items() if k not in _UNSUPPORTED_COMPILE_OPTIONS}


# ---------------------------------------------------------------------------- input checks
def _x64_enabled() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def _as_array(value: Any, name: str, call: str) -> Any:
    """Check one argument: a numeric array-like, float64 only when JAX x64 is enabled."""
    if isinstance(value, jax.Array):  # concrete JAX arrays and tracers alike
        if value.dtype == jnp.float64 and not _x64_enabled():  # pragma: no cover - JAX downcasts
            raise PrecisionError(f"{call}: {name} is float64 but JAX's 64-bit mode is disabled.")
        return value
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{call}: {name} must be an array, got {type(value).__name__}.") from exc
    if arr.dtype == object:
        raise TypeError(
            f"{call}: {name} must be a numeric array, got an object array "
            f"(ragged lists or Python objects?)."
        )
    if arr.dtype == np.float64 and not _x64_enabled():
        raise PrecisionError(
            f"{call}: {name} is float64 but JAX's 64-bit mode is disabled, so JAX would silently "
            "compute in float32 (a stiff solver then stalls on a Jacobian with 1e-7 relative "
            "error). Enable it before any JAX computation:\n"
            '    import jax; jax.config.update("jax_enable_x64", True)\n'
            "or set the environment variable JAX_ENABLE_X64=1; or pass float32 data on purpose."
        )
    return arr


def _host_example(value: Any) -> Any:
    """A state split over several devices, gathered once onto the host for the host-side
    preparation (tracing, detection, the choice of pass direction, verification); under
    ``jax.distributed`` every process gets the whole state. Other values pass through."""
    if not isinstance(value, jax.Array) or isinstance(value, jax.core.Tracer):
        return value
    if len(value.sharding.device_set) <= 1:
        return value
    if value.is_fully_addressable:
        return np.asarray(value)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(value, tiled=True))


def _check_finite(value: Any, name: str, call: str) -> None:
    if isinstance(value, jax.core.Tracer):
        return  # inside jit/vmap: values are not known here
    arr = np.asarray(value)
    if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))
        raise NonFiniteError(
            f"{call}: {name} contains {bad.size} non-finite value(s) (NaN or inf), first at "
            f"flat index {bad[:5].tolist()}. The solver state has diverged or the initial "
            "condition is invalid; a Jacobian there would be meaningless."
        )


def _is_pytree(x: Any) -> bool:
    """Whether a differentiated argument is a container of arrays (a dict, a dataclass, arrays
    of different shapes...) rather than one array-like (an array, a scalar, a list of
    numbers)."""
    if isinstance(x, np.ndarray | jax.Array | np.generic | int | float | complex):
        return False
    leaves = jax.tree.leaves(x)
    if len(leaves) == 1 and leaves[0] is x:
        return False
    if isinstance(x, list | tuple):  # numbers, or equally shaped arrays, stack into one array
        try:
            return np.asarray(x).dtype == object
        except Exception:  # ragged, or traced values
            return True
    return True


def _raveled(f: Callable, args: Sequence[Any], argnums: int, call: str) -> tuple[Callable, list]:
    """``f`` and ``args`` with the pytree ``args[argnums]`` raveled into one vector, and ``f``'s
    output raveled too (both with `jax.flatten_util.ravel_pytree`: leaves in ``jax.tree``
    order, each in C order, as `jacobian_sparsity` orders them). Each leaf is checked as an
    array argument is."""
    from jax.flatten_util import ravel_pytree

    x = args[argnums]
    paths, tree = jax.tree_util.tree_flatten_with_path(x)
    leaves = []
    for path, leaf in paths:
        name = f"args[{argnums}]{jax.tree_util.keystr(path)}"
        leaf = _as_array(leaf, name, call)
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"{call}: every leaf of the differentiated argument must be a floating-point "
                f"array; {name} has dtype {leaf.dtype}. Convert it with .astype(float), or "
                "pass it through another argument."
            )
        leaves.append(leaf)
    xflat, unravel = ravel_pytree(jax.tree.unflatten(tree, leaves))

    def f_flat(*a: Any) -> Any:
        a = list(a)
        a[argnums] = unravel(a[argnums])
        return ravel_pytree(f(*a))[0]

    args = list(args)
    args[argnums] = xflat
    return f_flat, args


def _tracing_error(exc: Exception, call: str) -> TracingError:
    """Translate JAX's tracing failures into an error that says what to write instead."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, jax.errors.TracerArrayConversionError) or "__array__" in text:
        hint = (
            "the function converts a traced JAX value to a NumPy array (a numpy function such as "
            "np.sin/np.roll/np.asarray applied to its input). Use jax.numpy (import jax.numpy as "
            "jnp; jnp.sin, jnp.roll, ...) throughout the function."
        )
    elif "immutable" in text or "item assignment" in text:
        hint = (
            "the function assigns into an array in place (y[i] = ...). JAX arrays are immutable: "
            "write y = y.at[i].set(...) (or .add(...)) instead, or build the output with "
            "jnp.concatenate / jnp.stack."
        )
    elif isinstance(exc, jax.errors.ConcretizationTypeError | jax.errors.TracerBoolConversionError):
        hint = (
            "the function uses Python control flow (if/while/int()/float()) on a traced value. "
            "Use jnp.where / jax.lax.cond / jax.lax.while_loop, or mark the argument static."
        )
    else:
        hint = "the function must be written with jax.numpy / jax.lax operations only."
    return TracingError(f"{call}: the function is not traceable by JAX: {hint}\n(JAX said: {text})")


def _trace(f: Callable, args: Sequence[Any], call: str) -> tuple[Any, jax.ShapeDtypeStruct]:
    """Trace ``f(*args)`` once: its closed jaxpr (reused by detection and by the choice of pass
    directions) and its output's shape and dtype; JAX's tracing failures become a
    `TracingError` that says what to write instead."""
    try:
        closed, out = jax.make_jaxpr(f, return_shape=True)(*args)
    except TracingError:
        raise
    except (
        jax.errors.TracerArrayConversionError,
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerBoolConversionError,
        jax.errors.TracerIntegerConversionError,
    ) as exc:
        raise _tracing_error(exc, call) from exc
    except TypeError as exc:
        if "immutable" in str(exc) or "item assignment" in str(exc):
            raise _tracing_error(exc, call) from exc
        raise
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ShapeError(
            f"{call}: the function must return a single array, got {jax.tree.structure(out)}. "
            "Concatenate the outputs (jnp.concatenate([a.ravel(), b.ravel()]))."
        )
    return closed, out


def _checked_inputs(
    f: Callable, args: Sequence[Any], argnums: Any, call: str, check_finite: bool
) -> tuple[list[Any], Any, jax.ShapeDtypeStruct, Any]:
    """The checks every prepared derivative starts with: a callable, a valid ``argnums``, a
    floating-point (and finite) differentiated argument, and a traceable ``f``.

    Returns:
        ``(args, x, out, closed)``: the arguments as a list with ``args[argnums]`` checked, that
        argument, the shape/dtype of ``f(*args)`` and its closed jaxpr.
    """
    if not callable(f):
        raise TypeError(f"{call}: f must be callable, got {type(f).__name__}.")
    if not isinstance(argnums, (int, np.integer)) or not 0 <= argnums < len(args):
        raise ValueError(
            f"{call}: argnums must be the index of one argument (0 <= argnums < {len(args)}), "
            f"got {argnums!r}."
        )
    args = list(args)
    x = _as_array(_host_example(args[argnums]), f"args[{argnums}]", call)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(
            f"{call}: the differentiated argument must be a floating-point array, got dtype "
            f"{jnp.result_type(x)}; convert it with .astype(float)."
        )
    if check_finite:
        _check_finite(x, f"args[{argnums}]", call)
    args[argnums] = x
    closed, out = _trace(f, args, call)
    return args, x, out, closed


def _as_pattern(sparsity: Any, shape: tuple[int, int], call: str) -> SparsityPattern:
    if isinstance(sparsity, SparsityPattern):
        pattern = sparsity
    elif sp.issparse(sparsity):
        pattern = SparsityPattern.from_scipy(sparsity)
    else:
        arr = np.asarray(sparsity)
        if arr.ndim != 2:
            raise ShapeError(
                f"{call}: sparsity must be a SparsityPattern, a scipy sparse matrix or a 2D "
                f"array, got an array of shape {arr.shape}."
            )
        pattern = SparsityPattern.from_dense(arr)
    if pattern.shape != shape:
        raise ShapeError(
            f"{call}: sparsity has shape {pattern.shape} but the Jacobian has shape {shape} "
            "(outputs x inputs, raveled)."
        )
    return pattern


# ---------------------------------------------------------------------------- mode choice
def _time_pass(fn: Callable, *args: Any, reps: int = 3) -> float:
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def _sub_jaxprs(params: dict) -> Any:
    """The jaxprs nested in an equation's parameters (bodies of jit, cond, scan, ...)."""
    for value in params.values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                yield item.jaxpr


def _uses_custom_vjp(jaxpr: Any) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name.startswith("custom_vjp_call"):
            return True
        if any(_uses_custom_vjp(sub) for sub in _sub_jaxprs(eqn.params)):
            return True
    return False


def _has_jvp(closed: Any) -> bool:
    """False when the function whose closed jaxpr is given cannot be differentiated forward (a
    custom_vjp inside).

    JAX reports a custom_vjp under jvp only when lowering; scanning the jaxpr for the
    primitive is much cheaper than lowering a JVP program just to find out (a custom_vjp
    inside a custom_jvp's primal code is reported too: reverse mode is then used, which is
    always correct).
    """
    return not _uses_custom_vjp(closed.jaxpr)


# ---------------------------------------------------------------------------- the core object
class SparseJacobian:
    """A sparse Jacobian of ``f`` with respect to ``args[argnums]``, prepared once.

    Built by [`prepare_jacobian`][stiffasd.prepare_jacobian]; detection and coloring are done,
    and `data` is a pure JAX function (jit-, vmap- and grad-compatible) returning the nonzero
    values in the pattern's CSC order.

    Attributes:
        pattern: the `SparsityPattern` of ``d f(args).ravel() / d args[argnums].ravel()``.
        coloring: the coloring result used for the compressed passes.
        mode: ``"forward"`` (JVPs), ``"reverse"`` (VJPs) or ``"bidirectional"`` (both).
        argnums: which argument is differentiated.
        seeds: ``"constant"`` or ``"colors"``: how the compiled passes get their one-hot seeds
            (see ``seeds`` in `prepare_jacobian`).
        fast_compile: whether `data_jit` is compiled for compile speed rather than evaluation
            speed (see ``fast_compile`` in `prepare_jacobian`).
        out_shape: the shape of ``f(*args)``.
    """

    def __init__(
        self,
        f: Callable,
        args: Sequence[Any],
        argnums: int,
        pattern: SparsityPattern,
        coloring: Any,
        mode: str,
        chunk_size: int | None = None,
        seeds: str = "auto",
        fast_compile: bool | None = None,
    ):
        if seeds not in _SEEDS:
            raise ValueError(f"SparseJacobian: seeds must be one of {_SEEDS}, got {seeds!r}.")
        self.f = f
        self.argnums = argnums
        self.pattern = pattern
        self.coloring = coloring
        self.mode = mode
        self.chunk_size = chunk_size
        x = args[argnums]
        self._in_shape = tuple(np.shape(x))
        self._in_dtype = jnp.result_type(x)
        m, n = pattern.shape
        # Colors are small int arrays (length n and m); seeds are built from them inside the
        # compiled function, never stored as n-by-colors constants.
        self._col_colors = np.asarray(coloring.column_colors, dtype=np.int32)
        self._row_colors = np.asarray(coloring.row_colors, dtype=np.int32)
        self._ncol = int(coloring.ncolors_column)
        self._nrow = int(coloring.ncolors_row)
        entries = self._ncol * n + self._nrow * m
        if seeds == "auto":
            seeds = "constant" if entries <= _CONSTANT_SEEDS_MAX else "colors"
        self.seeds = seeds
        if fast_compile is None:
            fast_compile = entries <= _FAST_COMPILE_MAX
        self.fast_compile = bool(fast_compile)
        # Index arrays for scipy, in the dtype scipy keeps without copying.
        idx_dtype = np.int32 if max(m, n, pattern.nnz) < 2**31 - 1 else np.int64
        self._csc_indices = pattern.csc_indices.astype(idx_dtype)
        self._csc_indptr = pattern.csc_indptr.astype(idx_dtype)
        # Direct decompression is one gather. XLA's CPU gather is several times faster with
        # int32 than with int64 indices (measured: 0.15 vs 0.79 ms for 196k entries).
        gather = getattr(coloring, "gather", None)
        self._gather = None
        if getattr(coloring, "decompression", "direct") == "direct" and gather is not None:
            size = self._ncol * m + self._nrow * n
            self._gather = np.asarray(gather, dtype=np.int32 if size < 2**31 else np.int64)
        # The compiled function takes the index arrays (colors, gather) as arguments: embedded
        # as constants they would be compiled into the program, which made compile time grow
        # with the problem (measured at n = 32768: 1.2 s with constants).
        self._compile_options = _compiler_options(fast_compile)
        self._compiled = jax.jit(self._data_from, compiler_options=self._compile_options)
        self._device_consts: tuple | None = None
        self.timings: dict[str, float] = {}
        self.out_shape: tuple[int, ...] = (m,)  # f's output shape (set by prepare_jacobian)

    def _consts(self) -> tuple:
        if self.seeds == "constant":  # the seeds are built at trace time from host arrays
            return (None, None, self._gather)
        return (self._col_colors, self._row_colors, self._gather)

    def _seeds(self, colors: Any, k: int, dtype: Any) -> Any:
        """The ``k`` one-hot seeds of a color array (a vector, or shaped like the input), stacked
        along a new first axis: host constants or built in the compiled function from the colors
        passed to it (see ``seeds`` in `prepare_jacobian`)."""
        xp = np if isinstance(colors, np.ndarray) else jnp
        ks = xp.arange(k, dtype=colors.dtype).reshape((k,) + (1,) * colors.ndim)
        return (colors[None] == ks).astype(dtype)

    def data_jit(self, *args: Any) -> Any:
        """`data`, jit-compiled once per input structure; the index arrays are moved to the
        device once and passed by reference at every call.

        A state split over several devices gives the same values, but every device receives
        the whole compressed buffer; `stiffasd.sharding.shard_jacobian` keeps the values split
        the way the state is, with only halos moving."""
        if self._device_consts is None:
            self._device_consts = tuple(
                None if c is None else jax.device_put(c) for c in self._consts()
            )
        try:
            return self._compiled(self._device_consts, *args)
        except Exception as exc:  # XLA versions differ in the debug options they accept
            refused = [k for k in self._compile_options or {} if f"'{k}'" in str(exc)]
            if not refused:
                raise
            _UNSUPPORTED_COMPILE_OPTIONS.update(refused)
            self._compile_options = _compiler_options(self.fast_compile)
            self._compiled = jax.jit(self._data_from, compiler_options=self._compile_options)
            return self.data_jit(*args)

    # -- compressed passes --------------------------------------------------------------
    def _flat_fn(self, args: Sequence[Any]) -> tuple[Callable, Any]:
        args = list(args)
        x = args[self.argnums]
        if _is_pytree(x):  # prepared for a pytree argument: f takes it raveled (`_raveled`)
            from jax.flatten_util import ravel_pytree

            x = ravel_pytree(x)[0]
        if not isinstance(x, jax.Array):  # host data: reshape with numpy (no eager XLA op)
            x = np.asarray(x)
        shape = x.shape

        def fx(xflat):
            a = list(args)
            a[self.argnums] = xflat.reshape(shape)
            return jnp.ravel(self.f(*a))

        return fx, x.reshape(-1)

    def _shaped_fn(self, args: Sequence[Any]) -> tuple[Callable, Any]:
        """``f`` as a function of the differentiated argument in its own shape (no flattening:
        a reshape of a sharded array to one axis would move data between devices)."""
        args = list(args)

        def fx(x):
            a = list(args)
            a[self.argnums] = x
            return jnp.reshape(self.f(*a), self.out_shape)

        return fx, args[self.argnums]

    def _batched(self, fn: Callable, seeds: Any) -> Any:
        if self.chunk_size is None or seeds.shape[0] <= self.chunk_size:
            return jax.vmap(fn)(seeds)
        k = seeds.shape[0]
        c = self.chunk_size
        pad = (-k) % c
        padded = jnp.concatenate([seeds, jnp.zeros((pad,) + seeds.shape[1:], seeds.dtype)])
        out = jax.lax.map(jax.vmap(fn), padded.reshape((-1, c) + seeds.shape[1:]))
        return out.reshape((-1,) + out.shape[2:])[:k]

    def compressed(self, *args: Any) -> Any:
        """The flat compressed buffer ``concat(Bc.ravel(), Br.ravel())`` (see module doc)."""
        return self._compressed_from(self._consts(), *args)

    def _compressed_from(self, consts: tuple, *args: Any) -> Any:
        parts = [b.reshape(-1) for b in self._passes(consts, args) if b is not None]
        if not parts:
            return jnp.zeros((0,), self._in_dtype)
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)

    def _passes(self, consts: tuple, args: Sequence[Any], shaped: bool = False) -> tuple:
        """The compressed products ``(Bc, Br)`` (None for a direction without colors).

        ``Bc`` holds one JVP per column color, ``Br`` one VJP per row color, stacked along the
        first axis: shapes ``(ncol, m)`` and ``(nrow, n)``, or with ``shaped=True``
        ``(ncol, *out_shape)`` and ``(nrow, *in_shape)``, where the colors in ``consts`` may be
        shaped like the output and input too (a sharded evaluation keeps every array in its
        natural shape so that it stays split the way the state is, see `stiffasd.sharding`).
        """
        col_colors, row_colors, _ = consts
        if self.seeds == "constant":  # host arrays: the seeds become trace-time constants
            col_colors, row_colors = self._col_colors, self._row_colors
        else:  # traced (or at most n-sized constant) colors: the seeds are built in the graph
            col_colors, row_colors = (None if c is None else jnp.asarray(c) for c in consts[:2])
        fx, x = self._shaped_fn(args) if shaped else self._flat_fn(args)
        bc = br = None
        if self._ncol:

            def jvp_one(seed):
                return jax.jvp(fx, (x,), (seed,))[1]

            seeds = self._seeds(col_colors.reshape(np.shape(x)), self._ncol, x.dtype)
            bc = self._batched(jvp_one, seeds)
        if self._nrow:
            y, vjp_fn = jax.vjp(fx, x)
            seeds = self._seeds(row_colors.reshape(y.shape), self._nrow, y.dtype)
            br = self._batched(lambda s: vjp_fn(s)[0], seeds)
        return bc, br

    def data(self, *args: Any) -> Any:
        """Nonzero values of the Jacobian at ``args``, in the pattern's CSC order (pure JAX)."""
        return self._data_from(self._consts(), *args)

    def _data_from(self, consts: tuple, *args: Any) -> Any:
        # XLA may fuse the gather below into the passes' elementwise tail (one field, no
        # concatenate), recomputing each nonzero's compressed value at its gathered index. No
        # optimization barrier is put between them on purpose: the fusion costs 1.5-2x on 3D
        # Allen-Cahn at N = 20 (index arithmetic over a non-power-of-two grid) but saves 1.3x on
        # Robertson-diffusion and at N = 16 or 32 (docs/benchmarks.md, "Studies").
        flat = self._compressed_from(consts, *args)
        gather = consts[2]
        if gather is not None:
            return flat[jnp.asarray(gather)]
        return self.coloring.decompress_flat(flat, xp=jnp)

    # -- host-side conveniences ----------------------------------------------------------
    def csc(self, *args: Any) -> sp.csc_matrix:
        """The Jacobian as a `scipy.sparse.csc_matrix`; only ``data`` is new at each call."""
        data = np.asarray(self.data_jit(*args))
        return sp.csc_matrix(
            (data, self._csc_indices, self._csc_indptr), shape=self.pattern.shape, copy=False
        )

    def bcoo(self, *args: Any):
        """The Jacobian as a `jax.experimental.sparse.BCOO` (traceable)."""
        from jax.experimental import sparse as jsparse

        p = self.pattern
        idx = np.stack([p.csc_indices, p.csc_cols], axis=1)
        return jsparse.BCOO((self.data(*args), jnp.asarray(idx)), shape=p.shape)

    @property
    def ncolors(self) -> int:
        """Number of compressed passes per Jacobian."""
        return int(self.coloring.ncolors)

    def __repr__(self) -> str:
        m, n = self.pattern.shape
        return (
            f"SparseJacobian({m}x{n}, nnz={self.pattern.nnz}, mode={self.mode!r}, "
            f"passes={self._ncol} JVP + {self._nrow} VJP)"
        )


# Automatic bicoloring is sensitive to the vertex order, and each try costs up to the sum of
# squared degrees (O(n^2) with a dense row or column) plus the merging of color classes, which on
# a poor try with hundreds of colors dominates (order="best", all seven orders: 1.0-1.5 s on the
# 300-cell reservoir, 6.7 s at 1e4 cells). So the orders are tried one at a time, DSatur first,
# until one beats both one-sided lower bounds (reservoir: DSatur, 3 + 4 colors, 0.06 s at 1e4
# cells).
# Random comes second: the one order that bicolors the plain arrowhead (dense first row and
# column plus the diagonal) with 3 colors, where every deterministic order needs n.
_BICOLOR_ORDERS = ("saturation_degree", "random", "largest_first", "natural", "smallest_last")
# the range `vjp_cost` is clipped to when measured (see `_measure_vjp_ratio`)
_VJP_COST_RANGE = (0.5, 10.0)


def _choose_coloring(
    pattern: SparsityPattern,
    mode: str,
    order: str,
    forward_ok: bool,
    vjp_cost: float | Callable[[], float],
) -> tuple[str, Any]:
    from .coloring import color

    candidates: list[tuple[str, Any]] = []
    # Column coloring needs at least as many colors as the densest row has entries, row coloring
    # as many as the densest column: with a bicoloring in hand, a direction whose lower bound
    # already costs more for every VJP/JVP cost ratio is not colored at all (on a dense row or
    # column its coloring is O(n^2) work for n colors).
    col_bound = int(pattern.row_counts.max()) if pattern.nnz else 0
    row_bound = int(pattern.col_counts.max()) if pattern.nnz else 0
    bi = None
    if mode == "bidirectional" or (mode == "auto" and forward_ok and _bidirectional_worth(pattern)):
        try:
            if mode == "bidirectional":
                bi = color(pattern, partition="bidirectional", order=order)
            else:
                bi = _auto_bicoloring(pattern, min(col_bound, row_bound))
            candidates.append(("bidirectional", bi))
        except (NotImplementedError, ValueError):
            if mode == "bidirectional":
                raise
    lo, hi = (float(vjp_cost), float(vjp_cost)) if not callable(vjp_cost) else _VJP_COST_RANGE
    if mode in ("auto", "forward") and forward_ok:
        # forward loses for every ratio r when col_bound >= ncol_b + r * nrow_b at r = hi
        if mode == "forward" or bi is None or col_bound < bi.ncolors_column + hi * bi.ncolors_row:
            candidates.append(("forward", color(pattern, partition="column", order=order)))
    if mode in ("auto", "reverse"):
        # reverse loses when r * row_bound >= ncol_b + r * nrow_b for every r, worst at r = lo
        if mode == "reverse" or bi is None or lo * (row_bound - bi.ncolors_row) < bi.ncolors_column:
            candidates.append(("reverse", color(pattern, partition="row", order=order)))
    if not candidates:
        raise ValueError(
            "jacobian: mode='forward' was requested but the function has no forward derivative "
            "(it contains a jax.custom_vjp); use mode='reverse' or mode='auto'."
        )
    if len(candidates) == 1:
        return candidates[0]
    forward = next((c for c in candidates if c[0] == "forward"), None)
    if (
        callable(vjp_cost)
        and forward is not None
        and all(c[1].ncolors >= forward[1].ncolors for c in candidates)
    ):
        # A VJP costs at least a JVP in practice: with no fewer passes, reverse cannot win, and
        # timing it would only add noise to the choice.
        return forward
    ratio = vjp_cost() if callable(vjp_cost) else float(vjp_cost)

    def cost(c):
        return c[1].ncolors_column + ratio * c[1].ncolors_row

    return min(candidates, key=cost)


def _auto_bicoloring(pattern: SparsityPattern, bound: int) -> Any:
    """The bicoloring for ``mode="auto"``: see `_BICOLOR_ORDERS`."""
    from .coloring import color

    best = None
    for o in _BICOLOR_ORDERS:
        bi = color(pattern, partition="bidirectional", order=o)
        if best is None or bi.ncolors < best.ncolors:
            best = bi
        if best.ncolors < bound:
            break
    return best


def _bidirectional_worth(pattern: SparsityPattern) -> bool:
    """Bicoloring only pays off when a dense-ish row and column both exist."""
    m, n = pattern.shape
    if pattern.nnz == 0:
        return False
    return bool(pattern.row_counts.max() > 8 * max(1.0, pattern.nnz / max(m, 1))) and bool(
        pattern.col_counts.max() > 8 * max(1.0, pattern.nnz / max(n, 1))
    )


def prepare_jacobian(
    f: Callable,
    *args: Any,
    argnums: int = 0,
    sparsity: Any = None,
    mode: str = "auto",
    order: str = "largest_first",
    strict: bool = False,
    verify: bool = False,
    vjp_cost: float | None = None,
    chunk_size: int | None = None,
    check_finite: bool = True,
    structure: str = "nonsymmetric",
    seeds: str = "auto",
    fast_compile: bool | None = None,
) -> SparseJacobian:
    """Detect, color and compile the sparse Jacobian of ``f`` with respect to ``args[argnums]``.

    Args:
        f: a JAX-traceable function of ``*args`` returning one array.
        *args: example arguments (their shapes and dtypes define the prepared Jacobian; the
            detected pattern is global: valid for every value).
        argnums: which argument to differentiate: an array, or a pytree of arrays (a dict
            state, a tuple of fields...). A pytree is raveled as by
            `jax.flatten_util.ravel_pytree` (leaves in ``jax.tree`` order, each in C order),
            and so is ``f``'s output then: the Jacobian is that of the raveled function, and
            the prepared object takes the pytree as it is.
        sparsity: a known pattern (`SparsityPattern`, scipy sparse matrix or dense boolean array)
            of shape ``(f(*args).size, args[argnums].size)``; skips detection.
        mode: ``"forward"`` (one JVP per column color), ``"reverse"`` (one VJP per row color),
            ``"bidirectional"`` (both), or ``"auto"``: the cheapest by number of passes times
            the relative cost of a VJP (``vjp_cost``; measured once on ``f`` when not given and
            when it decides the choice). Functions with a ``jax.custom_vjp`` get reverse mode.
        order: vertex order for the greedy coloring (see `stiffasd.color`).
        strict: raise `UnsupportedPrimitiveError` instead of warning on primitives without a rule.
        verify: compare with dense AD (or, for large ``n``, with random JVPs/VJPs) at ``args`` and
            at a random perturbation of them; raise `PatternMismatchError` if the pattern misses
            nonzeros.
        vjp_cost: relative cost of one VJP against one JVP for ``mode="auto"``.
        chunk_size: evaluate at most this many seeds at once (bounds memory for many colors).
        seeds: how the compiled function gets its one-hot seeds. ``"constant"``: embedded as
            constants, so that XLA folds the seed-only part of the passes (the contribution of
            linear operators such as a stencil) at compile time, 1.3-4x faster evaluations;
            ``"colors"``: built inside the compiled function from the color vectors passed as
            arguments, so that compile time does not grow with ``n x colors``; ``"auto"``
            (default): constant up to 2^19 seed entries.
        fast_compile: compile `SparseJacobian.data_jit` for compile speed (``True``: LLVM
            optimization level 0 and, where the XLA version has them, the legacy fusion
            emitters) or for evaluation speed (``False``). ``None`` (default): fast for small
            problems (up to 2^15 seed entries, e.g. ``n = 2048`` with 12 colors), where it
            halves the compile time, the largest part of the preparation, for 0.05-0.15 ms
            more per Jacobian. The values agree to rounding (1e-14 relative) either way.
            Jacobians traced into a caller's ``jax.jit`` (`data`, the diffrax solvers) are
            compiled with the caller's program and options.
        check_finite: raise `NonFiniteError` if ``args[argnums]`` contains NaN or inf.
        structure: ``"nonsymmetric"`` (default) or ``"symmetric"``: the Jacobian is symmetric
            (the gradient of an energy, a self-adjoint discretization). The pattern must be
            symmetric (`ShapeError` otherwise); symmetric coloring needs fewer forward passes.
            With ``verify=True`` the symmetry of the values is checked numerically too.

    Returns:
        A `SparseJacobian`.
    """
    call = "stiffasd.prepare_jacobian"
    if mode not in _MODES:
        raise ValueError(f"{call}: mode must be one of {_MODES}, got {mode!r}.")
    if seeds not in _SEEDS:
        raise ValueError(f"{call}: seeds must be one of {_SEEDS}, got {seeds!r}.")
    if structure not in ("nonsymmetric", "symmetric"):
        raise ValueError(
            f"{call}: structure must be 'nonsymmetric' or 'symmetric', got {structure!r}."
        )
    if structure == "symmetric" and mode not in ("auto", "forward"):
        raise ValueError(
            f"{call}: structure='symmetric' uses forward passes (J v = J^T v); got mode={mode!r}, "
            "use mode='auto' or mode='forward'."
        )
    if isinstance(argnums, int | np.integer) and 0 <= argnums < len(args):
        if _is_pytree(args[argnums]):  # a pytree state: the Jacobian of the raveled function
            f, args = _raveled(f, args, argnums, call)
    args, x, out, closed = _checked_inputs(f, args, argnums, call, check_finite)
    m, n = int(np.prod(out.shape)), int(np.size(x))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if sparsity is None:
        from .detect._api import traced_jacobian_sparsity

        pattern = traced_jacobian_sparsity(f, tuple(args), argnums, "global", strict, closed)
    else:
        pattern = _as_pattern(sparsity, (m, n), call)
    timings["detect"] = time.perf_counter() - t0

    forward_ok = _has_jvp(closed)
    if mode == "forward" and not forward_ok:
        raise ValueError(
            f"{call}: mode='forward' but the function has no forward-mode derivative (it uses a "
            "jax.custom_vjp); use mode='reverse' or mode='auto'."
        )
    if vjp_cost is None:

        def vjp_cost():  # measured only when the choice depends on it
            probe = SparseJacobian.__new__(SparseJacobian)  # only for the flat wrapper
            probe.f, probe.argnums = f, argnums
            return _measure_vjp_ratio(*probe._flat_fn(args))

    t0 = time.perf_counter()
    if structure == "symmetric":  # star / acyclic coloring, as for Hessians
        if not forward_ok:
            raise ValueError(
                f"{call}: structure='symmetric' needs forward passes but the function has no "
                "forward-mode derivative (it uses a jax.custom_vjp); use structure='nonsymmetric'."
            )
        chosen_mode, coloring = "forward", symmetric_candidates(pattern, order=order, call=call)[0]
    else:
        chosen_mode, coloring = _choose_coloring(pattern, mode, order, forward_ok, vjp_cost)
    timings["color"] = time.perf_counter() - t0
    sj = SparseJacobian(
        f, args, argnums, pattern, coloring, chosen_mode, chunk_size, seeds, fast_compile
    )
    sj.timings = timings
    sj.out_shape = tuple(out.shape)
    if verify:
        if structure == "symmetric":
            verify_symmetric(sj, *args)
        verify_jacobian(sj, *args)
    return sj


def _measure_vjp_ratio(fx: Callable, x: Any) -> float:
    """Time one JVP and one VJP of the compiled function; the ratio, clipped to
    `_VJP_COST_RANGE`."""
    jvp = jax.jit(lambda x, v: jax.jvp(fx, (x,), (v,))[1])
    vjp = jax.jit(lambda x, w: jax.vjp(fx, x)[1](w)[0])
    v = jnp.ones_like(x)
    w = jnp.ones(jax.eval_shape(fx, x).shape, x.dtype)
    t_f = _time_pass(jvp, x, v)
    t_r = _time_pass(vjp, x, w)
    return float(np.clip(t_r / max(t_f, 1e-9), *_VJP_COST_RANGE))


# ---------------------------------------------------------------------------- generic API
def _leaf_key(a: Any) -> tuple:
    """Shape and dtype of one argument, as the cache of prepared Jacobians keys it (arrays take
    a fast path: `jnp.result_type` costs ~8 us per call, and solvers call the Jacobian often)."""
    if isinstance(a, np.ndarray | jax.Array):
        return (a.shape, a.dtype, getattr(a, "weak_type", False))
    return (tuple(np.shape(a)), str(jnp.result_type(a)))


class _Cache:
    """Prepared Jacobians per input structure (shapes, dtypes, weak types of all arguments)."""

    def __init__(self, prepare: Callable[..., SparseJacobian]):
        self._prepare = prepare
        self._store: dict[Any, SparseJacobian] = {}

    @staticmethod
    def key(args: Sequence[Any]) -> Any:
        leaves, tree = jax.tree.flatten(list(args))
        return tuple(_leaf_key(a) for a in leaves) + (tree,)

    def get(self, args: Sequence[Any]) -> SparseJacobian:
        k = self.key(args)
        sj = self._store.get(k)
        if sj is None:
            sj = self._store[k] = self._prepare(*args)
        return sj


def jacobian(
    f: Callable,
    argnums: int = 0,
    *,
    sparsity: Any = None,
    mode: str = "auto",
    format: str = "scipy",
    **options: Any,
) -> Callable[..., Any]:
    """Sparse Jacobian function of ``f`` with respect to argument ``argnums``.

    The returned function computes the Jacobian of ``f(*args).ravel()`` with respect to
    ``args[argnums].ravel()``; detection and coloring run once per input structure. A pytree
    argument (a dict state...) and output are raveled with `jax.flatten_util.ravel_pytree`.

    Args:
        f: JAX-traceable function returning one array.
        argnums: the argument to differentiate.
        sparsity: a known pattern, as in [`prepare_jacobian`][stiffasd.prepare_jacobian].
        mode: the pass direction, as in [`prepare_jacobian`][stiffasd.prepare_jacobian].
        format: ``"scipy"`` (`scipy.sparse.csc_matrix`, host), ``"bcoo"`` (a
            `jax.experimental.sparse.BCOO`, traceable), or ``"data"`` (the CSC data vector).
        **options: further options of [`prepare_jacobian`][stiffasd.prepare_jacobian].
    """
    if format not in ("scipy", "bcoo", "data"):
        raise ValueError(
            f"stiffasd.jacobian: format must be 'scipy', 'bcoo' or 'data', got {format!r}."
        )
    cache = _Cache(
        lambda *a: prepare_jacobian(f, *a, argnums=argnums, sparsity=sparsity, mode=mode, **options)
    )

    def jac_fn(*args: Any) -> Any:
        sj = cache.get(args)
        if format == "scipy":
            return sj.csc(*args)
        if format == "bcoo":
            return sj.bcoo(*args)
        return sj.data(*args)

    jac_fn.prepared = cache.get  # type: ignore[attr-defined]
    return jac_fn


def _warn_float32(dtype: Any, call: str) -> None:
    if jnp.dtype(dtype) == jnp.float32:
        warnings.warn(
            f"{call}: the state is float32; stiff solvers usually need float64 for Newton "
            "convergence (enable jax_enable_x64 and pass float64 arrays).",
            stacklevel=3,
        )
