"""pytest-benchmark suite for the building blocks of one Jacobian (run with
``pytest benchmarks/bench_jacobian.py --benchmark-only``)."""

import jax
import jax.numpy as jnp
import pytest

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402

SIZES = [32, 128]


@pytest.fixture(scope="module", params=SIZES, ids=lambda N: f"N={N}")
def prepared(request):
    prob = brusselator_2d(request.param)
    t, y, p = jnp.asarray(2.0), jnp.asarray(prob.y0), jnp.asarray(prob.args[0])
    sj = stiffasd.jac(prob.rhs).prepare(t, y, p)
    return prob, sj, (t, y, p)


def test_jacobian_data(benchmark, prepared):
    _, sj, args = prepared
    data = jax.jit(sj.data)
    jax.block_until_ready(data(*args))
    benchmark(lambda: jax.block_until_ready(data(*args)))


def test_jacobian_scipy_csc(benchmark, prepared):
    _, sj, args = prepared
    sj.csc(*args)
    benchmark(sj.csc, *args)


def test_one_jvp(benchmark, prepared):
    prob, _, (t, y, p) = prepared
    jvp = jax.jit(lambda y, v: jax.jvp(lambda y: prob.rhs(t, y, p), (y,), (v,))[1])
    v = jnp.ones_like(y)
    jax.block_until_ready(jvp(y, v))
    benchmark(lambda: jax.block_until_ready(jvp(y, v)))


def test_detection(benchmark, prepared):
    prob, _, args = prepared
    benchmark(stiffasd.jacobian_sparsity, prob.rhs, *args, argnums=1)
