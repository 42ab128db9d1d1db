"""Where one Brusselator Jacobian's time goes, and cheap exact variants of the compressed passes.

    python -m benchmarks.compare_external_variants --N 128             # one process, all variants
    python -m benchmarks.compare_external_variants --N 128 --flags     # + XLA CPU flag runs

A scratch study for the lead (it does not change stiffasd): at the 2D Brusselator (N = 128,
n = 32768, 12 colors) it times, side by side in one process and best of many,

* the parts of ``SparseJacobian.data``: the 12 vmapped JVPs alone, the decompression gather
  alone, 12 x one JVP, one right-hand side, the host transfer into a scipy matrix;
* variants that compute exactly the same numbers: the batch axis last instead of first
  (``vmap(in_axes=1, out_axes=1)``, gather indices remapped), ``jax.linearize`` once then vmap
  the linear map, ``lax.map`` over chunks of colors, 12 unrolled JVPs in one jit, the seeds
  passed in instead of built, and the gather written as ``.at[idx].get`` with
  ``mode="promise_in_bounds"`` and ``unique_indices``;
* CasADi's SX Function of the same right-hand side, when casadi is importable.

Every variant is checked to equal stiffasd's values (max abs difference printed). With
``--flags`` the script reruns itself in subprocesses under a few ``XLA_FLAGS`` settings (XLA
flags are read once per process). Writes ``results/external_variants.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from benchmarks.compare_external import interleaved_best  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402

FLAG_SETS = {
    "default": "",
    "no multi-thread eigen": "--xla_cpu_multi_thread_eigen=false",
    "single intra-op thread": ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"),
    "fast math": "--xla_cpu_enable_fast_math=true",
    "legacy (non-thunk) CPU runtime": "--xla_cpu_use_thunk_runtime=false",
}


def measure(N: int, opts) -> dict:
    prob = brusselator_2d(N)
    tt = jnp.asarray(0.5)
    y = jnp.asarray(prob.y0)
    p = jnp.asarray(prob.args[0])
    sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, p, argnums=1)
    if sj.mode != "forward" or sj._gather is None:
        raise RuntimeError(f"expected forward mode with a direct gather, got {sj.mode}")
    n = prob.n
    k = sj.ncolors
    colors = np.asarray(sj.coloring.column_colors)
    gather = np.asarray(sj._gather)  # index into the flat (k, n) buffer, CSC order
    seeds = jnp.asarray((colors[None, :] == np.arange(k)[:, None]).astype(np.float64))
    seeds_last = seeds.T.copy()
    # the same entries in an (n, k) buffer: flat index c * n + i -> i * k + c
    c_of, i_of = np.divmod(gather, n)
    gather_last = (i_of * k + c_of).astype(np.int32)
    g = jnp.asarray(gather)
    gl = jnp.asarray(gather_last)

    def fx(x):
        return prob.rhs(tt, x, p)

    def jvp_one(x, s):
        return jax.jvp(fx, (x,), (s,))[1]

    fns = {}
    fns["stiffasd data (12 vmapped JVPs + gather)"] = jax.jit(lambda x: sj.data(tt, x, p))
    fns["12 vmapped JVPs only (compressed)"] = jax.jit(lambda x: sj.compressed(tt, x, p))
    # a separate jit, so that the timed one's first call below still compiles
    flat0 = jax.block_until_ready(jax.jit(lambda x: sj.compressed(tt, x, p))(y))
    fns["gather only (flat[idx])"] = jax.jit(lambda f: f[g])
    fns["gather only, .at[].get(promise_in_bounds, unique)"] = jax.jit(
        lambda f: f.at[g].get(mode="promise_in_bounds", unique_indices=True)
    )
    fns["gather only, numpy-constant indices"] = jax.jit(lambda f: f[gather])
    fns["one JVP (constant seed)"] = jax.jit(lambda x: jvp_one(x, seeds[0]))
    fns["one JVP (seed passed in)"] = jax.jit(jvp_one)
    fns["one right-hand side"] = jax.jit(fx)

    def unrolled(x):
        return jnp.concatenate([jvp_one(x, seeds[c]) for c in range(k)])[g]

    fns["V: 12 unrolled JVPs in one jit + gather"] = jax.jit(unrolled)
    fns["V: batch axis last (vmap in/out_axes=1)"] = jax.jit(
        lambda x: jax.vmap(lambda s: jvp_one(x, s), in_axes=1, out_axes=1)(seeds_last).ravel()[gl]
    )

    def linearized(x):
        _, lin = jax.linearize(fx, x)
        return jax.vmap(lin)(seeds).ravel()[g]

    fns["V: linearize once, vmap the linear map"] = jax.jit(linearized)

    def linearized_last(x):
        _, lin = jax.linearize(fx, x)
        return jax.vmap(lin, in_axes=1, out_axes=1)(seeds_last).ravel()[gl]

    fns["V: linearize + batch axis last"] = jax.jit(linearized_last)
    fns["V: constant seeds (closed over), vmap batch first"] = jax.jit(
        lambda x: jax.vmap(lambda si: jvp_one(x, si))(seeds).ravel()[g]
    )
    fns["V: seeds passed in (not built in the jit)"] = jax.jit(
        lambda x, s: jax.vmap(lambda si: jvp_one(x, si))(s).ravel()[g]
    )
    fns["V: gather as .at[].get(promise_in_bounds, unique)"] = jax.jit(
        lambda x: sj.compressed(tt, x, p).at[g].get(mode="promise_in_bounds", unique_indices=True)
    )
    for chunk in (2, 4, 6):

        def chunked(x, c=chunk):
            pad = (-k) % c
            s = jnp.concatenate([seeds, jnp.zeros((pad, n))]).reshape(-1, c, n)
            out = jax.lax.map(jax.vmap(lambda si: jvp_one(x, si)), s).reshape(-1, n)[:k]
            return out.ravel()[g]

        fns[f"V: lax.map over chunks of {chunk} colors"] = jax.jit(chunked)

    # exactness: every variant returns stiffasd's values bit for bit (or to rounding)
    errs = {}
    calls = {}
    compile_s = {}
    outs = {}
    for name, f in fns.items():
        if name.startswith("gather only"):
            calls[name] = lambda f=f: f(flat0)
        elif name.startswith("V: seeds passed"):
            calls[name] = lambda f=f: f(y, seeds)
        elif name == "one JVP (seed passed in)":
            calls[name] = lambda f=f: f(y, seeds[0])
        else:
            calls[name] = lambda f=f: f(y)
        start = time.perf_counter()
        out = np.asarray(jax.block_until_ready(calls[name]()))
        compile_s[name] = time.perf_counter() - start  # first call: trace + compile + run
        outs[name] = out
    ref = outs["stiffasd data (12 vmapped JVPs + gather)"]
    for name, out in outs.items():
        if out.shape == ref.shape:
            errs[name] = float(np.abs(out - ref).max())
    calls["stiffasd csc (incl. host transfer + csc_matrix)"] = lambda: sj.csc(tt, y, p)
    calls["host transfer only (np.asarray of the values)"] = lambda: np.asarray(
        fns["stiffasd data (12 vmapped JVPs + gather)"](y)
    )

    try:
        import casadi as ca

        from benchmarks.compare_external import casadi_rhs

        ct, cy, cp, expr = casadi_rhs("brusselator_2d", N, ca)
        cfun = ca.Function("J", [ct, cy, cp], [ca.jacobian(expr, cy)])
        y0 = np.asarray(prob.y0)
        p0 = np.asarray(prob.args[0])
        calls["CasADi SX Function (DM out)"] = lambda: cfun(0.5, y0, p0)
        dm_in = (ca.DM(0.5), ca.DM(y0), ca.DM(p0))  # inputs converted once, outside the clock
        calls["CasADi SX Function, DM inputs given"] = lambda: cfun(*dm_in)
        f_rhs = ca.Function("f", [ct, cy, cp], [expr])
        calls["CasADi SX right-hand side"] = lambda: f_rhs(0.5, y0, p0)
    except ImportError as exc:
        print("casadi not available:", exc)

    best = interleaved_best(calls, rounds=opts.rounds, reps=opts.reps, min_time=opts.min_time)
    return dict(
        N=N,
        n=n,
        nnz=sj.pattern.nnz,
        colors=k,
        times=best,
        max_abs_diff=errs,
        first_call_s=compile_s,
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        load=os.getloadavg()[0],
    )


def constant_seed_data(sj, *args):
    """``sj.data(*args)`` with the one-hot seeds as trace-time constants (NumPy arrays) instead
    of built from the colors inside the compiled function: XLA then folds every part of the
    tangent (and cotangent) computation that depends on the seeds alone, e.g. a linear stencil
    applied to a seed. Same passes, same gather; forward, reverse or bidirectional."""
    fx, x = sj._flat_fn(args)
    parts = []
    if sj._ncol:
        seeds = (sj._col_colors[None, :] == np.arange(sj._ncol)[:, None]).astype(x.dtype)
        parts.append(jax.vmap(lambda s: jax.jvp(fx, (x,), (s,))[1])(seeds).ravel())
    if sj._nrow:
        y, vjp_fn = jax.vjp(fx, x)
        seeds = (sj._row_colors[None, :] == np.arange(sj._nrow)[:, None]).astype(y.dtype)
        parts.append(jax.vmap(lambda s: vjp_fn(s)[0])(seeds).ravel())
    flat = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
    return flat[sj._gather]


def sweep(opts) -> None:
    """stiffasd's ``data`` against `constant_seed_data` on every problem of compare_external."""
    from benchmarks._machine import write_results
    from benchmarks.compare_external import CASES
    from stiffasd.problems import PROBLEMS

    rows = []
    for name, key, size in CASES:
        prob = PROBLEMS[name](**{key: size})
        tt = jnp.asarray(0.5)
        y = jnp.asarray(prob.y0)
        args = tuple(jnp.asarray(a) for a in prob.args)
        sj = stiffasd.prepare_jacobian(prob.rhs, tt, y, *args, argnums=1)
        if sj._gather is None:
            continue
        f_sa = jax.jit(lambda yy, sj=sj: sj.data(tt, yy, *args))
        f_cs = jax.jit(lambda yy, sj=sj: constant_seed_data(sj, tt, yy, *args))
        first = {}
        outs = {}
        for label, f in (("stiffasd", f_sa), ("constant seeds", f_cs)):
            start = time.perf_counter()
            outs[label] = np.asarray(jax.block_until_ready(f(y)))
            first[label] = time.perf_counter() - start
        scale = max(float(np.abs(outs["stiffasd"]).max()), 1.0)
        best = interleaved_best(
            {"stiffasd": lambda: f_sa(y), "constant seeds": lambda: f_cs(y)},
            rounds=opts.rounds,
            reps=opts.reps,
            min_time=opts.min_time,
        )
        row = dict(
            problem=prob.name,
            n=prob.n,
            mode=sj.mode,
            passes=sj.ncolors,
            stiffasd_s=best["stiffasd"],
            constant_seeds_s=best["constant seeds"],
            stiffasd_first_call_s=first["stiffasd"],
            constant_seeds_first_call_s=first["constant seeds"],
            rel_diff=float(np.abs(outs["stiffasd"] - outs["constant seeds"]).max()) / scale,
            load=os.getloadavg()[0],
        )
        rows.append(row)
        print(row, flush=True)
    lines = [
        "stiffasd's `data` against the same passes with the one-hot seeds as trace-time "
        "constants (`constant_seed_data` in `benchmarks/compare_external_variants.py`), every "
        "compare_external problem, best of many in turns, one process (ms). *rel. diff*: max "
        "|difference| / max |entry| (rounding).",
        "",
        "| problem | n | mode | passes | stiffasd [ms] | constant seeds [ms] | speed-up | "
        "first call stiffasd / constant seeds [s] | rel. diff | load |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['mode']} | {r['passes']} | "
            f"{1e3 * r['stiffasd_s']:.3g} | {1e3 * r['constant_seeds_s']:.3g} | "
            f"{r['stiffasd_s'] / r['constant_seeds_s']:.1f}x | "
            f"{r['stiffasd_first_call_s']:.2f} / {r['constant_seeds_first_call_s']:.2f} | "
            f"{r['rel_diff']:.1e} | {r['load']:.1f} |"
        )
    write_results("external_variants_sweep", {"rows": rows}, "\n".join(lines))
    print("\n".join(lines))


