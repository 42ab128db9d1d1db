"""Ensembles: one diffrax solve mapped over many parameter sets with ``jax.vmap``.

    python examples/ensemble.py --N 32 --members 64

The 2D Brusselator (n = 2 N^2) is solved with diffrax's Kvaerno5 and stiffasd's sparse Newton
iterations for ``--members`` values of its reaction parameter A at once. With
``linear_solver="jax"`` the sparse LU is part of the compiled program, so ``jax.vmap`` turns
the whole ensemble into one program: each Newton matrix factorization of a step is one batched
factorization of all members (on a GPU, one set of batched kernels). The script times it
against a Python loop over the members with the host SuperLU (``linear_solver="direct"``),
and checks that both give the same final states.

Run with one BLAS thread on a CPU (``OPENBLAS_NUM_THREADS=1``): the LU's many small dense
factorizations are slowed down by a multithreaded BLAS. On a GPU nothing needs setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def parse(argv=None) -> argparse.Namespace:
    doc = __doc__.splitlines()
    p = argparse.ArgumentParser(
        description=doc[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc[1:]),
    )
    p.add_argument("--N", type=int, default=32, help="grid size (n = 2 N^2 unknowns)")
    p.add_argument("--members", type=int, default=64, help="parameter sets solved at once")
    p.add_argument("--t1", type=float, default=1.5, help="end of the time span")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance")
    p.add_argument(
        "--loop-members",
        type=int,
        default=8,
        help="members solved one by one with the host LU, for the time per member and the check",
    )
    return p.parse_args(argv)


def main(argv=None) -> dict:
    opts = parse(argv)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "stiffasd" / "__init__.py").exists():
        sys.path.insert(0, str(checkout))  # run from a source checkout: use this package

    import diffrax
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import stiffasd.diffrax
    from stiffasd.problems import brusselator_2d

    prob = brusselator_2d(opts.N, t_span=(0.0, opts.t1))
    p0 = jnp.asarray(prob.args[0])  # (A, B, alpha / dx^2)
    y0 = jnp.asarray(prob.y0)

    def make_solve(linear_solver: str):
        solver = stiffasd.diffrax.sparse(diffrax.Kvaerno5(), linear_solver=linear_solver)

        def solve_one(a):  # one value of A -> the final state and the number of steps
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(prob.rhs),
                solver,
                0.0,
                opts.t1,
                1e-3,
                y0,
                args=p0.at[0].set(a),
                stepsize_controller=diffrax.PIDController(rtol=opts.rtol, atol=opts.rtol * 1e-2),
                max_steps=100_000,
            )
            return sol.ys[-1], sol.stats["num_steps"]

        return solve_one

    a_values = jnp.linspace(3.0, 3.8, opts.members)
    print(f"{prob.name}: n = {prob.n}, {opts.members} members, backend {jax.default_backend()}")

    ensemble = jax.jit(jax.vmap(make_solve("jax")))
    t0 = time.perf_counter()
    jax.block_until_ready(ensemble(a_values))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ys, steps = jax.block_until_ready(ensemble(a_values))
    vmapped = time.perf_counter() - t0
    print(f"jax.vmap, linear_solver='jax': {vmapped:.3f} s ({first:.1f} s with compilation)")
    print(f"  steps per member: {int(steps.min())} to {int(steps.max())}")

    k = min(opts.loop_members, opts.members)
    one = jax.jit(make_solve("direct"))
    jax.block_until_ready(one(a_values[0]))  # compile once
    t0 = time.perf_counter()
    looped = [jax.block_until_ready(one(a)) for a in a_values[:k]]
    per_member = (time.perf_counter() - t0) / k
    print(
        f"Python loop, linear_solver='direct': {per_member:.3f} s per member "
        f"(x {opts.members} = {per_member * opts.members:.2f} s; "
        f"{per_member * opts.members / vmapped:.1f}x the vmapped ensemble)"
    )
    ref = np.stack([np.asarray(y) for y, _ in looped])
    diff = float(np.max(np.abs(np.asarray(ys[:k]) - ref)) / np.max(np.abs(ref)))
    same_steps = all(int(s) == int(steps[i]) for i, (_, s) in enumerate(looped))
    print(f"largest relative difference to the loop: {diff:.1e}; same steps: {same_steps}")
    return {"vmapped_s": vmapped, "loop_per_member_s": per_member, "rel_diff": diff}


if __name__ == "__main__":
    main()
