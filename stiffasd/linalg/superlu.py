"""The host LU engine: repeated SuperLU factorizations of matrices sharing one pattern.

`FixedPatternLU` computes the fill-reducing ordering once per pattern and every later
factorization runs only SuperLU's numeric phase on the pre-permuted matrix with
``permc_spec="NATURAL"``. It serves `stiffasd.scipy.BDF`/`Radau` directly and the diffrax side
through a host callback (`stiffasd.linalg.DirectLU`). Measurements behind these choices:
docs/solve_ivp.md ("Why this linear solver").
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu

from ..errors import ShapeError
from .ordering import _default_ordering, choose_ordering, nested_dissection

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
