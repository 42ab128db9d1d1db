"""Hypothesis strategies and fixed families of sparsity patterns for coloring tests."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from stiffasd.pattern import SparsityPattern


def banded(m: int, n: int, lower: int, upper: int) -> SparsityPattern:
    i, j = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    d = j - i
    return SparsityPattern.from_dense((d >= -lower) & (d <= upper))


def random_pattern(m: int, n: int, density: float, seed: int) -> SparsityPattern:
    a = sp.random(m, n, density=density, random_state=seed, format="csr")
    return SparsityPattern.from_scipy(a)


def dense_row(m: int, n: int, row: int = 0) -> SparsityPattern:
    d = np.eye(m, n, dtype=bool)
    d[row, :] = True
    return SparsityPattern.from_dense(d)


def arrowhead(n: int) -> SparsityPattern:
    d = np.eye(n, dtype=bool)
    d[0, :] = True
    d[:, 0] = True
    return SparsityPattern.from_dense(d)


def symmetrize(p: SparsityPattern, diagonal: bool = True) -> SparsityPattern:
    s = p.union(p.T)
    if diagonal:
        s = s.union(SparsityPattern.identity(p.shape[0]))
    return s


@st.composite
def patterns(draw, max_dim: int = 12, square: bool = False) -> SparsityPattern:
    """Empty, 1x1, banded, dense-row, dense-column and random patterns."""
    kind = draw(st.sampled_from(["empty", "one", "banded", "dense_row", "dense_col", "random"]))
    m = draw(st.integers(1, max_dim))
    n = m if square else draw(st.integers(1, max_dim))
    if kind == "empty":
        return SparsityPattern.from_coo((m, n), [], [])
    if kind == "one":
        return SparsityPattern.from_dense(np.ones((1, 1)))
    if kind == "banded":
        lo = draw(st.integers(0, 3))
        up = draw(st.integers(0, 3))
        return banded(m, n, lo, up)
    if kind == "dense_row":
        return dense_row(m, n, draw(st.integers(0, m - 1)))
    if kind == "dense_col":
        return dense_row(n, m, draw(st.integers(0, n - 1))).T
    density = draw(st.floats(0.05, 0.6))
    return random_pattern(m, n, density, draw(st.integers(0, 2**16)))


def symmetric_patterns(max_dim: int = 12):
    return st.builds(symmetrize, patterns(max_dim=max_dim, square=True), st.booleans())


def random_values(p: SparsityPattern, seed: int = 0) -> sp.csc_matrix:
    """A matrix with pattern ``p`` and random nonzero values."""
    rng = np.random.default_rng(seed)
    vals = rng.uniform(0.5, 2.0, p.nnz) * rng.choice([-1.0, 1.0], p.nnz)
    return sp.csc_matrix((vals, (p.rows, p.indices)), shape=p.shape)


def random_symmetric_values(p: SparsityPattern, seed: int = 0) -> sp.csc_matrix:
    a = random_values(p, seed)
    return sp.csc_matrix((a + a.T) / 2)
