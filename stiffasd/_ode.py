"""`stiffasd.jac`: exact sparse Jacobians for `scipy.integrate.solve_ivp`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ._jacobian import (
    SparseJacobian,
    _as_array,
    _Cache,
    _check_finite,
    _is_pytree,
    prepare_jacobian,
)
from .errors import BandwidthError, ShapeError

__all__ = ["jac", "OdeJacobian"]

_FORMATS = ("csc", "csr", "banded", "dense")


def _odepack_caller() -> tuple[int | None, int | None, bool] | None:
    """The layout a calling ODEPACK/VODE wrapper of scipy takes, or ``None`` for any other
    caller.

    solve_ivp's LSODA, `scipy.integrate.ode` (lsoda, vode, zvode) and `scipy.integrate.odeint`
    take dense Jacobians, or LSODA's packed band when given ``lband``/``uband`` (``ml``/``mu``):
    never sparse matrices. They call the Jacobian from their own frame (``run`` of the
    integrator in ``scipy.integrate._ode``, ``odeint`` in ``scipy.integrate._odepack_py``), a
    frame or two above this call; its variables say which layout it asked for.

    Returns:
        ``(ml, mu, transposed)``: bandwidths (both ``None`` for a dense Jacobian) and whether
        the caller wants the transpose (``odeint(col_deriv=True)``).
    """
    frame = sys._getframe(2)  # the caller of OdeJacobian.__call__
    for _ in range(4):
        if frame is None:
            return None
        module, name = frame.f_globals.get("__name__"), frame.f_code.co_name
        if module == "scipy.integrate._ode" and name == "run":
            integrator = frame.f_locals.get("self")
            return getattr(integrator, "ml", None), getattr(integrator, "mu", None), False
        if module == "scipy.integrate._odepack_py" and name == "odeint":
            local = frame.f_locals
            if not local.get("tfirst", False):
                raise TypeError(
                    "stiffasd.jac: odeint calls Dfun(y, t), but stiffasd.jac(rhs) computes the "
                    "Jacobian of rhs(t, y, *args); pass odeint(..., tfirst=True) (with an rhs "
                    "of the same (t, y) signature)."
                )
            ml, mu = local.get("ml"), local.get("mu")  # odeint's "none given" is -1
            if (ml is None or ml < 0) and (mu is None or mu < 0):
                ml = mu = None
            return ml, mu, bool(local.get("col_deriv", False))
        frame = frame.f_back
    return None


class OdeJacobian:
    """The Jacobian ``d rhs(t, y, *args) / d y`` of an ODE right-hand side, as solve_ivp calls it.

    Create it with [`stiffasd.jac`][stiffasd.jac]. Calling it as ``jac(t, y, *args)`` returns a
    `scipy.sparse.csc_matrix` whose ``indices``/``indptr`` are the same cached arrays at every
    call (only ``data`` is new), or LSODA's banded array with ``format="banded"``, or a dense
    array with ``format="dense"``. Called by scipy's LSODA (``solve_ivp(method="LSODA")``,
    `scipy.integrate.ode`, `odeint`), which take no sparse matrices, it returns what they do
    take whatever ``format``: a dense array, or the packed band when they were given
    ``lband``/``uband``.

    Detection and coloring happen on the first call (or on `prepare`) and are cached per
    input structure (shapes and dtypes of ``t``, ``y`` and ``args``).

    Attributes:
        calls: number of Jacobian evaluations so far.
        eval_time: wall time spent in them (seconds), preparation excluded.
    """

    def __init__(
        self,
        rhs: Callable,
        *,
        sparsity: Any = None,
        mode: str = "auto",
        format: str = "csc",
        verify: bool = False,
        strict: bool = False,
        check_finite: bool = True,
        **options: Any,
    ):
        if not callable(rhs):
            raise TypeError(f"stiffasd.jac: rhs must be callable, got {type(rhs).__name__}.")
        if format not in _FORMATS:
            raise ValueError(f"stiffasd.jac: format must be one of {_FORMATS}, got {format!r}.")
        self.rhs = rhs
        self.format = format
        self.check_finite = check_finite
        self._options = dict(
            sparsity=sparsity,
            mode=mode,
            verify=verify,
            strict=strict,
            check_finite=check_finite,
            **options,
        )
        self._cache = _Cache(self._prepare)
        self._last: SparseJacobian | None = None
        self._layouts: dict[tuple, Any] = {}  # index arrays of the dense and banded outputs
        self.calls = 0
        self.eval_time = 0.0

    # -- preparation ------------------------------------------------------------------------
    def _prepare(self, t: Any, y: Any, *args: Any) -> SparseJacobian:
        call = "stiffasd.jac"
        if _is_pytree(y):  # a pytree state: the Jacobian of the raveled right-hand side
            sj = prepare_jacobian(self.rhs, t, y, *args, argnums=1, **self._options)
            n = sum(np.size(leaf) for leaf in jax.tree.leaves(y))
            if sj.pattern.shape != (n, n):
                raise ShapeError(
                    f"{call}: rhs(t, y, *args) returned {sj.pattern.shape[0]} values for a state "
                    f"of {n}; an ODE right-hand side must return dy/dt with y's structure."
                )
            return sj
        if np.ndim(y) != 1:
            raise ShapeError(
                f"{call}: y must be a 1D state vector (as solve_ivp passes it), got shape "
                f"{np.shape(y)}; ravel the state and reshape inside the right-hand side."
            )
        sj = prepare_jacobian(self.rhs, t, y, *args, argnums=1, **self._options)
        if sj.out_shape != tuple(np.shape(y)):
            raise ShapeError(
                f"{call}: rhs(t, y, *args) returned shape {sj.out_shape} but y has shape "
                f"{np.shape(y)}; an ODE right-hand side must return dy/dt with y's shape."
            )
        return sj

    def _normalize(self, t: Any, y: Any, args: tuple) -> list[Any]:
        if _is_pytree(y):  # its leaves are checked when it is raveled
            dtype = jnp.result_type(*jax.tree.leaves(y))
        else:
            y = _as_array(y, "y", "stiffasd.jac")
            dtype = jnp.result_type(y)
        # a host scalar of y's dtype: no eager XLA conversion (which compiles on first use)
        t = jnp.asarray(t, dtype=dtype) if isinstance(t, jax.Array) else np.asarray(t, dtype)
        return [t, y, *args]

    def prepare(self, t: Any, y: Any, *args: Any) -> SparseJacobian:
        """Detect and color now (otherwise done on the first call); returns the prepared
        `SparseJacobian` for this input structure."""
        a = self._normalize(t, y, args)
        self._last = self._cache.get(a)
        return self._last

    # -- evaluation --------------------------------------------------------------------------
    def __call__(self, t: Any, y: Any, *args: Any):
        odepack = _odepack_caller()  # first: it knows odeint's (y, t) order
        a = self._normalize(t, y, args)
        sj = self._cache.get(a)
        self._last = sj
        if self.check_finite:
            for leaf in jax.tree.leaves(a[1]):
                _check_finite(leaf, "y", "stiffasd.jac")
        t0 = time.perf_counter()
        if odepack is None and self.format in ("csc", "csr"):
            out = sj.csc(*a)
            if self.format == "csr":
                out = out.tocsr()
        else:
            data = np.asarray(sj.data_jit(*a))
            if odepack is not None:
                out = self._for_odepack(sj, data, *odepack)
            elif self.format == "banded":
                lband, uband, gather = self._layout(sj, "banded")
                out = _pack(data, (lband + uband + 1, sj.pattern.shape[1]), gather)
            else:
                out = _pack(data, sj.pattern.shape, self._layout(sj, "dense"))
        self.eval_time += time.perf_counter() - t0
        self.calls += 1
        return out

    def _layout(self, sj: SparseJacobian, kind: str, lband: int = 0, uband: int = 0):
        """Cached positions of the pattern's nonzeros in a dense or banded output."""
        from .scipy import banded_gather, banded_layout

        key = (id(sj), kind, lband, uband)
        layout = self._layouts.get(key)
        if layout is None:
            P = sj.pattern
            if kind == "dense":
                layout = P.csc_indices.astype(np.int64) * P.shape[1] + P.csc_cols
            elif kind == "banded":
                layout = banded_layout(P)
            else:  # the band an ODEPACK caller was given
                layout = banded_gather(P, lband, uband)
            self._layouts[key] = layout
        return layout

    def _for_odepack(self, sj, data, ml, mu, transposed):
        """The Jacobian as scipy's LSODA/VODE/odeint asked for it: dense, or their packed band
        ``(ml + mu + 1, n)`` when they were given bandwidths."""
        m, n = sj.pattern.shape
        if ml is None and mu is None:
            dense = _pack(data, (m, n), self._layout(sj, "dense"))
            return dense.T if transposed else dense
        if transposed:
            raise ValueError(
                "stiffasd.jac: odeint(col_deriv=True) with ml/mu asks for a transposed band; "
                "leave col_deriv at False."
            )
        ml, mu = max(int(ml or 0), 0), max(int(mu or 0), 0)
        try:
            gather = self._layout(sj, "odepack", ml, mu)
        except BandwidthError:
            lb, ub = sj.pattern.bandwidth()
            raise BandwidthError(
                f"stiffasd.jac: the solver was given lband={ml}, uband={mu}, but the Jacobian "
                f"reaches lband={lb}, uband={ub}. Pass lband, uband = jac.band (after "
                "jac.prepare(t0, y0, *args)), or leave both out for a dense Jacobian."
            ) from None
        return _pack(data, (ml + mu + 1, n), gather)

    # -- introspection -----------------------------------------------------------------------
    def _prepared(self) -> SparseJacobian:
        if self._last is None:
            raise RuntimeError(
                "stiffasd.jac: the pattern is not known yet; call the Jacobian once or call "
                ".prepare(t0, y0, *args) first."
            )
        return self._last

    @property
    def pattern(self):
        """The detected (or given) `SparsityPattern` of the last prepared input structure."""
        return self._prepared().pattern

    @property
    def coloring(self):
        """The coloring result (``.ncolors`` passes per Jacobian)."""
        return self._prepared().coloring

    @property
    def sparsity(self) -> sp.csc_matrix:
        """The pattern as a scipy matrix, usable as solve_ivp's ``jac_sparsity``."""
        return sp.csc_matrix(self.pattern.to_scipy("csc"))

    @property
    def band(self) -> tuple[int, int]:
        """``(lband, uband)`` for LSODA (``solve_ivp(..., method="LSODA", lband=, uband=)``)."""
        return self.pattern.bandwidth()

    def __repr__(self) -> str:
        state = repr(self._last) if self._last is not None else "not prepared yet"
        return f"OdeJacobian({getattr(self.rhs, '__name__', 'rhs')}, {state})"


