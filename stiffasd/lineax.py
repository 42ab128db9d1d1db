"""stiffasd's sparse LU for lineax and optimistix.

```python
import lineax as lx
import optimistix as optx
import stiffasd.lineax as slx

A = slx.SparseMatrixOperator(pattern, data)          # fixed-pattern sparse matrix (CSC values)
x = lx.linear_solve(A, b, slx.SparseLU()).value       # multifrontal LU compiled into JAX

# Newton on a nonlinear system with a sparse Jacobian: the pattern is detected once per
# function structure, the Jacobian evaluated by compressed JVPs, the LU is sparse
sol = optx.root_find(fn, optx.Newton(rtol, atol, linear_solver=slx.SparseLU()), y0, args)
# ... and implicit gradients through it, with the same sparse solve (transposed)
sol = optx.root_find(fn, solver, y0, args, adjoint=optx.ImplicitAdjoint(slx.SparseLU()))
```

* `SparseMatrixOperator`: a `lineax.AbstractLinearOperator` for a matrix with a fixed
  `stiffasd.SparsityPattern` and its values in the pattern's CSC order. Products are sparse
  (one gather, one multiply, one segment sum); only `as_matrix` forms a dense array. lineax's
  structure queries (`lineax.is_diagonal`, `lineax.is_tridiagonal`, `lineax.is_lower_triangular`,
  ...) answer from the pattern as well as from tags.
* `SparseLU`: a `lineax.AbstractLinearSolver` on `stiffasd.linalg.JaxLU` (multifrontal sparse LU
  compiled into JAX: jit, vmap, CPU and GPU). It follows lineax's solver contract (the one of
  ``lineax/_solver/lu.py``): ``init`` factors once, ``compute`` solves, ``transpose`` and
  ``conj`` reuse the factors (solves with ``A^T`` use the same LU), a failed backward-error check
  is reported as ``lineax.RESULTS.singular``, never raised inside jit. It takes a
  `SparseMatrixOperator`, or a ``lineax.JacobianLinearOperator`` / ``FunctionLinearOperator``
  (what optimistix's Newton, Chord and ``ImplicitAdjoint`` build) of a function whose Jacobian
  is sparse: the pattern is detected by `stiffasd.prepare_jacobian` once per function structure
  (cached), the values are computed with one JVP per color (Curtis, Powell & Reid 1974), and
  the matrix is factored without ever being dense.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.flatten_util import ravel_pytree

from ._cache import BuildCache
from ._jacobian import _tracing_error, prepare_jacobian
from .errors import MissingDependencyError, ShapeError
from .linalg import JaxLU, with_diagonal
from .pattern import SparsityPattern

try:
    import equinox as eqx
    import lineax as lx
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        f"stiffasd.lineax needs lineax and equinox ({_exc}); install them with "
        "`pip install 'stiffasd[lineax]'`."
    ) from _exc

__all__ = ["SparseMatrixOperator", "SparseLU"]
_CALL = "stiffasd.lineax.SparseLU (the operator's function)"


# --------------------------------------------------------------------------- operator
@lru_cache(maxsize=32)
def _csc_index(pattern: SparsityPattern) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of each nonzero in CSC order (int32), and the permutation taking CSC data
    of the pattern to CSC data of its transpose (which is the pattern's CSR order)."""
    rows = np.asarray(pattern.csc_indices, dtype=np.int32)
    cols = np.asarray(pattern.csc_cols, dtype=np.int32)
    to_transpose = np.empty(pattern.nnz, dtype=np.int32)
    to_transpose[np.asarray(pattern.csr_to_csc)] = np.arange(pattern.nnz, dtype=np.int32)
    return rows, cols, to_transpose


@lru_cache(maxsize=32)
def _structure(pattern: SparsityPattern) -> frozenset[str]:
    """Which of lineax's structural properties the pattern has (square patterns only)."""
    m, n = pattern.shape
    if m != n:
        return frozenset()
    d = pattern.rows - pattern.indices
    props = set()
    if not np.any(d):
        props.add("diagonal")
    if np.all(np.abs(d) <= 1):
        props.add("tridiagonal")
    if np.all(d >= 0):
        props.add("lower")
    if np.all(d <= 0):
        props.add("upper")
    return frozenset(props)


