"""Detection benchmark: time and peak memory of ``jacobian_sparsity`` on large PDE-like problems.

Run from the repository root::

    python3 benchmarks/detect_scaling.py            # writes benchmarks/results/detect.{json,md}

Problems: f(x) = (x[1:] - x[:-1])**2 at n = 10^6, the 2D Brusselator at N = 256 and the 3D 7-point
heat equation at 64^3, plus the scaling curve of the first problem for n = 10^4 ... 10^6. Every
measurement is the median of repeated runs after one warm-up (which includes JAX's tracing caches);
peak memory is numpy's (tracemalloc) during one run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import detect_problems as dp  # noqa: E402
from stiffasd.detect import jacobian_sparsity  # noqa: E402

REPEATS = 5


def measure(f, n):
    x = np.ones(n)
    pat = jacobian_sparsity(f, x)  # warm-up
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        jacobian_sparsity(f, x)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    jacobian_sparsity(f, x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n": n,
        "m": pat.shape[0],
        "nnz": pat.nnz,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "peak_numpy_MiB": peak / 2**20,
    }


def machine():
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln), "")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "load_average": load,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def main(out_dir=None):
    out_dir = out_dir or os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out_dir, exist_ok=True)
    problems = [
        ("squared_differences n=1e6", dp.squared_differences, 10**6),
        ("brusselator_2d N=256", dp.brusselator_2d(256), 2 * 256**2),
        ("heat_3d 64^3", dp.heat_3d(64), 64**3),
    ]
    res = {"machine": machine(), "problems": [], "scaling": []}
    for name, f, n in problems:
        r = measure(f, n)
        r["problem"] = name
        res["problems"].append(r)
        print(f"{name:28s} n={n:8d} nnz={r['nnz']:8d} {r['median_s']:.3f} s  {r['peak_numpy_MiB']:.0f} MiB")
    for n in (10**4, 3 * 10**4, 10**5, 3 * 10**5, 10**6):
        r = measure(dp.squared_differences, n)
        res["scaling"].append(r)
        print(f"scaling n={n:8d} {r['median_s'] * 1e3:.1f} ms  {r['median_s'] / r['nnz'] * 1e9:.0f} ns/nnz")
    with open(os.path.join(out_dir, "detect.json"), "w") as fh:
        json.dump(res, fh, indent=2)
    lines = [
        "# Sparsity detection benchmark",
        "",
        f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores (shared, load average "
        f"{res['machine']['load_average']}); Python {res['machine']['python']}, jax "
        f"{res['machine']['jax']}, numpy {res['machine']['numpy']}, scipy {res['machine']['scipy']}.",
        "",
        "| problem | n | nnz | median time (s) | peak numpy memory (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in res["problems"]:
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['nnz']} | {r['median_s']:.3f} | {r['peak_numpy_MiB']:.0f} |"
        )
    lines += [
        "",
        "Scaling of f(x) = (x[1:] - x[:-1])**2:",
        "",
        "| n | nnz | median time (ms) | ns per nonzero | peak numpy memory (MiB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in res["scaling"]:
        lines.append(
            f"| {r['n']} | {r['nnz']} | {r['median_s'] * 1e3:.1f} | "
            f"{r['median_s'] / r['nnz'] * 1e9:.0f} | {r['peak_numpy_MiB']:.1f} |"
        )
    with open(os.path.join(out_dir, "detect.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
