"""`stiffasd.jac`: exact sparse Jacobians for `scipy.integrate.solve_ivp`."""

from __future__ import annotations

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
    prepare_jacobian,
)
from .errors import ShapeError

__all__ = ["jac", "OdeJacobian"]

_FORMATS = ("csc", "csr", "banded")


class OdeJacobian:
    """The Jacobian ``d rhs(t, y, *args) / d y`` of an ODE right-hand side, as solve_ivp calls it.

    Create it with [`stiffasd.jac`][stiffasd.jac]. Calling it as ``jac(t, y, *args)`` returns a
    `scipy.sparse.csc_matrix` whose ``indices``/``indptr`` are the same cached arrays at every
    call (only ``data`` is new), or LSODA's banded array with ``format="banded"``.

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
        self._banded: dict[int, Any] = {}
        self.calls = 0
        self.eval_time = 0.0

    # -- preparation ------------------------------------------------------------------------
    def _prepare(self, t: Any, y: Any, *args: Any) -> SparseJacobian:
        call = "stiffasd.jac"
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
        a = self._normalize(t, y, args)
        sj = self._cache.get(a)
        self._last = sj
        if self.check_finite:
            _check_finite(a[1], "y", "stiffasd.jac")
        t0 = time.perf_counter()
        if self.format == "banded":
            out = self._to_banded(sj, np.asarray(sj.data_jit(*a)))
        else:
            out = sj.csc(*a)
            if self.format == "csr":
                out = out.tocsr()
        self.eval_time += time.perf_counter() - t0
        self.calls += 1
        return out

    def _to_banded(self, sj: SparseJacobian, data: np.ndarray) -> np.ndarray:
        from .scipy import banded_layout, to_banded

        layout = self._banded.get(id(sj))
        if layout is None:
            layout = self._banded[id(sj)] = banded_layout(sj.pattern)
        lband, uband, gather = layout
        return to_banded(data, sj.pattern, lband, uband, gather=gather)

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
        format: ``"csc"`` (default, what BDF/Radau factorize), ``"csr"``, or ``"banded"``
            (LSODA's layout; pass ``lband, uband = jac.band`` to solve_ivp as well).
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
