"""Solver-side glue for `scipy.integrate.solve_ivp`: drop-in BDF/Radau with fixed-pattern sparse
LU, and LSODA's banded Jacobian layout.

`BDF` and `Radau` subclass scipy's solvers and replace only their linear-algebra hooks
(``self.lu``, ``self.solve_lu`` and the identity ``self.I`` used to form the Newton matrices), so
the step-size control, error estimates, dense output and statistics are scipy's own. What changes is
that the Newton matrix ``sigma I - J`` (BDF: ``I - c J``; Radau: ``mu/h I - J`` for a real and a
complex ``mu``) is never assembled by sparse arithmetic: its values are scattered into a pattern
fixed once per solve, the fill-reducing ordering (METIS nested dissection) is computed once, and
every later factorization only runs SuperLU's numeric phase on the pre-permuted matrix with
``permc_spec="NATURAL"``. The engine is `stiffasd.linalg.FixedPatternLU` (re-exported here with
its orderings). Measurements behind this choice: docs/solve_ivp.md ("Why this linear solver").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.integrate as _si
import scipy.sparse as sp

from .errors import BandwidthError, MissingDependencyError, ShapeError
from .linalg.ordering import choose_ordering as choose_ordering
from .linalg.ordering import nested_dissection as nested_dissection
from .linalg.superlu import MAX_PANEL_SIZE as MAX_PANEL_SIZE
from .linalg.superlu import ORDERINGS as ORDERINGS
from .linalg.superlu import PANEL_SIZE as PANEL_SIZE
from .linalg.superlu import FixedPatternLU as FixedPatternLU
from .linalg.superlu import _check_panel_size, _Factor

__all__ = [
    "BDF",
    "Radau",
    "FixedPatternLU",
    "nested_dissection",
    "choose_ordering",
    "banded_layout",
    "banded_gather",
    "to_banded",
    "last_lu_stats",
]


# ---------------------------------------------------------------------------------------------
# Hooks installed into scipy's solvers
# ---------------------------------------------------------------------------------------------
class _Shifted:
    """The Newton matrix ``sigma * I - J`` kept unassembled: its values go straight into the
    fixed pattern of `FixedPatternLU`."""

    __slots__ = ("sigma", "J")
    __array_ufunc__ = None

    def __init__(self, sigma, J):
        self.sigma = sigma
        self.J = J


class _Identity:
    """Stands in for scipy's sparse identity ``self.I``: ``s * I - J`` builds a `_Shifted`
    instead of a new sparse matrix (which would cost a sparse add and a fresh pattern per LU)."""

    __slots__ = ("n", "scale")
    # make numpy scalars defer to __rmul__ instead of wrapping us into an object array
    __array_ufunc__ = None

    def __init__(self, n: int, scale=1.0):
        self.n = n
        self.scale = scale

    def __mul__(self, s):
        if np.ndim(s) != 0:
            return NotImplemented
        return _Identity(self.n, self.scale * s)

    __rmul__ = __mul__

    def __sub__(self, J):
        if not sp.issparse(J):
            return NotImplemented
        return _Shifted(self.scale, J)

    @property
    def shape(self):
        return (self.n, self.n)


class _NewtonLU:
    """Caches the `FixedPatternLU` of the Jacobian pattern seen by one solver and follows pattern
    changes (a new pattern inside the old one reuses it; any other triggers a new analysis)."""

    def __init__(self, n: int, ordering, diag_pivot_thresh, panel_size=None):
        self.n = n
        self.ordering = ordering
        self.diag_pivot_thresh = diag_pivot_thresh
        self.panel_size = panel_size
        self.flu: FixedPatternLU | None = None
        self.n_symbolic = 0
        self._indptr = self._indices = None  # pattern arrays matching flu's J order
        self._sub = None  # (indptr, indices, keypos) of a sub-pattern last seen
        self._retired = dict(n_factor=0, factor_s=0.0, n_solve=0, solve_s=0.0, ordering_s=0.0)

    @property
    def stats(self) -> dict:
        out = dict(self._retired)
        if self.flu is not None:
            for k, v in self.flu.stats.items():
                out[k] += v
        out["n_symbolic"] = self.n_symbolic
        out["ordering"] = self.flu.chosen_ordering if self.flu is not None else None
        return out

    def _new(self, J) -> None:
        if self.flu is not None:
            for k, v in self.flu.stats.items():
                self._retired[k] += v
        self.flu = FixedPatternLU(
            J.indptr,
            J.indices,
            self.n,
            ordering=self.ordering,
            diag_pivot_thresh=self.diag_pivot_thresh,
            panel_size=self.panel_size,
        )
        self._indptr, self._indices = J.indptr, J.indices
        self._sub = None
        self.n_symbolic += 1

    @staticmethod
    def _same(a, b) -> bool:
        return a is b or (a.shape == b.shape and np.array_equal(a, b))

    def factor(self, M) -> _Factor:
        if isinstance(M, _Shifted):
            sigma, J = M.sigma, M.J
        else:  # a plain sparse matrix handed to lu(): factor it as 0 * I - (-M)
            sigma, J = 0.0, -sp.csc_matrix(M)
        if J.format != "csc":
            J = sp.csc_matrix(J)
        if self.flu is None:
            self._new(J)
        if self._same(J.indptr, self._indptr) and self._same(J.indices, self._indices):
            # keep the newest objects, so the next identity test succeeds without comparing
            self._indptr, self._indices = J.indptr, J.indices
            return self.flu.factor(J.data, sigma)
        sub = self._sub
        if sub is not None and self._same(J.indptr, sub[0]) and self._same(J.indices, sub[1]):
            self._sub = (J.indptr, J.indices, sub[2])
            return self.flu.factor(J.data, sigma, keypos=sub[2])
        keypos = self.flu.contains(J.indptr, J.indices)
        if keypos is not None:
            self._sub = (J.indptr, J.indices, keypos)
            return self.flu.factor(J.data, sigma, keypos=keypos)
        self._new(J)
        return self.flu.factor(J.data, sigma)


def _install_hooks(solver, ordering, diag_pivot_thresh, panel_size=None) -> None:
    """Replace scipy's LU hooks of a constructed BDF/Radau when its Jacobian is sparse; a dense
    Jacobian keeps scipy's dense LAPACK path untouched."""
    if not sp.issparse(solver.J):
        return
    newton = _NewtonLU(solver.n, ordering, diag_pivot_thresh, panel_size)
    solver._newton_lu = newton

    def lu(M):
        solver.nlu += 1
        return newton.factor(M)

    def solve_lu(LU, b):
        return LU.solve(b)

    solver.lu = lu
    solver.solve_lu = solve_lu
    solver.I = _Identity(solver.n)


