"""SUNDIALS through scikit-sundae (`pip install scikit-sundae`): CVODE's sparse direct solver fed
with stiffasd's fixed pattern and exact Jacobian values.

CVODE's ``linsolver="sparse"`` (SuperLU_MT) takes the Jacobian's pattern once, as ``sparsity=``,
and then calls ``jacfn(t, y, yp, JJ)`` where ``JJ`` is a preallocated 1D array of ``nnz`` values in
the CSC order of that pattern, to be filled in place. `jacobian` builds both from a stiffasd
Jacobian (``stiffasd.jac(rhs)``), from any callable returning scipy sparse matrices, or from a
pattern plus a function returning the values in the pattern's CSC order; `cvode_options` returns
them as keyword arguments for ``sksundae.cvode.CVODE``, and `cvode` builds the solver.

The pattern and jacfn need nothing from scikit-sundae; only `cvode` (and the index type of the
installed build) import it, lazily.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import MissingDependencyError, PatternMismatchError, ShapeError

__all__ = ["SundaeJacobian", "jacobian", "cvode_options", "cvode"]


def _import_sksundae():
    try:
        import sksundae
    except ImportError as e:  # pragma: no cover - exercised only without the package
        raise MissingDependencyError(
            "stiffasd.sundae needs scikit-sundae (SUNDIALS bindings), which is not installed: "
            "`pip install scikit-sundae` (wheels for Linux, macOS and Windows)."
        ) from e
    return sksundae


def _index_dtype():
    """The sparse index type of the installed scikit-sundae build (int32 by default)."""
    try:
        from sksundae._cy_common import config
    except ImportError:
        return np.int32
    return np.int64 if config.get("SUNDIALS_INT_TYPE") == "long int" else np.int32


def _csc_of(pattern) -> sp.csc_matrix:
    """A canonical CSC matrix of ones with the pattern of a SparsityPattern or scipy matrix."""
    if hasattr(pattern, "csc_indptr") and hasattr(pattern, "csc_indices"):
        n_rows, n_cols = pattern.shape
        indptr, indices = pattern.csc_indptr, pattern.csc_indices
    elif sp.issparse(pattern):
        m = sp.csc_matrix(pattern, copy=True)
        m.sum_duplicates()  # also sorts the row indices: canonical CSC order
        n_rows, n_cols = m.shape
        indptr, indices = m.indptr, m.indices
    else:
        raise TypeError(
            "stiffasd.sundae.jacobian(pattern=...): expected a stiffasd.SparsityPattern or a scipy "
            f"sparse matrix, got {type(pattern).__name__}."
        )
    if n_rows != n_cols:
        raise ShapeError(f"stiffasd.sundae: CVODE needs a square Jacobian; got {(n_rows, n_cols)}.")
    dt = _index_dtype()
    return sp.csc_matrix(
        (np.ones(len(indices)), np.asarray(indices, dtype=dt), np.asarray(indptr, dtype=dt)),
        shape=(n_rows, n_cols),
    )


class SundaeJacobian:
    """CVODE's ``sparsity=`` and ``jacfn=`` for one Jacobian.

    Attributes:
        sparsity: canonical ``scipy.sparse.csc_matrix`` of the pattern (index type of the installed
            scikit-sundae); ``JJ`` values follow its CSC order.
        args: extra arguments passed to the Jacobian after ``(t, y)``.
        nnz: number of stored entries.
        njev: how many times CVODE asked for the Jacobian through this object.

    The object itself is CVODE's ``jacfn(t, y, yp, JJ)``: it fills ``JJ[:]`` in place.
    scikit-sundae checks that ``jacfn`` and ``rhsfn`` agree on taking ``userdata``; for solvers
    built with ``userdata=`` use `SundaeJacobian.with_userdata`, which unpacks a tuple
    ``userdata`` into the Jacobian's extra arguments (when no ``args`` were fixed).
    """

    def __init__(self, values: Callable, sparsity: sp.csc_matrix, args: tuple = ()):
        self._values = values
        self.sparsity = sparsity
        self.args = tuple(args)
        self.nnz = int(sparsity.nnz)
        self.njev = 0

    def __call__(self, t, y, yp, JJ):
        JJ[:] = self._values(t, y, self.args)
        self.njev += 1

    @property
    def with_userdata(self) -> Callable:
        """``jacfn(t, y, yp, JJ, userdata)`` for CVODE solvers built with ``userdata=``."""

        def jacfn(t, y, yp, JJ, userdata):
            args = self.args
            if not args:
                args = userdata if isinstance(userdata, tuple) else (userdata,)
            JJ[:] = self._values(t, y, args)
            self.njev += 1

        return jacfn

    def values(self, t, y, *args) -> np.ndarray:
        """The Jacobian's values in ``sparsity``'s CSC order (a new array)."""
        return np.array(self._values(t, y, args or self.args), dtype=np.float64)


class _FromMatrix:
    """Values of a callable returning scipy sparse matrices, in the CSC order of ``sparsity``.

    The fast path (stiffasd.jac: the same cached index arrays every call, in canonical CSC order)
    hands ``data`` over without any index work; any other matrix is matched entry by entry to the
    pattern once per distinct index arrays (vectorized), and an entry outside the pattern raises.
    """

    def __init__(self, fn, sparsity: sp.csc_matrix):
        self.fn = fn
        self.n = sparsity.shape[0]
        self.indptr = sparsity.indptr
        self.indices = sparsity.indices
        cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(sparsity.indptr))
        self.keys = cols * self.n + sparsity.indices
        self._seen: tuple | None = None  # (indptr, indices, positions or None)

    def _positions(self, M):
        seen = self._seen
        if seen is not None and M.indptr is seen[0] and M.indices is seen[1]:
            return seen[2]
        same = np.array_equal(M.indptr, self.indptr) and np.array_equal(M.indices, self.indices)
        if same:
            pos = None
        else:
            cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(M.indptr))
            keys = cols * self.n + M.indices
            pos = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
            bad = self.keys[pos] != keys
            if np.any(bad):
                k = int(np.flatnonzero(bad)[0])
                raise PatternMismatchError(
                    "stiffasd.sundae: the Jacobian returned an entry at "
                    f"(row {int(M.indices[k])}, column {int(cols[k])}) outside the sparsity "
                    "pattern given to CVODE; build the adapter from a pattern that contains "
                    "every entry (stiffasd.jac's .pattern is one)."
                )
        self._seen = (M.indptr, M.indices, pos)
        return pos

    def __call__(self, t, y, args):
        M = self.fn(t, y, *args)
        if not sp.issparse(M):
            raise TypeError(
                "stiffasd.sundae: the Jacobian callable must return a scipy sparse matrix, got "
                f"{type(M).__name__}; for values in CSC order use jacobian(pattern=..., "
                "values=...)."
            )
        if M.format != "csc":
            M = M.tocsc()
        if M.shape != (self.n, self.n):
            raise ShapeError(
                f"stiffasd.sundae: the Jacobian has shape {M.shape}, expected {(self.n, self.n)}."
            )
        pos = self._positions(M)
        if pos is None:
            return M.data
        # duplicates (non-canonical input) add up, as scipy would sum them
        return np.bincount(pos, weights=M.data, minlength=self.keys.size)


class _FromValues:
    def __init__(self, fn, nnz: int):
        self.fn = fn
        self.nnz = nnz

    def __call__(self, t, y, args):
        v = np.asarray(self.fn(t, y, *args))
        if v.shape != (self.nnz,):
            raise ShapeError(
                f"stiffasd.sundae: values(t, y, ...) must return the {self.nnz} nonzero values in "
                f"the pattern's CSC order; got shape {v.shape}."
            )
        return v


def _known_pattern(jac):
    """``jac.pattern`` (stiffasd.jac) or ``jac.sparsity``, or None when not (yet) known."""
    for name in ("pattern", "sparsity"):
        try:
            p = getattr(jac, name, None)
        except RuntimeError:  # stiffasd.jac before its first call / prepare()
            p = None
        if p is not None:
            return p
    return None


def jacobian(
    jac: Callable | None = None,
    *,
    pattern: Any = None,
    values: Callable | None = None,
    args: tuple = (),
) -> SundaeJacobian:
    """CVODE's ``sparsity=`` and ``jacfn=`` from a stiffasd Jacobian or a pattern + values.

    Args:
        jac: ``jac(t, y, *args) -> scipy sparse matrix``, e.g. ``stiffasd.jac(rhs)``. Its pattern
            is taken from ``jac.pattern`` or ``jac.sparsity`` when present, else from ``pattern``,
            else from one call at ``y0`` (see `cvode_options`) — which is exact only when the
            matrix stores every entry that can ever be nonzero.
        pattern: a `SparsityPattern` or scipy sparse matrix (required with ``values``).
        values: ``values(t, y, *args) -> ndarray (nnz,)`` in the pattern's CSC order (the data
            vector of stiffasd's prepared Jacobian is exactly this).
        args: extra arguments passed after ``(t, y)`` (``solve_ivp``'s ``args``).

    Returns:
        A `SundaeJacobian`: ``.sparsity`` for ``sparsity=`` and the object itself for ``jacfn=``.
    """
    if (jac is None) == (values is None):
        raise TypeError(
            "stiffasd.sundae.jacobian: give exactly one of `jac` (a callable returning sparse "
            "matrices, e.g. stiffasd.jac(rhs)) or `values` (with `pattern`)."
        )
    if values is not None:
        if pattern is None:
            raise TypeError("stiffasd.sundae.jacobian(values=...) also needs `pattern=`.")
        sparsity = _csc_of(pattern)
        return SundaeJacobian(_FromValues(values, sparsity.nnz), sparsity, args)
    if pattern is None:
        pattern = _known_pattern(jac)
    if pattern is None:
        raise TypeError(
            "stiffasd.sundae.jacobian(jac=...): this callable has no `.pattern`/`.sparsity`; "
            "pass `pattern=` (or use cvode_options(jac, y0) which probes it once at y0)."
        )
    sparsity = _csc_of(pattern)
    return SundaeJacobian(_FromMatrix(jac, sparsity), sparsity, args)


def cvode_options(
    jac: Callable, y0=None, *, t0: float = 0.0, args: tuple = (), pattern: Any = None
) -> dict:
    """Keyword arguments for ``sksundae.cvode.CVODE``: ``linsolver="sparse"``, ``sparsity=`` and
    ``jacfn=`` from a stiffasd Jacobian.

    A plain callable without a known pattern is probed once at ``(t0, y0)``.
    """
    if pattern is None and _known_pattern(jac) is None:
        if hasattr(jac, "prepare") and y0 is not None:  # stiffasd.jac: detect + color now
            jac.prepare(t0, np.asarray(y0, dtype=np.float64), *args)
        elif y0 is None:
            raise TypeError(
                "stiffasd.sundae.cvode_options: the Jacobian has no known pattern; pass y0 to "
                "probe it, or pattern=."
            )
        else:
            pattern = jac(t0, np.asarray(y0, dtype=np.float64), *args)
    J = jacobian(jac, pattern=pattern, args=args)
    return dict(linsolver="sparse", sparsity=J.sparsity, jacfn=J)


def cvode(rhs: Callable, jac: Callable, *, args: tuple = (), y0=None, **options):
    """A ``sksundae.cvode.CVODE`` solver for ``y' = rhs(t, y, *args)`` (solve_ivp's signature)
    using CVODE's sparse direct solver with the stiffasd Jacobian.

    Args:
        rhs: right-hand side ``rhs(t, y, *args) -> array``.
        jac: e.g. ``stiffasd.jac(rhs)``.
        args: extra arguments of ``rhs`` and ``jac``.
        y0: only needed when ``jac`` carries no pattern (it is then probed at ``y0``).
        **options: any other CVODE option (``rtol``, ``atol``, ``method``, ...).

    Returns:
        The solver; call ``.solve(tspan, y0)``.
    """
    sksundae = _import_sksundae()

    def rhsfn(t, y, yp):
        yp[:] = rhs(t, y, *args)

    opts = cvode_options(jac, y0, args=args)
    opts.update(options)
    with warnings.catch_warnings():
        # scikit-sundae warns whenever both sparsity= and jacfn= are given (its own
        # finite-difference Jacobian is then unused), which is exactly the intent here
        warnings.filterwarnings("ignore", message="Custom sparse Jacobian approximation")
        return sksundae.cvode.CVODE(rhsfn, **opts)
