"""pytest plugin: every implicit diffrax solver steps through ``stiffasd.diffrax.sparse(solver)``.

Loaded by ``run.py`` with ``-p stiffasd_wrap_plugin`` into diffrax's own test suite. The ``step``
method of each implicit solver class of diffrax is patched, so whatever implicit solver a test
builds (passed to ``diffeqsolve`` or stepped directly) runs with its root finder replaced by
`stiffasd.diffrax.SparseVeryChord`. ``STIFFASD_DIFFRAX_WRAP=0`` loads the plugin without
patching (the plain run, with the same bookkeeping); ``STIFFASD_DIFFRAX_LINEAR_SOLVER`` picks
the linear solver (``auto`` by default, as `stiffasd.diffrax.sparse`; or ``jax``, ``direct``,
``gmres``). ``STIFFASD_DIFFRAX_REACHED=FILE``
writes the ids of the tests that stepped an implicit solver (JSON).
"""

from __future__ import annotations

import json
import os

WRAP = os.environ.get("STIFFASD_DIFFRAX_WRAP", "1") != "0"
LINEAR_SOLVER = os.environ.get("STIFFASD_DIFFRAX_LINEAR_SOLVER", "auto")
REACHED: dict[str, list[str]] = {}
_current = {"test": None}


def _wrap(solver):
    import optimistix as optx

    import stiffasd.diffrax as sdx

    finder = getattr(solver, "root_finder", None)
    if not isinstance(finder, optx.AbstractRootFinder):
        return solver
    names = REACHED.setdefault(_current["test"] or "<outside a test>", [])
    if type(solver).__name__ not in names:
        names.append(type(solver).__name__)
    if WRAP and not isinstance(finder, sdx.SparseVeryChord):
        return sdx.sparse(solver, linear_solver=LINEAR_SOLVER)
    return solver


def _patch(cls) -> None:
    original = cls.step

    def step(self, *args, **kwargs):
        return original(_wrap(self), *args, **kwargs)

    cls.step = step


def _implicit_step_classes() -> list[type]:
    """The classes that define the ``step`` of diffrax's implicit solvers."""
    import diffrax

    found = []
    for name in dir(diffrax):
        cls = getattr(diffrax, name)
        if isinstance(cls, type) and issubclass(cls, diffrax.AbstractImplicitSolver):
            owner = next(base for base in cls.__mro__ if "step" in vars(base))
            if owner not in found:
                found.append(owner)
    return found


PATCHED: list[type] = []


def pytest_configure(config):
    # diffrax is imported only now: jaxtyping's import hook (diffrax's runtime type checks) is
    # installed first, in pytest_load_initial_conftests
    PATCHED.extend(_implicit_step_classes())
    for cls in PATCHED:
        _patch(cls)


def pytest_runtest_setup(item):
    _current["test"] = item.nodeid


def pytest_runtest_teardown(item):
    _current["test"] = None


def pytest_report_header(config):
    names = ", ".join(sorted(c.__name__ for c in PATCHED))
    how = f"wrapped by stiffasd.diffrax.sparse ({LINEAR_SOLVER})" if WRAP else "not wrapped"
    return f"stiffasd: implicit solver steps ({names}) {how}"


def pytest_sessionfinish(session):
    path = os.environ.get("STIFFASD_DIFFRAX_REACHED")
    if path:
        # one file per xdist worker
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"{path}.{worker}.json", "w") as fh:
            json.dump(REACHED, fh, indent=1, sort_keys=True)
