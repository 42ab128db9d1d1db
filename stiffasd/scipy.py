"""Solver-side glue for `scipy.integrate.solve_ivp`: drop-in BDF/Radau with fixed-pattern sparse
LU, and LSODA's banded Jacobian layout.

`BDF` and `Radau` subclass scipy's solvers and replace only their linear-algebra hooks
(``self.lu``, ``self.solve_lu`` and the identity ``self.I`` used to form the Newton matrices), so
the
step-size control, error estimates, dense output and statistics are scipy's own. What changes is
that the Newton matrix ``sigma I - J`` (BDF: ``I - c J``; Radau: ``mu/h I - J`` for a real and a
complex ``mu``) is never assembled by sparse arithmetic: its values are scattered into a pattern
fixed once per solve, the fill-reducing ordering (METIS nested dissection) is computed once, and
every later factorization only runs SuperLU's numeric phase on the pre-permuted matrix with
``permc_spec="NATURAL"``. Measurements behind this choice: docs/solve_ivp.md and
benchmarks/results/solvers_linear.md.
"""

from __future__ import annotations

import time
from typing import Any

import numba
import numpy as np
import scipy.integrate as _si
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu

from .errors import BandwidthError, ShapeError

__all__ = [
    "BDF",
    "Radau",
    "FixedPatternLU",
    "nested_dissection",
    "choose_ordering",
    "banded_layout",
    "to_banded",
    "last_lu_stats",
]

#: Orderings accepted by ``ordering=``: METIS nested dissection of A + A^T (``"auto"`` picks it or
#: reverse Cuthill-McKee, whichever predicts less fill),
#: SuperLU's own (computed once, at the first factorization), reverse Cuthill-McKee, natural
#: order, or an explicit permutation array.
ORDERINGS = ("auto", "METIS", "MMD_AT_PLUS_A", "COLAMD", "MMD_ATA", "RCM", "NATURAL")

#: SuperLU's panel width used by `FixedPatternLU` (SuperLU's own default is 20). Narrow panels
#: suit the small supernodes of method-of-lines Newton matrices; measured in
#: benchmarks/results/superlu_panel.md.
PANEL_SIZE = 4
#: Widest panel accepted: SuperLU's own default. Wider panels corrupted the heap of scipy 1.17's
#: SuperLU (crashes with "double free or corruption" in a stress test of widths 22-100).
MAX_PANEL_SIZE = 20


def _check_panel_size(panel_size: int | None, where: str) -> int:
    if panel_size is None:
        return PANEL_SIZE
    if (
        isinstance(panel_size, bool)
        or not isinstance(panel_size, (int, np.integer))
        or not (1 <= panel_size <= MAX_PANEL_SIZE)
    ):
        raise ValueError(
            f"{where}(panel_size={panel_size!r}): expected an int from 1 to {MAX_PANEL_SIZE} "
            "(SuperLU's default width; wider panels corrupt its memory)."
        )
    return int(panel_size)


def nested_dissection(rows: Any, cols: Any, n: int) -> np.ndarray:
    """Fill-reducing symmetric ordering of a square pattern: METIS multilevel nested dissection
    (Karypis & Kumar, SIAM J. Sci. Comput. 20 (1998) 359-392) of the graph of ``A + A^T``.

    On the Newton matrices of 2D method-of-lines problems it gives SuperLU 20-50% less work than
    minimum degree on ``A + A^T`` (benchmarks/results/solvers_linear.md), and computing it is
    cheaper than the probe factorization SuperLU's own orderings need. Dense rows and columns
    are ordered last and left out of the dissection (see `_split_dense`).

    Args:
        rows, cols: coordinates of the pattern's entries (duplicates and the diagonal ignored).
        n: matrix size.

    Returns:
        ``order`` (int64): row/column ``i`` of the permuted matrix is ``order[i]`` of the original.
    """
    keys, dense = _split_dense(_symmetric_keys(rows, cols, n), n)
    return _metis_order(keys, dense, n)


