"""The numba kernels (coloring, elimination tree) compile once per installation: a second
process loads every kernel it uses from numba's on-disk cache and compiles none."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A first use of the pipeline's kernels: column coloring with its postprocessing, the
# nested-dissection fill count, star coloring for a Hessian; then the numba dispatchers of
# stiffasd that ran, with the compilations they needed and the cached versions they loaded.
SCRIPT = """
import gc, json
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from numba.core.registry import CPUDispatcher
import stiffasd
from stiffasd.linalg import FixedPatternLU
from stiffasd.problems import brusselator_2d

p = brusselator_2d(6)
J = stiffasd.jac(p.rhs)(0.0, p.y0, *p.args)
FixedPatternLU(J.indptr, J.indices, J.shape[0]).factor(J.data, 1.0, 0.1)
stiffasd.hessian(lambda x: jnp.sum(x[1:] * x[:-1] ** 2))(np.ones(12))
kernels = [d for d in gc.get_objects() if isinstance(d, CPUDispatcher)
           and d.py_func.__module__.startswith("stiffasd")]
print(json.dumps({d.py_func.__module__ + "." + d.__name__:
                  [sum(d.stats.cache_misses.values()), sum(d.stats.cache_hits.values())]
                  for d in kernels if d.signatures}))
"""


def _run(cache_dir: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh processes, the first compiling every kernel (5-10 s of CPU)
def test_kernels_compile_once_then_load_from_the_cache(tmp_path):
    first = _run(tmp_path)
    assert len(first) >= 8, first  # the pipeline ran the kernels of several stages
    assert all(miss >= 1 for miss, _ in first.values()), first  # an empty cache: compiled
    assert any(tmp_path.rglob("*.nbi"))
    second = _run(tmp_path)
    # kernels called from other kernels compile with them, and load inside them
    assert set(second) <= set(first) and len(second) >= 8, (first, second)
    assert all(miss == 0 and hit >= 1 for miss, hit in second.values()), second
