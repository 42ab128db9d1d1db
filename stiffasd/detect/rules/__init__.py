"""The rule registry ``{Primitive: rule}`` and the public :func:`register_rule`.

A rule is a callable ``rule(ctx, eqn) -> list`` that receives the detection
:class:`~stiffasd.detect.interpreter.Context` (``ctx.n`` tracked input elements, ``ctx.mode``)
and an :class:`~stiffasd.detect.interpreter.Equation` (``eqn.invals``: one
:class:`~stiffasd.detect._sets.IndexSets` per operand, ``eqn.params``, ``eqn.out_shapes``,
``eqn.out_dtypes``), and returns one entry per output: a boolean CSR dependency matrix of shape
``(output size, ctx.n)``, an ``IndexSets``, or ``None`` (no dependency). A rule must be *sound*:
row ``i`` of an output must contain every input element that output element ``i`` can depend on.

Rules are grouped by family, one module each: ``elementwise``, ``movement`` (data movement by
position arrays), ``reductions``, ``linear`` (dot_general, conv), ``scatter``, ``control``
(higher-order primitives), ``linalg``, ``sparse`` (jax.experimental.sparse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _primitives as P

__all__ = ["register_rule", "get_rule", "registered_primitives", "register_by_name"]

Rule = Callable[[Any, Any], list]

_REGISTRY: dict[Any, Rule] = {}
_LAZY_DONE: set[str] = set()


def register_rule(primitive: Any, rule: Rule) -> None:
    """Register (or replace) the sparsity rule of a JAX primitive.

    Args:
        primitive: the ``jax.extend.core.Primitive`` object (not its name).
        rule: ``rule(ctx, eqn) -> list`` returning one dependency matrix (boolean
            ``scipy.sparse.csr_array`` of shape ``(output size, ctx.n)``), ``IndexSets`` or
            ``None`` per output. See docs/detection.md for the contract and an example.

    Raises:
        TypeError: ``primitive`` is not a Primitive or ``rule`` is not callable.
    """
    if not isinstance(primitive, P.Primitive):
        raise TypeError(
            "register_rule(primitive=...) expects a JAX Primitive object (e.g. "
            "`jax.extend.core.Primitive('my_op')` or `jax.lax.sin_p`), got "
            f"{type(primitive).__name__} {primitive!r}; pass the object, not its name."
        )
    if not callable(rule):
        raise TypeError(
            f"register_rule(rule=...) expects a callable `rule(ctx, eqn) -> list`, got "
            f"{type(rule).__name__}."
        )
    _REGISTRY[primitive] = rule


def register_by_name(names: str | tuple[str, ...], rule: Rule) -> list[Any]:
    """Register ``rule`` for each primitive name that exists in the installed JAX."""
    if isinstance(names, str):
        names = (names,)
    found = []
    for name in names:
        p = P.get(name)
        if p is not None:
            _REGISTRY[p] = rule
            found.append(p)
    return found


def _ensure_lazy() -> None:
    # jax.experimental.sparse is slow to import: its rules are registered once the user imported it.
    if "sparse" not in _LAZY_DONE and P.lazy_module_loaded("jax.experimental.sparse"):
        _LAZY_DONE.add("sparse")
        P._SCANNED.discard("jax.experimental.sparse")
        P._scan("jax.experimental.sparse", do_import=False)
        from . import sparse  # noqa: F401


def get_rule(primitive: Any) -> Rule | None:
    """The registered rule of ``primitive`` or None."""
    r = _REGISTRY.get(primitive)
    if r is None and len(_LAZY_DONE) == 0:
        _ensure_lazy()
        r = _REGISTRY.get(primitive)
    return r


def registered_primitives() -> dict[Any, Rule]:
    """A copy of the registry (every primitive with a rule in this JAX version)."""
    _ensure_lazy()
    return dict(_REGISTRY)


from . import control, elementwise, linalg, linear, movement, reductions, scatter  # noqa: E402,F401
