"""Checks of stiffasd.sharding that need several devices, run in a fresh process.

Forced host devices (``--xla_force_host_platform_device_count``) must be set before JAX
starts, so tests/test_sharding.py runs this file as a subprocess:

    python tests/_sharding_worker.py SCENARIO [ARGS...]

Every scenario asserts its own results and prints one line ``RESULT {json}`` with the measured
numbers, which the calling test checks again. Scenario ``process`` is one process of a
``jax.distributed`` run (``process PROCESS_ID PORT OUT_FILE``).
"""

from __future__ import annotations

import json
import os
import sys
import time

SCENARIO = sys.argv[1]
if SCENARIO != "process":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
else:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
if SCENARIO == "process":
    jax.distributed.initialize(
        coordinator_address=f"localhost:{sys.argv[3]}",
        num_processes=2,
        process_id=int(sys.argv[2]),
        initialization_timeout=60,
    )

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import stiffasd  # noqa: E402
from benchmarks.problems import ensemble_problem, grid_rhs  # noqa: E402
from stiffasd.errors import ShapeError  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402
from stiffasd.sharding import collective_bytes, shard_jacobian, shard_vmap  # noqa: E402


def _mesh(shape, names, kind="Auto"):
    return jax.make_mesh(shape, names, axis_types=(getattr(AxisType, kind),) * len(shape))


def _check_sharded(rhs, y, sharding, mode, seeds="auto", out_sharding=None, sj=None):
    """Sharded values against the unsharded Jacobian; returns the measured numbers."""
    sj = sj or stiffasd.prepare_jacobian(rhs, y, mode=mode, seeds=seeds)
    jac = shard_jacobian(sj, sharding, out_sharding)
    ys = jax.device_put(y, sharding)
    values = jac.data_jit(ys)
    assert values.shape == (jac.nblocks, jac.width), values.shape
    assert values.sharding.is_equivalent_to(jac.values_sharding, 2), values.sharding
    ref = np.asarray(sj.data_jit(y))
    got = jac.to_pattern_order(values)
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    assert err < 1e-13, err
    # padding slots hold zeros; every stored value sits on the device of its row (forward) or
    # column (reverse)
    vals = np.asarray(values)
    pad = jac.positions < 0
    assert np.all(vals[pad] == 0)
    assert (jac.rows[~pad] >= 0).all() and (jac.cols[~pad] >= 0).all()
    assert jac.counts.sum() == sj.pattern.nnz
    # (a symmetric or bidirectional coloring: with its row or with its column)
    block_of = jac.values_sharding.devices_indices_map((jac.nblocks, 1))
    out_map = jac.out_sharding.devices_indices_map(sj.out_shape)
    in_map = sharding.devices_indices_map(sj._in_shape)
    out_ids = np.arange(int(np.prod(sj.out_shape))).reshape(sj.out_shape)
    in_ids = np.arange(int(np.prod(sj._in_shape))).reshape(sj._in_shape)
    for dev in out_map:
        b = block_of[dev][0].start or 0
        keep = ~pad[b]
        by_row = np.isin(jac.rows[b][keep], out_ids[out_map[dev]].ravel())
        by_col = np.isin(jac.cols[b][keep], in_ids[in_map[dev]].ravel())
        if sj.mode == "forward" and sj.coloring.structure == "nonsymmetric":
            assert by_row.all(), b
        elif sj.mode == "reverse":
            assert by_col.all(), b
        assert (by_row | by_col).all(), (sj.mode, b)
    comp = collective_bytes(jac.lower(ys).compile())
    m, n = sj.pattern.shape
    compressed = (sj._ncol * m + sj._nrow * n) * np.dtype(y.dtype).itemsize
    return {
        "mode": sj.mode,
        "seeds": sj.seeds,
        "colors": sj.ncolors,
        "rel_err": err,
        "bytes_sent": comp.bytes_sent,
        "counts": comp.counts,
        "exact": comp.exact,
        "compressed_bytes_per_device": compressed // jac.nblocks,
        "ratio": comp.total * jac.nblocks / compressed,
    }


