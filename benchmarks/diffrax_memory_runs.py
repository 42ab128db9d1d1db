"""Resident memory over repeated sparse diffrax solves (is memory bounded over long runs?).

    python benchmarks/diffrax_memory_runs.py --N 64 --runs 4
    python benchmarks/diffrax_memory_runs.py --N 64 --runs 4 --no-lu-thread   # the old behaviour

Compiles Kvaerno5 + stiffasd.diffrax (direct LU) on the 2D Brusselator once, then runs the
compiled solve ``--runs`` times (rtol 1e-3, atol 1e-6, t in [0, 11.5]) and records the resident
set size (/proc/self/statm) after each run. ``--no-lu-thread`` makes `FactorCache.run` call
directly on the callback thread, as `DirectLU` did before factorizations were confined to one
thread: scipy's SuperLU frees memory only from the thread that allocated it, so factorizations
evicted from another XLA callback thread leaked.

Writes benchmarks/results/diffrax_memory_runs[-TAG].json and .md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd.diffrax as sdx  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from stiffasd.linalg import FactorCache  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--no-lu-thread", action="store_true")
    parser.add_argument("--tag", default="")
    opts = parser.parse_args()
    if opts.no_lu_thread:
        FactorCache.run = lambda self, fn, *args: fn(*args)

    pb = brusselator_2d(opts.N)
    solver = sdx.sparse(diffrax.Kvaerno5())
    ctrl = diffrax.PIDController(rtol=1e-3, atol=1e-6)

    def solve(y0, p):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(pb.rhs), solver, 0.0, 11.5, 1e-3, y0, args=p,
            stepsize_controller=ctrl, max_steps=100_000,
        )  # fmt: skip
        return sol.ys[-1], sol.stats["num_steps"]

    y0, p = jnp.asarray(pb.y0), jnp.asarray(pb.args[0])
    compiled = jax.jit(solve).lower(y0, p).compile()
    rec = {"N": opts.N, "n": pb.n, "lu_thread": not opts.no_lu_thread}
    rec["rss_after_compile_mb"] = rss_mb()
    rss = []
    for _ in range(opts.runs):
        _, steps = compiled(y0, p)
        gc.collect()
        rss.append(rss_mb())
    rec["steps_per_run"] = int(steps)
    rec["rss_after_each_run_mb"] = rss
    rec["growth_per_run_mb"] = (rss[-1] - rss[0]) / max(len(rss) - 1, 1)
    print(json.dumps(rec))

    name = "diffrax_memory_runs" + (f"-{opts.tag}" if opts.tag else "")
    path = RESULTS / f"{name}.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    records = [r for r in records if (r["N"], r["lu_thread"]) != (rec["N"], rec["lu_thread"])]
    records.append(rec)
    out = {"machine": dict(machine(), loadavg=os.getloadavg()), "records": records}
    path.write_text(json.dumps(out, indent=2))
    lines = [
        "# Resident memory over repeated compiled solves (Kvaerno5 + stiffasd, Brusselator)",
        "",
        "| N | n | factorizations on one LU thread | steps / run | RSS after compile, MB | "
        "RSS after each run, MB | growth per run, MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        runs = ", ".join(f"{x:.0f}" for x in r["rss_after_each_run_mb"])
        lines.append(
            f"| {r['N']} | {r['n']} | {'yes' if r['lu_thread'] else 'no (old)'} | "
            f"{r['steps_per_run']} | {r['rss_after_compile_mb']:.0f} | {runs} | "
            f"{r['growth_per_run_mb']:.1f} |"
        )
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
