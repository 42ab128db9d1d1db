"""Sharded Jacobians and sharded ensembles over forced host devices (`stiffasd.sharding`).

    python -m benchmarks.sharding [--devices 4] [--sizes 256 512 1024] [--rounds 5]

1. *jacobian*: the 2D Brusselator laid out ``(N, N, 2)`` and split along the grid's first
   axis over ``--devices`` forced CPU devices. Per size: the bytes one device sends per
   Jacobian, read from the collectives of the optimized HLO, against the compressed buffer
   and the halo rows; the same for the plain prepared program run on the sharded state (what
   XLA does without `shard_jacobian`); the largest difference from the unsharded values; host
   preparation and layout times; evaluation times sharded and on one device, best of
   ``--rounds``, interleaved.
2. *ensemble*: 16 Brusselator N = 16 solves (Kvaerno5, sparse Newton with GMRES) split over the
   devices by `shard_vmap` against ``jax.vmap`` on one device: largest difference, steps, and
   the second call's wall time, best of 2, interleaved.

The forced devices share this machine's cores: the evaluation times say what the split costs
in work, not how it scales. Writes benchmarks/results/sharding.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

if __name__ == "__main__":  # forced host devices exist only if set before JAX starts
    _n = int(sys.argv[sys.argv.index("--devices") + 1]) if "--devices" in sys.argv else 4
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={_n}"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import stiffasd  # noqa: E402
from benchmarks._machine import write_results  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402
from stiffasd.sharding import collective_bytes, shard_jacobian, shard_vmap  # noqa: E402


# ---------------------------------------------------------------------------- problems
# (also used by tests/test_sharding.py and the processes it starts)
def grid_rhs(N: int):
    """The 2D Brusselator with its state laid out ``(N, N, 2)``, as ``rhs(y)`` (forcing on), and
    a state with every reaction term active."""
    prob = brusselator_2d(N, layout="grid")
    (p,) = prob.args

    def rhs(y):
        return prob.rhs(2.0, y, p)

    y = prob.y0 + np.random.default_rng(N).uniform(0.1, 1.0, prob.y0.shape)
    return rhs, y


def ensemble_problem(t1: float = 1.0):
    """16 Brusselator N = 16 solves (A from 3.0 to 3.8) with Kvaerno5 and stiffasd's sparse
    Newton iterations (GMRES, pure JAX): ``solve_one(p) -> (y(t1), number of steps)`` and the
    ``(16, 3)`` parameter sets."""
    import diffrax

    import stiffasd.diffrax as sdx

    prob = brusselator_2d(16)
    params = np.tile(np.asarray(prob.args[0]), (16, 1))
    params[:, 0] = np.linspace(3.0, 3.8, 16)
    solver = sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres")

    def solve_one(p):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(prob.rhs),
            solver,
            0.0,
            t1,
            1e-3,
            jnp.asarray(prob.y0),
            args=p,
            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
            max_steps=10_000,
        )
        return sol.ys[-1], sol.stats["num_steps"]

    return solve_one, params


# ---------------------------------------------------------------------------- measurements
def _best(fns: dict, rounds: int) -> dict:
    """Best wall time of each callable, the callables interleaved in every round."""
    best = dict.fromkeys(fns, np.inf)
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def jacobian_case(N: int, mode: str, rounds: int, devices: int) -> dict:
    rhs, y = grid_rhs(N)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("x",))
    sharding = NamedSharding(mesh, P("x"))
    t0 = time.perf_counter()
    sj = stiffasd.prepare_jacobian(rhs, y, mode=mode)
    t_prepare = time.perf_counter() - t0
    t0 = time.perf_counter()
    jac = shard_jacobian(sj, sharding)
    t_layout = time.perf_counter() - t0
    ys = jax.device_put(y, sharding)
    t0 = time.perf_counter()
    compiled = jac.lower(ys).compile()
    t_compile = time.perf_counter() - t0
    moved = collective_bytes(compiled)
    consts = tuple(None if c is None else jnp.asarray(c) for c in sj._consts())
    plain = collective_bytes(jax.jit(sj._data_from).lower(consts, ys).compile())
    ref = np.asarray(sj.data_jit(y))
    err = float(np.abs(jac.to_pattern_order(jac.data_jit(ys)) - ref).max() / np.abs(ref).max())
    m, n = sj.pattern.shape
    itemsize = y.dtype.itemsize
    compressed = (sj._ncol * m + sj._nrow * n) * itemsize // devices
    times = _best(
        {"sharded": lambda: jac.data_jit(ys), "one_device": lambda: sj.data_jit(y)}, rounds
    )
    return {
        "N": N,
        "n": n,
        "nnz": sj.pattern.nnz,
        "mode": sj.mode,
        "colors": sj.ncolors,
        "seeds": sj.seeds,
        "compressed_bytes_per_device": compressed,
        "halo_bytes_per_device": 2 * sj.ncolors * N * 2 * itemsize,
        "sent_bytes_per_device": moved.bytes_sent,
        "sent_counts": moved.counts,
        "sent_fraction": moved.total / compressed,
        "plain_sent_bytes_per_device": plain.bytes_sent,
        "plain_sent_fraction": plain.total / compressed,
        "max_rel_diff": err,
        "prepare_s": t_prepare,
        "layout_s": t_layout,
        "compile_s": t_compile,
        "sharded_s": times["sharded"],
        "one_device_s": times["one_device"],
    }


def ensemble_case(devices: int) -> dict:
    solve_one, params = ensemble_problem()
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("batch",))
    split = shard_vmap(solve_one, mesh)
    plain = jax.jit(jax.vmap(solve_one))
    (ys, steps), (yr, steps_r) = split(params), plain(params)  # compile
    diff = float(np.abs(np.asarray(ys) - np.asarray(yr)).max() / np.abs(np.asarray(yr)).max())
    times = _best({"split": lambda: split(params), "jax_vmap": lambda: plain(params)}, 2)
    return {
        "solves": int(params.shape[0]),
        "n": 512,
        "max_rel_diff": diff,
        "steps": np.asarray(steps).tolist(),
        "steps_equal": bool(np.array_equal(np.asarray(steps), np.asarray(steps_r))),
        "split_s": times["split"],
        "jax_vmap_s": times["jax_vmap"],
    }


def table(rows: list[dict], ens: dict, devices: int) -> str:
    out = [
        f"Sharded Jacobian, 2D Brusselator (N, N, 2) split along the grid over {devices} forced "
        "CPU devices; bytes per device per Jacobian from the optimized HLO's collectives.",
        "",
        "| N | n | mode | colors | compressed B/device | halo B | sent B/device | sent / compressed "
        "| plain program sent / compressed | max rel diff | prepare s | layout s "
        "| eval sharded ms | eval 1 device ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sent = ", ".join(f"{k} {v:,}" for k, v in r["sent_bytes_per_device"].items())
        out.append(
            f"| {r['N']} | {r['n']:,} | {r['mode']} | {r['colors']} "
            f"| {r['compressed_bytes_per_device']:,} | {r['halo_bytes_per_device']:,} | {sent} "
            f"| {r['sent_fraction']:.2%} | {r['plain_sent_fraction']:.0%} "
            f"| {r['max_rel_diff']:.1e} | {r['prepare_s']:.2f} | {r['layout_s']:.2f} "
            f"| {1e3 * r['sharded_s']:.1f} | {1e3 * r['one_device_s']:.1f} |"
        )
    out += [
        "",
        f"Ensemble: {ens['solves']} Brusselator N = 16 solves (n = {ens['n']}, Kvaerno5, sparse "
        f"Newton with GMRES, t in [0, 1]) split over {devices} devices by shard_vmap against "
        f"jax.vmap on one device: max rel diff {ens['max_rel_diff']:.1e}, equal step counts "
        f"{ens['steps_equal']} ({min(ens['steps'])}-{max(ens['steps'])} steps); second call "
        f"{ens['split_s']:.2f} s split, {ens['jax_vmap_s']:.2f} s jax.vmap.",
    ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--name", default="sharding")
    opts = ap.parse_args()
    devices = opts.devices
    rows = [jacobian_case(N, "forward", opts.rounds, devices) for N in opts.sizes]
    rows.append(jacobian_case(max(opts.sizes), "reverse", opts.rounds, devices))
    for r in rows:
        print(r, flush=True)
    ens = ensemble_case(devices)
    print(ens, flush=True)
    text = table(rows, ens, devices)
    print(text)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    text += f"\n\nCommit {commit}."
    payload = {"commit": commit, "devices": devices, "jacobian": rows, "ensemble": ens}
    write_results(opts.name, payload, text)


if __name__ == "__main__":
    main()