def scenario_jacobian():
    N = 32
    rhs, y = grid_rhs(N)
    rows = _mesh((4,), ("x",))
    split = NamedSharding(rows, P("x"))
    halo_row = N * 2 * 8  # one grid row of (u, v) in float64
    out = {}
    for mode, seeds in (("forward", "constant"), ("forward", "colors"), ("reverse", "colors")):
        r = _check_sharded(rhs, y, split, mode, seeds)
        if mode == "forward":
            # one tangent halo row per color to each neighbour, nothing else
            assert set(r["bytes_sent"]) == {"collective-permute"}, r
            assert r["bytes_sent"]["collective-permute"] == 2 * r["colors"] * halo_row, r
        else:  # the transposed stencil returns the halo rows; the periodic wrap adds them up
            assert set(r["bytes_sent"]) <= {"collective-permute", "all-reduce"}, r
            assert r["bytes_sent"]["collective-permute"] <= 3 * r["colors"] * halo_row, r
        out[f"{mode}/{seeds}"] = r
    # Explicit mesh axes (jax.make_mesh's default): the same values and collectives
    r = _check_sharded(rhs, y, NamedSharding(_mesh((4,), ("x",), "Explicit"), P("x")), "forward")
    assert r["bytes_sent"] == out["forward/constant"]["bytes_sent"], r
    out["explicit"] = r
    # a 2D mesh splitting both grid axes: halos along both
    r = _check_sharded(rhs, y, NamedSharding(_mesh((2, 2), ("x", "y")), P("x", "y")), "forward")
    assert set(r["bytes_sent"]) == {"collective-permute"}, r
    out["2d-mesh"] = r
    # colorings that read both directions: a bicoloring, and a symmetric (star) coloring of
    # the Hessian of an energy, with direct decompression
    r = _check_sharded(rhs, y, split, "bidirectional")
    assert r["mode"] == "bidirectional", r
    out["bidirectional"] = r
    # a bicoloring with both JVPs and VJPs: a stencil plus a dense row block and column (the
    # global sums make XLA reduce over devices; the values must still be right)
    v = np.random.default_rng(0).uniform(0.5, 1.0, (32, 4))

    def arrow(w):
        return jnp.roll(w, 1, 0) * w + w[:1].sum() + jnp.zeros_like(w).at[0].set(w.sum(0))

    sj = stiffasd.prepare_jacobian(arrow, v, mode="bidirectional", order="random")
    assert sj._ncol and sj._nrow, sj
    out["mixed"] = _check_sharded(arrow, v, split, "bidirectional", sj=sj)

    def grad_energy(v):
        lap = jnp.roll(v, 1, 0) + jnp.roll(v, -1, 0) + jnp.roll(v, 1, 1) + jnp.roll(v, -1, 1)
        return v**3 - 0.5 * (lap - 4 * v)

    pattern = stiffasd.jacobian_sparsity(grad_energy, y)
    star = stiffasd.color(pattern, structure="symmetric", decompression="direct")
    sj = stiffasd.SparseJacobian(grad_energy, [y], 0, pattern, star, "forward")
    sj.out_shape = y.shape
    out["symmetric"] = _check_sharded(grad_energy, y, split, "forward", sj=sj)
    # fields first, (2, N, N), split along the grid's first axis: every device's columns are
    # two separate ranges of the flat state
    prob = brusselator_2d(N, layout="grid")

    def rhs_fields_first(z):
        return jnp.moveaxis(prob.rhs(0.0, jnp.moveaxis(z, 0, -1), *prob.args), -1, 0)

    z = np.moveaxis(y, -1, 0)
    r = _check_sharded(rhs_fields_first, z, NamedSharding(rows, P(None, "x")), "forward")
    assert set(r["bytes_sent"]) == {"collective-permute"}, r
    out["fields-first"] = r
    # the plain prepared program on a sharded state gathers the compressed buffer everywhere
    sj = stiffasd.prepare_jacobian(rhs, y, mode="forward", seeds="colors")
    consts = tuple(None if c is None else jnp.asarray(c) for c in sj._consts())
    lowered = jax.jit(sj._data_from).lower(consts, jax.device_put(y, split))
    plain = collective_bytes(lowered.compile())
    out["plain"] = {"bytes_sent": plain.bytes_sent}
    per_device = out["forward/colors"]["compressed_bytes_per_device"]
    assert plain.bytes_sent.get("all-gather", 0) >= 0.99 * 3 * per_device, (plain, per_device)
    # a grid that does not split evenly
    sj = stiffasd.prepare_jacobian(lambda v: jnp.roll(v, 1, 0) * v, np.ones((6, 4)))
    try:
        shard_jacobian(sj, split)
    except ShapeError as exc:
        assert "6 is not a multiple of 4" in str(exc), exc
        out["uneven"] = str(exc)
    else:
        raise AssertionError("an uneven split was accepted")
    return out


