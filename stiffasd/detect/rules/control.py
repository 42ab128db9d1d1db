"""Higher-order primitives: rules that recurse into sub-jaxprs.

* jit / pjit / closed_call / core_call / remat: interpret the inner jaxpr.
* custom_jvp_call: the pattern of the JVP rule JAX will run (the tangent outputs' dependence
  on the tangent inputs of ``jax.jvp`` of the call); custom_vjp_call: the pattern of the backward
  rule (the input cotangents' dependence on the output cotangents of ``jax.vjp``), transposed.
* cond / switch: the taken branch when the index is known, else the union of the branches.
* while_loop: exact simulation while the predicate is known (counter loops), then a fixed
  point of the body's transfer pattern over the carry (no iteration cap).
* scan (and fori_loop): exact unrolled interpretation for short scans; otherwise the body is
  interpreted once to get its transfer pattern ``T``; the carry follows the exact recurrence
  ``H_{t+1} = T (C, H_t, X_t)`` when it does not depend on the scanned inputs (stopping once it
  is stationary), else a union fixed point; the stacked outputs are composed in one block-diagonal
  product.
"""

from __future__ import annotations

import jax
import numpy as np
import scipy.sparse as sp

from .. import _primitives as P
from .._equation import inexact
from .._ints import choices, merge
from .._sets import (
    IndexSets,
    empty,
    from_pairs,
    matmul,
    take_rows,
    union_or_empty,
    vstack,
    widen,
)
from ._registry import register_by_name
from ._util import from_outputs, no_interaction, prod
from .reductions import reduce_deps

__all__ = ["call_rule", "cond_rule", "while_rule", "scan_rule"]

#: Scans up to this length are interpreted step by step (exact, also for counter-based indexing).
SCAN_UNROLL = 16
#: Long scans whose carry depends on the scanned inputs follow the exact per-step recurrence
#: while (length x carry size) stays below this budget; beyond it, a union fixed point.
SCAN_EXACT_BUDGET = 2_000_000
#: While loops with a known predicate are simulated for at most this many steps, then a fixed point.
WHILE_SIMULATE = 64


def call_rule(ctx, eqn):
    """Interpret the inner jaxpr (param ``jaxpr`` or ``call_jaxpr``, whichever this JAX uses)."""
    for key in ("jaxpr", "call_jaxpr"):
        j = eqn.params.get(key)
        if isinstance(j, (P.ClosedJaxpr, P.Jaxpr)):
            return ctx.eval_jaxpr(j, [], eqn.invals)
    raise AssertionError(f"no jaxpr parameter in {eqn.primitive} (params {sorted(eqn.params)})")


def _avals(xs):
    return [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in xs]


def _float0_zeros(shape):
    return np.zeros(shape, dtype=jax.dtypes.float0)


_ACTIVE: set = set()


def jvp_trace_rule(ctx, eqn):
    """Pattern of the JVP JAX will run for this equation (custom_jvp_call, hijax primitives).

    ``jax.jvp`` of the equation is traced; primal inputs enter with their values but no
    dependencies, tangent inputs carry the operands' dependencies, and the tangent outputs'
    dependencies are the answer. A JVP that re-enters the same equation falls back to the
    primal body (or, without one, falls back to the conservative pattern).
    """
    # Identify the call by its program text, not by object identity: a JVP rule that calls the
    # function again (implicit-function wrappers such as optimistix's root finds) yields a
    # freshly traced, equal jaxpr at every level, and identity would never see the re-entry.
    body = eqn.params.get("_prim", eqn.params.get("call_jaxpr"))
    key = (eqn.primitive, hash(str(body)))
    if key in _ACTIVE:
        # Inside the JVP program the re-entered call is not differentiated again: JAX runs its
        # primal body (on the tangents, e.g. optimistix's `_asarray` JVP returns
        # `_asarray(tangent)`), so its pattern is the body's. A dense fallback here made every
        # such JVP dense.
        if isinstance(eqn.params.get("call_jaxpr"), (P.ClosedJaxpr, P.Jaxpr)):
            return call_rule(ctx, eqn)
        from .._equation import conservative_rule

        return conservative_rule(ctx, eqn)
    _ACTIVE.add(key)
    try:
        return custom_jvp_rule(ctx, eqn)
    finally:
        _ACTIVE.discard(key)