_OPTIONS_DOC = """
    Extra options (on top of scipy's, passed through ``solve_ivp(..., method=stiffasd.scipy.{name},
    ordering=..., diag_pivot_thresh=..., panel_size=...)``):

    Args:
        ordering: fill-reducing ordering computed once per solve: ``"auto"`` (default:
            ``"METIS"`` nested dissection of A + A^T, the best measured on 2D PDE Newton
            matrices, or reverse Cuthill-McKee where that predicts less fill, as on 1D chains;
            see `choose_ordering`; ``"MMD_AT_PLUS_A"`` where pymetis is unavailable),
            ``"METIS"``, ``"MMD_AT_PLUS_A"``
            (SuperLU's minimum degree on A + A^T), ``"COLAMD"`` (scipy's default),
            ``"MMD_ATA"``, ``"RCM"`` (reverse Cuthill-McKee), ``"NATURAL"``, or a permutation
            array.
        diag_pivot_thresh: SuperLU's diagonal pivot threshold (1.0 = partial pivoting, scipy's
            default; smaller values prefer the diagonal).
        panel_size: SuperLU's panel width (default `stiffasd.scipy.PANEL_SIZE`).
        progress: ``True`` draws a tqdm progress bar over the time span (``pip install
            tqdm``); a callable is called as ``progress(t, y)`` after every step.

    Counters of the sparse linear algebra (``n_factor``, ``factor_s``, ``n_solve``, ``solve_s``,
    ``ordering_s``, ``n_symbolic``) and the ``ordering`` in use are in ``solver.lu_stats``;
    after ``solve_ivp`` (which does not return the solver) `stiffasd.scipy.last_lu_stats()`
    gives those of the latest solver.
"""


_LAST_STATS: dict = {}


def last_lu_stats() -> dict:
    """Linear-algebra counters of the latest solver built by `BDF`/`Radau` in this process
    (``n_factor``, ``factor_s``, ``n_solve``, ``solve_s``, ``ordering_s``, ``n_symbolic``) and
    the ordering in use (``ordering``: ``"METIS"``, ``"RCM"``, ``"METIS+COLAMD"``, ... see
    `FixedPatternLU.chosen_ordering`); empty when it used scipy's dense path."""
    return dict(_LAST_STATS.get("stats", lambda: {})())


