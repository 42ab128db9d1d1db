"""Scaling out: one Jacobian split over devices, and an ensemble of solves split over devices.

    python examples/scaling_out.py --N 512 --devices 4

1. The 2D Brusselator with its state laid out grid-first, ``(N, N, 2)``, split along the
   grid's first axis: `stiffasd.sharding.shard_jacobian` evaluates the sparse Jacobian with
   the values staying on the devices (each holds the nonzeros of its own rows), checks them
   against the unsharded Jacobian, and counts what the compiled program sends between
   devices (the halo rows of the compressed passes) against the compressed buffer.
2. An ensemble of 16 Brusselator N = 16 solves from 16 initial states (diffrax Kvaerno5 with
   stiffasd's sparse Newton iterations) with its batch split over the devices by
   `stiffasd.sharding.shard_vmap`, checked against a plain ``jax.vmap``.

On a CPU-only machine the devices are forced host devices (``--devices``), which share the
machine's cores: the point here is what moves, not speed. With GPUs, the GPUs are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse() -> argparse.Namespace:
    doc = __doc__.splitlines()
    p = argparse.ArgumentParser(
        description=doc[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc[1:]),
    )
    p.add_argument("--N", type=int, default=512, help="grid size of the sharded Jacobian")
    p.add_argument("--devices", type=int, default=4, help="devices to use (forced on CPU)")
    p.add_argument("--no-ensemble", action="store_true", help="skip the ensemble part")
    return p.parse_args()


def main() -> None:
    opts = parse()
    # forced host devices only exist if set before JAX starts
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={opts.devices}")
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "stiffasd" / "__init__.py").exists():
        sys.path.insert(0, str(checkout))  # run from a source checkout: use this package

    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import stiffasd
    from stiffasd.problems import brusselator_2d
    from stiffasd.sharding import collective_bytes, shard_jacobian, shard_vmap

    devices = jax.devices()[: opts.devices]
    if len(devices) < opts.devices or opts.N % opts.devices:
        sys.exit(f"need {opts.devices} devices and N divisible by them; have {len(devices)}")
    mesh = jax.sharding.Mesh(np.asarray(devices), ("x",))
    print(f"{len(devices)} devices: {devices[0].platform}")

    # -- 1. one large system --------------------------------------------------------------
    prob = brusselator_2d(opts.N, layout="grid")
    (p,) = prob.args

    def rhs(y):
        return prob.rhs(2.0, y, p)

    y = np.asarray(prob.y0)
    t0 = time.perf_counter()
    sj = stiffasd.prepare_jacobian(rhs, y, mode="forward")  # detection + coloring, on the host
    t_prepare = time.perf_counter() - t0
    sharding = NamedSharding(mesh, P("x"))
    t0 = time.perf_counter()
    jac = shard_jacobian(sj, sharding)
    t_layout = time.perf_counter() - t0
    ys = jax.device_put(y, sharding)
    values = jax.block_until_ready(jac.data_jit(ys))
    ref = np.asarray(sj.data_jit(y))
    err = np.abs(jac.to_pattern_order(values) - ref).max() / np.abs(ref).max()
    moved = collective_bytes(jac.lower(ys).compile())
    m, n = sj.pattern.shape
    per_device = sj.ncolors * m * y.dtype.itemsize // len(devices)
    halo = 2 * sj.ncolors * opts.N * 2 * y.dtype.itemsize  # one (u, v) row each way per pass
    print(f"\nJacobian: n = {n:,}, nnz = {sj.pattern.nnz:,}, {sj.ncolors} colors")
    print(f"  prepare (host) {t_prepare:.2f} s, device layout {t_layout:.2f} s")
    print(f"  values {values.shape} split {values.sharding.spec}; vs unsharded: {err:.1e} (rel)")
    print(f"  compressed buffer per device: {per_device:,} bytes")
    print(f"  sent per device per Jacobian: {moved.bytes_sent} (halo rows: {halo:,} bytes)")
    print(f"  = {moved.total / per_device:.2%} of the compressed buffer")
    if opts.no_ensemble:
        return

    # -- 2. many systems ------------------------------------------------------------------
    import diffrax

    import stiffasd.diffrax as sdx

    small = brusselator_2d(16)
    (p_small,) = small.args
    # 16 initial states: the standard one scaled by 0.8 ... 1.2
    y0s = np.linspace(0.8, 1.2, 16)[:, None] * np.asarray(small.y0)[None, :]
    term = diffrax.ODETerm(small.rhs)
    newton = sdx.sparse(diffrax.Kvaerno5(), linear_solver="gmres")
    controller = diffrax.PIDController(rtol=1e-6, atol=1e-8)

    def solve_one(y0):
        return diffrax.diffeqsolve(
            term, newton, t0=0.0, t1=1.0, dt0=1e-3, y0=y0, args=p_small,
            stepsize_controller=controller,
        ).ys[-1]  # fmt: skip

    t0 = time.perf_counter()
    ys_split = jax.block_until_ready(shard_vmap(solve_one, mesh)(y0s))
    t_split = time.perf_counter() - t0
    t0 = time.perf_counter()
    ys_plain = jax.block_until_ready(jax.jit(jax.vmap(solve_one))(y0s))
    t_plain = time.perf_counter() - t0
    diff = np.abs(np.asarray(ys_split) - np.asarray(ys_plain)).max()
    print(f"\nEnsemble: 16 solves, split {ys_split.sharding.spec} over {len(devices)} devices")
    print(f"  max |split - jax.vmap| = {diff:.2e}")
    print(f"  first call (compile + solve): split {t_split:.1f} s, jax.vmap {t_plain:.1f} s")


if __name__ == "__main__":
    main()