def _tags(tags: Any) -> frozenset[object]:
    if isinstance(tags, frozenset | set | list | tuple):
        return frozenset(tags)
    return frozenset([tags])


class SparseMatrixOperator(lx.AbstractLinearOperator):
    """A fixed-pattern sparse matrix as a `lineax.AbstractLinearOperator`.

    ``mv`` is a sparse product (``O(nnz)``); ``transpose`` permutes the values into the
    transposed pattern's CSC order; ``as_matrix`` materialises a *dense* array (lineax's dense
    solvers call it; `SparseLU` never does). ``lineax.materialise`` and ``lineax.linearise``
    return the operator unchanged, ``lineax.diagonal`` and ``lineax.tridiagonal`` gather from
    the values, and ``lineax.is_diagonal`` / ``is_tridiagonal`` / ``is_lower_triangular`` /
    ``is_upper_triangular`` are true when the tags say so or when the (square) pattern has that
    structure. Symmetry, definiteness and a unit diagonal are properties of the values: only
    tags declare them.

    Args:
        pattern: the `stiffasd.SparsityPattern` of the matrix (any shape).
        data: its values in the pattern's CSC order (``pattern.nnz`` of them), e.g.
            ``stiffasd.prepare_jacobian(...).data(...)``. Batch with `jax.vmap`.
        tags: lineax tags (``lineax.symmetric_tag``, ``lineax.positive_semidefinite_tag``, ...),
            unchecked, as for ``lineax.MatrixLinearOperator``.
    """

    pattern: SparsityPattern = eqx.field(static=True)
    data: jax.Array
    tags: frozenset[object] = eqx.field(static=True)

    def __init__(self, pattern: SparsityPattern, data: Any, tags: Any = ()):
        if not isinstance(pattern, SparsityPattern):
            raise TypeError(
                "SparseMatrixOperator(pattern=...): expected a stiffasd.SparsityPattern, got "
                f"{type(pattern).__name__}; build one with SparsityPattern.from_scipy(matrix) "
                "or use SparseMatrixOperator.from_scipy(matrix)."
            )
        data = jnp.asarray(data)
        if data.shape != (pattern.nnz,):
            raise ShapeError(
                f"SparseMatrixOperator(data=...): expected the {pattern.nnz} values of the "
                f"pattern in its CSC order (a 1D array), got shape {data.shape}; batch "
                "operators with jax.vmap."
            )
        if not jnp.issubdtype(data.dtype, jnp.inexact):
            data = data.astype(jnp.result_type(float))
        self.pattern = pattern
        self.data = data
        self.tags = _tags(tags)

    @classmethod
    def from_scipy(cls, matrix: Any, tags: Any = ()) -> SparseMatrixOperator:
        """The operator of a scipy sparse matrix (its stored entries, explicit zeros included)."""
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise TypeError(
                "SparseMatrixOperator.from_scipy(matrix=...): expected a scipy sparse matrix, "
                f"got {type(matrix).__name__}; for a dense array use lineax.MatrixLinearOperator."
            )
        csc = sp.csc_array(matrix)
        csc.sum_duplicates()
        csc.sort_indices()
        return cls(SparsityPattern.from_scipy(csc), np.asarray(csc.data), tags)

    def mv(self, vector: jax.Array) -> jax.Array:
        rows, cols, _ = _csc_index(self.pattern)
        vector = jnp.asarray(vector)
        if vector.shape != (self.pattern.shape[1],):
            raise ShapeError(
                f"SparseMatrixOperator.mv: expected a vector of shape ({self.pattern.shape[1]},),"
                f" got {vector.shape}."
            )
        return jax.ops.segment_sum(
            self.data * vector[cols], rows, num_segments=self.pattern.shape[0]
        )

    def as_matrix(self) -> jax.Array:
        """The matrix as a dense array (``m x n`` memory: for small matrices and checks)."""
        rows, cols, _ = _csc_index(self.pattern)
        return jnp.zeros(self.pattern.shape, self.data.dtype).at[rows, cols].set(self.data)

    def transpose(self) -> SparseMatrixOperator:
        if lx.is_symmetric(self):
            return self
        _, _, to_transpose = _csc_index(self.pattern)
        return SparseMatrixOperator(
            self.pattern.T, self.data[to_transpose], lx.transpose_tags(self.tags)
        )

    def in_structure(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.pattern.shape[1],), self.data.dtype)

    def out_structure(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.pattern.shape[0],), self.data.dtype)


