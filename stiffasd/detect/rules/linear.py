"""Bilinear primitives: dot_general and conv_general_dilated.

Both are linear in each operand. When the other operand is a known constant, the dependency of
an output element on an operand element exists exactly where the paired constant entry is nonzero
(a dot with a dense-stored sparse constant matrix, a convolution with a stencil kernel containing
zeros, give exact patterns).
"""

from __future__ import annotations

import jax
import numpy as np

from .. import _primitives as P
from .._equation import _cpu, conservative_rule, inexact
from .._sets import collapse, from_pairs, matmul, repeat_row, take_rows, union_or_empty
from ._registry import register_by_name
from ._util import positions, prod

__all__ = ["dot_general_rule", "conv_rule", "dot_general2", "conv2"]


def _layout(eqn):
    """dot_general as ``out[b, f, g] = sum_k lhs[b, f, k] rhs[b, k, g]`` (JAX's output order):
    ``(B, F, K, G)``, the operands' element positions in that layout, and the permutations."""
    lhs, rhs = eqn.invals[:2]
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lc, rc, lb, rb = (tuple(int(d) for d in t) for t in (lc, rc, lb, rb))
    lf = tuple(d for d in range(len(lhs.shape)) if d not in lb and d not in lc)
    rf = tuple(d for d in range(len(rhs.shape)) if d not in rb and d not in rc)
    B = prod([lhs.shape[d] for d in lb])
    K = prod([lhs.shape[d] for d in lc])
    F = prod([lhs.shape[d] for d in lf])
    G = prod([rhs.shape[d] for d in rf])
    lperm, rperm = lb + lf + lc, rb + rc + rf
    lpos = positions(lhs.shape).transpose(lperm).reshape(B, F, K)
    rpos = positions(rhs.shape).transpose(rperm).reshape(B, K, G)
    return (B, F, K, G), lpos, rpos, lperm, rperm


def dot_general_rule(ctx, eqn):
    """out[b, f, g] = sum_k lhs[b, f, k] rhs[b, k, g] (JAX's dot_general output order)."""
    lhs, rhs = eqn.invals[:2]
    (B, F, K, G), lpos, rpos, lperm, rperm = _layout(eqn)
    out_size = B * F * G
    parts = []
    if inexact(lhs.dtype) and lhs.has_deps:
        if rhs.value is None:
            # Unknown partner: out[b, f, :] = union over k of lhs[b, f, k].
            m = from_pairs(np.repeat(np.arange(B * F), K), lpos.ravel(), (B * F, lhs.size))
            red = matmul(m, lhs.deps)
            parts.append(take_rows(red, np.repeat(np.arange(B * F), G)))
        else:
            rv = np.asarray(rhs.value).transpose(rperm).reshape(B, K, G) != 0
            b, k, g = np.nonzero(rv)
            f = np.arange(F)
            dst = (b * F * G + g)[:, None] + (f * G)[None, :]
            src = lpos[b[:, None], f[None, :], k[:, None]]
            parts.append(matmul(from_pairs(dst, src, (out_size, lhs.size)), lhs.deps))
    if inexact(rhs.dtype) and rhs.has_deps:
        if lhs.value is None:
            m = from_pairs(
                np.repeat(np.arange(B * G), K), rpos.transpose(0, 2, 1).ravel(), (B * G, rhs.size)
            )
            red = matmul(m, rhs.deps)  # rows (b, g)
            bb, ff, gg = np.meshgrid(np.arange(B), np.arange(F), np.arange(G), indexing="ij")
            parts.append(take_rows(red, (bb * G + gg).ravel()))
        else:
            lv = np.asarray(lhs.value).transpose(lperm).reshape(B, F, K) != 0
            b, f, k = np.nonzero(lv)
            g = np.arange(G)
            dst = (b * F * G + f * G)[:, None] + g[None, :]
            src = rpos[b[:, None], k[:, None], g[None, :]]
            parts.append(matmul(from_pairs(dst, src, (out_size, rhs.size)), rhs.deps))
    return [union_or_empty(parts, out_size, ctx.n)]


