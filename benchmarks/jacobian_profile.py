"""Where one sparse Jacobian's time goes: the passes, the gather, and what XLA fuses.

    /tmp/venv-b2ext/bin/python -m benchmarks.jacobian_profile           # jax 0.11.2 + sparsejac
    python3 -m benchmarks.jacobian_profile --tools none --name jacobian_profile_jax0.10
    python -m benchmarks.jacobian_profile --quick           # Allen-Cahn N=20 only, no files
    python -m benchmarks.jacobian_profile --cases robertson # matching cases only, no files
    python -m benchmarks.jacobian_profile --detail          # Allen-Cahn variants + kernel sizes

The narrative of the results is ``results/jacobian_profile_study.md``.

A study for `SparseJacobian.data` (issue 7: stiffasd was 1.6x slower than sparsejac and asdex on
3D Allen-Cahn with the same 12 passes, and as fast or faster everywhere else). For every case,
side by side in one process, interleaved in rounds, best of many (ms):

* **data**: ``sj.data_jit``: the compressed passes, then ``flat[gather]``, XLA free to fuse
  the two;
* **barrier**: the same with ``jax.lax.optimization_barrier`` between passes and gather, so
  that the compressed buffer is written out before the gather (jaxlib 0.10 removes barriers
  before fusion: there it compiles to *data*'s program);
* **transposed**: an exact variant with the compressed buffer laid out row-major (entry
  ``(row, color)``, what sparsejac gathers from), no barrier, gather indices remapped;
* the parts alone: the compressed passes, the gather from a materialized buffer, and one
  evaluation of the right-hand side;
* **sparsejac** (``sparsejac.jacfwd`` with stiffasd's pattern, as in `compare_external`), when
  importable.

From the optimized HLO of *data* and *barrier* it records whether the gather shares a fused
computation with floating-point arithmetic (XLA then recomputes every nonzero's compressed value
at its gathered index) and whether the two programs have the same operations. Every variant is
checked to give exactly the values of *data*. A full run adds the Allen-Cahn N = 20 detail
(`detail`: buffer layout, gather order, index dtype, constant parameters, a bound for evaluating
only the nonzeros, the dispatch floor) and the size of the fused gather kernel's machine code
(`kernel_sizes`, needs ``objdump``). Writes ``results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from benchmarks.compare_external import interleaved_best  # noqa: E402
from stiffasd.problems import PROBLEMS  # noqa: E402


# (label, problem, problem kwargs, prepare_jacobian kwargs)
def _case(problem: str, key: str, size: int, **prepare) -> tuple:
    label = f"{problem}({key}={size})" + "".join(f", {k}={v!r}" for k, v in prepare.items())
    return (label, problem, {key: size}, prepare)


CASES = [
    _case("brusselator_2d", "N", 64),
    _case("brusselator_2d", "N", 128),
    _case("brusselator_2d", "N", 128, seeds="colors"),
    _case("gray_scott_2d", "N", 128),
    _case("gray_scott_2d", "N", 128, seeds="colors"),
    _case("advection_diffusion_reaction_2d", "N", 48),
    _case("flame_1d", "N", 200),
    _case("reservoir_exchange", "n_cells", 3000),
    # a 3-species reaction per cell (vmap) plus diffusion: the passes end in a stack/transpose
    _case("robertson_diffusion_2d", "N", 30),
    _case("robertson_diffusion_2d", "N", 32),
    _case("robertson_diffusion_2d", "N", 32, seeds="colors"),
    _case("robertson_diffusion_2d", "N", 64),
    # one field, 7-point stencil via jnp.pad: grid sides that are / are not powers of two
    _case("allen_cahn_3d", "N", 16),
    _case("allen_cahn_3d", "N", 20),
    _case("allen_cahn_3d", "N", 20, seeds="colors"),
    _case("allen_cahn_3d", "N", 20, structure="symmetric"),
    _case("allen_cahn_3d", "N", 24),
    _case("allen_cahn_3d", "N", 32),
    _case("allen_cahn_3d", "N", 32, seeds="colors"),
    _case("allen_cahn_3d", "N", 40),  # 64000 x 13 seed entries: seeds="colors" by default
]
_FLOAT_ARITH = re.compile(r"= f\d+\[[^\]]*\]\S* (multiply|add|subtract|divide)\(")
_OPCODE = re.compile(r"^\s*(?:ROOT )?%\S+ = \S+ ([a-z][a-z0-9-]*)\(", re.M)


def gather_fused_with_arithmetic(hlo: str) -> bool:
    """Whether a computation of the optimized program gathers and does float arithmetic."""
    return any(" gather(" in b and _FLOAT_ARITH.search(b) for b in hlo.split("\n\n"))


def opcodes(hlo: str) -> Counter:
    """Multiset of the program's operations (names and metadata dropped)."""
    return Counter(_OPCODE.findall(hlo))


