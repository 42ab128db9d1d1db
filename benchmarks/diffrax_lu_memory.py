"""Size of one factorization held by DirectLU's cache, 2D Brusselator stage matrix.

    python benchmarks/diffrax_lu_memory.py --N 32 64 128

Factors ``I - 1e-3 J`` (J: the Brusselator Jacobian at y0, stiffasd.jac) with
`stiffasd.scipy.FixedPatternLU` as `DirectLU` does (MMD_AT_PLUS_A ordering computed once,
diag_pivot_thresh 0.1) and reports nnz(J), nnz(L + U) and the bytes of L + U (8-byte values +
4-byte row indices), i.e. what each cached factorization holds; `FactorCache` keeps at most
``maxsize`` (8) of them. A dense LU would hold n^2 * 8 bytes.

Writes benchmarks/results/diffrax_lu_memory.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax

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
        lu = FixedPatternLU(
            J.indptr, J.indices, pb.n, ordering="MMD_AT_PLUS_A", diag_pivot_thresh=0.1
        )
        lu.factor(J.data, 1.0, 1e-3)  # computes the ordering
        fac = lu.factor(J.data, 1.0, 1e-3)  # what DirectLU caches
        fill = int(fac.lu.nnz)
        records.append(
            {
                "N": N,
                "n": pb.n,
                "nnz_J": int(J.nnz),
                "nnz_LU": fill,
                "LU_MiB": fill * 12 / 2**20,
                "dense_MiB": pb.n**2 * 8 / 2**20,
            }
        )
    out = {"machine": machine(), "records": records}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffrax_lu_memory.json").write_text(json.dumps(out, indent=2))
    lines = [
        "# One cached factorization of the Brusselator stage matrix (DirectLU)",
        "",
        "| N | n | nnz(J) | nnz(L+U) | L+U MiB | 8 cached, MiB | dense n^2, MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['N']} | {r['n']} | {r['nnz_J']} | {r['nnz_LU']} | {r['LU_MiB']:.1f} | "
        f"{8 * r['LU_MiB']:.0f} | {r['dense_MiB']:.0f} |"
        for r in records
    ]
    (RESULTS / "diffrax_lu_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