def _pack(data: np.ndarray, shape: tuple[int, int], positions: np.ndarray) -> np.ndarray:
    """A zero array of ``shape`` with ``data`` at the flat ``positions`` (one scatter)."""
    out = np.zeros(shape, dtype=data.dtype)
    out.reshape(-1)[positions] = data
    return out


def jac(
    rhs: Callable,
    *,
    sparsity: Any = None,
    mode: str = "auto",
    format: str = "csc",
    verify: bool = False,
    strict: bool = False,
    **options: Any,
) -> OdeJacobian:
    """Exact sparse Jacobian of an ODE right-hand side for `scipy.integrate.solve_ivp`.

    ```python
    sol = solve_ivp(rhs, (t0, t1), y0, method="BDF", args=(p,), jac=stiffasd.jac(rhs))
    ```

    Args:
        rhs: ``rhs(t, y, *args) -> dy/dt``, written with jax.numpy (JAX-traceable).
        sparsity: a known pattern (skips detection); see ``verify``.
        mode: ``"auto"``, ``"forward"``, ``"reverse"`` or ``"bidirectional"`` (see
            [`prepare_jacobian`][stiffasd.prepare_jacobian]).
        format: ``"csc"`` (default, what BDF/Radau factorize), ``"csr"``, ``"banded"``
            (LSODA's layout; pass ``lband, uband = jac.band`` to solve_ivp as well) or
            ``"dense"``. scipy's LSODA, `scipy.integrate.ode` and `odeint` get the layout they
            take whatever the format: dense, or packed by diagonals when given bandwidths.
        verify: check the pattern and values against plain AD at the first point (raises
            `PatternMismatchError` if a user-supplied pattern misses nonzeros).
        strict: error instead of a conservative pattern on primitives without a rule.
        **options: passed to `prepare_jacobian` (``order``, ``chunk_size``, ``vjp_cost``,
            ``check_finite``, ``structure="symmetric"`` for a symmetric Jacobian).

    Returns:
        An [`OdeJacobian`][stiffasd.OdeJacobian]: call it as ``jac(t, y, *args)``.
    """
    return OdeJacobian(
        rhs, sparsity=sparsity, mode=mode, format=format, verify=verify, strict=strict, **options
    )