def table(results: list[dict]) -> str:
    base = results[0]
    names = list(base["times"])
    ref = base["times"]["stiffasd data (12 vmapped JVPs + gather)"]
    lines = [
        f"Brusselator 2D N = {base['N']} (n = {base['n']}, nnz = {base['nnz']}, "
        f"{base['colors']} colors): one Jacobian's parts and exact variants, best of many, "
        "timed in turns in one process (ms). *vs data*: time / stiffasd's `data` (< 1: faster). "
        "*max diff*: max |value - stiffasd's value| (the variants are exact: the differences "
        "are rounding, relative to entries of size 1.6e5). *first call*: trace + compile + run "
        "of the first call (default flags).",
        "",
    ]
    head = (
        "| part / variant | "
        + " | ".join(f"[ms] {r['label']}" for r in results)
        + " | vs data | max diff | first call [s] |"
    )
    lines += [head, "|" + "---|" * (len(results) + 4)]
    for name in names:
        cells = " | ".join(
            f"{1e3 * r['times'][name]:.3g}" if name in r["times"] else "n/a" for r in results
        )
        err = base["max_abs_diff"].get(name)
        first = base.get("first_call_s", {}).get(name)
        lines.append(
            f"| {name} | {cells} | {base['times'][name] / ref:.2f} | "
            + ("" if err is None else f"{err:.1e}")
            + " | "
            + ("" if first is None else f"{first:.2f}")
            + " |"
        )
    lines.append("")
    lines.append(
        "Columns after the first: the same script rerun in a fresh process under `XLA_FLAGS`: "
        + "; ".join(f"*{r['label']}*: `{r['xla_flags'] or '(none)'}`" for r in results)
        + ". Load average (1 min) at the end of each: "
        + ", ".join(f"{r['load']:.2f}" for r in results)
        + " (2 cores, shared)."
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--flags", action="store_true", help="rerun under XLA_FLAGS settings")
    parser.add_argument("--json-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sweep", action="store_true", help="constant seeds vs stiffasd on every problem"
    )
    parser.add_argument(
        "--rerender", action="store_true", help="rewrite the Markdown from the committed JSON"
    )
    opts = parser.parse_args(argv)
    if opts.sweep:
        sweep(opts)
        return
    if opts.rerender:
        from benchmarks._machine import RESULTS, machine_markdown

        payload = json.loads((RESULTS / "external_variants.json").read_text())
        md = table(payload["results"])
        (RESULTS / "external_variants.md").write_text(
            f"{md}\n\n{machine_markdown(payload['machine'])}\n"
        )
        return
    res = measure(opts.N, opts)
    if opts.json_out:  # child run under one flag set
        with open(opts.json_out, "w") as fh:
            json.dump(res, fh)
        return
    res["label"] = "default"
    results = [res]
    if opts.flags:
        for label, flags in list(FLAG_SETS.items())[1:]:
            out = f"/tmp/external_variants_{abs(hash(label))}.json"
            env = dict(os.environ, XLA_FLAGS=flags)
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.compare_external_variants",
                "--N",
                str(opts.N),
                "--rounds",
                str(opts.rounds),
                "--reps",
                str(opts.reps),
                "--min-time",
                str(opts.min_time),
                "--json-out",
                out,
            ]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"flags {flags!r} failed:\n{proc.stderr[-2000:]}")
                continue
            with open(out) as fh:
                r = json.load(fh)
            r["label"] = label
            results.append(r)
    md = table(results)
    write_results("external_variants", {"results": results}, md)
    print(md)


if __name__ == "__main__":
    main()