class _ProgressBar:
    """A tqdm bar over the time span, advanced after every step (tqdm is optional: imported
    here, with the install command when it is missing)."""

    def __init__(self, t0: float, t_bound: float, desc: str):
        try:
            from tqdm.auto import tqdm
        except ImportError as e:
            raise MissingDependencyError(
                f"{desc}(progress=True) draws a tqdm progress bar, and tqdm is not installed: "
                "`pip install tqdm` (or `pip install stiffasd[progress]`), or pass a callable "
                "progress(t, y) instead."
            ) from e
        self.t0 = t0
        self.done = 0.0
        self.bar = tqdm(total=abs(t_bound - t0), desc=desc, unit="t", leave=True)

    def __call__(self, solver) -> None:
        done = abs(solver.t - self.t0)
        self.bar.set_postfix_str(f"t={solver.t:.6g}, nlu={solver.nlu}", refresh=False)
        self.bar.update(done - self.done)
        self.done = done
        if solver.status != "running":
            self.bar.close()


def _progress_hook(progress, t0, t_bound, where: str):
    """``progress=`` of the solvers: ``False``, ``True`` (tqdm bar) or ``progress(t, y)``."""
    if progress is False or progress is None:
        return None
    if progress is True:
        return _ProgressBar(t0, t_bound, where)
    if callable(progress):
        return lambda solver: progress(solver.t, solver.y)
    raise TypeError(
        f"{where}(progress={progress!r}): expected True (a tqdm progress bar), False, or a "
        "callable progress(t, y) called after every step."
    )


class _FixedPatternSolver:
    """The part BDF and Radau share: install the fixed-pattern LU hooks after scipy's
    ``__init__`` (which has validated the Jacobian), expose the counters, report progress."""

    def __init__(
        self,
        fun,
        t0,
        y0,
        t_bound,
        *,
        ordering="auto",
        diag_pivot_thresh=1.0,
        panel_size=None,
        progress=False,
        **options,
    ):
        where = f"stiffasd.scipy.{type(self).__name__}"
        panel_size = _check_panel_size(panel_size, where)
        self._progress = _progress_hook(progress, t0, t_bound, where)
        super().__init__(fun, t0, y0, t_bound, **options)
        _install_hooks(self, ordering, diag_pivot_thresh, panel_size)
        if hasattr(self, "_newton_lu"):
            _LAST_STATS["stats"] = lambda s=self._newton_lu: s.stats
        else:
            _LAST_STATS.clear()

    def step(self):
        message = super().step()
        if self._progress is not None:
            self._progress(self)
        return message

    @property
    def lu_stats(self) -> dict:
        """Linear-algebra counters (empty on the dense path)."""
        nl = getattr(self, "_newton_lu", None)
        return nl.stats if nl is not None else {}


class BDF(_FixedPatternSolver, _si.BDF):
    __doc__ = (
        "scipy's `BDF` (variable order 1-5 NDF) whose sparse LU reuses the Jacobian's fixed "
        "pattern: ordering once per solve, numeric refactorization per Jacobian or step-size "
        "change, triangular solves per Newton iteration. Same options and results as "
        "`scipy.integrate.BDF` (dense Jacobians use scipy's path unchanged).\n"
        + _OPTIONS_DOC.format(name="BDF")
    )


class Radau(_FixedPatternSolver, _si.Radau):
    __doc__ = (
        "scipy's `Radau` (implicit Runge-Kutta Radau IIA, order 5) whose two sparse LUs per "
        "step (one real, one complex) reuse the Jacobian's fixed pattern and one ordering. Same "
        "options and results as `scipy.integrate.Radau` (dense Jacobians use scipy's path).\n"
        + _OPTIONS_DOC.format(name="Radau")
    )