def jvp_jaxpr(eqn, diff: list[int]):
    """The closed jaxpr of ``jax.jvp`` of the equation with respect to the operands ``diff``:
    inputs ``(*primals, *tangents of diff)``, outputs ``(*primal outs, *tangent outs)``."""
    prim, params = eqn.primitive, eqn.params

    def jvp_fn(primals, tangents):
        def f_diff(*dp):
            full = list(primals)
            for i, v in zip(diff, dp, strict=True):
                full[i] = v
            return P.bind_eqn(prim, params, full)

        return jax.jvp(f_diff, [primals[i] for i in diff], list(tangents))

    avals = _avals(eqn.invals)
    return jax.make_jaxpr(jvp_fn)(avals, [avals[i] for i in diff])


def custom_jvp_rule(ctx, eqn):
    """Pattern of the custom JVP rule: trace ``jax.jvp`` of the call and follow the tangents.

    Only operands with dependencies get a tangent (JAX's symbolic zeros for the others); the
    primal outputs of the trace give the integer outputs' values."""
    ins = eqn.invals
    diff = [i for i, x in enumerate(ins) if inexact(x.dtype) and x.has_deps]
    closed = jvp_jaxpr(eqn, diff)
    primal_in = [ctx.captured(x) for x in ins]
    tangent_in = [IndexSets(ins[i].shape, ins[i].dtype, ins[i].deps, None) for i in diff]
    outs = ctx.eval_jaxpr(closed, [], primal_in + tangent_in)
    n_out = len(eqn.out_shapes)
    pairs = zip(outs[:n_out], outs[n_out:], eqn.out_dtypes, strict=True)
    return [t.deps if inexact(dt) else p for p, t, dt in pairs]


def custom_jvp2(ctx, eqn, outs):
    """Second order: analyse the JVP rule that JAX differentiates (Hessians differentiate the
    rule, not the primal function). ``jax.jvp`` of the call is interpreted over ``2n`` columns
    (``ctx.tangent_context()``): the primal inputs carry their dependencies in columns
    ``[0, n)``, the tangents the same ones shifted to ``[n, 2n)``. The Hessian contribution of
    the call is the coupling of a primal-dependent coefficient with a tangent, i.e. the
    (primal, tangent) block of the interactions reaching the outputs (plus any tangent-tangent
    block, empty for a linear JVP rule); the primal-primal block only concerns third
    derivatives and is dropped. Inside the analysis, nested custom_jvp calls use the sound
    output rule, which also ends the recursion of rules that call their own function for the
    primal output."""
    if ctx.in_jvp_rule:
        return from_outputs(ctx, eqn, outs)
    ins, n = eqn.invals, ctx.n
    diff = [i for i, x in enumerate(ins) if inexact(x.dtype) and x.has_deps]
    closed = jvp_jaxpr(eqn, diff)
    sub = ctx.tangent_context()
    primal = [IndexSets(x.shape, x.dtype, widen(x.deps, 2 * n, 0), x.value, x.ints) for x in ins]
    tangents = [IndexSets(ins[i].shape, ins[i].dtype, widen(ins[i].deps, 2 * n, n)) for i in diff]
    inter = sub.interactions(sub.eval_jaxpr(closed, [], primal + tangents))
    ctx.record(sp.csr_array(inter[:n, n:]))
    ctx.record(sp.csr_array(inter[n:, n:]))


def primal_rule(ctx, eqn):
    """Values of a custom-derivative call's results: its primal function, without derivatives."""
    j = eqn.params["call_jaxpr"]
    return ctx.eval_jaxpr(j, [], [ctx.captured(x) for x in eqn.invals])