def dot_general2(ctx, eqn, outs):
    """Bilinear: for each (batch, contracted) index, the lhs entries it multiplies (union over
    the lhs free indices) times the rhs entries (union over the rhs free indices); no
    interaction when one side is a constant."""
    lhs, rhs = eqn.invals[:2]
    if not (inexact(lhs.dtype) and lhs.has_deps and inexact(rhs.dtype) and rhs.has_deps):
        return
    (B, F, K, G), lpos, rpos, _, _ = _layout(eqn)
    bk = np.arange(B * K, dtype=np.int64).reshape(B, 1, K)
    lgid = np.broadcast_to(bk, lpos.shape)
    rgid = np.broadcast_to(bk.reshape(B, K, 1), rpos.shape)
    lr = matmul(from_pairs(lgid.ravel(), lpos.ravel(), (B * K, lhs.size)), lhs.deps)
    rr = matmul(from_pairs(rgid.ravel(), rpos.ravel(), (B * K, rhs.size)), rhs.deps)
    ctx.interact(lr, rr)


def conv2(ctx, eqn, outs):
    """Bilinear in (input, kernel): no interaction unless both carry dependencies."""
    lhs, rhs = eqn.invals[:2]
    if lhs.has_deps and rhs.has_deps and inexact(lhs.dtype) and inexact(rhs.dtype):
        ctx.interact_block(collapse(lhs.deps), collapse(rhs.deps))


# One-hot kernel probes above this count fall back to the conservative pattern.
MAX_CONV_PROBES = 4096


def conv_rule(ctx, eqn):
    """conv_general_dilated, exact w.r.t. the zero entries of a constant kernel.

    For every (nonzero) kernel entry, the convolution of the *positions + 1* of the input with
    the one-hot kernel of that entry returns, for each output element, the (single) input
    element multiplied by it (0: padding). All probes run in one vmapped call. A kernel with
    dependencies makes each output depend on every dependency of the kernel (sound).
    """
    lhs, rhs = eqn.invals[:2]
    out_size = eqn.out_sizes[0]
    parts = []
    if inexact(lhs.dtype) and lhs.has_deps:
        kshape = rhs.shape
        nzk = (
            np.flatnonzero(np.asarray(rhs.value) != 0)
            if rhs.value is not None
            else np.arange(prod(kshape))
        )
        x64 = jax.config.jax_enable_x64
        limit = 2**53 if x64 else 2**24
        if len(nzk) > MAX_CONV_PROBES or lhs.size + 1 >= limit:
            return conservative_rule(ctx, eqn)
        if len(nzk):
            fdt = np.float64 if x64 else np.float32
            onehot = np.zeros((len(nzk), prod(kshape)), fdt)
            onehot[np.arange(len(nzk)), nzk] = 1
            onehot = onehot.reshape((len(nzk),) + tuple(kshape))
            params = dict(eqn.params)
            params["preferred_element_type"] = None
            if "precision" in params:
                params["precision"] = None
            lpos = (positions(lhs.shape) + 1).astype(fdt)
            prim = eqn.primitive

            def probe(k):
                return P.bind_eqn(prim, params, [lpos, k])[0]

            with jax.ensure_compile_time_eval(), jax.default_device(_cpu()):
                outs = np.asarray(jax.jit(jax.vmap(probe))(onehot))
            src = np.rint(outs.reshape(len(nzk), -1)).astype(np.int64) - 1
            dst = np.broadcast_to(np.arange(out_size), src.shape)
            ok = src >= 0
            m = from_pairs(dst[ok], src[ok], (out_size, lhs.size))
            parts.append(matmul(m, lhs.deps))
    if inexact(rhs.dtype) and rhs.has_deps:
        parts.append(repeat_row(collapse(rhs.deps), out_size, ctx.n))
    return [union_or_empty(parts, out_size, ctx.n)]


register_by_name("dot_general", dot_general_rule, second=dot_general2)
register_by_name("conv_general_dilated", conv_rule, second=conv2)
