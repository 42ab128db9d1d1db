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

# Importing the families registers their rules.
from . import (  # noqa: F401
    control,
    elementwise,
    integers,
    linalg,
    linear,
    movement,
    reductions,
    scatter,
)
from ._registry import get_range_rule as get_range_rule
from ._registry import get_rule as get_rule
from ._registry import get_second_order_rule as get_second_order_rule
from ._registry import get_value_rule as get_value_rule
from ._registry import register_by_name as register_by_name
from ._registry import register_lazy
from ._registry import register_rule as register_rule
from ._registry import registered_primitives as registered_primitives


def _load_sparse() -> None:
    # jax.experimental.sparse is slow to import: its rules wait until the user has imported it.
    from . import sparse  # noqa: F401


def _load_equinox() -> None:
    from . import eqx  # noqa: F401


register_lazy("jax.experimental.sparse", _load_sparse)
register_lazy("equinox.internal._loop.common", _load_equinox)
