"""stiffasd.sharding: sharded Jacobians, sharded ensembles, collectives counted from HLO.

Checks that need several devices run tests/_sharding_worker.py in a subprocess with forced
host devices (they must be set before JAX starts); the multi-process test starts two
``jax.distributed`` processes on localhost itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import stiffasd
from benchmarks.problems import ensemble_problem, grid_rhs
from stiffasd.errors import ShapeError
from stiffasd.sharding import (
    Collectives,
    ShardedJacobian,
    collective_bytes,
    shard_jacobian,
    shard_vmap,
)

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_sharding_worker.py"


def _env() -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    env["OPENBLAS_NUM_THREADS"] = "1"  # as conftest.py sets it for this process
    return env


def _run_worker(*args: str, timeout: float = 600) -> dict:
    proc = subprocess.run(
        [sys.executable, str(WORKER), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


# ---------------------------------------------------------------------------- four devices
def test_sharded_jacobian_on_four_devices():
    out = _run_worker("jacobian")
    fwd = out["forward/colors"]
    # values equal to the unsharded Jacobian to rounding, in every layout tried
    assert all(r["rel_err"] < 1e-13 for k, r in out.items() if "rel_err" in r)
    # forward: only halo rows move, 2 per color (N = 32, (u, v) float64)
    assert fwd["bytes_sent"] == {"collective-permute": 2 * fwd["colors"] * 32 * 2 * 8}
    # the plain program gathers the whole compressed buffer onto every device
    assert out["plain"]["bytes_sent"]["all-gather"] >= 3 * fwd["compressed_bytes_per_device"]
    assert "not a multiple of 4" in out["uneven"]


@pytest.mark.slow
def test_sharded_jacobian_of_two_million_unknowns_moves_only_halos():
    r = _run_worker("target")
    assert r["n"] >= 2**20 and r["rel_err"] < 1e-13
    assert r["ratio"] <= 0.05
    assert set(r["bytes_sent"]) == {"collective-permute"}


def test_sharded_ensemble_equals_unsharded_batch():
    r = _run_worker("ensemble")
    assert r["rel_err"] < 1e-9
    assert len(r["steps"]) == 16 and min(r["steps"]) > 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_with_jax_distributed(tmp_path):
    """Two processes of two forced devices each run the sharded Jacobian and the ensemble;
    process 0's gathered results must equal a single-process run (computed here meanwhile)."""
    port, out = str(_free_port()), tmp_path / "out.npz"
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "process", str(i), port, str(out)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # their signals stay among them
        )
        for i in range(2)
    ]
    logs = []
    try:
        rhs, y = grid_rhs(32)
        ref_jac = np.asarray(stiffasd.prepare_jacobian(rhs, y, mode="forward").data_jit(y))
        solve_one, params = ensemble_problem(0.5)
        ref_ens, ref_steps = jax.jit(jax.vmap(solve_one))(params)
        for p in procs:
            stdout, stderr = p.communicate(timeout=300)
            logs.append(stdout[-2000:] + stderr[-4000:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    wall = time.perf_counter() - t0
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    got = np.load(out)
    np.testing.assert_allclose(got["jac"], ref_jac, rtol=1e-13, atol=0)
    np.testing.assert_allclose(got["ens"], np.asarray(ref_ens), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got["steps"], np.asarray(ref_steps))
    assert wall < 300, wall


# ---------------------------------------------------------------------------- one device, here
def _one_device_sharding(name="x"):
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), (name,))
    return NamedSharding(mesh, P(name))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_one_device_mesh_gives_the_pattern_values_in_local_order(mode):
    rhs, y = grid_rhs(6)
    sj = stiffasd.prepare_jacobian(rhs, y, mode=mode)
    jac = shard_jacobian(sj, _one_device_sharding())
    assert isinstance(jac, ShardedJacobian) and "blocks=1" in repr(jac)
    values = jac.data_jit(jax.device_put(y, jac.sharding))
    assert values.shape == (1, sj.pattern.nnz) and jac.width == sj.pattern.nnz
    np.testing.assert_array_equal(jac.to_pattern_order(values), np.asarray(sj.data_jit(y)))
    np.testing.assert_array_equal(jac.to_csc(values).toarray(), sj.csc(y).toarray())
    np.testing.assert_array_equal(np.asarray(jax.jit(jac.data)(y)), np.asarray(values))
    # a block is CSR (rows owned: forward) or CSC (columns owned: reverse)
    major, minor = (jac.rows[0], jac.cols[0]) if mode == "forward" else (jac.cols[0], jac.rows[0])
    order = np.lexsort((minor, major))
    np.testing.assert_array_equal(order, np.arange(order.size))
    with pytest.raises(ShapeError, match=r"values must have shape \(1, "):
        jac.to_pattern_order(np.zeros(3))