def _has(op: SparseMatrixOperator, tag: object, structure: str | None = None) -> bool:
    return tag in op.tags or (structure is not None and structure in _structure(op.pattern))


def _bands(op: SparseMatrixOperator, offsets: tuple[int, ...], query: str) -> list[jax.Array]:
    """Entries ``A[i, i + offset]`` for each offset (zeros where the pattern has none); ``query``
    names the lineax function asked, for the error on a non-square matrix."""
    m, n = op.pattern.shape
    if m != n:
        raise ShapeError(
            f"lineax.{query}(SparseMatrixOperator): the matrix must be square, got shape "
            f"{op.pattern.shape}."
        )
    rows, cols, _ = _csc_index(op.pattern)
    diff, first = cols.astype(np.int64) - rows, np.minimum(rows, cols)
    out = []
    for offset in offsets:
        sel = np.flatnonzero(diff == offset)
        band = jnp.zeros((n - abs(offset),), op.data.dtype)
        out.append(band.at[first[sel]].set(op.data[sel]))
    return out


@lx.linearise.register(SparseMatrixOperator)
@lx.materialise.register(SparseMatrixOperator)
def _(op):
    return op


@lx.diagonal.register(SparseMatrixOperator)
def _(op):
    return _bands(op, (0,), "diagonal")[0]


@lx.tridiagonal.register(SparseMatrixOperator)
def _(op):
    return tuple(_bands(op, (0, -1, 1), "tridiagonal"))


@lx.is_symmetric.register(SparseMatrixOperator)
def _(op):
    definite = lx.positive_semidefinite_tag in op.tags or lx.negative_semidefinite_tag in op.tags
    real = not jnp.issubdtype(op.data.dtype, jnp.complexfloating)
    return _has(op, lx.symmetric_tag) or lx.is_diagonal(op) or (definite and real)


@lx.is_diagonal.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.diagonal_tag, "diagonal")


@lx.is_tridiagonal.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.tridiagonal_tag, "tridiagonal") or lx.is_diagonal(op)


@lx.is_lower_triangular.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.lower_triangular_tag, "lower") or lx.is_diagonal(op)


@lx.is_upper_triangular.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.upper_triangular_tag, "upper") or lx.is_diagonal(op)


@lx.has_unit_diagonal.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.unit_diagonal_tag)


@lx.is_positive_semidefinite.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.positive_semidefinite_tag)


@lx.is_negative_semidefinite.register(SparseMatrixOperator)
def _(op):
    return _has(op, lx.negative_semidefinite_tag)


@lx.conj.register(SparseMatrixOperator)
def _(op):
    return SparseMatrixOperator(op.pattern, op.data.conj(), op.tags)


# --------------------------------------------------------------------------- pytrees
@dataclass(frozen=True)
class _Struct:
    """A pytree of ``jax.ShapeDtypeStruct`` as a hashable static value, with ravel/unravel."""

    treedef: Any
    leaves: tuple

    @classmethod
    def of(cls, struct: Any) -> _Struct:
        leaves, treedef = jtu.tree_flatten(struct)
        return cls(treedef, tuple(jax.ShapeDtypeStruct(s.shape, s.dtype) for s in leaves))

    @property
    def size(self) -> int:
        return sum(math.prod(s.shape) for s in self.leaves)

    def ravel(self, tree: Any, dtype: Any) -> jax.Array:
        leaves = [jnp.ravel(x).astype(dtype) for x in jtu.tree_leaves(tree)]
        return jnp.concatenate(leaves) if leaves else jnp.zeros((0,), dtype)

    def unravel(self, flat: jax.Array) -> Any:
        out, start = [], 0
        for s in self.leaves:
            size = math.prod(s.shape)
            out.append(flat[start : start + size].reshape(s.shape).astype(s.dtype))
            start += size
        return jtu.tree_unflatten(self.treedef, out)


# --------------------------------------------------------------------------- functions
def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _fingerprint(x: Any) -> Any:
    """Cache-key part of a constant leaf (detection may use constant values)."""
    a = np.asarray(x)
    return (a.shape, str(a.dtype), hash(a.tobytes()))