def _transposed_gather(sj) -> np.ndarray:
    """The gather indices into the buffer with each block ``(colors, size)`` transposed."""
    m, n = sj.pattern.shape
    g = np.asarray(sj._gather, dtype=np.int64)
    out = g.copy()
    col = g < sj._ncol * m
    out[col] = (g[col] % m) * sj._ncol + g[col] // m
    h = g[~col] - sj._ncol * m
    out[~col] = sj._ncol * m + (h % n) * sj._nrow + h // n
    return out.astype(np.int32)


def run_case(label, problem, pkw, skw, opts) -> dict:
    prob = PROBLEMS[problem](**pkw)
    tt = jnp.asarray(0.5)
    y = jnp.asarray(prob.y0)
    args = tuple(jnp.asarray(a) for a in prob.args)
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, *args, argnums=1, **skw)
    m, n = sj.pattern.shape
    row: dict = dict(
        case=label,
        n=n,
        nnz=sj.pattern.nnz,
        mode=sj.mode,
        passes=sj.ncolors,
        seeds=sj.seeds,
        decompression=getattr(sj.coloring, "decompression", "direct"),
    )
    consts = tuple(None if c is None else jax.device_put(c) for c in sj._consts())
    gather = consts[2]

    def barrier(consts, *a):  # the evaluation with the compressed buffer written out first
        flat = jax.lax.optimization_barrier(sj._compressed_from(consts, *a))
        if consts[2] is not None:
            return flat[consts[2]]
        return sj.coloring.decompress_flat(flat, xp=jnp)

    # the variants are compiled with the options `data_jit` ended up with (fast_compile for
    # small programs; known after its first call, which drops options this XLA refuses)
    data = jax.block_until_ready(sj.data_jit(tt, y, *args))
    options = getattr(sj, "_compile_options", None)

    def _jit(fn):
        return jax.jit(fn, compiler_options=options)

    j_barrier = _jit(barrier)
    j_comp = _jit(sj._compressed_from)
    flat = jax.block_until_ready(j_comp(consts, tt, y, *args))
    assert np.array_equal(np.asarray(j_barrier(consts, tt, y, *args)), np.asarray(data))
    fns = {
        "data": lambda: sj.data_jit(tt, y, *args),
        "barrier": lambda: j_barrier(consts, tt, y, *args),
        "compressed": lambda: j_comp(consts, tt, y, *args),
    }
    hlo_data = sj._compiled.lower(consts, tt, y, *args).compile().as_text()
    hlo_barrier = j_barrier.lower(consts, tt, y, *args).compile().as_text()
    row["fused_data"] = gather_fused_with_arithmetic(hlo_data)
    row["fused_barrier"] = gather_fused_with_arithmetic(hlo_barrier)
    row["same_ops"] = opcodes(hlo_data) == opcodes(hlo_barrier)
    if gather is not None:
        j_gather = _jit(lambda f, g: f[g])
        fns["gather"] = lambda: j_gather(flat, gather)
        g2 = jax.device_put(_transposed_gather(sj))
        nc, nr = sj._ncol, sj._nrow

        def transposed(consts, g2, *a):
            flat = sj._compressed_from(consts, *a)
            parts = []
            if nc:
                parts.append(flat[: nc * m].reshape(nc, m).T.ravel())
            if nr:
                parts.append(flat[nc * m :].reshape(nr, n).T.ravel())
            return (parts[0] if len(parts) == 1 else jnp.concatenate(parts))[g2]

        j_t = _jit(transposed)
        assert np.array_equal(np.asarray(j_t(consts, g2, tt, y, *args)), np.asarray(data))
        fns["transposed"] = lambda: j_t(consts, g2, tt, y, *args)
    j_rhs = jax.jit(prob.rhs)
    fns["rhs"] = lambda: j_rhs(tt, y, *args)
    if "sparsejac" in opts.tools and row["mode"] == "forward" and row["decompression"] == "direct":
        try:
            import sparsejac
            from jax.experimental import sparse as jsparse

            coo = sj.pattern.to_scipy("coo")
            idx = np.stack([coo.row, coo.col], axis=1)
            sparsity = jsparse.BCOO((jnp.ones(len(idx)), jnp.asarray(idx)), shape=(m, n))
            jf = jax.jit(sparsejac.jacfwd(lambda x: prob.rhs(tt, x, *args), sparsity=sparsity))
            jax.block_until_ready(jf(y))
            fns["sparsejac"] = lambda: jf(y)
        except ImportError as exc:
            row["sparsejac_error"] = f"{type(exc).__name__}: {exc}"
    best = interleaved_best(fns, rounds=opts.rounds, reps=opts.reps, min_time=opts.min_time)
    row.update({f"{k}_s": v for k, v in best.items()})
    return row


