"""Equinox's own primitives (registered once the user has imported equinox, e.g. via diffrax).

* ``select_if_vmap(pred, x, y)``: outside ``vmap`` it returns ``x`` and its JVP returns ``x``'s
  tangent (under ``vmap`` equinox rewrites it into ``lax.select``, which has its own rule), so
  the output depends on ``x`` alone.
* ``nondifferentiable_backward(x)``: the identity, in value and JVP (it only refuses reverse
  mode).
"""

from __future__ import annotations

from .. import _primitives as P
from .._equation import inexact
from ._registry import register_by_name
from ._util import no_interaction
from .elementwise import identity_rule

__all__ = ["select_if_vmap_rule"]

#: Equinox modules whose ``*_p`` primitives these rules use.
MODULES = ("equinox.internal._loop.common", "equinox.internal._nontraceable")


def select_if_vmap_rule(ctx, eqn):
    """The output is ``x`` (operand 1), in value and tangent."""
    x = eqn.invals[1]
    return [x.deps if inexact(x.dtype) else None]


for _m in MODULES:
    P.rescan(_m)
register_by_name("select_if_vmap", select_if_vmap_rule, second=no_interaction)
register_by_name("nondifferentiable_backward", identity_rule, second=no_interaction)
