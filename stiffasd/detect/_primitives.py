"""The only module of stiffasd that touches JAX internals.

It finds JAX's ``Primitive`` objects (the registry keys) by name, robustly across JAX versions:
a primitive that does not exist in the installed JAX is simply ``None`` and its rule is not
registered. It also offers the two internal operations the interpreter needs: evaluating one
equation concretely (``bind_eqn``) and the jaxpr classes.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import jax
import jax.extend  # noqa: F401  (jax.extend.core is the public home of Jaxpr classes)
from jax._src import core as _core

__all__ = [
    "Primitive",
    "ClosedJaxpr",
    "Jaxpr",
    "Literal",
    "DropVar",
    "get",
    "all_primitives",
    "bind_eqn",
    "refresh",
]

_ext = jax.extend.core
Primitive = getattr(_ext, "Primitive", None) or _core.Primitive
ClosedJaxpr = getattr(_ext, "ClosedJaxpr", None) or _core.ClosedJaxpr
Jaxpr = getattr(_ext, "Jaxpr", None) or _core.Jaxpr
Literal = getattr(_ext, "Literal", None) or _core.Literal
DropVar = getattr(_ext, "DropVar", None) or _core.DropVar

# Modules scanned for ``*_p`` Primitive objects. Missing modules are skipped: the list only has
# to be a superset of where primitives live in the supported JAX versions.
_MODULES = (
    "jax.lax",
    "jax._src.lax.lax",
    "jax._src.lax.slicing",
    "jax._src.lax.special",
    "jax._src.lax.convolution",
    "jax._src.lax.windowed_reductions",
    "jax._src.lax.control_flow",
    "jax._src.lax.control_flow.loops",
    "jax._src.lax.control_flow.conditionals",
    "jax._src.lax.control_flow.solves",
    "jax._src.lax.linalg",
    "jax._src.lax.ann",
    "jax._src.lax.fft",
    "jax._src.pjit",
    "jax._src.core",
    "jax._src.custom_derivatives",
    "jax._src.ad_checkpoint",
    "jax._src.ad_util",
    "jax._src.dispatch",
    "jax._src.lax.parallel",
    "jax._src.callback",
    "jax._src.debugging",
)
# Imported only when the user already imported them (they are slow to import).
_LAZY_MODULES = ("jax.experimental.sparse", "jax._src.numpy.util")

_TABLE: dict[str, Primitive] = {}
_SCANNED: set[str] = set()


def _scan(modname: str, *, do_import: bool) -> None:
    if modname in _SCANNED:
        return
    mod = sys.modules.get(modname)
    if mod is None:
        if not do_import:
            return
        try:
            mod = importlib.import_module(modname)
        except Exception:  # a module that does not exist in this JAX version
            _SCANNED.add(modname)
            return
    _SCANNED.add(modname)
    for attr in dir(mod):
        if not attr.endswith("_p"):
            continue
        try:
            obj = getattr(mod, attr)
        except Exception:
            continue
        if isinstance(obj, Primitive):
            _TABLE.setdefault(obj.name, obj)
            _TABLE.setdefault(attr[:-2], obj)


def refresh() -> None:
    """Scan the modules (again); lazy modules are scanned once the user has imported them."""
    for m in _MODULES:
        _scan(m, do_import=True)
    for m in _LAZY_MODULES:
        _scan(m, do_import=False)


def rescan(modname: str) -> None:
    """Scan ``modname`` again (a lazily scanned module the user has imported since)."""
    _SCANNED.discard(modname)
    _scan(modname, do_import=False)


def lazy_module_loaded(modname: str) -> bool:
    """Whether a lazily scanned module (e.g. ``jax.experimental.sparse``) has been imported."""
    return modname in sys.modules


def get(*names: str) -> Primitive | None:
    """The first primitive found among ``names`` (names differ between JAX versions), or None."""
    if not _TABLE:
        refresh()
    for name in names:
        p = _TABLE.get(name)
        if p is not None:
            return p
    return None


def all_primitives() -> dict[str, Primitive]:
    """Every primitive found, by name (a copy)."""
    if not _TABLE:
        refresh()
    return dict(_TABLE)


def bind_eqn(primitive: Primitive, params: dict[str, Any], args: list[Any]) -> list[Any]:
    """Evaluate one equation (like ``jax.core.eval_jaxpr`` does), returning a list of outputs."""
    bp = primitive.get_bind_params(params)
    if isinstance(bp, tuple):  # older JAX: (subfuns, params)
        subfuns, bind_params = bp
        out = primitive.bind(*subfuns, *args, **bind_params)
    else:  # newer JAX: params with a 'subfuns' entry when needed
        out = primitive.bind(*args, **bp)
    return list(out) if primitive.multiple_results else [out]


def jaxpr_of(obj: Any) -> tuple[Jaxpr, list[Any]]:
    """(jaxpr, consts) of a ClosedJaxpr or an open Jaxpr (a param of a higher-order primitive)."""
    if isinstance(obj, ClosedJaxpr):
        return obj.jaxpr, list(obj.consts)
    if isinstance(obj, Jaxpr):
        return obj, []
    raise TypeError(f"expected a Jaxpr or ClosedJaxpr, got {type(obj).__name__}")


def runs_python(primitive: Primitive) -> bool:
    """Whether evaluating the primitive calls back into Python (``pure_callback``,
    ``io_callback``, ``debug_callback``...): detection never runs user code for a value."""
    return "callback" in primitive.name


def traced_var(x: Any) -> Any:
    """The jaxpr variable behind a tracer of a finished trace (a value a custom derivative rule
    captured by closure), or None for anything else."""
    if not isinstance(x, jax.core.Tracer):
        return None
    var = getattr(x, "val", None)  # DynamicJaxprTracer.val: the Var it was bound to
    return var if isinstance(var, _core.Var) else None


def is_literal(v: Any) -> bool:
    return isinstance(v, Literal)


def is_dropvar(v: Any) -> bool:
    return isinstance(v, DropVar)


def scan_counts(params: dict[str, Any], nargs: int) -> tuple[int, int]:
    """(num_consts, num_carry) of a scan equation (the params changed names across versions)."""
    if "num_consts" in params:
        return int(params["num_consts"]), int(params["num_carry"])
    ft_in = params["ft_in"]  # a FlatTree with (consts, carry, xs) groups over the operands
    consts, carry, _ = ft_in.update(list(range(nargs))).unpack()
    return len(list(consts)), len(list(carry))


def custom_jvp_jvp(params: dict[str, Any]) -> Any:
    """The jvp rule parameter of a custom_jvp_call equation (name differs across versions)."""
    for k in ("jvp_jaxpr_fun", "jvp_jaxpr_thunk", "jvp"):
        if k in params:
            return params[k]
    return None


def describe_eqn(eqn: Any) -> str:
    """``primitive[function at file:line]`` and the user source line of an equation, for
    messages (both from JAX's debug information; empty parts are left out)."""
    label = str(eqn.primitive)
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        inner = eqn.params.get(key)
        info = getattr(getattr(inner, "jaxpr", inner), "debug_info", None)
        src = getattr(info, "func_src_info", None)
        if src:
            label += f"[{src}]"
            break
    else:
        if eqn.params.get("name"):
            label += f"[{eqn.params['name']}]"
    try:
        from jax._src import source_info_util

        where = source_info_util.summarize(eqn.source_info)
    except Exception:  # pragma: no cover - debug information is best effort
        where = ""
    return f"{label} at {where}" if where else label
