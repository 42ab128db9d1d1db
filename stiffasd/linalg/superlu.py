"""The host LU engine: repeated SuperLU factorizations of matrices sharing one pattern.

`FixedPatternLU` computes the fill-reducing ordering once per pattern and every later
factorization runs only SuperLU's numeric phase on the pre-permuted matrix with
``permc_spec="NATURAL"``. It serves `stiffasd.scipy.BDF`/`Radau` directly and the diffrax side
through a host callback (`stiffasd.linalg.DirectLU`). Measurements behind these choices:
docs/solve_ivp.md ("Why this linear solver").
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu

from ..errors import ShapeError
from .ordering import _choose, _default_ordering, nested_dissection

__all__ = ["FixedPatternLU", "ORDERINGS", "PANEL_SIZE", "MAX_PANEL_SIZE"]

#: Orderings accepted by ``ordering=``: METIS nested dissection of A + A^T (``"auto"`` picks it or
#: reverse Cuthill-McKee, whichever predicts less fill),
#: SuperLU's own (computed once, at the first factorization), reverse Cuthill-McKee, natural
#: order, or an explicit permutation array.
ORDERINGS = ("auto", "METIS", "MMD_AT_PLUS_A", "COLAMD", "MMD_ATA", "RCM", "NATURAL")

#: SuperLU's panel width used by `FixedPatternLU` (SuperLU's own default is 20). Narrow panels
#: suit the small supernodes of method-of-lines Newton matrices (docs/solve_ivp.md, "Why this
#: linear solver").
PANEL_SIZE = 4
#: Widest panel accepted: SuperLU's own default. Wider panels corrupted the heap of scipy 1.17's
#: SuperLU (crashes with "double free or corruption" in a stress test of widths 22-100).
MAX_PANEL_SIZE = 20


#: ``ordering="auto"`` reconsiders its symmetric ordering when a factorization stores more than
#: this many times the entries that elimination without pivoting would create with it (the
#: symbolic count of `choose_ordering`, ``2 nnz(L) - n``): partial pivoting has then swapped rows
#: far from where a symmetric ordering placed them (measured: 2.4x on FitzHugh-Nagumo Newton
#: matrices at large steps, at most 1.22x without pivoting, from SuperLU's supernode storage).
PIVOT_FILL_RATIO = 1.5

_BLAS: list = []


def _one_blas_thread():
    """A context in which BLAS runs on one thread. SuperLU's kernels are level-2 BLAS calls on
    small supernodes; a multithreaded BLAS wakes its threads for each of them, which costs
    more than the work. Measured with OpenBLAS's default threads: complex factorizations of
    2D/3D Newton matrices 6-15x slower (Brusselator n = 32768: 3.8 s against 0.61 s), complex
    solves 2x, real factorizations 1.2x. The limit is lifted again on exit, so the caller's
    own BLAS use keeps its threads."""
    if not _BLAS:  # created once, after scipy's SuperLU has loaded its BLAS
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


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


class _Layout:
    """Where the values of ``sigma * I - alpha * J`` go in the CSC data of ``A[q][:, q]``, the
    symmetrically permuted matrix handed to SuperLU (``q is None``: no permutation)."""

    __slots__ = ("q", "jpos", "dpos", "indices", "indptr", "_key_map")

    def __init__(self, q, jpos, dpos, indices, indptr):
        self.q = q
        self.jpos = jpos  # J's values (in its CSC order) -> positions in the data
        self.dpos = dpos  # the diagonal -> positions in the data
        self.indices = indices  # int32, as SuperLU wants them
        self.indptr = indptr
        self._key_map = None

    def key_map(self, key_jpos: np.ndarray, key_dpos: np.ndarray) -> np.ndarray:
        """For every entry of the key-sorted Newton pattern (J's entries at ``key_jpos``, the
        diagonal at ``key_dpos``), its position in this layout's data (computed once)."""
        if self._key_map is None:
            m = np.empty(self.indices.size, dtype=np.int64)
            m[key_jpos] = self.jpos  # J's entries and the diagonal cover every key
            m[key_dpos] = self.dpos
            self._key_map = m
        return self._key_map


