"""Every exception and warning stiffasd raises, in one place.

Messages follow one habit: name the call or argument, say what was received, give the fix.
"""

from __future__ import annotations

__all__ = [
    "StiffasdError",
    "UnsupportedPrimitiveError",
    "ConservativePatternWarning",
    "InvalidColoringError",
    "PatternMismatchError",
    "PrecisionError",
    "TracingError",
    "ShapeError",
    "NonFiniteError",
    "BandwidthError",
    "MissingDependencyError",
    "PrecisionWarning",
    "PerformanceWarning",
]


class StiffasdError(Exception):
    """Base class of all stiffasd errors."""


class UnsupportedPrimitiveError(StiffasdError, NotImplementedError):
    """Sparsity detection met a JAX primitive with no registered rule (under ``strict=True``)."""


class ConservativePatternWarning(UserWarning):
    """A sound but dense (all-to-all) pattern: a primitive without a rule, or a (nearly) dense
    detected Jacobian where the caller expects a sparse one (``stiffasd.diffrax``)."""


class InvalidColoringError(StiffasdError, ValueError):
    """A coloring is not valid for its pattern (two structurally non-orthogonal columns share a
    color, a color out of range, a wrong length...)."""


class PatternMismatchError(StiffasdError, ValueError):
    """A user-supplied sparsity pattern misses entries that are nonzero in the true Jacobian."""


class PrecisionError(StiffasdError, TypeError):
    """Float64 data while JAX's 64-bit mode is off: JAX would silently compute in float32."""


class TracingError(StiffasdError, TypeError):
    """The function cannot be traced by JAX (numpy calls on traced values, in-place assignment,
    Python control flow on traced values...)."""


class ShapeError(StiffasdError, ValueError):
    """An argument or a function output has the wrong shape."""


class NonFiniteError(StiffasdError, FloatingPointError):
    """NaN or inf where a finite value is required."""


class BandwidthError(StiffasdError, ValueError):
    """A banded Jacobian layout was requested for a pattern whose band is too wide to pay off."""


class MissingDependencyError(StiffasdError, ImportError):
    """An optional dependency (e.g. scikit-sundae) is needed by the requested feature."""


class PrecisionWarning(UserWarning):
    """Single precision where stiff solvers usually need double (float32 state)."""


class PerformanceWarning(UserWarning):
    """A configuration that works but runs far slower than it should, with the fix."""
