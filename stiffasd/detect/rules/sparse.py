"""``jax.experimental.sparse`` products (BCOO / BCSR times dense), exact for known indices.

A user who writes a Laplacian as a sparse matrix gets its exact pattern: the stored entries
(minus the known zeros of the data) give the (output, input) pairs. Registered once the user has
imported ``jax.experimental.sparse`` (it is slow to import).
"""

from __future__ import annotations

import numpy as np

from .._equation import conservative_rule, inexact
from .._sets import from_pairs, matmul, union_or_empty
from ._registry import register_by_name
from ._util import prod

__all__ = ["sparse_dot_rule"]


def _sparse_dot(ctx, eqn, data, idx, rhs):
    shape = tuple(eqn.params["lhs_spinfo"].shape)
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lc, rc, lb, rb = (tuple(int(d) for d in t) for t in (lc, rc, lb, rb))
    lf = [d for d in range(len(shape)) if d not in lc and d not in lb]
    rf = [d for d in range(len(rhs.shape)) if d not in rc and d not in rb]
    B = prod([shape[d] for d in lb])
    F = prod([shape[d] for d in lf])
    G = prod([rhs.shape[d] for d in rf])
    out_size = B * F * G
    valid = np.all(idx < np.asarray(shape)[None, :], axis=1) & np.all(idx >= 0, axis=1)
    if data.value is not None:
        valid &= np.asarray(data.value).reshape(-1) != 0
    ent = np.flatnonzero(valid)
    mi = idx[ent]

    def rav(dims):
        if not dims:
            return np.zeros(len(ent), np.int64)
        return np.ravel_multi_index(tuple(mi[:, d] for d in dims), tuple(shape[d] for d in dims))

    b, f, k = rav(lb), rav(lf), rav(lc)
    parts = []
    g = np.arange(G)
    dst = (b * F * G + f * G)[:, None] + g[None, :]
    if inexact(rhs.dtype) and rhs.has_deps:
        rpos = (
            np.arange(rhs.size).reshape(rhs.shape).transpose(rb + rc + tuple(rf)).reshape(B, -1, G)
        )
        src = rpos[b[:, None], k[:, None], g[None, :]]
        parts.append(matmul(from_pairs(dst, src, (out_size, rhs.size)), rhs.deps))
    if inexact(data.dtype) and data.has_deps:
        src = np.broadcast_to(ent[:, None], dst.shape)
        parts.append(matmul(from_pairs(dst, src, (out_size, data.size)), data.deps))
    return [union_or_empty(parts, out_size, ctx.n)]


def sparse_dot_rule(ctx, eqn):
    """bcoo_dot_general / bcsr_dot_general with a sparse left operand (no batch/dense dims)."""
    name = eqn.primitive.name
    if name == "bcoo_dot_general":
        data, indices, rhs = eqn.invals
        if indices.value is None or data.value is not None and np.ndim(data.value) != 1:
            return conservative_rule(ctx, eqn)
        idx = np.asarray(indices.value)
        if idx.ndim != 2 or len(data.shape) != 1:
            return conservative_rule(ctx, eqn)
    else:  # bcsr_dot_general
        data, indices, indptr, rhs = eqn.invals
        if indices.value is None or indptr.value is None or len(data.shape) != 1:
            return conservative_rule(ctx, eqn)
        ip = np.asarray(indptr.value).astype(np.int64)
        cols = np.asarray(indices.value).astype(np.int64)
        rows = np.repeat(np.arange(len(ip) - 1), np.diff(ip))
        idx = np.stack([rows, cols[: len(rows)]], axis=1)
        if len(rows) < len(cols):  # padding entries beyond indptr[-1] are never read
            pad = np.full((len(cols) - len(rows), 2), -1)
            idx = np.concatenate([idx, pad])
    if idx.shape[1] != len(eqn.params["lhs_spinfo"].shape):
        return conservative_rule(ctx, eqn)
    return _sparse_dot(ctx, eqn, data, idx.astype(np.int64), rhs)


register_by_name(("bcoo_dot_general", "bcsr_dot_general"), sparse_dot_rule)
