"""Cost of one `jax.pure_callback` round trip inside a jitted loop, as DirectLU makes them.

    python benchmarks/diffrax_callback_cost.py --n 2048 8192 32768

For each size ``n`` (nnz = 6 n, the Brusselator's stage matrix) it times a no-op callback
that receives ``(handle, b)`` and returns ``(b, hit)`` (DirectLU's solve fast path), and the
same with the matrix data vector also passed in (the old solve callback, which carried the data
at every solve). Both run inside a jitted ``fori_loop`` (no dispatch overhead); best of 3.

Writes benchmarks/results/diffrax_callback_cost.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import RESULTS, machine  # noqa: E402
from benchmarks._timing import loop_time  # noqa: E402


def measure(n: int, k: int) -> dict:
    nnz = 6 * n
    data = jnp.linspace(0.0, 1.0, nnz)

    def fast(b):
        x, _ = jax.pure_callback(
            lambda h, b: (np.asarray(b), np.True_),
            (jax.ShapeDtypeStruct(b.shape, b.dtype), jax.ShapeDtypeStruct((), jnp.bool_)),
            jnp.int32(0),
            b,
            vmap_method="broadcast_all",
        )
        return x

    def with_data(b):
        return jax.pure_callback(
            lambda h, d, b: np.asarray(b),
            jax.ShapeDtypeStruct(b.shape, b.dtype),
            jnp.int32(0),
            data,
            b,
            vmap_method="broadcast_all",
        )

    x = jnp.ones(n)
    return {
        "n": n,
        "nnz": nnz,
        "fast_ms": 1e3 * loop_time(fast, x, k),
        "with_data_ms": 1e3 * loop_time(with_data, x, k),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2048, 8192, 32768])
    parser.add_argument("--k", type=int, default=1000)
    opts = parser.parse_args()
    records = [measure(n, opts.k) for n in opts.n]
    out = {"machine": dict(machine(), loadavg=os.getloadavg()), "records": records}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffrax_callback_cost.json").write_text(json.dumps(out, indent=2))
    lines = [
        "# pure_callback round trip inside jit (no-op host function)",
        "",
        "| n | nnz | (handle, b) -> (b, hit), ms | (handle, data, b) -> b, ms |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['n']} | {r['nnz']} | {r['fast_ms']:.3f} | {r['with_data_ms']:.3f} |" for r in records
    ]
    m = out["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu')}, {m.get('cpu_count')} cores (shared), load average "
        f"{', '.join(f'{x:.1f}' for x in m['loadavg'])}; jax {m.get('jax')}, "
        f"python {m.get('python')}.",
    ]
    (RESULTS / "diffrax_callback_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