def custom_vjp_rule(ctx, eqn):
    """Pattern of the custom backward rule: trace ``jax.vjp`` and transpose its pattern.

    Only operands with dependencies are differentiated: JAX perturbs no other operand, and rules
    may refuse to (equinox asserts that its non-differentiable operands are unperturbed)."""
    prim, params, ins = eqn.primitive, eqn.params, eqn.invals
    diff = [i for i, x in enumerate(ins) if inexact(x.dtype) and x.has_deps]
    outs_inexact = [j for j, dt in enumerate(eqn.out_dtypes) if inexact(dt)]

    def vjp_fn(primals, cts):
        def f_diff(*dp):
            full = list(primals)
            for i, v in zip(diff, dp, strict=False):
                full[i] = v
            return P.bind_eqn(prim, params, full)

        _, pullback = jax.vjp(f_diff, *[primals[i] for i in diff])
        full_cts = [_float0_zeros(s) for s in eqn.out_shapes]
        for j, c in zip(outs_inexact, cts, strict=False):
            full_cts[j] = c
        return pullback(full_cts)

    avals = _avals(ins)
    ct_avals = [jax.ShapeDtypeStruct(eqn.out_shapes[j], eqn.out_dtypes[j]) for j in outs_inexact]
    closed = jax.make_jaxpr(vjp_fn)(avals, ct_avals)
    specs = [(x.shape, x.dtype, x.value, False) for x in ins]
    specs += [(eqn.out_shapes[j], eqn.out_dtypes[j], None, True) for j in outs_inexact]
    louts, offs, m = ctx.transfer(closed, [], specs)
    # louts[k]: cotangent of input diff[k] (in_size x m); output cotangent columns follow inputs
    bt = vstack([o.deps for o in louts])  # (sum diff sizes) x m  == J^T restricted
    base = int(offs[len(ins)])
    jac = bt.T.tocsr()  # m x (sum diff sizes)
    ind = vstack([ins[i].deps for i in diff])
    out_all = matmul(jac, ind)  # rows: local columns (only the cotangent part is nonzero)
    res = [None] * len(eqn.out_shapes)
    for k, j in enumerate(outs_inexact):
        start = int(offs[len(ins) + k]) - base
        size = eqn.out_sizes[j]
        res[j] = take_rows(out_all, np.arange(base + start, base + start + size))
    if len(outs_inexact) < len(res):  # integer results: their values, from the primal
        primal = primal_rule(ctx, eqn)
        res = [r if j in outs_inexact else primal[j] for j, r in enumerate(res)]
    return res


def cond_rule(ctx, eqn):
    """cond / switch: the branches the index can take (one for a known index; the integer
    cases or bounds of an unknown one may exclude some), their union."""
    idx, ops = eqn.invals[0], eqn.invals[1:]
    branches = eqn.params["branches"]
    possible = choices(ctx.world, idx, len(branches))
    per = [ctx.eval_jaxpr(branches[b], [], ops) for b in possible]
    if len(per) == 1:
        return per[0]
    res = []
    for j, (k, dt) in enumerate(zip(eqn.out_sizes, eqn.out_dtypes, strict=True)):
        if inexact(dt):
            res.append(union_or_empty([p[j].deps for p in per], k, ctx.n))
        else:
            v, ints = merge(ctx.world, idx, possible, [p[j] for p in per], dt)
            res.append(IndexSets(eqn.out_shapes[j], dt, empty(k, ctx.n), v, ints))
    return res


def _same(a, b) -> bool:
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
    )


def _forget_values(xs):
    return [IndexSets(x.shape, x.dtype, x.deps, None) for x in xs]


def _union_fixpoint(ctx, jaxpr, consts_in, carry, extra_in=(), n_carry_out=None):
    """Least H ⊇ carry with H ⊇ body(consts, H, extra)[:n_carry] (values forgotten)."""
    specs = [(x.shape, x.dtype, x.value if x.is_const else None, x.has_deps) for x in consts_in]
    specs += [(x.shape, x.dtype, None, True) for x in carry]
    specs += [(x.shape, x.dtype, None, x.has_deps) for x in extra_in]
    louts, _, _ = ctx.transfer(jaxpr, [], specs)
    nc = len(carry) if n_carry_out is None else n_carry_out
    t_carry = vstack([o.deps for o in louts[:nc]])
    h = [x.deps for x in carry]
    sizes = [x.size for x in carry]
    cut = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    while True:
        stack = vstack([x.deps for x in consts_in] + h + [x.deps for x in extra_in])
        new = matmul(t_carry, stack)
        old = vstack(h)
        merged = union_or_empty([old, new], old.shape[0], ctx.n)
        if merged.nnz == old.nnz:
            break
        h = [take_rows(merged, np.arange(cut[i], cut[i + 1])) for i in range(len(sizes))]
    return h, louts


