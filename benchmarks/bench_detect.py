"""pytest-benchmark suite for sparsity detection (run: pytest benchmarks/bench_detect.py)."""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
jax.config.update("jax_enable_x64", True)

import detect_problems as dp  # noqa: E402

from stiffasd.detect import jacobian_sparsity  # noqa: E402

PROBLEMS = {
    "squared_differences_1e6": (dp.squared_differences, 10**6),
    "brusselator_2d_256": (dp.brusselator_2d(256), 2 * 256**2),
    "heat_3d_64": (dp.heat_3d(64), 64**3),
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_detect(benchmark, name):
    f, n = PROBLEMS[name]
    x = np.ones(n)
    jacobian_sparsity(f, x)
    pat = benchmark(jacobian_sparsity, f, x)
    assert pat.shape[1] == n