def detail(opts, N: int = 20) -> list[dict]:
    """The brief's hypotheses on 3D Allen-Cahn, one process, interleaved: exact variants of the
    decompressed values (output order, layout, index dtype, parameters as constants) and the
    dispatch floor. Returns rows ``{variant, s, ratio}`` (ratio to `data_jit`)."""
    prob = PROBLEMS["allen_cahn_3d"](N=N)
    tt = jnp.asarray(0.5)
    y = jnp.asarray(prob.y0)
    (p,) = tuple(jnp.asarray(a) for a in prob.args)
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, p, argnums=1)
    P = sj.pattern
    m, k = P.shape[0], sj._ncol
    c = sj._col_colors.astype(np.int64)
    seeds = (c[None, :] == np.arange(k)[:, None]).astype(np.float64)  # constant (k, n) seeds

    def passes(x, p):  # (k, m), as `_compressed_from` builds it
        return jax.vmap(lambda s: jax.jvp(lambda v: prob.rhs(tt, v, p), (x,), (s,))[1])(seeds)

    def i32(a):
        return jnp.asarray(np.asarray(a, dtype=np.int32))

    csc_rows, csc_cols = P.csc_indices, P.csc_cols
    csr_rows, csr_cols = P.rows, P.indices
    perm = np.asarray(P.csr_to_csc)  # csc_data = csr_data[perm]
    variants = {
        "(k, m) buffer, CSC order (= data_jit)": (False, c[csc_cols] * m + csc_rows, np.int32),
        "(k, m) buffer, CSC order, int64 indices": (False, c[csc_cols] * m + csc_rows, np.int64),
        "(k, m) buffer, CSR order": (False, c[csr_cols] * m + csr_rows, np.int32),
        "(m, k) buffer, CSC order": (True, csc_rows * k + c[csc_cols], np.int32),
        "(m, k) buffer, CSR order (sparsejac's)": (True, csr_rows * k + c[csr_cols], np.int32),
    }
    ref = np.asarray(sj.data_jit(tt, y, p))
    fns = {"data_jit": lambda: sj.data_jit(tt, y, p)}
    for name, (transposed, idx, dtype) in variants.items():
        g = jnp.asarray(np.asarray(idx, dtype=dtype))

        def fn(x, p, g=g, transposed=transposed):
            B = passes(x, p)
            return (B.T if transposed else B).ravel()[g]

        jfn = jax.jit(fn)
        out = np.asarray(jfn(y, p))
        assert np.array_equal(out if "CSC" in name else out[perm], ref), name
        fns[name] = lambda jfn=jfn: jfn(y, p)
    closed = jax.jit(lambda x: sj.data(tt, x, p))  # t, p and the indices as constants
    # constant parameters let XLA fold them into the seed constants: equal up to rounding
    np.testing.assert_allclose(np.asarray(closed(y)), ref, rtol=1e-13, atol=1e-13 * abs(ref).max())
    fns["data, t and p closed over as constants"] = lambda: closed(y)
    # What evaluating only the nonzeros would cost: the gather pushed by hand through the
    # elementwise tail of Allen-Cahn's passes, J = p0 L + p1 (S - 3 u^2 S) with L (the stencil)
    # and S (the identity) as nnz-length constants in CSC order and one gather of the state.
    # Specific to this problem: a bound for a decompression-aware evaluator, not a variant.
    L = np.asarray(sj.data_jit(tt, y, jnp.asarray([1.0, 0.0])))
    S = np.asarray(sj.data_jit(tt, jnp.zeros_like(y), jnp.asarray([0.0, 1.0])))
    rows = jnp.asarray(P.csc_indices.astype(np.int32))
    direct = jax.jit(lambda x, p: p[0] * L + p[1] * (S - 3.0 * x[rows] ** 2 * S))
    np.testing.assert_allclose(
        np.asarray(direct(y, p)), ref, rtol=1e-13, atol=1e-13 * abs(ref).max()
    )
    fns["bound: only the nonzeros evaluated (gather pushed through by hand)"] = lambda: direct(y, p)
    noop = jax.jit(lambda consts, t, x, p: x)
    consts = sj._device_consts
    fns["dispatch floor: jit returning y, same arguments"] = lambda: noop(consts, tt, y, p)
    best = interleaved_best(fns, rounds=opts.rounds, reps=opts.reps, min_time=opts.min_time)
    return [{"variant": kk, "s": v, "ratio": v / best["data_jit"]} for kk, v in best.items()]