def while_rule(ctx, eqn):
    """while_loop: simulate while the predicate is known (the predicate is evaluated in
    ``ctx.first_order()``: it is never differentiated), then a union fixed point of the carry;
    ``ctx.cover`` sees one body evaluation on it, which covers every later iteration."""
    p = eqn.params
    cn, bn = int(p["cond_nconsts"]), int(p["body_nconsts"])
    cconsts, bconsts = list(eqn.invals[:cn]), list(eqn.invals[cn : cn + bn])
    carry = list(eqn.invals[cn + bn :])
    predicate = ctx.first_order()
    for _ in range(WHILE_SIMULATE):
        pred = predicate.eval_jaxpr(p["cond_jaxpr"], [], cconsts + carry)[0]
        if pred.value is None:
            break
        if not bool(np.asarray(pred.value)):
            return carry
        carry = ctx.eval_jaxpr(p["body_jaxpr"], [], bconsts + carry)
    carry = _forget_values(carry)
    h, _ = _union_fixpoint(ctx, p["body_jaxpr"], bconsts, carry)
    fixed = [IndexSets(x.shape, x.dtype, d, None) for x, d in zip(carry, h, strict=True)]
    ctx.cover(p["body_jaxpr"], lambda: bconsts + fixed)
    return fixed


def _xs_slice(x: IndexSets, i: int) -> IndexSets:
    s = prod(x.shape[1:])
    d = take_rows(x.deps, np.arange(i * s, (i + 1) * s)) if x.has_deps else empty(s, x.n)
    v = None if x.value is None else np.asarray(x.value)[i]
    return IndexSets(x.shape[1:], x.dtype, d, v)


def _stack_rows(per_step: list, order: list[int], shape_rest, dtype, n):
    """Stack per-position IndexSets (position p = order index) into an (L, ...) value."""
    L = len(per_step)
    ds = [per_step[p].deps for p in range(L)]
    d = vstack(ds)
    vals = [per_step[p].value for p in range(L)]
    v = np.stack([np.asarray(a) for a in vals]) if all(a is not None for a in vals) else None
    return IndexSets((L,) + tuple(shape_rest), dtype, d, v)


def scan_rule(ctx, eqn):
    """scan (fori_loop): unrolled for short scans, transfer pattern for long ones."""
    p = eqn.params
    nc, nh = P.scan_counts(p, len(eqn.invals))
    L = int(p["length"])
    rev = bool(p.get("reverse", False))
    body = p["jaxpr"]
    consts = list(eqn.invals[:nc])
    carry = list(eqn.invals[nc : nc + nh])
    xs = list(eqn.invals[nc + nh :])
    n_y = len(eqn.out_shapes) - nh
    order = list(range(L - 1, -1, -1)) if rev else list(range(L))
    if L <= SCAN_UNROLL:
        ys = [[None] * L for _ in range(n_y)]
        for i in order:
            outs = ctx.eval_jaxpr(body, [], consts + carry + [_xs_slice(x, i) for x in xs])
            carry = outs[:nh]
            for k in range(n_y):
                ys[k][i] = outs[nh + k]
        ys_st = [
            _stack_rows(ys[k], order, eqn.out_shapes[nh + k][1:], eqn.out_dtypes[nh + k], ctx.n)
            for k in range(n_y)
        ]
        return carry + ys_st
    return _scan_transfer(ctx, eqn, body, consts, carry, xs, L, order, nh, n_y)


def _blockdiag(t, L):
    """kron(I_L, t) as a boolean CSR matrix."""
    t = t.tocoo()
    r, c = t.shape
    steps = np.arange(L, dtype=np.int64)[:, None]
    rows = (steps * r + t.row[None, :]).ravel()
    cols = (steps * c + t.col[None, :]).ravel()
    return from_pairs(rows, cols, (L * r, L * c))


def _slices_union(ctx, x: IndexSets):
    """Dependencies of the union of the slices of a scanned input (over its leading axis)."""
    return reduce_deps(x, (0,), ctx.n) if x.has_deps else empty(prod(x.shape[1:]), ctx.n)


def _loop_inputs(ctx, consts, carry, xs, split, steps):
    """Inputs of one body evaluation that cover every iteration of a long scan: each carry the
    union of its value over the steps, each scanned input the union of its slices."""
    h = split(union_or_empty(steps, steps[0].shape[0], ctx.n)) if carry else []
    xs_u = [IndexSets(x.shape[1:], x.dtype, _slices_union(ctx, x)) for x in xs]
    fixed = [IndexSets(x.shape, x.dtype, d) for x, d in zip(carry, h, strict=True)]
    return list(consts) + fixed + xs_u


