"""``jacobian_sparsity``: the public entry point of sparsity detection."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..errors import ShapeError, TracingError
from ..pattern import SparsityPattern
from ._equation import aval_info, to_numpy
from ._sets import IndexSets, empty, eye_block, vstack
from .interpreter import Context

__all__ = ["jacobian_sparsity"]

_MODES = ("global", "local")


def _normalize_argnums(argnums: Any, nargs: int) -> tuple[int, ...]:
    if isinstance(argnums, (int, np.integer)):
        argnums = (int(argnums),)
    try:
        argnums = tuple(int(a) for a in argnums)
    except TypeError:
        raise TypeError(
            f"jacobian_sparsity(argnums=...) must be an int or a tuple of ints, got {argnums!r}"
        ) from None
    out = []
    for a in argnums:
        if not -nargs <= a < nargs:
            raise ValueError(
                f"jacobian_sparsity(argnums={argnums}) refers to argument {a}, but only {nargs} "
                "positional argument(s) were given after `f`."
            )
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"jacobian_sparsity(argnums={argnums}) contains duplicates.")
    return tuple(out)


def trace_and_seed(
    call: str, f: Any, args: tuple, argnums: Any, mode: str, closed: Any = None
) -> tuple[Any, list[IndexSets], int]:
    """Check the arguments, trace ``f`` once and seed the input index sets.

    The differentiated leaves (in ``argnums`` order, each raveled) get consecutive blocks of the
    identity; the other arguments carry no dependencies (and their values in local mode).
    ``closed``: the ``jax.make_jaxpr(f)(*args)`` of a caller that has traced ``f`` already
    (prepared Jacobians trace once for the output shape, the pass directions and detection).

    Returns:
        ``(closed_jaxpr, invals, n)`` with ``n`` the number of differentiated input elements.
    """
    if mode not in _MODES:
        raise ValueError(f"{call}(mode=...) must be 'global' or 'local', got {mode!r}.")
    if not callable(f):
        raise TypeError(f"{call}(f=...) must be callable, got {type(f).__name__}.")
    nums = _normalize_argnums(argnums, len(args))
    try:
        if closed is None:
            closed = jax.make_jaxpr(f)(*args)
    except (
        jax.errors.TracerArrayConversionError,
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerBoolConversionError,
        jax.errors.TracerIntegerConversionError,
    ) as e:
        raise TracingError(
            f"{call}(f, ...) could not trace `f` with JAX: it uses a traced value where a "
            "concrete one is needed (numpy call, Python `if`/`int()` on an array...). Use "
            "jax.numpy functions and jax.lax.cond / jnp.where instead. Original error: "
            f"{type(e).__name__}: {e}"
        ) from e
    leaves_per_arg = [jax.tree.leaves(a) for a in args]
    invars = closed.jaxpr.invars
    n_leaves = sum(len(ls) for ls in leaves_per_arg)
    if n_leaves != len(invars):
        raise AssertionError(f"internal error: {n_leaves} argument leaves for {len(invars)} invars")
    # Column offsets: differentiated leaves in argnums order.
    first = np.cumsum([0] + [len(ls) for ls in leaves_per_arg])
    infos = [aval_info(v.aval) for v in invars]
    sizes = [int(np.prod(s, dtype=np.int64)) for s, _ in infos]
    col_off = {}
    n = 0
    for a in nums:
        for li in range(first[a], first[a + 1]):
            col_off[li] = n
            n += sizes[li]
    flat = [leaf for ls in leaves_per_arg for leaf in ls]
    invals = []
    for li, ((shape, dtype), leaf) in enumerate(zip(infos, flat, strict=True)):
        value = to_numpy(leaf) if mode == "local" else None
        d = eye_block(sizes[li], n, col_off[li]) if li in col_off else empty(sizes[li], n)
        invals.append(IndexSets(shape, dtype, d, value))
    return closed, invals, n


def jacobian_sparsity(
    f: Any,
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "global",
    strict: bool = False,
) -> SparsityPattern:
    """Sparsity pattern of the Jacobian of ``f`` with respect to ``args[argnums]``.

    ``f`` is traced once with ``jax.make_jaxpr`` and its jaxpr is interpreted with index sets
    (one boolean CSR matrix per array value), following the derivative rules JAX would apply.

    Args:
        f: a JAX-traceable function of ``*args``.
        *args: example arguments (arrays or pytrees of arrays); only their shapes and dtypes
            matter in global mode.
        argnums: which positional argument(s) to differentiate with respect to.
        mode: ``"global"`` (default): a pattern valid for every input value (the union over all
            control-flow branches and data-dependent indices; arguments that are not
            differentiated are treated as unknown values). ``"local"``: the pattern at exactly the
            given ``args`` (branches, max/min, sort and data-dependent indices resolved with the
            actual values); valid only at that point.
        strict: raise :class:`~stiffasd.UnsupportedPrimitiveError` on a primitive without a rule,
            instead of a :class:`~stiffasd.ConservativePatternWarning` and a dense block.

    Returns:
        A :class:`~stiffasd.SparsityPattern` of shape ``(m, n)``: ``m`` is the total size of the
        output and ``n`` the total size of the differentiated arguments. Pytrees are flattened
        in ``jax.tree`` leaf order, each leaf raveled in C (row-major) order, and the leaves
        concatenated; with several ``argnums`` the arguments' leaves are concatenated in the order
        of ``argnums``.

    Raises:
        ValueError: unknown ``mode`` or bad ``argnums``.
        TracingError: ``f`` cannot be traced by JAX.
        UnsupportedPrimitiveError: ``strict=True`` and a primitive has no rule.
    """
    return traced_jacobian_sparsity(f, args, argnums, mode, strict)


def traced_jacobian_sparsity(
    f: Any, args: tuple, argnums: Any, mode: str, strict: bool, closed: Any = None
) -> SparsityPattern:
    """`jacobian_sparsity` with the arguments as a tuple and, optionally, the closed jaxpr of
    ``f(*args)`` already traced by the caller (see `trace_and_seed`)."""
    closed, invals, n = trace_and_seed("jacobian_sparsity", f, args, argnums, mode, closed)
    jaxpr = closed.jaxpr
    ctx = Context(n=n, mode=mode, strict=strict)
    outs = ctx.eval_jaxpr(jaxpr, list(closed.consts), invals)
    if not outs:
        raise ShapeError("jacobian_sparsity(f, ...): `f` returned no array output.")
    deps = vstack([o.deps for o in outs]).tocsr()
    m = sum(o.size for o in outs)
    # deps is canonical (sorted, duplicate-free rows): skip the pattern's O(nnz log nnz) check.
    return SparsityPattern(
        (m, n), deps.indptr.astype(np.int64), deps.indices.astype(np.int64), check=False
    )