def _emit_kernel(N: int, layout: str) -> None:
    """Child process of `kernel_sizes`: compile (and run once) Allen-Cahn's values, `data_jit`
    for ``layout="k,m"`` or the transposed-buffer variant for ``"m,k"``, under the parent's
    ``XLA_FLAGS=--xla_dump_to``."""
    prob = PROBLEMS["allen_cahn_3d"](N=N)
    tt, y = jnp.asarray(0.5), jnp.asarray(prob.y0)
    (p,) = tuple(jnp.asarray(a) for a in prob.args)
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, p, argnums=1)
    if layout == "k,m":
        jax.block_until_ready(sj.data_jit(tt, y, p))
        return
    g2 = jnp.asarray(_transposed_gather(sj))
    consts = sj._consts()

    def transposed_layout(consts, g2, t, x, p):
        return sj._compressed_from(consts, t, x, p).reshape(sj._ncol, -1).T.ravel()[g2]

    jax.block_until_ready(jax.jit(transposed_layout)(consts, g2, tt, y, p))


def kernel_sizes(cases=((16, "k,m"), (20, "k,m"), (32, "k,m"), (20, "m,k"))) -> list[dict]:
    """Machine code of the fused gather kernel (XLA's object file, ``objdump -d``): instructions
    in its inner loop (one iteration = one SIMD group of nonzeros), integer multiplies and
    shifts among them (the flat index converted back into the passes' (colors, N, N, N)
    shape). Each case compiles in a fresh process with ``XLA_FLAGS=--xla_dump_to``."""
    import shutil
    import subprocess
    import sys
    import tempfile

    if shutil.which("objdump") is None:
        return []
    rows = []
    for N, layout in cases:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={tmp}")
            cmd = [sys.executable, "-m", "benchmarks.jacobian_profile", "--kernel", str(N), layout]
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            objs = [
                f
                for f in sorted(os.listdir(tmp))
                if f.endswith(".o")
                and "gather" in f
                and ("_data_from" in f or "transposed_layout" in f)
            ]
            asm = subprocess.run(
                ["objdump", "-d", "--no-show-raw-insn", os.path.join(tmp, objs[-1])],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        ins = re.findall(r"^\s*([0-9a-f]+):\s+(\S+)(.*)$", asm, re.M)
        back = [(int(a, 16), rest) for a, op, rest in ins if op == "jne"]
        end, rest = back[-1]  # the loop's backward branch: ``jne <start>``
        start = int(re.search(r"([0-9a-f]+) <", rest).group(1), 16)
        body = Counter(op for a, op, _ in ins if start <= int(a, 16) <= end)
        rows.append(
            {
                "N": N,
                "layout": layout,
                "loop_instructions": sum(body.values()),
                "imul": body["imul"],
                "shifts": body["shr"] + body["shl"] + body["sar"],
                "fp_loads": body["vmovsd"] + body["vmovhpd"],
            }
        )
    return rows


def _ms(x) -> str:
    return "" if x is None else f"{1e3 * x:.3g}"


def _r(row, key, ref="data_s") -> str:
    return "" if row.get(key) is None else f"{row[key] / row[ref]:.2f}"


def table(rows, versions, load, detail_rows=(), kernels=()) -> str:
    yes = {True: "yes", False: "no"}
    head = (
        "One sparse Jacobian, its parts and variants, side by side in one process, interleaved "
        "in rounds, best of many (ms; jit-compiled, device array out). *data*: "
        "`SparseJacobian.data_jit` (compressed passes, then `flat[gather]`, XLA free to fuse "
        "them); *barrier*: the same with `jax.lax.optimization_barrier` between passes and "
        "gather (the compressed buffer is written out, then gathered); *fused*: the optimized "
        "program has a fused computation that gathers and does floating-point arithmetic (XLA "
        "recomputes each nonzero's compressed value at its gathered index; substitution "
        "decompression does arithmetic of its own); *same ops*: *data* and *barrier* compile "
        "to the same operations; *transposed*: the compressed buffer laid out `(row, color)` "
        "as sparsejac has it, no barrier; *compressed*, *gather*: each part alone (the gather "
        "from a materialized buffer); *rhs*: one right-hand side. Ratios are to *data* (< 1: "
        "the variant is faster). Every variant gives exactly *data*'s values. "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + ".\n\n"
        "| case | n | nnz | mode | passes | seeds | decompression | fused: data | "
        "fused: barrier | same ops | data | barrier | barrier / data | transposed | "
        "transposed / data | compressed | gather | rhs | sparsejac | sparsejac / data |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']} | {r['nnz']} | {r['mode']} | {r['passes']} | "
            f"{r['seeds']} | {r['decompression']} | {yes[r['fused_data']]} | "
            f"{yes[r['fused_barrier']]} | {yes[r['same_ops']]} | {_ms(r['data_s'])} | "
            f"{_ms(r['barrier_s'])} | {_r(r, 'barrier_s')} | {_ms(r.get('transposed_s'))} | "
            f"{_r(r, 'transposed_s')} | {_ms(r['compressed_s'])} | {_ms(r.get('gather_s'))} | "
            f"{_ms(r['rhs_s'])} | {_ms(r.get('sparsejac_s'))} | {_r(r, 'sparsejac_s')} |"
        )
    if detail_rows:
        lines.append(
            "\nAllen-Cahn 3D N = 20 (n = 8000, nnz = 53600, 12 passes): exact variants of the "
            "values, same process, interleaved, best of many; ratio to *data_jit* (the "
            "CSR-order variants are checked after permuting to CSC).\n\n"
            "| variant | [ms] | / data_jit |\n|---|---|---|"
        )
        for d in detail_rows:
            lines.append(f"| {d['variant']} | {_ms(d['s'])} | {d['ratio']:.2f} |")
    if kernels:
        lines.append(
            "\nThe fused gather kernel of Allen-Cahn's values (`objdump -d` of XLA's object "
            "file): instructions in its inner loop (one iteration = one SIMD group of "
            "nonzeros), the integer multiplies and shifts among them (the flat index converted "
            "back into the passes' (colors, N, N, N) shape), floating-point loads. *k,m*: "
            "`data_jit`'s color-major buffer; *m,k*: the transposed-buffer variant.\n\n"
            "| N | buffer | loop instructions | imul | shifts | fp loads |\n|---|---|---|---|---|---|"
        )
        for k in kernels:
            lines.append(
                f"| {k['N']} | {k['layout']} | {k['loop_instructions']} | {k['imul']} | "
                f"{k['shifts']} | {k['fp_loads']} |"
            )
    lines.append(
        f"\nLoad average (1 min) before each case: {min(load):.2f} to {max(load):.2f} "
        f"({os.cpu_count()} cores, shared)."
    )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Allen-Cahn N = 20 only")
    ap.add_argument("--cases", default="", help="only the cases whose label contains this")
    ap.add_argument("--detail", action="store_true", help="only the Allen-Cahn variants")
    ap.add_argument("--kernel", nargs=2, help=argparse.SUPPRESS)  # child of kernel_sizes
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--min-time", type=float, default=0.15)
    ap.add_argument("--tools", default="sparsejac", help="comma-separated: sparsejac or none")
    ap.add_argument("--name", default="jacobian_profile", help="results/<name>.{json,md}")
    opts = ap.parse_args(argv)
    if opts.kernel:
        return _emit_kernel(int(opts.kernel[0]), opts.kernel[1])
    opts.tools = set(opts.tools.split(","))
    cases = [c for c in CASES if c[0] == "allen_cahn_3d(N=20)"] if opts.quick else CASES
    cases = [c for c in cases if opts.cases in c[0]]
    versions = {}
    for pkg in ("jax", "jaxlib", "sparsejac"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    if opts.detail:
        for d in detail(opts):
            print(f"{d['variant']}: {_ms(d['s'])} ms ({d['ratio']:.2f})")
        for k in kernel_sizes():
            print(k)
        return
    rows, load = [], []
    for case in cases:
        load.append(os.getloadavg()[0])
        row = run_case(*case, opts)
        rows.append(row)
        print(
            f"{row['case']}: data {_ms(row['data_s'])} ms, barrier {_ms(row['barrier_s'])} ms "
            f"({_r(row, 'barrier_s')}), transposed {_r(row, 'transposed_s')}, "
            f"fused {row['fused_data']} / {row['fused_barrier']}, "
            f"sparsejac {_ms(row.get('sparsejac_s'))} ms",
            flush=True,
        )
    if not opts.quick and not opts.cases:
        load.append(os.getloadavg()[0])
        detail_rows = detail(opts)
        for d in detail_rows:
            print(f"{d['variant']}: {_ms(d['s'])} ms ({d['ratio']:.2f})")
        kernels = kernel_sizes()
        md_table = table(rows, versions, load, detail_rows, kernels)
        payload = {
            "versions": versions,
            "rows": rows,
            "allen_cahn_detail": detail_rows,
            "allen_cahn_kernels": kernels,
        }
        paths = write_results(opts.name, payload, md_table)
        print("\n".join(map(str, paths)))


if __name__ == "__main__":
    main()
