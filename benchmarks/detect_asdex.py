"""Side-by-side detection timing: stiffasd vs asdex, in ONE process and one run.

asdex needs Python >= 3.12 and jax 0.11.x, so this script runs in its own virtual environment::

    /root/.pyenv/versions/3.12.1/bin/python -m venv /tmp/venv-asdex
    /tmp/venv-asdex/bin/pip install asdex "jax>=0.11,<0.12" "jaxlib>=0.11,<0.12" scipy
    PYTHONPATH=. /tmp/venv-asdex/bin/python benchmarks/detect_asdex.py

It writes benchmarks/results/detect_asdex.{json,md}. Both detectors are warmed up once, then
timed alternately (median of 3 runs each); both patterns are checked equal.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import asdex  # noqa: E402
import detect_problems as dp  # noqa: E402
import numpy as np  # noqa: E402

from stiffasd.detect import jacobian_sparsity  # noqa: E402

REPEATS = 3


def _asdex_csr(p):
    """asdex's pattern as a scipy CSR matrix (it exposes COO rows / cols)."""
    import scipy.sparse as sp

    rows, cols = np.asarray(p.rows), np.asarray(p.cols)
    return sp.csr_array((np.ones(len(rows), bool), (rows, cols)), shape=tuple(p.shape))


def main():
    problems = [
        ("squared_differences n=1e6", dp.squared_differences, 10**6),
        ("brusselator_2d N=256", dp.brusselator_2d(256), 2 * 256**2),
        ("heat_3d 64^3", dp.heat_3d(64), 64**3),
    ]
    rows = []
    for name, f, n in problems:
        x = np.ones(n)
        ours = jacobian_sparsity(f, x)
        theirs = asdex.jacobian_sparsity(f, x)
        ts, ta = [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            jacobian_sparsity(f, x)
            ts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            asdex.jacobian_sparsity(f, x)
            ta.append(time.perf_counter() - t0)
        nnz_a = getattr(theirs, "nnz", None)
        same = None
        sc = _asdex_csr(theirs)
        if sc is not None:
            import scipy.sparse as sp

            sc = sp.csr_array(sc)
            same = bool(sc.nnz == ours.nnz and (sc != ours.to_scipy(dtype=bool)).nnz == 0)
        r = {
            "problem": name,
            "n": n,
            "nnz_stiffasd": ours.nnz,
            "nnz_asdex": int(nnz_a) if nnz_a is not None else None,
            "same_pattern": same,
            "stiffasd_s": statistics.median(ts),
            "asdex_s": statistics.median(ta),
        }
        r["speedup"] = r["asdex_s"] / r["stiffasd_s"]
        rows.append(r)
        print(
            f"{name:28s} stiffasd {r['stiffasd_s']:.3f} s  asdex {r['asdex_s']:.3f} s  x{r['speedup']:.1f}  same={same}"
        )
    out = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out, exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "asdex": importlib.metadata.version("asdex"),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    with open(os.path.join(out, "detect_asdex.json"), "w") as fh:
        json.dump({"machine": meta, "rows": rows}, fh, indent=2)
    lines = [
        "# Detection time: stiffasd vs asdex (same process, same run)",
        "",
        f"Python {meta['python']}, jax {meta['jax']}, asdex {meta['asdex']}, {meta['cores']} shared "
        f"cores (load average {tuple(round(v, 1) for v in meta['load_average'])}). Median of "
        f"{REPEATS} alternating runs after a warm-up.",
        "",
        "| problem | n | nnz | stiffasd (s) | asdex (s) | speed-up | same pattern |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['nnz_stiffasd']} | {r['stiffasd_s']:.3f} | "
            f"{r['asdex_s']:.3f} | {r['speedup']:.1f}x | {r['same_pattern']} |"
        )
    with open(os.path.join(out, "detect_asdex.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