class _Function:
    """The operator's function as ``r(z_flat, dyn) -> out_flat``.

    ``carrier`` holds everything the function reads besides ``z``: the closure-converted
    function itself (its captured arrays are leaves) and, for a Jacobian operator, its
    ``args``. Its leaves are split three ways: non-arrays (static: part of the program), concrete
    arrays with at least one dimension (constants: closed over, so that detection may use their
    values, and keyed by value), and the rest (traced or scalar: arguments of ``r``, so that the
    detected pattern holds for every value).
    """

    def __init__(self, call: Callable[[Any, Any], Any], carrier: Any, in_struct: _Struct):
        self.call = call
        self.in_struct = in_struct
        leaves, self.treedef = jtu.tree_flatten(carrier)
        self.kinds: list[str] = []
        self.consts: list[Any] = []
        for leaf in leaves:
            if not eqx.is_array(leaf):
                kind = "static"
            elif not _is_tracer(leaf) and np.ndim(leaf) > 0:
                kind = "const"
            else:
                kind = "dyn"
            self.kinds.append(kind)
            self.consts.append(None if kind == "dyn" else leaf)
        self.dyn = [leaf for leaf, k in zip(leaves, self.kinds, strict=True) if k == "dyn"]

    def residual(self, zflat: jax.Array, dyn: list[Any]) -> jax.Array:
        it = iter(dyn)
        leaves = [
            next(it) if k == "dyn" else c for k, c in zip(self.kinds, self.consts, strict=True)
        ]
        out = self.call(self.in_struct.unravel(zflat), jtu.tree_unflatten(self.treedef, leaves))
        return ravel_pytree(out)[0]

    def key(self, dtype: Any) -> Any:
        abstract = [jax.ShapeDtypeStruct(np.shape(d), jnp.result_type(d)) for d in self.dyn]
        zs = jax.ShapeDtypeStruct((self.in_struct.size,), dtype)
        try:
            jaxpr = jax.make_jaxpr(self.residual)(zs, abstract)
        except jax.errors.JAXTypeError as exc:
            raise _tracing_error(exc, _CALL) from exc
        consts = [
            _fingerprint(c) for c, k in zip(self.consts, self.kinds, strict=True) if k == "const"
        ]
        return (str(jaxpr), tuple(consts), tuple(_fingerprint(c) for c in jaxpr.consts))

    def examples(self) -> list[Any]:
        """Concrete stand-ins for the traced leaves (detection is global: values don't matter)."""
        return [
            jnp.zeros(np.shape(d), jnp.result_type(d)) if _is_tracer(d) else d for d in self.dyn
        ]


# --------------------------------------------------------------------------- solver
class _Prepared:
    """Host-side work for one matrix structure: the Jacobian (for function operators), the
    pattern with its diagonal, and `JaxLU` bound to it (symbolic analysis done)."""

    def __init__(self, pattern: SparsityPattern, lu: JaxLU, sj: Any = None):
        self.sj = sj
        full, src_to_full, _ = with_diagonal(pattern)
        self.same = full.nnz == pattern.nnz
        self.src_to_full = src_to_full.astype(np.int32)
        self.bound = lu.bind(full)

    def factor(self, data: jax.Array) -> Any:
        if not self.same:
            data = jnp.zeros((self.bound.plan.nnz,), data.dtype).at[self.src_to_full].set(data)
        return self.bound.factor(data)


#: prepared structures (detection, coloring and analysis once per structure)
_cache = BuildCache()
_DEFAULT_LU = JaxLU()


def _lu_key(lu: JaxLU) -> tuple:
    return (lu.relax, lu.kernels, lu.max_refine, lu.refine_tol, lu.fail_tol)


def _as_sparsity(sparsity: Any) -> SparsityPattern | None:
    if sparsity is None or isinstance(sparsity, SparsityPattern):
        return sparsity
    import scipy.sparse as sp

    if sp.issparse(sparsity):
        return SparsityPattern.from_scipy(sparsity)
    if isinstance(sparsity, np.ndarray) and sparsity.ndim == 2:
        return SparsityPattern.from_dense(sparsity)
    raise TypeError(
        "stiffasd.lineax.SparseLU(sparsity=...): expected a stiffasd.SparsityPattern, a scipy "
        f"sparse matrix or a 2D boolean numpy array, got {type(sparsity).__name__}."
    )