# ---------------------------------------------------------------------------------------------
# LSODA banded layout
# ---------------------------------------------------------------------------------------------
def banded_layout(pattern, *, max_width_fraction: float = 0.25) -> tuple[int, int, np.ndarray]:
    """LSODA's banded Jacobian layout for a square pattern.

    LSODA (``solve_ivp(method="LSODA", lband=..., uband=...)``, also `odeint` with ``ml``/``mu``)
    takes the Jacobian packed by diagonals: ``jac_packed[uband + i - j, j] = d f_i / d y_j``, an
    array of shape ``(lband + uband + 1, n)``, the layout of `scipy.linalg.solve_banded`.

    Args:
        pattern: a `stiffasd.SparsityPattern` (or any scipy sparse matrix) of shape ``(n, n)``.
        max_width_fraction: refuse bands wider than this fraction of ``n``.

    Returns:
        ``(lband, uband, gather)``: the bandwidths, and for every nonzero in the pattern's CSC
        order its flat position in the C-ordered packed array (so
        ``packed.ravel()[gather] = data_csc``).

    Raises:
        BandwidthError: when ``lband + uband + 1 > max_width_fraction * n`` (for ``n >= 16``): a
            banded LU then costs about ``n * lband * (lband + uband)`` flops and stores the whole
            band, far more than a sparse LU of the same pattern.
    """
    rows, cols, n = _csc_rows_cols(pattern)
    if rows.size:
        d = rows - cols
        lband, uband = max(int(d.max()), 0), max(int(-d.min()), 0)
    else:
        lband = uband = 0
    width = lband + uband + 1
    if n >= 16 and width > max_width_fraction * n:
        raise BandwidthError(
            f"banded_layout: the pattern's band is too wide to help LSODA: lband={lband}, "
            f"uband={uband}, so the packed Jacobian has {width} rows for n={n} unknowns "
            f"(more than {max_width_fraction:g} * n) and a banded LU would cost ~n*lband*(lband+"
            f"uband) = {n * lband * (lband + uband):.3g} flops for {rows.size} nonzeros. Banded "
            "storage pays off for 1D problems (a few neighbours per unknown, unknowns ordered "
            "along the line). For this pattern use solve_ivp(method=stiffasd.scipy.BDF, "
            "jac=stiffasd.jac(rhs)) (sparse LU), or pass max_width_fraction= to force it."
        )
    return lband, uband, banded_gather(pattern, lband, uband)


def _csc_rows_cols(pattern) -> tuple[np.ndarray, np.ndarray, int]:
    if hasattr(pattern, "csc_indices") and hasattr(pattern, "csc_indptr"):
        m, n = pattern.shape
        rows = np.asarray(pattern.csc_indices, dtype=np.int64)
        cols = np.asarray(pattern.csc_cols, dtype=np.int64)
    elif sp.issparse(pattern):
        A = sp.csc_matrix(pattern)
        A.sum_duplicates()
        m, n = A.shape
        rows = A.indices.astype(np.int64)
        cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(A.indptr))
    else:
        raise TypeError(
            "banded_layout(pattern=...): expected a stiffasd.SparsityPattern or a scipy sparse "
            f"matrix, got {type(pattern).__name__}."
        )
    if m != n:
        raise ShapeError(f"banded_layout: LSODA needs a square Jacobian; got shape {(m, n)}.")
    return rows, cols, n


def banded_gather(pattern, lband: int, uband: int) -> np.ndarray:
    """For every nonzero of ``pattern`` (in its CSC order), its flat position in the C-ordered
    packed array of `to_banded` with bandwidths ``lband``, ``uband``.

    Raises:
        BandwidthError: when the pattern has entries outside that band.
    """
    rows, cols, n = _csc_rows_cols(pattern)
    if rows.size and (np.any(rows - cols > lband) or np.any(cols - rows > uband)):
        d = rows - cols
        raise BandwidthError(
            f"to_banded: the pattern has entries outside lband={lband}, uband={uband} (it "
            f"reaches lband={max(int(d.max()), 0)}, uband={max(int(-d.min()), 0)}); use the "
            "bandwidths returned by banded_layout(pattern)."
        )
    return (uband + rows - cols) * n + cols


def to_banded(data_csc: Any, pattern, lband: int, uband: int, *, gather=None, out=None):
    """Pack Jacobian values given in the pattern's CSC order into LSODA's banded layout.

    Args:
        data_csc: values of the nonzeros, in the pattern's CSC order (length ``nnz``).
        pattern: the `SparsityPattern` (or scipy sparse matrix) they belong to.
        lband, uband: bandwidths, usually from `banded_layout`; they may exceed the pattern's.
        gather: the positions from `banded_layout` (or `banded_gather`) for these
            ``lband``/``uband``; when given, the pattern is not re-read (the fast per-call
            path), so it must match.
        out: optional preallocated ``(lband + uband + 1, n)`` array to fill.

    Returns:
        The packed array: ``packed[uband + i - j, j] = J[i, j]``.
    """
    data_csc = np.asarray(data_csc)
    if gather is None:
        gather = banded_gather(pattern, lband, uband)
    n, nnz = int(pattern.shape[1]), int(np.asarray(gather).size)
    if data_csc.shape != (nnz,):
        raise ShapeError(
            f"to_banded(data_csc=...): expected {nnz} values (the pattern's nnz), got "
            f"shape {data_csc.shape}."
        )
    shape = (lband + uband + 1, n)
    if out is None:
        out = np.zeros(shape, dtype=data_csc.dtype)
    else:
        if out.shape != shape:
            raise ShapeError(f"to_banded(out=...): expected shape {shape}, got {out.shape}.")
        out[...] = 0
    out.reshape(-1)[gather] = data_csc
    return out