def _symmetric_keys(rows: Any, cols: Any, n: int) -> np.ndarray:
    """Sorted unique keys ``i * n + j`` of the off-diagonal pattern of ``A + A^T``."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    off = rows != cols
    r, c = rows[off], cols[off]
    return np.unique(np.concatenate([r * n + c, c * n + r]))


def _split_dense(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys without the dense rows and columns, and the mask of those dense vertices.

    Dense rows/columns (a global coupling) are ordered last and the rest is ordered without
    them, as minimum-degree codes do with dense vertices: a hub adjacent to everything otherwise
    skews nested dissection's separators and bandwidth orderings alike."""
    degree = np.bincount(keys // n, minlength=n)
    dense = degree > max(16, 10 * np.sqrt(n))
    if dense.any():
        keys = keys[~(dense[keys // n] | dense[keys % n])]
    return keys, dense


def _dense_last(perm: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """``perm`` without the dense vertices, followed by them."""
    perm = np.asarray(perm, dtype=np.int64)
    return np.concatenate([perm[~dense[perm]], np.flatnonzero(dense)]).astype(np.int64)


def _metis_order(keys: np.ndarray, dense: np.ndarray, n: int) -> np.ndarray:
    """METIS nested dissection of the sparse part ``keys``, dense vertices last."""
    import pymetis

    if keys.size == 0:  # no coupling left: every order of the sparse part is fill-free
        return _dense_last(np.arange(n), dense)
    starts = np.searchsorted(keys // n, np.arange(n + 1))
    adjacency = pymetis.CSRAdjacency(starts.astype(np.int32), (keys % n).astype(np.int32))
    perm, _ = pymetis.nested_dissection(adjacency=adjacency)
    return _dense_last(perm, dense)


def _band_order(keys: np.ndarray, dense: np.ndarray, n: int) -> np.ndarray:
    """Reverse Cuthill-McKee of the sparse part ``keys``, dense vertices last."""
    sym = sp.csr_matrix((np.ones(keys.size), (keys // n, keys % n)), shape=(n, n))
    return _dense_last(reverse_cuthill_mckee(sym, symmetric_mode=True), dense)


def _default_ordering() -> str:
    try:
        import pymetis  # noqa: F401
    except ImportError:  # a platform without its wheels: SuperLU's minimum degree on A + A^T
        return "MMD_AT_PLUS_A"
    return "auto"


@numba.njit(cache=True)
def _cholesky_nnz(n, ptr, idx):  # pragma: no cover - compiled
    """nnz of the Cholesky factor L (diagonal included) of a structurally symmetric CSR pattern:
    elimination tree (Liu's algorithm with path compression), then the row subtrees (Davis,
    "Direct Methods for Sparse Linear Systems", SIAM 2006, Alg. 4.1-4.2). O(nnz(L))."""
    parent = np.full(n, -1, np.int64)
    ancestor = np.full(n, -1, np.int64)
    for i in range(n):
        for p in range(ptr[i], ptr[i + 1]):
            k = idx[p]
            while k != -1 and k < i:
                nxt = ancestor[k]
                ancestor[k] = i
                if nxt == -1:
                    parent[k] = i
                k = nxt
    mark = np.full(n, -1, np.int64)
    total = n
    for i in range(n):
        mark[i] = i
        for p in range(ptr[i], ptr[i + 1]):
            k = idx[p]
            while k != -1 and k < i and mark[k] != i:
                mark[k] = i
                total += 1
                k = parent[k]
    return total


def _predicted_fill(keys: np.ndarray, n: int, order: np.ndarray) -> int:
    """nnz(L) of P (A + A^T) P^T, given the off-diagonal keys of ``A + A^T`` (`_symmetric_keys`):
    the fill of LU without pivoting is at most twice that."""
    inv = np.empty(n, np.int64)
    inv[order] = np.arange(n, dtype=np.int64)
    permuted = np.sort(inv[keys // n] * n + inv[keys % n])  # a permutation keeps keys unique
    ptr = np.searchsorted(permuted // n, np.arange(n + 1)).astype(np.int64)
    return int(_cholesky_nnz(n, ptr, permuted % n))


def choose_ordering(rows: Any, cols: Any, n: int) -> tuple[str, np.ndarray]:
    """The fill-reducing ordering for ``ordering="auto"``: METIS nested dissection
    (`nested_dissection`) or reverse Cuthill-McKee, whichever predicts less fill (symbolic
    Cholesky count of the permuted ``A + A^T``). Nested dissection wins on 2D/3D grids; on chains
    and other 1D-like patterns its separators cost fill that a band ordering avoids (reservoir
    chain, n = 20001: 160k against 120k entries). Dense rows and columns go last in both.

    Returns:
        ``(name, order)``.
    """
    sym = _symmetric_keys(rows, cols, n)
    keys, dense = _split_dense(sym, n)
    cands = {"METIS": _metis_order(keys, dense, n), "RCM": _band_order(keys, dense, n)}
    fill = {k: _predicted_fill(sym, n, o) for k, o in cands.items()}
    best = min(cands, key=lambda k: (fill[k], k != "METIS"))
    return best, cands[best]


# ---------------------------------------------------------------------------------------------
# Fixed-pattern LU
# ---------------------------------------------------------------------------------------------
class _Factor:
    """One numeric factorization: a SuperLU object for the symmetrically permuted matrix
    ``A[q][:, q]`` (``q is None``: no permutation)."""

    __slots__ = ("lu", "q", "stats")

    def __init__(self, lu, q, stats):
        self.lu = lu
        self.q = q
        self.stats = stats

    def solve(self, b: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        if self.q is None:
            x = self.lu.solve(b)
        else:
            y = self.lu.solve(b[self.q])
            x = np.empty_like(y)
            x[self.q] = y
        self.stats["solve_s"] += time.perf_counter() - t0
        self.stats["n_solve"] += 1
        return x


class FixedPatternLU:
    """Repeated LU factorizations of ``sigma * I - alpha * J`` for matrices ``J`` that share one
    sparsity pattern.

    The pattern of the Newton matrix (``J``'s pattern plus the diagonal) and the scatter positions
    of ``J``'s values and of the diagonal in it are computed once. The fill-reducing ordering is
    computed once too, at the first factorization: by default METIS nested dissection of the
    pattern (`nested_dissection`); with one of SuperLU's orderings, SuperLU orders the first
    matrix itself. The permutation ``q`` is applied symmetrically to every later matrix, which is
    factored with ``permc_spec="NATURAL"`` so that SuperLU skips the ordering phase (threshold
    partial pivoting is kept, so every factorization stays numerically safe).

    Args:
        indptr: CSC column pointer of ``J`` (length ``n + 1``).
        indices: CSC row indices of ``J`` (need not be sorted; duplicates are summed).
        n: matrix size.
        ordering: one of `ORDERINGS` or a permutation array of length ``n``.
        diag_pivot_thresh: SuperLU's threshold for preferring the diagonal pivot (1.0: partial
            pivoting, scipy's default).
        panel_size: SuperLU's panel width (columns eliminated together in its depth-first
            search), 1 to `MAX_PANEL_SIZE`; see `PANEL_SIZE` for the default.

    Attributes:
        nnz: entries of the Newton-matrix pattern.
        chosen_ordering: the ordering in use (``"METIS"`` or ``"RCM"`` once ``"auto"`` has
            decided at the first factorization; ``None`` before).
        stats: counters and accumulated seconds (``n_factor``, ``factor_s``, ``n_solve``,
            ``solve_s``; ``ordering_s`` is the part of ``factor_s`` spent in the first
            factorization, which computes the ordering).
    """

    def __init__(
        self,
        indptr: Any,
        indices: Any,
        n: int,
        *,
        ordering: str | Any = "auto",
        diag_pivot_thresh: float = 1.0,
        panel_size: int | None = None,
    ):
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        n = int(n)
        if indptr.shape != (n + 1,) or indptr[-1] != indices.size:
            raise ShapeError(
                f"FixedPatternLU(indptr=..., n={n}): indptr must have length n + 1 = {n + 1} and "
                f"end at len(indices) = {indices.size}; got length {indptr.size}."
            )
        if isinstance(ordering, str):
            if ordering not in ORDERINGS:
                raise ValueError(
                    f"FixedPatternLU(ordering={ordering!r}): expected one of {ORDERINGS} or a "
                    "permutation array of length n."
                )
        else:
            perm = np.asarray(ordering, dtype=np.int64)
            if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
                raise ValueError(
                    f"FixedPatternLU(ordering=array): expected a permutation of range({n}); got "
                    f"an array of shape {perm.shape}."
                )
            ordering = perm
        if isinstance(ordering, str) and ordering == "auto":
            ordering = _default_ordering()
        self.n = n
        self.ordering = ordering
        # the ordering in use ("auto" decides at the first factorization)
        self.chosen_ordering: str | None = (
            None
            if isinstance(ordering, str) and ordering == "auto"
            else ordering
            if isinstance(ordering, str)
            else "permutation"
        )
        self.diag_pivot_thresh = float(diag_pivot_thresh)
        self.panel_size = _check_panel_size(panel_size, "FixedPatternLU")
        self.stats = dict(n_factor=0, factor_s=0.0, n_solve=0, solve_s=0.0, ordering_s=0.0)
        self._last: _Factor | None = None

        # Pattern of the Newton matrix: J's entries plus the diagonal, canonical CSC, as keys
        # col * n + row so that membership and positions are single sorted searches.
        cols = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        jkeys = cols * n + indices
        diag = np.arange(n, dtype=np.int64) * (n + 1)
        keys = np.union1d(jkeys, diag)
        self.nnz = keys.size
        self._keys = keys
        self._rows = keys % n
        self._cols = keys // n
        self._jpos = np.searchsorted(keys, jkeys)
        self._dpos = np.searchsorted(keys, diag)
        self._jdup = np.unique(self._jpos).size < self._jpos.size
        self._q: np.ndarray | None = None
        self._ordered = False
        self._set_layout(None)

    # -- layout of the (possibly permuted) matrix handed to SuperLU --------------------------
    def _set_layout(self, q: np.ndarray | None) -> None:
        """Positions of J's values and of the diagonal in the CSC data of ``A[q][:, q]``."""
        n = self.n
        if q is None:
            order = np.arange(self.nnz)
            rows, cols = self._rows, self._cols
        else:
            qinv = np.empty(n, dtype=np.int64)
            qinv[q] = np.arange(n)
            rows, cols = qinv[self._rows], qinv[self._cols]
            order = np.argsort(cols * n + rows, kind="stable")
            rows, cols = rows[order], cols[order]
        inv = np.empty(self.nnz, dtype=np.int64)
        inv[order] = np.arange(self.nnz)
        self._ajpos = inv[self._jpos]
        self._adpos = inv[self._dpos]
        # SuperLU wants int32 indices: convert once, not at every factorization
        self._aindices = rows.astype(np.int32)
        self._aindptr = np.searchsorted(cols, np.arange(n + 1)).astype(np.int32)
        self._q = q

    @property
    def fill(self) -> int:
        """``nnz(L) + nnz(U)`` of the latest factorization (0 before the first); extracting the
        factors costs a copy, so it is computed on request only."""
        if self._last is None:
            return 0
        return int(self._last.lu.L.nnz + self._last.lu.U.nnz)

    def contains(self, indptr: Any, indices: Any) -> np.ndarray | None:
        """Positions (in this pattern's J order) of another CSC pattern's entries, or ``None``
        when one of them falls outside the pattern."""
        indptr = np.asarray(indptr, dtype=np.int64)
        cols = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(indptr))
        keys = cols * self.n + np.asarray(indices, dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, self._keys.size - 1)
        if keys.size and np.any(self._keys[pos_c] != keys):
            return None
        return pos_c

    def _assemble(self, sigma, alpha, jdata) -> np.ndarray:
        """CSC data of ``sigma * I - alpha * J`` in the factored layout."""
        dtype = np.result_type(jdata.dtype, np.asarray(sigma).dtype, np.asarray(alpha).dtype)
        data = np.zeros(self.nnz, dtype=dtype)
        vals = jdata * (-alpha)
        if self._jdup:  # J came with duplicate entries: they add up
            _scatter_add(data, self._ajpos, vals)
        else:
            data[self._ajpos] = vals
        if sigma != 0:
            data[self._adpos] += sigma
        return data

    def _assemble_at(self, sigma, alpha, jdata, keypos) -> np.ndarray:
        """Same for a J whose pattern is a sub-pattern (positions ``keypos`` from `contains`)."""
        dtype = np.result_type(jdata.dtype, np.asarray(sigma).dtype, np.asarray(alpha).dtype)
        data = np.zeros(self.nnz, dtype=dtype)
        _scatter_add(data, self._a_from_key_pos(keypos), jdata * (-alpha))
        if sigma != 0:
            data[self._adpos] += sigma
        return data

    def _key_to_layout(self) -> np.ndarray:
        """For every entry of the key-sorted Newton pattern, its position in the factored
        layout (cached per layout)."""
        cached = getattr(self, "_key_map", None)
        if cached is None or cached[0] is not self._q:
            m = np.empty(self.nnz, dtype=np.int64)
            m[self._jpos] = self._ajpos  # keys = J's entries and the diagonal: m is complete
            m[self._dpos] = self._adpos
            self._key_map = cached = (self._q, m)
        return cached[1]

    def _a_from_key_pos(self, keypos: np.ndarray) -> np.ndarray:
        return self._key_to_layout()[keypos]

    def factor(self, jdata: np.ndarray, sigma=1.0, alpha=1.0, *, keypos=None) -> _Factor:
        """Factor ``sigma * I - alpha * J`` where ``J`` has values ``jdata`` in the CSC order of
        the pattern given at construction (or at positions ``keypos`` from `contains`).

        Returns:
            An object with ``.solve(b)``.
        """
        t0 = time.perf_counter()
        jdata = np.asarray(jdata)
        if keypos is not None:
            data = self._assemble_at(sigma, alpha, jdata, keypos)
        else:
            data = self._assemble(sigma, alpha, jdata)
        if not self._ordered:
            fac = self._first_factor(data)
        else:
            fac = _Factor(self._splu(data), self._q, self.stats)
        self._last = fac
        self.stats["n_factor"] += 1
        self.stats["factor_s"] += time.perf_counter() - t0
        return fac

    def _first_factor(self, data: np.ndarray) -> _Factor:
        """Factor the first matrix and fix the ordering for all later ones."""
        t0 = time.perf_counter()
        ordering = self.ordering
        if isinstance(ordering, str) and ordering in ("MMD_AT_PLUS_A", "COLAMD", "MMD_ATA"):
            # SuperLU orders (and factors) this first matrix itself; its column permutation is
            # then reused symmetrically, so the result of this call is a valid factor as is.
            lu = self._splu(data, ordering)
            q = np.argsort(lu.perm_c).astype(np.int64)
            fac = _Factor(lu, None, self.stats)
        else:
            if isinstance(ordering, str) and ordering == "auto":
                self.chosen_ordering, q = choose_ordering(self._rows, self._cols, self.n)
            elif isinstance(ordering, str) and ordering == "METIS":
                q = nested_dissection(self._rows, self._cols, self.n)
            elif isinstance(ordering, str) and ordering == "RCM":
                A = sp.csc_matrix((data, self._aindices, self._aindptr), shape=(self.n, self.n))
                q = np.asarray(reverse_cuthill_mckee(A, symmetric_mode=False), dtype=np.int64)
            elif isinstance(ordering, str):  # NATURAL
                q = None
            else:
                q = ordering
            fac = None
        self._set_layout(q)
        self._ordered = True
        self.stats["ordering_s"] += time.perf_counter() - t0
        if fac is None:
            fac = _Factor(self._splu(self._relayout(data)), q, self.stats)
        return fac

    def _splu(self, data: np.ndarray, permc_spec: str = "NATURAL"):
        """SuperLU on the matrix with CSC data ``data`` in the current layout."""
        A = sp.csc_matrix((data, self._aindices, self._aindptr), shape=(self.n, self.n))
        return splu(
            A,
            permc_spec=permc_spec,
            diag_pivot_thresh=self.diag_pivot_thresh,
            panel_size=self.panel_size,
            options=dict(SymmetricMode=self.diag_pivot_thresh < 1.0),
        )

    def _relayout(self, data_natural: np.ndarray) -> np.ndarray:
        """Move data assembled in the unpermuted (key-sorted) layout into the current one."""
        out = np.empty_like(data_natural)
        out[self._key_to_layout()] = data_natural
        return out


def _scatter_add(out: np.ndarray, pos: np.ndarray, vals: np.ndarray) -> None:
    """``out[pos] += vals`` with repeated positions adding up (bincount is the fast vectorized
    form of np.add.at)."""
    out += np.bincount(pos, weights=vals.real, minlength=out.size)
    if np.iscomplexobj(vals):
        out += 1j * np.bincount(pos, weights=vals.imag, minlength=out.size)


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

    Counters of the sparse linear algebra (``n_factor``, ``factor_s``, ``n_solve``, ``solve_s``,
    ``ordering_s``, ``n_symbolic``) are in ``solver.lu_stats``; after ``solve_ivp`` (which does
    not return the solver) `stiffasd.scipy.last_lu_stats()` gives those of the latest solver.
"""


_LAST_STATS: dict = {}


def last_lu_stats() -> dict:
    """Linear-algebra counters of the latest solver built by `BDF`/`Radau` in this process
    (``n_factor``, ``factor_s``, ``n_solve``, ``solve_s``, ``ordering_s``, ``n_symbolic``,
    ``fill``); empty when it used scipy's dense path."""
    return dict(_LAST_STATS.get("stats", lambda: {})())


class _FixedPatternSolver:
    """The part BDF and Radau share: install the fixed-pattern LU hooks after scipy's
    ``__init__`` (which has validated the Jacobian), and expose the counters."""

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
        **options,
    ):
        panel_size = _check_panel_size(panel_size, f"stiffasd.scipy.{type(self).__name__}")
        super().__init__(fun, t0, y0, t_bound, **options)
        _install_hooks(self, ordering, diag_pivot_thresh, panel_size)
        if hasattr(self, "_newton_lu"):
            _LAST_STATS["stats"] = lambda s=self._newton_lu: s.stats
        else:
            _LAST_STATS.clear()

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
    gather = (uband + rows - cols) * n + cols
    return lband, uband, gather


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


def to_banded(data_csc: Any, pattern, lband: int, uband: int, *, gather=None, out=None):
    """Pack Jacobian values given in the pattern's CSC order into LSODA's banded layout.

    Args:
        data_csc: values of the nonzeros, in the pattern's CSC order (length ``nnz``).
        pattern: the `SparsityPattern` (or scipy sparse matrix) they belong to.
        lband, uband: bandwidths, usually from `banded_layout`; they may exceed the pattern's.
        gather: the positions from `banded_layout` for these ``lband``/``uband``; when given, the
            pattern is not re-read (the fast per-call path), so it must match.
        out: optional preallocated ``(lband + uband + 1, n)`` array to fill.

    Returns:
        The packed array: ``packed[uband + i - j, j] = J[i, j]``.
    """
    data_csc = np.asarray(data_csc)
    if gather is None:
        rows, cols, n = _csc_rows_cols(pattern)
        nnz = rows.size
    else:  # the per-call path (stiffasd.jac(format="banded")): no index work at all
        n, nnz = int(pattern.shape[1]), int(np.asarray(gather).size)
    if data_csc.shape != (nnz,):
        raise ShapeError(
            f"to_banded(data_csc=...): expected {nnz} values (the pattern's nnz), got "
            f"shape {data_csc.shape}."
        )
    if gather is None:
        if nnz and (np.any(rows - cols > lband) or np.any(cols - rows > uband)):
            raise BandwidthError(
                f"to_banded: the pattern has entries outside lband={lband}, uband={uband}; use "
                "the bandwidths returned by banded_layout(pattern)."
            )
        gather = (uband + rows - cols) * n + cols
    shape = (lband + uband + 1, n)
    if out is None:
        out = np.zeros(shape, dtype=data_csc.dtype)
    else:
        if out.shape != shape:
            raise ShapeError(f"to_banded(out=...): expected shape {shape}, got {out.shape}.")
        out[...] = 0
    out.reshape(-1)[gather] = data_csc
    return out
