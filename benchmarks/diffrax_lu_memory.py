"""Size of one factorization held by DirectLU's cache, 2D Brusselator stage matrix.

    python benchmarks/diffrax_lu_memory.py --N 32 64 128

Factors ``I - 1e-3 J`` (J: the Brusselator Jacobian at y0, stiffasd.jac) with
`stiffasd.scipy.FixedPatternLU` as `DirectLU` does (ordering computed once, diag_pivot_thresh
0.1), for the orderings MMD_AT_PLUS_A and "auto" (METIS when pymetis is installed), and reports
nnz(J), nnz(L + U), the bytes of L + U (8-byte values + 4-byte row indices), i.e. what each
cached factorization holds (`FactorCache` keeps at most ``maxsize`` = 8 of them; a dense LU
would hold n^2 * 8 bytes), and the best of 3 factorization and 5 solve times.

Writes benchmarks/results/diffrax_lu_memory.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402
from stiffasd.scipy import FixedPatternLU  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[32, 64, 128])
    opts = parser.parse_args()
    records = []
    for N in opts.N:
        pb = brusselator_2d(N)
        J = stiffasd.jac(pb.rhs)(1.0, pb.y0, *pb.args).tocsc()
        J.sort_indices()
        for ordering in ("MMD_AT_PLUS_A", "auto"):
            lu = FixedPatternLU(J.indptr, J.indices, pb.n, ordering=ordering, diag_pivot_thresh=0.1)
            lu.factor(J.data, 1.0, 1e-3)  # computes the ordering
            times = []
            for k in range(3):
                t = time.perf_counter()
                fac = lu.factor(J.data * (1.0 + 0.01 * k), 1.0, 1e-3)  # what DirectLU caches
                times.append(time.perf_counter() - t)
            b = np.ones(pb.n)
            solves = []
            for _ in range(5):
                t = time.perf_counter()
                fac.solve(b)
                solves.append(time.perf_counter() - t)
            fill = int(fac.lu.nnz)
            records.append(
                {
                    "N": N,
                    "n": pb.n,
                    "ordering": lu.ordering if isinstance(lu.ordering, str) else "array",
                    "nnz_J": int(J.nnz),
                    "nnz_LU": fill,
                    "LU_MiB": fill * 12 / 2**20,
                    "dense_MiB": pb.n**2 * 8 / 2**20,
                    "factor_ms": 1e3 * min(times),
                    "solve_ms": 1e3 * min(solves),
                }
            )
    out = {"machine": dict(machine(), loadavg=os.getloadavg()), "records": records}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffrax_lu_memory.json").write_text(json.dumps(out, indent=2))
    lines = [
        "# One cached factorization of the Brusselator stage matrix (DirectLU)",
        "",
        "| N | n | ordering | nnz(J) | nnz(L+U) | L+U MiB | 8 cached, MiB | dense n^2, MiB "
        "| factor ms | solve ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['N']} | {r['n']} | {r['ordering']} | {r['nnz_J']} | {r['nnz_LU']} | "
        f"{r['LU_MiB']:.1f} | {8 * r['LU_MiB']:.0f} | {r['dense_MiB']:.0f} | "
        f"{r['factor_ms']:.1f} | {r['solve_ms']:.2f} |"
        for r in records
    ]
    (RESULTS / "diffrax_lu_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