class _SparseLUState(eqx.Module):
    factors: Any
    prepared: _Prepared = eqx.field(static=True)
    in_struct: _Struct = eqx.field(static=True)
    out_struct: _Struct = eqx.field(static=True)
    transposed: bool = eqx.field(static=True)


_OPERATORS = (SparseMatrixOperator, lx.JacobianLinearOperator, lx.FunctionLinearOperator)


class SparseLU(lx.AbstractLinearSolver):
    """Sparse LU (`stiffasd.linalg.JaxLU`, compiled into JAX) as a lineax linear solver.

    Accepts a `SparseMatrixOperator`, or a ``lineax.JacobianLinearOperator`` /
    ``lineax.FunctionLinearOperator`` of a function with a sparse Jacobian (optimistix's Newton,
    Chord and ``ImplicitAdjoint`` build these): its pattern is detected once per function
    structure (``stiffasd.prepare_jacobian``, cached), its values computed by compressed JVPs
    (VJPs for ``jac="bwd"``), and the matrix is factored sparsely; no dense ``n x n`` array is
    formed. The square matrix gets its diagonal added to the pattern when absent (as `JaxLU`
    needs). Solves are refined and checked (backward error, `JaxLU`): a failed check gives
    ``lineax.RESULTS.singular``. ``transpose`` and ``conj`` reuse the factorization, so
    ``jax.grad`` through ``lineax.linear_solve`` (and optimistix's implicit adjoints) costs one
    transposed sparse solve per cotangent.

    The solver follows lineax's ``AbstractLinearSolver`` contract as ``lineax.LU`` implements it
    (lineax/_solver/lu.py): square nonsingular operators only, ``assume_full_rank()`` is True.

    Args:
        lu: a configured `stiffasd.linalg.JaxLU` (default ``JaxLU()``). Keep one instance:
            it is part of the solver's static structure, so a new instance per call makes
            jitted callers retrace.
        sparsity: for function operators, a known pattern of the operator's matrix (a
            `stiffasd.SparsityPattern`, scipy sparse matrix or 2D boolean numpy array, shape
            ``(n, n)``), used instead of detection. Ignored for `SparseMatrixOperator`.
        mode: how function operators' Jacobians are evaluated: ``"forward"`` (one JVP per
            column color), ``"reverse"`` (one VJP per row color), ``"bidirectional"`` or
            ``"auto"`` (see `stiffasd.prepare_jacobian`). Default: ``"reverse"`` for a Jacobian
            operator with ``jac="bwd"``, else ``"forward"``.

    The preparation is keyed by the function's program, the shapes and dtypes of its traced
    inputs and the values of its constant ones. Python numbers in a function's arguments are
    constants under lineax's and optimistix's ``filter_jit`` (each new value compiles anew, and
    is detected anew): pass arrays for values that change.
    """

    lu: JaxLU | None = eqx.field(static=True, default=None)
    sparsity: SparsityPattern | None = eqx.field(static=True, default=None, converter=_as_sparsity)
    mode: str | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.lu is not None and not isinstance(self.lu, JaxLU):
            raise TypeError(
                "stiffasd.lineax.SparseLU(lu=...): expected a stiffasd.linalg.JaxLU, got "
                f"{type(self.lu).__name__}."
            )
        if self.mode not in (None, "forward", "reverse", "bidirectional", "auto"):
            raise ValueError(
                "stiffasd.lineax.SparseLU(mode=...): expected None, 'forward', 'reverse', "
                f"'bidirectional' or 'auto', got {self.mode!r}."
            )

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]) -> _SparseLUState:
        del options
        op = operator
        while isinstance(op, lx.TaggedLinearOperator):
            op = op.operator
        if not isinstance(op, _OPERATORS):
            raise TypeError(
                "stiffasd.lineax.SparseLU: expected a stiffasd.lineax.SparseMatrixOperator, a "
                "lineax.JacobianLinearOperator or a lineax.FunctionLinearOperator (a function "
                f"with a sparse Jacobian), got {type(op).__name__}. Wrap a scipy matrix with "
                "SparseMatrixOperator.from_scipy(matrix), sparse values with "
                "SparseMatrixOperator(pattern, data), or pass the function as "
                "lineax.JacobianLinearOperator(fn, x, args); use lineax.LU() for dense matrices."
            )
        if operator.in_size() != operator.out_size():
            raise ShapeError(
                "stiffasd.lineax.SparseLU: the operator must be square, got input size "
                f"{operator.in_size()} and output size {operator.out_size()}; use "
                "lineax.QR() or lineax.SVD() for least-squares problems."
            )
        in_struct = _Struct.of(operator.in_structure())
        out_struct = _Struct.of(operator.out_structure())
        dtype = jnp.result_type(*in_struct.leaves, *out_struct.leaves)
        lu = self.lu or _DEFAULT_LU
        if isinstance(op, SparseMatrixOperator):
            pattern = op.pattern
            prepared = _cache.get(("matrix", pattern, _lu_key(lu)), lambda: _Prepared(pattern, lu))
            data = op.data
        else:
            prepared, data = self._function_data(op, in_struct, dtype, lu)
        factors = prepared.factor(jnp.asarray(data).astype(dtype))
        return _SparseLUState(factors, prepared, in_struct, out_struct, False)

    def _function_data(self, op: Any, in_struct: _Struct, dtype: Any, lu: JaxLU) -> tuple:
        if isinstance(op, lx.JacobianLinearOperator):
            fn = _Function(lambda z, c: c[0](z, c[1]), (op.fn, op.args), in_struct)
            point = in_struct.ravel(op.x, dtype)
            mode = self.mode or ("reverse" if op.jac == "bwd" else "forward")
        else:  # a linear function: its Jacobian is itself, at any point
            fn = _Function(lambda z, c: c(z), op.fn, in_struct)
            point = jnp.zeros((in_struct.size,), dtype)
            mode = self.mode or "forward"
        n = in_struct.size
        key = ("function", fn.key(dtype), mode, self.sparsity, _lu_key(lu))

        def build() -> _Prepared:
            if self.sparsity is not None and self.sparsity.shape != (n, n):
                raise ShapeError(
                    f"stiffasd.lineax.SparseLU(sparsity=...): the operator is {n} x {n}, the "
                    f"pattern has shape {self.sparsity.shape}."
                )
            try:
                # host-side detection on concrete stand-ins: outside any surrounding trace
                with jax.ensure_compile_time_eval():
                    sj = prepare_jacobian(
                        fn.residual,
                        jnp.zeros((n,), dtype),
                        fn.examples(),
                        argnums=0,
                        sparsity=self.sparsity,
                        mode=mode,
                        check_finite=False,
                    )
            except jax.errors.JAXTypeError as exc:
                raise _tracing_error(exc, _CALL) from exc
            return _Prepared(sj.pattern, lu, sj)

        prepared = _cache.get(key, build)
        return prepared, prepared.sj.data(point, fn.dyn)

    def compute(
        self, state: _SparseLUState, vector: Any, options: dict[str, Any]
    ) -> tuple[Any, lx.RESULTS, dict[str, Any]]:
        del options
        dtype = state.factors.data.dtype
        b = state.out_struct.ravel(vector, dtype)
        x, ok = state.prepared.bound.solve_checked(state.factors, b, transpose=state.transposed)
        result = lx.RESULTS.where(ok, lx.RESULTS.successful, lx.RESULTS.singular)
        return state.in_struct.unravel(x), result, {}

    def transpose(self, state: _SparseLUState, options: dict[str, Any]) -> tuple:
        transposed = _SparseLUState(
            state.factors, state.prepared, state.out_struct, state.in_struct, not state.transposed
        )
        return transposed, options

    def conj(self, state: _SparseLUState, options: dict[str, Any]) -> tuple:
        factors = jtu.tree_map(lambda a: a.conj() if jnp.iscomplexobj(a) else a, state.factors)
        return eqx.tree_at(lambda s: s.factors, state, factors), options

    def assume_full_rank(self) -> bool:
        return True


def clear_cache() -> None:
    """Forget the prepared structures (detections, colorings, analyses) `SparseLU` holds."""
    _cache.clear()
