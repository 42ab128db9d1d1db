"""Graph coloring for automatic sparse differentiation (independent of JAX).

`color` colors a `SparsityPattern` for one of the problems of the sparse-derivative literature
(Gebremedhin, Manne, Pothen 2005; Montoison, Dalle, Gebremedhin 2025) and returns a
`ColoringResult` carrying the colors and a decompression plan; `check_coloring` verifies a
result against its pattern. Kernels are numba-compiled (``cache=True``).
"""

from ._api import color as color
from .check import check_coloring as check_coloring
from .result import ColoringResult as ColoringResult

__all__ = ["color", "check_coloring", "ColoringResult", "cli_color"]


def cli_color(argv=None):
    """The ``stiffasd color`` subcommand (see `stiffasd.coloring._cli`)."""
    from ._cli import cli_color as _impl

    return _impl(argv)
