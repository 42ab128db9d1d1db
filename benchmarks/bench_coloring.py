"""pytest-benchmark suite for the coloring engine (moderate sizes; the full-scale numbers come
from ``python -m benchmarks.coloring_benchmarks``)::

    python -m pytest benchmarks/bench_coloring.py --benchmark-only
"""

from __future__ import annotations

import gzip

import pytest
import scipy.io

from stiffasd.coloring import color
from stiffasd.pattern import SparsityPattern

from .coloring_benchmarks import DATA, arrowhead, banded, laplacian_2d


@pytest.fixture(scope="module")
def ken11():
    with gzip.open(DATA, "rb") as f:
        return SparsityPattern.from_scipy(scipy.io.mmread(f, spmatrix=False))


@pytest.mark.parametrize(
    "order",
    [
        "natural",
        "largest_first",
        "smallest_last",
        "incidence_degree",
        "dynamic_largest_first",
        "saturation_degree",
    ],
)
def test_ken11_column(benchmark, ken11, order):
    r = benchmark(color, ken11, partition="column", order=order)
    benchmark.extra_info["ncolors"] = r.ncolors


def test_banded_column(benchmark):
    p = banded(200_000, 2)
    p.csc_indices  # noqa: B018 - cached CSC arrays
    r = benchmark(color, p)
    assert r.ncolors == 5


@pytest.mark.parametrize("decompression", ["direct", "substitution"])
def test_laplacian_symmetric(benchmark, decompression):
    p = laplacian_2d(300)
    p.csc_indices  # noqa: B018
    r = benchmark(color, p, structure="symmetric", decompression=decompression)
    benchmark.extra_info["ncolors"] = r.ncolors


@pytest.mark.parametrize("decompression", ["direct", "substitution"])
def test_arrowhead_bidirectional(benchmark, decompression):
    p = arrowhead(2000)
    r = benchmark(color, p, partition="bidirectional", decompression=decompression, order="random")
    benchmark.extra_info["ncolors"] = r.ncolors
