"""One sparse Jacobian against the passes it is made of, side by side in one run.

    python -m benchmarks.compare_jacobian --sizes 16 32 64 128 256

For the 2D Brusselator: the time of one `SparseJacobian.data` call (compressed passes +
decompression, jit-compiled) against ncolors x the time of one jit-compiled JVP of the same
right-hand side. The ratio measures decompression and dispatch overhead (target <= 1.5).
Dense `jax.jacfwd` is timed up to --max-dense-n. Writes results/jacobian_brusselator.{json,md}.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402


def best_time(fn, *args, reps=20, min_time=0.2):
    jax.block_until_ready(fn(*args))
    times = []
    start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if len(times) > 10 * reps:
            break
    return float(np.min(times)), float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--max-dense-n", type=int, default=8192)
    parser.add_argument("--name", default="jacobian_brusselator")
    opts = parser.parse_args(argv)
    rows = []
    for N in opts.sizes:
        prob = brusselator_2d(N)
        t = jnp.asarray(2.0)
        y = jnp.asarray(prob.y0)
        p = jnp.asarray(prob.args[0])
        sj = stiffasd.jac(prob.rhs).prepare(t, y, p)
        f = jax.jit(lambda y: prob.rhs(t, y, p))
        jvp = jax.jit(lambda y, v: jax.jvp(lambda y: prob.rhs(t, y, p), (y,), (v,))[1])
        data = jax.jit(sj.data)
        t_jac, t_jac_med = best_time(data, t, y, p)
        t_jvp, _ = best_time(jvp, y, jnp.ones_like(y))
        t_f, _ = best_time(f, y)
        row = dict(
            N=N,
            n=prob.n,
            nnz=sj.pattern.nnz,
            ncolors=sj.ncolors,
            mode=sj.mode,
            jacobian_s=t_jac,
            jacobian_median_s=t_jac_med,
            jvp_s=t_jvp,
            rhs_s=t_f,
            ratio_to_ncolors_jvp=t_jac / (sj.ncolors * t_jvp),
            detect_s=sj.timings["detect"],
            color_s=sj.timings["color"],
        )
        if prob.n <= opts.max_dense_n:
            dense = jax.jit(jax.jacfwd(lambda y: prob.rhs(t, y, p)))
            row["dense_jacfwd_s"] = best_time(dense, y, reps=3, min_time=0.0)[0]
            row["speedup_vs_dense"] = row["dense_jacfwd_s"] / t_jac
        rows.append(row)
        print({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    lines = [
        "One Jacobian of the 2D Brusselator (jit-compiled, best of many) against ncolors x one "
        "JVP, and against dense jax.jacfwd. Same run, same process.",
        "",
        "| N | n | nnz | colors | Jacobian [ms] | JVP [ms] | Jacobian / (colors x JVP) | "
        "dense jacfwd [ms] | speed-up vs dense | detect [s] | color [s] |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        dense = f"{1e3 * r['dense_jacfwd_s']:.2f}" if "dense_jacfwd_s" in r else "n/a"
        sp = f"{r['speedup_vs_dense']:.0f}x" if "speedup_vs_dense" in r else "n/a"
        lines.append(
            f"| {r['N']} | {r['n']} | {r['nnz']} | {r['ncolors']} | {1e3 * r['jacobian_s']:.3f} | "
            f"{1e3 * r['jvp_s']:.3f} | {r['ratio_to_ncolors_jvp']:.2f} | {dense} | {sp} | "
            f"{r['detect_s']:.3f} | {r['color_s']:.3f} |"
        )
    table = "\n".join(lines)
    write_results(opts.name, {"rows": rows}, table)
    print(table)


if __name__ == "__main__":
    main()