class _Factor:
    """One numeric factorization: a SuperLU object for the symmetrically permuted matrix
    ``A[q][:, q]`` (``q is None``: no permutation)."""

    __slots__ = ("lu", "q", "stats", "complex")

    def __init__(self, lu, q, stats, data):
        self.lu = lu
        self.q = q
        self.stats = stats
        self.complex = np.iscomplexobj(data)  # the values factored

    def solve(self, b: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        # complex solves run 2-3x faster on one BLAS thread; real ones gain nothing measurable
        # and would pay the limit's own 15-30 us per call
        with _one_blas_thread() if self.complex else contextlib.nullcontext():
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

    A symmetric ordering (nested dissection, reverse Cuthill-McKee) predicts the fill of an
    elimination on the diagonal. When the diagonal stops dominating (Newton matrices at large
    steps: ``sigma`` small against ``J``'s couplings), partial pivoting takes rows from far
    away and the fill grows past that prediction. With ``ordering="auto"`` a factorization
    whose fill exceeds `PIVOT_FILL_RATIO` times the prediction is redone once with SuperLU's
    COLAMD column ordering (which bounds the fill for every row pivoting, George & Ng 1987),
    and where COLAMD stores fewer entries it serves every later matrix whose diagonal shift
    ``|sigma / alpha|`` is at most that one's (the symmetric ordering keeps the others). The
    decisions depend on entry counts only, so reruns repeat them exactly. Factorizations and
    complex solves run with single-threaded BLAS (see `_one_blas_thread`).

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
            decided at the first factorization, ``"COLAMD"`` once pivoting made ``"auto"``
            switch; ``None`` before).
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
        self._ordered = False
        self._layout = self._make_layout(None)
        # "auto" only: a factorization storing more than `_fill_limit` entries (set when the
        # ordering is chosen) at a shift below `_probe_below` tries COLAMD (layout `_colamd`);
        # where COLAMD has won, it serves the shifts up to `_pivot_shift`
        self._fill_limit: float | None = None
        self._colamd: _Layout | None = None
        self._probe_below = np.inf
        self._pivot_shift = -1.0

    # -- layout of the (possibly permuted) matrix handed to SuperLU --------------------------
    def _make_layout(self, q: np.ndarray | None) -> _Layout:
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
        # SuperLU wants int32 indices: convert once, not at every factorization
        indptr = np.searchsorted(cols, np.arange(n + 1)).astype(np.int32)
        return _Layout(q, inv[self._jpos], inv[self._dpos], rows.astype(np.int32), indptr)

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

    def _assemble(self, lay: _Layout, sigma, alpha, jdata, keypos=None) -> np.ndarray:
        """CSC data of ``sigma * I - alpha * J`` in layout ``lay``; ``keypos`` (from
        `contains`) places the values of a J whose pattern is a sub-pattern."""
        dtype = np.result_type(jdata.dtype, np.asarray(sigma).dtype, np.asarray(alpha).dtype)
        data = np.zeros(self.nnz, dtype=dtype)
        vals = jdata * (-alpha)
        if keypos is not None:
            _scatter_add(data, lay.key_map(self._jpos, self._dpos)[keypos], vals)
        elif self._jdup:  # J came with duplicate entries: they add up
            _scatter_add(data, lay.jpos, vals)
        else:
            data[lay.jpos] = vals
        if sigma != 0:
            data[lay.dpos] += sigma
        return data

    def factor(self, jdata: np.ndarray, sigma=1.0, alpha=1.0, *, keypos=None) -> _Factor:
        """Factor ``sigma * I - alpha * J`` where ``J`` has values ``jdata`` in the CSC order of
        the pattern given at construction (or at positions ``keypos`` from `contains`).

        Returns:
            An object with ``.solve(b)``.
        """
        t0 = time.perf_counter()
        jdata = np.asarray(jdata)
        shift = abs(sigma) / abs(alpha) if alpha != 0 else np.inf  # the diagonal's weight
        if not self._ordered:
            data = self._assemble(self._layout, sigma, alpha, jdata, keypos)
            fac = self._first_factor(data, shift)
        else:
            lay = self._layout if shift > self._pivot_shift else self._colamd
            data = self._assemble(lay, sigma, alpha, jdata, keypos)
            fac = _Factor(self._splu(lay, data), lay.q, self.stats, data)
            if lay is self._layout and self._pivoted(fac, shift):
                fac = self._reconsider(data, fac, shift)
        self._last = fac
        self.stats["n_factor"] += 1
        self.stats["factor_s"] += time.perf_counter() - t0
        return fac

    def _first_factor(self, data: np.ndarray, shift: float) -> _Factor:
        """Factor the first matrix (CSC data ``data`` in natural order, diagonal shift
        ``shift``) and fix the ordering for all later ones."""
        t0 = time.perf_counter()
        natural = self._layout
        ordering = self.ordering
        if isinstance(ordering, str) and ordering in ("MMD_AT_PLUS_A", "COLAMD", "MMD_ATA"):
            # SuperLU orders (and factors) this first matrix itself; its column permutation is
            # then reused symmetrically, so the result of this call is a valid factor as is.
            lu = self._splu(natural, data, ordering)
            q = np.argsort(lu.perm_c).astype(np.int64)
            fac = _Factor(lu, None, self.stats, data)
        else:
            if isinstance(ordering, str) and ordering == "auto":
                self.chosen_ordering, q, nnz_l = _choose(self._rows, self._cols, self.n)
                self._symmetric_name = self.chosen_ordering
                self._fill_limit = PIVOT_FILL_RATIO * (2 * nnz_l - self.n)
            elif isinstance(ordering, str) and ordering == "METIS":
                q = nested_dissection(self._rows, self._cols, self.n)
            elif isinstance(ordering, str) and ordering == "RCM":
                A = sp.csc_matrix((data, natural.indices, natural.indptr), shape=(self.n, self.n))
                q = np.asarray(reverse_cuthill_mckee(A, symmetric_mode=False), dtype=np.int64)
            elif isinstance(ordering, str):  # NATURAL
                q = None
            else:
                q = ordering
            fac = None
        self._layout = self._make_layout(q)
        self._ordered = True
        self.stats["ordering_s"] += time.perf_counter() - t0
        if fac is None:
            out = np.empty_like(data)  # move the values into the chosen layout
            out[self._layout.key_map(self._jpos, self._dpos)] = data
            data = out
            fac = _Factor(self._splu(self._layout, data), q, self.stats, data)
            if self._pivoted(fac, shift):
                fac = self._reconsider(data, fac, shift)
        return fac

    def _pivoted(self, fac: _Factor, shift: float) -> bool:
        """Whether pivoting may have spoilt the symmetric ordering of ``fac`` ("auto" only)."""
        lim = self._fill_limit
        return lim is not None and fac.lu.nnz > lim and shift < self._probe_below

    def _reconsider(self, data: np.ndarray, fac: _Factor, shift: float) -> _Factor:
        """Pivoting has pushed the fill of ``fac`` (CSC data ``data`` in the symmetric
        ordering's layout) past that ordering's prediction: factor the matrix again with
        COLAMD's column ordering and keep it if it stores fewer entries. COLAMD then serves
        every later matrix whose diagonal shift ``|sigma / alpha|`` is at most this one's
        (pivoting comes from a diagonal too weak against ``J``'s couplings); otherwise it is
        tried again only below half this shift."""
        t0 = time.perf_counter()
        lay = self._layout
        if self._colamd is None:
            # COLAMD orders the columns of A[q][:, q]: in original indices that is q[perm]
            lu = self._splu(lay, data, "COLAMD")
            perm = np.argsort(lu.perm_c).astype(np.int64)
            new = _Factor(lu, lay.q, self.stats, data)  # a factor of the current layout: valid
            self._colamd = self._make_layout(perm if lay.q is None else lay.q[perm])
        else:
            moved = np.empty_like(data)
            keys = (self._jpos, self._dpos)
            moved[self._colamd.key_map(*keys)] = data[lay.key_map(*keys)]
            new = _Factor(self._splu(self._colamd, moved), self._colamd.q, self.stats, moved)
        if new.lu.nnz < fac.lu.nnz:
            self._pivot_shift = max(self._pivot_shift, shift)
            self.chosen_ordering = f"{self._symmetric_name}+COLAMD"
            fac = new
        else:
            self._probe_below = shift / 2
        self.stats["ordering_s"] += time.perf_counter() - t0
        return fac

    def _splu(self, lay: _Layout, data: np.ndarray, permc_spec: str = "NATURAL"):
        """SuperLU on the matrix with CSC data ``data`` in layout ``lay``."""
        A = sp.csc_matrix((data, lay.indices, lay.indptr), shape=(self.n, self.n))
        with _one_blas_thread():
            return splu(
                A,
                permc_spec=permc_spec,
                diag_pivot_thresh=self.diag_pivot_thresh,
                panel_size=self.panel_size,
                options=dict(SymmetricMode=self.diag_pivot_thresh < 1.0),
            )


def _scatter_add(out: np.ndarray, pos: np.ndarray, vals: np.ndarray) -> None:
    """``out[pos] += vals`` with repeated positions adding up (bincount is the fast vectorized
    form of np.add.at)."""
    out += np.bincount(pos, weights=vals.real, minlength=out.size)
    if np.iscomplexobj(vals):
        out += 1j * np.bincount(pos, weights=vals.imag, minlength=out.size)