def test_shard_jacobian_refuses_bad_arguments():
    rhs, y = grid_rhs(4)
    sharding = _one_device_sharding()
    sj = stiffasd.prepare_jacobian(rhs, y, mode="forward")
    with pytest.raises(TypeError, match="jacobian must be a SparseJacobian"):
        shard_jacobian(object(), sharding)
    with pytest.raises(TypeError, match="sharding must be a jax.sharding.NamedSharding"):
        shard_jacobian(sj, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    with pytest.raises(ValueError, match="out_sharding must be on the state's mesh"):
        shard_jacobian(sj, sharding, _one_device_sharding("y"))
    mesh = sharding.mesh
    with pytest.raises(ShapeError, match="more entries than the array has axes"):
        shard_jacobian(sj, NamedSharding(mesh, P(None, None, None, "x")))
    summed = stiffasd.prepare_jacobian(lambda v: rhs(v).sum(axis=-1), y)
    with pytest.raises(ShapeError, match="pass out_sharding="):
        shard_jacobian(summed, sharding)
    chunked = stiffasd.prepare_jacobian(rhs, y, mode="forward", chunk_size=2)
    with pytest.raises(ValueError, match="chunk_size=2"):
        shard_jacobian(chunked, sharding)
    coloring = stiffasd.color(sj.pattern, partition="bidirectional", decompression="substitution")
    substituted = stiffasd.SparseJacobian(rhs, [y], 0, sj.pattern, coloring, "bidirectional")
    substituted.out_shape = y.shape
    with pytest.raises(ValueError, match="decompresses by substitution"):
        shard_jacobian(substituted, sharding)


def test_shard_vmap_on_one_device_equals_vmap():
    def fn(a, b):
        return jnp.sin(a) * b, jnp.sum(a)

    a, b = np.arange(12.0).reshape(6, 2), np.array([1.0, 2.0])
    out = shard_vmap(fn, in_axes=(0, None))(a, b)
    ref = jax.vmap(fn, in_axes=(0, None))(a, b)
    for o, r in zip(out, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(o), np.asarray(r))
    # a JAX array batch takes the same path as host data
    out = shard_vmap(fn, jax.make_mesh((1,), ("b",)), in_axes=(0, None))(jnp.asarray(a), b)
    np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(ref[0]))


def test_shard_vmap_refuses_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        shard_vmap(3)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        shard_vmap(jnp.sin, mesh="batch")
    with pytest.raises(ValueError, match="in_axes must be 0, None"):
        shard_vmap(jnp.sin, in_axes=1)(np.ones((4, 2)))
    with pytest.raises(ValueError, match="no argument is batched"):
        shard_vmap(jnp.sin, in_axes=None)(np.ones(3))
    with pytest.raises(ShapeError, match=r"first axis, got sizes \[3, 4\]"):
        shard_vmap(jnp.add)(np.ones(3), np.ones(4))


# ---------------------------------------------------------------------------- HLO collectives
_HLO = """HloModule jit_f, entry_computation_layout={(f64[8]{0})->f64[32]{0}}, num_partitions=4

%body (p: (s64[], f64[8])) -> (s64[], f64[8]) {
  %p = (s64[], f64[8]{0}) parameter(0)
  %x = f64[8]{0} get-tuple-element(%p), index=1
  %cp = f64[8]{0} collective-permute(%x), channel_id=1, source_target_pairs={{0,1},{1,2},{2,3}}
  ROOT %t = (s64[], f64[8]{0}) tuple(%i, %cp)
}

%cond (p.1: (s64[], f64[8])) -> pred[] {
  %q = pred[] parameter(0)
  ROOT %ar = pred[] all-reduce(%q), channel_id=2, replica_groups={{0,1,2,3}}, to_apply=%or
}

%branch0 (b: f64[8]) -> f64[16] {
  %b = f64[8]{0} parameter(0)
  ROOT %ag2 = f64[16]{0} all-gather(%b), channel_id=4, replica_groups=[2,2]<=[4], dimensions={0}
}

%branch1 (c: f64[8]) -> f64[16] {
  %c = f64[8]{0} parameter(0)
  ROOT %bc = f64[16]{0} broadcast(%c), dimensions={}
}

ENTRY %main (a: f64[8]) -> f64[32] {
  %a = f64[8]{0} parameter(0)
  %ag = f64[32]{0} all-gather(%a), replica_groups=mesh['axis_0'=4] {'axis_0'}, dimensions={0}
  %rs = f64[2]{0} reduce-scatter(%a), replica_groups={{0,1,2,3}}, to_apply=%add
  %a2a = f64[8]{0} all-to-all(%a), channel_id=6, replica_groups={{0,1},{2,3}}, dimensions={0}
  %w = (s64[], f64[8]{0}) while(%init), condition=%cond, body=%body, backend_config=TRIPS
  %cnd = f64[16]{0} conditional(%pr, %a, %a), branch_computations={%branch0, %branch1}
  %cps = (f64[8]{0}, f64[8]{0}, u32[]) collective-permute-start(%a), source_target_pairs={{0,1}}
  ROOT %r = f64[32]{0} copy(%ag)
}
"""


def test_collective_bytes_counts_each_kind_and_loop_iteration():
    c = collective_bytes(_HLO.replace("TRIPS", '{"known_trip_count":{"n":"5"}}'))
    # all-gather of 256 bytes over 4 devices: 3/4 of it sent; the costlier branch of the
    # conditional adds an all-gather of 128 bytes over groups of 2
    assert c.bytes_sent["all-gather"] == 256 * 3 // 4 + 128 // 2
    assert c.bytes_sent["reduce-scatter"] == 16 * 3
    assert c.bytes_sent["all-to-all"] == 64 // 2
    # the loop body runs 5 times, its condition 6 times; plus one async permute of 64 bytes
    assert c.bytes_sent["collective-permute"] == 5 * 64 + 64
    assert c.counts["collective-permute"] == 6 and c.counts["all-reduce"] == 6
    assert c.bytes_sent["all-reduce"] == 6 * (2 * 1 * 3 // 4)
    assert c.exact and c.total == sum(c.bytes_sent.values())
    unknown = collective_bytes(_HLO.replace("TRIPS", "{}"))
    assert not unknown.exact and unknown.counts["collective-permute"] == 2


def test_collective_bytes_of_a_single_device_program_is_zero():
    compiled = jax.jit(lambda x: jnp.roll(x, 1) * 2).lower(jnp.ones(8)).compile()
    assert collective_bytes(compiled) == Collectives({}, {}, True)
    with pytest.raises(TypeError, match="expected a compiled JAX program"):
        collective_bytes(42)
    with pytest.raises(ValueError, match="has no ENTRY"):
        collective_bytes("HloModule m\n")
