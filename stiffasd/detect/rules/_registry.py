"""The rule registry ``{Primitive: rule}``: registration and lookup (the families register
themselves here when :mod:`stiffasd.detect.rules` is imported)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _primitives as P

__all__ = [
    "register_rule",
    "get_rule",
    "registered_primitives",
    "register_by_name",
    "register_lazy",
    "register_second_order_rule",
    "get_second_order_rule",
    "get_value_rule",
    "get_range_rule",
]

Rule = Callable[[Any, Any], list]

_REGISTRY: dict[Any, Rule] = {}
#: Second-order rules (Hessian detection): ``rule2(ctx, eqn, outs)`` records interactions.
_SECOND: dict[Any, Callable] = {}
#: Value rules of higher-order primitives, run for the values of integer results that a
#: dependency rule is not needed for: ``rule(ctx, eqn) -> list``.
_VALUES: dict[Any, Rule] = {}
#: Range rules (bounds of integer results): ``rule(eqn, bounds) -> list``.
_RANGES: dict[Any, Callable] = {}
#: Rule families for slow-to-import JAX modules: ``{module name: loader}``, each loader run once,
#: the first time a rule is looked up after the user imported that module.
_LAZY: dict[str, Callable[[], None]] = {}


def _checked(call: str, primitive: Any, rule: Any, signature: str) -> None:
    if not isinstance(primitive, P.Primitive):
        raise TypeError(
            f"{call}(primitive=...) expects a JAX Primitive object (e.g. "
            "`jax.extend.core.Primitive('my_op')` or `jax.lax.sin_p`), got "
            f"{type(primitive).__name__} {primitive!r}; pass the object, not its name."
        )
    if not callable(rule):
        raise TypeError(
            f"{call}(rule=...) expects a callable `{signature}`, got {type(rule).__name__}."
        )


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
    _checked("register_rule", primitive, rule, "rule(ctx, eqn) -> list")
    _REGISTRY[primitive] = rule


def register_second_order_rule(primitive: Any, rule: Callable) -> None:
    """Register how a primitive couples its inputs at second order (Hessian detection).

    Without a registration, a primitive that has a first-order rule couples, for every output
    element, all the inputs it depends on (sound, possibly coarse).

    Args:
        primitive: the JAX ``Primitive`` object.
        rule: ``rule(ctx, eqn, outs)``; ``eqn.invals`` are the operands' index sets, ``outs``
            the first-order outputs; record pairs with ``ctx.interact(a, b)`` (adds ``a^T b``
            for same-height dependency matrices ``a``, ``b``). It may return the positions of
            the operands through which a derivative reaches the outputs (default: every
            floating-point operand).

    Raises:
        TypeError: ``primitive`` is not a Primitive or ``rule`` is not callable.
    """
    _checked("register_second_order_rule", primitive, rule, "rule(ctx, eqn, outs)")
    _SECOND[primitive] = rule


def register_by_name(
    names: str | tuple[str, ...],
    rule: Rule | None = None,
    *,
    second: Callable | None = None,
    values: Rule | None = None,
    ranges: Callable | None = None,
) -> list[Any]:
    """Register the rules of a family for each primitive name that exists in the installed JAX:
    the dependency ``rule``, and optionally its ``second``-order rule, its ``values`` rule and
    its ``ranges`` rule (each table is only written where a rule is given)."""
    if isinstance(names, str):
        names = (names,)
    found = []
    for name in names:
        p = P.get(name)
        if p is None:
            continue
        tables = ((_REGISTRY, rule), (_SECOND, second), (_VALUES, values), (_RANGES, ranges))
        for table, r in tables:
            if r is not None:
                table[p] = r
        found.append(p)
    return found


def register_lazy(modname: str, loader: Callable[[], None]) -> None:
    """Run ``loader`` (which registers rules) once the user has imported ``modname``."""
    _LAZY[modname] = loader


def _ensure_lazy() -> None:
    for modname in [m for m in _LAZY if P.lazy_module_loaded(m)]:
        loader = _LAZY.pop(modname)
        P.rescan(modname)
        loader()


def get_rule(primitive: Any) -> Rule | None:
    """The registered rule of ``primitive`` or None."""
    r = _REGISTRY.get(primitive)
    if r is None and _LAZY:
        _ensure_lazy()
        r = _REGISTRY.get(primitive)
    return r


def get_second_order_rule(primitive: Any) -> Callable | None:
    return _SECOND.get(primitive)


def get_value_rule(primitive: Any) -> Rule | None:
    return _VALUES.get(primitive)


def get_range_rule(primitive: Any) -> Callable | None:
    return _RANGES.get(primitive)


def registered_primitives() -> dict[Any, Rule]:
    """A copy of the registry (every primitive with a rule in this JAX version)."""
    _ensure_lazy()
    return dict(_REGISTRY)