def scenario_target():
    """The 2-field 2D Brusselator with a state of 2^21 over 4 devices."""
    N = 1024
    t0 = time.perf_counter()
    rhs, y = grid_rhs(N)
    r = _check_sharded(rhs, y, NamedSharding(_mesh((4,), ("x",)), P("x")), "auto")
    assert r["ratio"] <= 0.05, r
    r["n"] = int(y.size)
    r["seconds"] = time.perf_counter() - t0
    return r


def scenario_ensemble():
    solve_one, params = ensemble_problem(0.5)
    mesh = jax.make_mesh((4,), ("batch",))  # Explicit axes: shard_vmap runs them as Auto
    t0 = time.perf_counter()
    ys, steps = shard_vmap(solve_one, mesh)(params)
    t_sharded = time.perf_counter() - t0
    assert ys.shape == (16, 512) and len(ys.sharding.device_set) == 4, ys.sharding
    assert ys.sharding.shard_shape(ys.shape) == (4, 512)
    t0 = time.perf_counter()
    ref, ref_steps = jax.jit(jax.vmap(solve_one))(params)
    t_plain = time.perf_counter() - t0
    err = float(np.abs(np.asarray(ys) - np.asarray(ref)).max() / np.abs(np.asarray(ref)).max())
    assert err < 1e-9, err
    np.testing.assert_array_equal(np.asarray(steps), np.asarray(ref_steps))
    return {"rel_err": err, "steps": np.asarray(steps).tolist(), "seconds": [t_sharded, t_plain]}


def scenario_process():
    from jax.experimental import multihost_utils

    out_file = sys.argv[4]
    assert jax.process_count() == 2 and len(jax.devices()) == 4
    t0 = time.perf_counter()
    # sharded Jacobian: every process prepares from the same host state, evaluates its blocks
    rhs, y = grid_rhs(32)
    mesh = _mesh((4,), ("x",))
    sharding = NamedSharding(mesh, P("x"))
    ys = jax.make_array_from_callback(y.shape, sharding, lambda index: y[index])
    sj = stiffasd.prepare_jacobian(rhs, ys, mode="forward")
    jac = shard_jacobian(sj, sharding)
    values = jac.data_jit(ys)
    assert not values.is_fully_addressable
    jac_values = jac.to_pattern_order(values)  # gathered from both processes
    # ensemble: 16 solves over the 4 devices of the 2 processes
    solve_one, params = ensemble_problem(0.5)
    ens, steps = shard_vmap(solve_one, jax.make_mesh((4,), ("batch",)))(params)
    ens = multihost_utils.process_allgather(ens, tiled=True)
    steps = multihost_utils.process_allgather(steps, tiled=True)
    seconds = time.perf_counter() - t0
    if jax.process_index() == 0:
        np.savez(out_file, jac=jac_values, ens=ens, steps=steps, seconds=seconds)
    return {"process": jax.process_index(), "seconds": seconds}


if __name__ == "__main__":
    result = globals()[f"scenario_{SCENARIO}"]()
    print("RESULT " + json.dumps(result), flush=True)