def _scan_transfer(ctx, eqn, body, consts, carry, xs, L, order, nh, n_y):
    carry = _forget_values(carry)
    slice_specs = [(x.shape[1:], x.dtype, None, x.has_deps) for x in xs]
    specs = [(x.shape, x.dtype, x.value if x.is_const else None, x.has_deps) for x in consts]
    specs += [(x.shape, x.dtype, None, True) for x in carry]
    specs += slice_specs
    louts, offs, m = ctx.transfer(body, [], specs)
    nc = len(consts)
    x_lo = int(offs[nc + nh])
    t_h = vstack([o.deps for o in louts[:nh]])
    hsz = [x.size for x in carry]
    hcut = np.concatenate([[0], np.cumsum(hsz)]).astype(np.int64)
    x_dep = t_h[:, x_lo:m].nnz > 0 if m > x_lo else False
    cdeps = [x.deps for x in consts]
    empty_x = [empty(prod(x.shape[1:]), ctx.n) for x in xs]

    def split(h_all):
        return [take_rows(h_all, np.arange(hcut[i], hcut[i + 1])) for i in range(nh)]

    h0 = vstack([x.deps for x in carry]) if nh else empty(0, ctx.n)
    if not x_dep or L * max(h0.shape[0], 1) <= SCAN_EXACT_BUDGET:
        # Exact recurrence H_{t+1} = T(C, H_t, X_p(t)) (one sparse product per step, the body is
        # not re-interpreted); without scanned inputs it stops once the carry is stationary.
        seq = [h0]
        while len(seq) <= L:
            t = len(seq) - 1
            xt = [_xs_slice(x, order[t]).deps for x in xs] if x_dep else empty_x
            nxt = matmul(t_h, vstack(cdeps + split(seq[-1]) + xt)) if nh else h0
            if not x_dep and _same(nxt, seq[-1]):
                break
            seq.append(nxt)
        final = seq[min(L, len(seq) - 1)]
        step_h = [seq[min(t, len(seq) - 1)] for t in range(L)]
    else:
        xall = [_slices_union(ctx, x) for x in xs]
        h = h0
        while True:
            new = matmul(t_h, vstack(cdeps + split(h) + xall))
            merged = union_or_empty([h, new], h.shape[0], ctx.n)
            if merged.nnz == h.nnz:
                break
            h = merged
        final = h
        step_h = [h] * L
    res = [IndexSets(x.shape, x.dtype, d, None) for x, d in zip(carry, split(final), strict=False)]
    # Stacked outputs: ys[p] = T_y (C, H_t, X_p) with p = order[t].
    distinct, dindex = [], {}
    pos_of_step = {}
    for t, hmat in enumerate(step_h):
        key = id(hmat)
        if key not in dindex:
            dindex[key] = len(distinct)
            distinct.append(hmat)
        pos_of_step[order[t]] = dindex[key]
    ctx.cover(body, lambda: _loop_inputs(ctx, consts, carry, xs, split, distinct))
    for k in range(n_y):
        o = louts[nh + k]
        ysz = o.size
        t_y = o.deps
        t_ych = t_y[:, :x_lo]
        parts = []
        if t_ych.nnz:
            per = [matmul(t_ych, vstack(cdeps + split(hm))) for hm in distinct]
            stacked = vstack(per)
            src = np.concatenate([pos_of_step[pp] * ysz + np.arange(ysz) for pp in range(L)])
            parts.append(take_rows(stacked, src))
        col = x_lo
        for x in xs:
            s = prod(x.shape[1:])
            blk = t_y[:, col : col + s]
            col += s
            if blk.nnz and x.has_deps:
                parts.append(matmul(_blockdiag(blk, L), x.deps))
        shape = eqn.out_shapes[nh + k]
        res.append(union_or_empty(parts, prod(shape), ctx.n))
    return res


# Second order: the bodies are interpreted by the same context and record their own pairs.
register_by_name(
    ("pjit", "jit", "closed_call", "eval_jaxpr", "remat", "remat2", "checkpoint"),
    call_rule,
    values=call_rule,
    second=no_interaction,
)
register_by_name("call_hi_primitive", jvp_trace_rule)
register_by_name("custom_jvp_call", jvp_trace_rule, values=primal_rule, second=custom_jvp2)
register_by_name("custom_vjp_call", custom_vjp_rule, values=primal_rule, second=from_outputs)
register_by_name("cond", cond_rule, values=cond_rule, second=no_interaction)
register_by_name("while", while_rule, values=while_rule, second=no_interaction)
register_by_name("scan", scan_rule, values=scan_rule, second=no_interaction)
