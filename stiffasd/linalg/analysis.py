"""Symbolic analysis of a multifrontal LU for one fixed sparsity pattern.

The matrices ``I - gamma J`` of an implicit integration share ``J``'s pattern, so everything
structural is computed once, on the host, here; the numeric factorization
(`stiffasd.linalg.multifrontal`) is then a static JAX program of batched dense operations and
gathers/scatters with the index arrays of this plan.

Steps (Duff & Reid, "The multifrontal solution of indefinite sparse symmetric linear equations",
ACM TOMS 9 (1983) 302-325; Liu, "The multifrontal method for sparse matrix solution: theory and
practice", SIAM Review 34 (1992) 82-109; Davis, "Direct Methods for Sparse Linear Systems",
SIAM 2006; Amestoy, Duff, L'Excellent, "Multifrontal parallel distributed symmetric and
unsymmetric solvers", CMAME 184 (2000) 501-520, for the unsymmetric case on the symmetrized
structure):

1. a fill-reducing symmetric ordering of ``A + A^T``: METIS nested dissection with dense rows and
   columns last (`nested_dissection`). Its separator tree is balanced, so the assembly tree is
   shallow; a band ordering would give a chain of ``n`` fronts;
2. the elimination tree of the permuted ``A + A^T``, its postorder, the column counts of L;
3. fundamental supernodes (chains of columns with nested structure), then relaxed amalgamation
   (Ashcraft & Grimes, "The influence of relaxed supernode partitions on the multifrontal
   method", ACM TOMS 15 (1989) 291-309): a child joins its parent's front when the merged front
   stays small or adds few explicit zeros. Fewer, larger fronts mean fewer levels and larger
   batched operations, paid for with some zeros;
4. the assembly tree of the fronts and its level schedule: a front's level is one more than its
   highest child's, so all fronts of a level are independent;
5. per level, fronts grouped into buckets of equal padded shape (pivots ``P``, updates ``U``, from a
   geometric ladder of sizes), with the index maps of the numeric phase: where each entry of
   ``A`` goes in its front, where each child's contribution block goes in its parent (extend-add),
   and which unknowns each front's pivot and update rows are.

Pivoting is restricted to each front's fully summed block (partial pivoting by rows inside it), so
the structure computed here holds for every matrix with this pattern; tiny pivots are perturbed
(static pivoting) in the numeric phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numba
import numpy as np

from .._cache import BuildCache
from ..errors import ShapeError
from ..pattern import SparsityPattern
from .etree import column_counts, elimination_tree, lower_csr, postorder, structures
from .ordering import _symmetric_keys, nested_dissection

__all__ = ["MultifrontalPlan", "Bucket", "ChildMap", "Relaxation", "analyze"]


# ------------------------------------------------------------------------------ plan objects
@dataclass(frozen=True, eq=False)
class ChildMap:
    """Extend-add of the contribution blocks of one child bucket into one parent bucket.

    Child update row ``i`` and column ``j`` of selected child ``c`` land at flat position
    ``row_base[c, i] + col[c, j]`` of the parent bucket's front buffer (see `Bucket`); padding
    rows and columns point at a valid position and carry exact zeros.

    Attributes:
        src: index (in the plan's bucket list) of the bucket holding the children.
        sel: which fronts of that bucket (positions in it) have their parent here.
        row_base: ``(len(sel), U_child)`` flat offset of the parent row of each update row.
        col: ``(len(sel), U_child)`` parent column of each update column.
    """

    src: int
    sel: np.ndarray
    row_base: np.ndarray
    col: np.ndarray


@dataclass(frozen=True, eq=False)
class Bucket:
    """Fronts of one level with one padded shape: ``P`` pivot rows (the fully summed block),
    ``U`` update rows, fronts of size ``M = P + U``.

    The fronts live in one flat buffer of shape ``(B, M, M)``, pivot rows and columns first.

    Attributes:
        level: position in the level schedule (0 = leaves).
        P, U: padded numbers of pivots and of update rows.
        nb: panel width of the blocked factorization (``P`` is a multiple of it).
        size: number of fronts ``B``.
        npiv, nupd: true numbers of pivots and update rows of each front.
        entry_src, entry_dst: ``buffer[entry_dst] += data[entry_src]`` assembles the entries of
            ``A`` owned by these fronts.
        pad_dst: flat positions of the padding pivots' diagonal (set to 1).
        children: extend-add maps from the child buckets.
        piv, upd: ``(B, P)`` and ``(B, U)`` original indices of the unknowns of the pivot and
            update rows; padding holds ``n`` (a slot that reads as zero).
        fwd_dst: ``(B, M)``: where the forward solve writes (``piv`` then ``upd``, padding
            ``n + 1``, a slot nobody reads).
        bwd_src: ``(B, M)``: what the backward solve reads (``piv`` then ``upd``).
    """

    level: int
    P: int
    U: int
    size: int
    nb: int
    npiv: np.ndarray
    nupd: np.ndarray
    entry_src: np.ndarray
    entry_dst: np.ndarray
    pad_dst: np.ndarray
    children: tuple[ChildMap, ...]
    piv: np.ndarray
    upd: np.ndarray
    fwd_dst: np.ndarray
    bwd_src: np.ndarray

    @property
    def M(self) -> int:
        return self.P + self.U


@dataclass(frozen=True)
class Relaxation:
    """Relaxed amalgamation: a child front joins its parent when the merged front has at most
    ``small`` pivots, or at most ``medium`` pivots and a fraction of explicit zeros in its
    factor below ``medium_zeros``, or at most ``large`` pivots and below ``large_zeros``, or any
    size below ``any_zeros``.

    ``max_buckets`` and ``bucket_cost`` shape the schedule: each level's fronts are padded into at
    most ``max_buckets`` shapes, and a further shape is used only where it saves more than
    ``bucket_cost`` flops of padding (see `_group_fronts`). ``panel`` is the widest column panel
    of the blocked dense factorization of a front. Patterns of at most ``dense`` unknowns become
    one dense front: at that size a dense LU costs no more than the sparse one, and its program
    is the smallest (Brusselator n = 128: factor 0.28 against 0.22 ms, solve 0.05 against
    0.13 ms, and a fifth of the compile time)."""

    small: int = 16
    medium: int = 48
    medium_zeros: float = 0.5
    large: int = 128
    large_zeros: float = 0.15
    any_zeros: float = 0.02
    max_buckets: int = 4
    bucket_cost: float = 1e6
    panel: int = 32
    dense: int = 128


@dataclass(frozen=True, eq=False)
class MultifrontalPlan:
    """Everything structural about the LU of matrices with one square pattern.

    Attributes:
        n: matrix size.
        nnz: entries of the pattern (the data vector's length).
        rows, cols: the pattern's coordinates in CSC order (int32), for residuals.
        diag_positions: position of each diagonal entry in the data vector (-1 where the
            pattern has none).
        perm: the elimination order (original indices, pivot order).
        buckets: the numeric schedule, level by level.
        stats: fronts, levels, buckets, ``factor_entries`` (``nnz(L) + nnz(U)`` of the fronts,
            amalgamation zeros included), ``padded_entries`` (as stored), ``flops`` and
            ``padded_flops`` of one factorization, ``max_front``.
    """

    n: int
    nnz: int
    rows: np.ndarray
    cols: np.ndarray
    diag_positions: np.ndarray
    perm: np.ndarray
    buckets: tuple[Bucket, ...]
    stats: dict = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return 1 + max((b.level for b in self.buckets), default=-1)


# ------------------------------------------------------------------------------ kernels
@numba.njit(cache=True)
def _fundamental_supernodes(parent, count):  # pragma: no cover - compiled
    """Supernode id of every column of a postordered tree: column ``j + 1`` continues ``j``'s
    supernode when it is ``j``'s parent, ``j`` is its only child, and their structures nest."""
    n = parent.size
    nchild = np.zeros(n, np.int64)
    for j in range(n):
        if parent[j] != -1:
            nchild[parent[j]] += 1
    snode = np.empty(n, np.int64)
    s = -1
    for j in range(n):
        if j > 0 and parent[j - 1] == j and nchild[j] == 1 and count[j - 1] == count[j] + 1:
            snode[j] = s
        else:
            s += 1
            snode[j] = s
    return snode


@numba.njit(cache=True)
def _amalgamate(
    sparent, npiv, nupd, nz, small, medium, medium_zeros, large, large_zeros, any_zeros
):  # pragma: no cover - compiled
    """Relaxed amalgamation over a supernode tree numbered children-first: returns ``rep``, the
    supernode whose front each supernode joins (itself when it stays a front of its own)."""
    ns = sparent.size
    k = npiv.copy()
    z = nz.astype(np.float64)
    head = np.full(ns, -1, np.int64)
    nxt = np.full(ns, -1, np.int64)
    for c in range(ns - 1, -1, -1):
        p = sparent[c]
        if p != -1:
            nxt[c] = head[p]
            head[p] = c
    joined = np.full(ns, -1, np.int64)  # parent supernode a child joined
    for p in range(ns):
        c = head[p]
        while c != -1:
            kk = k[p] + k[c]
            u = nupd[p]
            entries = 0.5 * kk * (kk + 1) + kk * u
            zeros = 1.0 - (z[p] + z[c]) / entries
            if (
                kk <= small
                or (kk <= medium and zeros < medium_zeros)
                or (kk <= large and zeros < large_zeros)
                or zeros < any_zeros
            ):
                joined[c] = p
                k[p] = kk
                z[p] += z[c]
            c = nxt[c]
    rep = np.arange(ns)
    for s in range(ns - 1, -1, -1):  # parents first: a joined child takes its parent's front
        if joined[s] != -1:
            rep[s] = rep[joined[s]]
    return rep


# ------------------------------------------------------------------------------ helpers
def _group_fronts(level: np.ndarray, p: np.ndarray, u: np.ndarray, relax: Relaxation) -> np.ndarray:
    """Group id (within its level) of every front: each level's fronts, sorted by size, are cut
    into at most ``relax.max_buckets`` runs that share one padded shape (the run's largest pivot
    and update counts), choosing the cuts that minimise padded flops plus ``relax.bucket_cost``
    flops per run (one more batched operation per run: dispatch and compile time)."""
    group = np.zeros(level.size, np.int64)
    for lev in np.unique(level):  # a loop over levels (tens), the work is in the kernel
        fr = np.flatnonzero(level == lev)
        pairs, inverse, weight = np.unique(
            np.stack([p[fr] + u[fr], p[fr], u[fr]], axis=1),
            axis=0,
            return_inverse=True,
            return_counts=True,
        )
        cut = _cut_runs(
            pairs[:, 1], pairs[:, 2], weight, int(relax.max_buckets), float(relax.bucket_cost)
        )
        group[fr] = cut[inverse.reshape(-1)]
    return group


@numba.njit(cache=True)
def _cut_runs(p, u, w, max_runs, run_cost):  # pragma: no cover - compiled
    """Optimal cut of the sorted items (``w`` fronts of shape ``p, u`` each) into at most
    ``max_runs`` contiguous runs, by dynamic programming over (runs, prefix); a run costs
    ``run_cost`` plus its fronts' flops at the run's padded shape."""
    m = p.size
    k_max = min(max_runs, m)
    inf = 1e300
    best = np.full((k_max + 1, m + 1), inf)
    back = np.zeros((k_max + 1, m + 1), np.int64)
    best[0, 0] = 0.0
    for j in range(1, m + 1):
        mp = 0
        mu = 0
        fronts = 0
        for i in range(j - 1, -1, -1):
            mp = max(mp, p[i])
            mu = max(mu, u[i])
            fronts += w[i]
            cost = run_cost + fronts * (2.0 / 3.0 * mp**3 + 2.0 * mp * mp * mu + 2.0 * mp * mu * mu)
            for k in range(1, k_max + 1):
                v = best[k - 1, i] + cost
                if v < best[k, j]:
                    best[k, j] = v
                    back[k, j] = i
    k = 1
    for kk in range(1, k_max + 1):
        if best[kk, m] < best[k, m]:
            k = kk
    out = np.zeros(m, np.int64)
    j = m
    while k > 0:
        i = back[k, j]
        out[i:j] = k - 1
        j = i
        k -= 1
    return out


def _panels(P: np.ndarray, widest: int) -> tuple[np.ndarray, np.ndarray]:
    """``(panels, width)`` of the blocked factorization of ``P`` pivots: the fewest panels of at
    most ``widest`` columns, all of one width; ``panels * width >= P`` is the padded size."""
    P = np.asarray(P, dtype=np.int64)
    npan = np.maximum(-(-P // widest), 1)
    return npan, -(-P // npan)


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(c) for c in counts])`` without the loop."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _segments(ptr: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Positions of the segments ``ptr[w]:ptr[w + 1]`` for ``w`` in ``which``, concatenated."""
    counts = ptr[which + 1] - ptr[which]
    return np.repeat(ptr[which], counts) + _ragged_arange(counts)


def _front_flops(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Real flops of a partial LU of a front with ``p`` pivots and ``u`` update rows: dense LU of
    the pivot block, two triangular solves, the Schur-complement product."""
    p = p.astype(np.float64)
    u = u.astype(np.float64)
    return 2.0 / 3.0 * p**3 + 2.0 * p**2 * u + 2.0 * p * u**2


# ------------------------------------------------------------------------------ analysis
def analyze(
    pattern: SparsityPattern,
    *,
    perm: Any = None,
    relax: Relaxation | None = None,
) -> MultifrontalPlan:
    """Symbolic multifrontal analysis of a square pattern (diagonal included or not: it is added).

    Args:
        pattern: the pattern of the matrices to factor; their values come in its CSC order.
        perm: a fill-reducing order (original indices, eliminated first to last); default
            METIS nested dissection of ``A + A^T`` with dense rows and columns last.
        relax: amalgamation thresholds (`Relaxation`).

    Returns:
        The `MultifrontalPlan`.
    """
    if not isinstance(pattern, SparsityPattern):
        raise TypeError(
            f"analyze(pattern=...): expected a stiffasd.SparsityPattern, got "
            f"{type(pattern).__name__}; build one with SparsityPattern.from_scipy(matrix)."
        )
    m, n = pattern.shape
    if m != n:
        raise ShapeError(f"analyze(pattern=...): the pattern must be square, got shape {(m, n)}.")
    relax = relax or Relaxation()
    rows = np.asarray(pattern.csc_indices, dtype=np.int64)
    cols = np.asarray(pattern.csc_cols, dtype=np.int64)
    one_front = n <= relax.dense
    if perm is None:
        if one_front or n < 2:
            perm = np.arange(n, dtype=np.int64)
        else:
            perm = nested_dissection(rows, cols, n)
    else:
        perm = np.asarray(perm, dtype=np.int64)
        if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
            raise ValueError(
                f"analyze(perm=...): expected a permutation of range({n}), got an array of "
                f"shape {perm.shape}."
            )
    if n == 0:
        empty = np.zeros(0, np.int32)
        return MultifrontalPlan(0, 0, empty, empty, empty, perm, (), {})
    sym = _symmetric_keys(rows, cols, n)

    def lower_of(order):
        inv = np.empty(n, np.int64)
        inv[order] = np.arange(n, dtype=np.int64)
        keys = np.sort(inv[sym // max(n, 1)] * n + inv[sym % max(n, 1)])
        return inv, lower_csr(keys, n)

    # elimination tree, then relabel by its postorder (same fill, contiguous subtrees)
    _, (ptr, idx) = lower_of(perm)
    post = postorder(elimination_tree(n, ptr, idx))
    perm = perm[post]
    inv, (ptr, idx) = lower_of(perm)
    parent = elimination_tree(n, ptr, idx)
    count = column_counts(n, ptr, idx, parent)

    # fundamental supernodes, their tree and structures
    snode = _fundamental_supernodes(parent, count)
    ns = int(snode[-1]) + 1 if n else 0
    first = np.searchsorted(snode, np.arange(ns))
    last = np.append(first[1:], n) - 1
    spiv = last - first + 1
    supd = count[last] - 1
    sparent = np.where(parent[last] >= 0, snode[np.maximum(parent[last], 0)], -1)
    snz = np.bincount(snode, weights=count, minlength=ns).astype(np.int64)
    owner_of_last = np.full(n, -1, np.int64)
    owner_of_last[last] = np.arange(ns)
    sptr = np.concatenate([[0], np.cumsum(supd)]).astype(np.int64)
    sstruct = structures(n, ptr, idx, parent, owner_of_last, sptr)

    # relaxed amalgamation -> fronts (numbered by their top supernode, children first)
    rep = (
        np.full(ns, ns - 1)
        if one_front
        else _amalgamate(
            sparent,
            spiv,
            supd,
            snz,
            relax.small,
            relax.medium,
            relax.medium_zeros,
            relax.large,
            relax.large_zeros,
            relax.any_zeros,
        )
    )
    tops = np.flatnonzero(rep == np.arange(ns))
    nf = tops.size
    front_of_snode = np.searchsorted(tops, rep)
    front_of_col = front_of_snode[snode]  # new index -> front
    fpiv = np.bincount(front_of_col, minlength=nf)
    fupd = supd[tops]
    fparent = np.where(sparent[tops] >= 0, front_of_snode[np.maximum(sparent[tops], 0)], -1)
    level = _levels(fparent)

    # pivots of each front in elimination order: new indices sorted by front (stable)
    piv_new = np.argsort(front_of_col, kind="stable")
    piv_ptr = np.concatenate([[0], np.cumsum(fpiv)])
    pos_in_front = np.empty(n, np.int64)
    pos_in_front[piv_new] = _ragged_arange(fpiv)
    # update rows of a front: the structure of its top supernode (sorted new indices)
    upd_new = sstruct[_segments(sptr, tops)]
    upd_ptr = np.concatenate([[0], np.cumsum(fupd)])
    upd_keys = np.repeat(np.arange(nf), fupd) * n + upd_new  # sorted: fronts, then rows

    # buckets: the fronts of each level split into a few groups of one padded shape
    group = _group_fronts(level, fpiv, fupd, relax)
    ukeys, bucket_of = np.unique(np.stack([level, group], axis=1), axis=0, return_inverse=True)
    bucket_of = bucket_of.reshape(-1)
    Ppad = np.maximum(np.zeros(len(ukeys), np.int64), 1)
    Upad = np.zeros(len(ukeys), np.int64)
    np.maximum.at(Ppad, bucket_of, fpiv)
    np.maximum.at(Upad, bucket_of, fupd)
    npan, width = _panels(Ppad, relax.panel)
    Ppad = npan * width
    ukeys = np.stack([ukeys[:, 0], Ppad, Upad], axis=1)
    Ppad, Upad = Ppad[bucket_of], Upad[bucket_of]
    M = Ppad + Upad
    order = np.argsort(bucket_of, kind="stable")  # fronts grouped by bucket
    bsize = np.bincount(bucket_of, minlength=len(ukeys))
    bstart = np.concatenate([[0], np.cumsum(bsize)])
    slot = np.empty(nf, np.int64)
    slot[order] = _ragged_arange(bsize)

    def local(front: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Front-local row of unknown ``g`` (new index) in ``front``: pivot rows first, then the
        update rows after the padded pivot block."""
        up = np.searchsorted(upd_keys, front * n + g) - upd_ptr[front]
        return np.where(front_of_col[g] == front, pos_in_front[g], Ppad[front] + up)

    def row_base(front: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Flat offset of local row ``a`` of ``front`` in its bucket's ``(B, M, M)`` buffer."""
        return (slot[front] * M[front] + a) * M[front]

    # entries of A (pattern CSC order): the front owning the earlier-eliminated of row/column
    pr, pc = inv[rows], inv[cols]
    ef = front_of_col[np.minimum(pr, pc)]
    e_flat = row_base(ef, local(ef, pr)) + local(ef, pc)
    e_bucket = bucket_of[ef]

    buckets: list[Bucket] = []
    for b, (lev, P, U) in enumerate(ukeys):
        fr = order[bstart[b] : bstart[b + 1]]
        B = fr.size
        sel = np.flatnonzero(e_bucket == b)
        npad = P - fpiv[fr]
        pad_k = np.repeat(fpiv[fr], npad) + _ragged_arange(npad)
        pad_dst = (np.repeat(np.arange(B), npad) * (P + U) + pad_k) * (P + U) + pad_k
        piv = np.full((B, P), n, np.int64)
        piv[np.repeat(np.arange(B), fpiv[fr]), _ragged_arange(fpiv[fr])] = perm[
            piv_new[_segments(piv_ptr, fr)]
        ]
        upd = np.full((B, U), n, np.int64)
        upd[np.repeat(np.arange(B), fupd[fr]), _ragged_arange(fupd[fr])] = perm[
            upd_new[_segments(upd_ptr, fr)]
        ]
        buckets.append(
            Bucket(
                level=int(lev),
                P=int(P),
                U=int(U),
                size=int(B),
                nb=int(_panels(np.array([P]), relax.panel)[1][0]),
                npiv=fpiv[fr],
                nupd=fupd[fr],
                entry_src=sel,
                entry_dst=e_flat[sel],
                pad_dst=pad_dst,
                children=(),
                piv=piv,
                upd=upd,
                fwd_dst=np.where(np.hstack([piv, upd]) == n, n + 1, np.hstack([piv, upd])).astype(
                    np.int32
                ),
                bwd_src=np.hstack([piv, upd]).astype(np.int32),
            )
        )

    # extend-add maps, grouped by (child bucket, parent bucket)
    child = np.flatnonzero(fparent >= 0)
    pairs = np.stack([bucket_of[child], bucket_of[fparent[child]]], axis=1)
    upairs, pair_of = np.unique(pairs.reshape(-1, 2), axis=0, return_inverse=True)
    pair_of = pair_of.reshape(-1)
    maps: dict[int, list[ChildMap]] = {}
    for q, (cb, pb) in enumerate(upairs):
        cs = child[pair_of == q]
        Uc = int(ukeys[cb][2])
        rb = np.zeros((cs.size, Uc), np.int64)
        col = np.zeros((cs.size, Uc), np.int64)
        r, k = np.repeat(np.arange(cs.size), fupd[cs]), _ragged_arange(fupd[cs])
        par = np.repeat(fparent[cs], fupd[cs])
        col[r, k] = local(par, upd_new[_segments(upd_ptr, cs)])
        rb[r, k] = row_base(par, col[r, k])
        rb[:, :] = np.where(np.arange(Uc) < fupd[cs][:, None], rb, rb[:, :1])
        maps.setdefault(int(pb), []).append(
            ChildMap(src=int(cb), sel=slot[cs], row_base=rb, col=col)
        )
    buckets = [replace(bk, children=tuple(maps.get(b, ()))) for b, bk in enumerate(buckets)]

    flops = _front_flops(fpiv, fupd)
    stats = {
        "fronts": int(nf),
        "supernodes": int(ns),
        "levels": int(level.max() + 1) if nf else 0,
        "buckets": len(buckets),
        "factor_entries": int(np.sum(fpiv**2 + 2 * fpiv * fupd)),
        "padded_entries": int(sum(b.size * (b.P**2 + 2 * b.P * b.U) for b in buckets)),
        "flops": float(flops.sum()),
        "padded_flops": float(
            sum(b.size * _front_flops(np.array([b.P]), np.array([b.U]))[0] for b in buckets)
        ),
        "max_front": int((fpiv + fupd).max()) if nf else 0,
        "extend_add": int(np.sum(fupd[child] ** 2)),
    }
    return MultifrontalPlan(
        n=n,
        nnz=int(rows.size),
        rows=rows.astype(np.int32),
        cols=cols.astype(np.int32),
        diag_positions=_diag_positions(rows, cols, n),
        perm=perm,
        buckets=tuple(buckets),
        stats=stats,
    )


def _diag_positions(rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    pos = np.full(n, -1, np.int32)
    on = np.flatnonzero(rows == cols)
    pos[rows[on]] = on
    return pos


def _levels(fparent: np.ndarray) -> np.ndarray:
    """Level of every front of a tree numbered children-first: leaves 0, else one more than the
    highest child."""
    return _levels_kernel(fparent.astype(np.int64))


@numba.njit(cache=True)
def _levels_kernel(fparent):  # pragma: no cover - compiled
    level = np.zeros(fparent.size, np.int64)
    for f in range(fparent.size):
        p = fparent[f]
        if p != -1 and level[p] < level[f] + 1:
            level[p] = level[f] + 1
    return level


# ------------------------------------------------------------------------------ cache
class _PlanCache(BuildCache):
    """Plans keyed by the pattern (and options): analysis happens once per pattern."""

    def get(self, pattern: SparsityPattern, relax: Relaxation | None) -> MultifrontalPlan:
        return super().get((pattern, relax or Relaxation()), lambda: analyze(pattern, relax=relax))


plan_cache = _PlanCache(maxsize=16)
