"""Compressed evaluation: values against dense AD, modes, caching, compiled-program hygiene."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import stiffasd
from stiffasd.problems import brusselator_2d


def _dense(f, x, *rest):
    return np.asarray(jax.jacfwd(lambda x: jnp.ravel(f(x, *rest)))(x)).reshape(-1, np.size(x))


def _arrowhead(x):
    # dense first row and column plus the diagonal: column and row coloring both need n passes
    return jnp.concatenate([jnp.sum(x**2)[None], x[1:] * x[0] + jnp.sin(x[1:])])


def _chain(x):
    return (x[1:] - x[:-1]) ** 2 + jnp.exp(x[1:])


def _wide(x):  # 3 outputs of 20 inputs: reverse mode is cheaper
    return jnp.stack([jnp.sum(x[:10] ** 2), jnp.prod(x[5:15]), jnp.sum(jnp.tanh(x))])


FUNCS = {"arrowhead": (_arrowhead, 30), "chain": (_chain, 25), "wide": (_wide, 20)}


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", ["auto", "forward", "reverse", "bidirectional"])
def test_values_match_dense_jacfwd(name, mode):
    f, n = FUNCS[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)
    sj = stiffasd.prepare_jacobian(f, x, mode=mode)
    if mode != "auto":
        assert sj.mode == mode
    stiffasd.check_coloring(sj.pattern, sj.coloring)
    for _ in range(3):
        x = rng.standard_normal(n)
        dense = _dense(f, x)
        J = sj.csc(x).toarray()
        np.testing.assert_allclose(J, dense, rtol=1e-12, atol=1e-12 * np.abs(dense).max())


def test_auto_mode_picks_fewest_passes():
    x = np.random.default_rng(0).standard_normal(20)
    assert stiffasd.prepare_jacobian(_wide, x).mode == "reverse"
    assert stiffasd.prepare_jacobian(_chain, x).mode == "forward"
    # the arrowhead needs n passes one-sided, 3 with bicoloring
    sj = stiffasd.prepare_jacobian(_arrowhead, np.ones(200))
    assert sj.mode == "bidirectional" and sj.ncolors <= 4


def test_auto_mode_skips_colorings_that_cannot_win(monkeypatch):
    """On the arrowhead, one-sided colorings need n colors (a lower bound read off the densest
    row and column), so auto mode neither computes them (O(n^2) work) nor times a VJP."""
    import stiffasd.coloring as coloring

    calls = []
    real = coloring.color

    def spy(pattern, partition="column", **kw):
        calls.append(partition)
        return real(pattern, partition=partition, **kw)

    monkeypatch.setattr(coloring, "color", spy)

    import stiffasd._jacobian as sjac

    def never(*_):
        raise AssertionError("the VJP cost was measured")

    monkeypatch.setattr(sjac, "_measure_vjp_ratio", never)
    sj = stiffasd.prepare_jacobian(_arrowhead, np.ones(300))
    assert sj.mode == "bidirectional" and sj.ncolors < 10
    assert set(calls) == {"bidirectional"}
    x = np.random.default_rng(1).standard_normal(300)
    np.testing.assert_allclose(sj.csc(x).toarray(), _dense(_arrowhead, x), rtol=1e-12)
    # a pattern where the one-sided colorings can win is still colored both ways
    calls.clear()
    sj = stiffasd.prepare_jacobian(_chain, x)
    assert sj.mode == "forward" and sorted(calls) == ["column", "row"]


def test_brusselator_values_and_passes():
    prob = brusselator_2d(8)
    j = stiffasd.jac(prob.rhs)
    y = prob.y0 + 0.1 * np.random.default_rng(2).standard_normal(prob.n)
    J = j(1.5, y, *prob.args)
    dense = _dense(lambda y, p: prob.rhs(1.5, y, p), y, *prob.args)
    np.testing.assert_allclose(J.toarray(), dense, rtol=1e-12, atol=1e-12 * np.abs(dense).max())
    # 5-point stencil + u-v coupling: 6 nonzeros per row, few colors
    assert j.pattern.nnz == 6 * prob.n
    assert j.coloring.ncolors <= 12  # lower bound 6 (6 nonzeros per row)


def test_custom_vjp_function_gets_reverse_mode():
    @jax.custom_vjp
    def clip_grad(x):
        return jnp.sin(x)

    def fwd(x):
        return jnp.sin(x), x

    def bwd(x, g):
        return (g * jnp.cos(x),)

    clip_grad.defvjp(fwd, bwd)

    def f(x):
        return clip_grad(x) * x[::-1]

    x = np.linspace(0.1, 1.0, 9)
    sj = stiffasd.prepare_jacobian(f, x)
    assert sj.mode == "reverse"
    dense = np.asarray(jax.jacrev(f)(x))
    np.testing.assert_allclose(sj.csc(x).toarray(), dense, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="custom_vjp"):
        stiffasd.prepare_jacobian(f, x, mode="forward")


def test_index_arrays_are_cached_not_copied():
    prob = brusselator_2d(6)
    j = stiffasd.jac(prob.rhs)
    A = j(0.0, prob.y0, *prob.args)
    B = j(1.0, prob.y0 * 1.1, *prob.args)
    assert np.shares_memory(A.indices, B.indices) and np.shares_memory(A.indptr, B.indptr)
    assert len(j._cache._store) == 1  # detection and coloring ran once


def test_seeds_are_not_embedded_as_dense_constants():
    prob = brusselator_2d(10)
    sj = stiffasd.prepare_jacobian(prob.rhs, 0.0, prob.y0, *prob.args, argnums=1, seeds="colors")
    assert sj.seeds == "colors"
    closed = jax.make_jaxpr(sj.data)(jnp.asarray(0.0), jnp.asarray(prob.y0), *prob.args)
    n = prob.n
    biggest = max((np.size(c) for c in closed.consts), default=0)
    # index arrays (nnz, n) may be constants; an n-by-ncolors seed matrix must not be
    assert biggest <= max(sj.pattern.nnz, n)
    assert not any(np.shape(c) in ((sj.ncolors, n), (n, sj.ncolors)) for c in closed.consts)


def test_constant_and_in_graph_seeds_give_identical_values(monkeypatch):
    prob = brusselator_2d(10)
    a = (0.3, prob.y0 * 1.05, *prob.args)
    const = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1, seeds="constant")
    colors = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1, seeds="colors")
    auto = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1)
    assert (const.seeds, colors.seeds, auto.seeds) == ("constant", "colors", "constant")
    ref = np.asarray(colors.data_jit(*a))
    np.testing.assert_array_equal(np.asarray(const.data_jit(*a)), ref)
    np.testing.assert_array_equal(np.asarray(jax.jit(const.data)(*a)), ref)
    dense = np.asarray(jax.jacfwd(prob.rhs, argnums=1)(*a))
    np.testing.assert_allclose(const.csc(*a).toarray(), dense, rtol=1e-12, atol=1e-12)
    # reverse and bidirectional passes with constant seeds
    rev = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1, mode="reverse", seeds="constant")
    np.testing.assert_allclose(rev.csc(*a).toarray(), dense, rtol=1e-12, atol=1e-12)
    # above the size limit, "auto" builds the seeds from the colors
    import stiffasd._jacobian as sjac

    monkeypatch.setattr(sjac, "_CONSTANT_SEEDS_MAX", prob.n)
    assert stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1).seeds == "colors"
    with pytest.raises(ValueError, match="seeds"):
        stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1, seeds="dense")


def test_fast_compile_choice_and_values(monkeypatch):
    import stiffasd._jacobian as sjac

    prob = brusselator_2d(10)
    a = (0.3, prob.y0 * 1.05, *prob.args)
    fast = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1)
    assert fast.fast_compile  # 200 unknowns x 11 colors: below the limit
    monkeypatch.setattr(sjac, "_FAST_COMPILE_MAX", 10)
    opt = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1)
    assert not opt.fast_compile
    forced = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1, fast_compile=True)
    assert forced.fast_compile
    dense = np.asarray(jax.jacfwd(prob.rhs, argnums=1)(*a))
    for sj in (fast, opt, forced):
        np.testing.assert_allclose(sj.csc(*a).toarray(), dense, rtol=1e-13, atol=1e-13)


def test_compile_options_this_xla_refuses_are_dropped(monkeypatch):
    # the legacy-emitter option exists in JAX 0.10's XLA only; any refused option is dropped
    import stiffasd._jacobian as sjac

    bogus = "xla_option_that_does_not_exist"
    monkeypatch.setattr(sjac, "_FAST_COMPILE_OPTIONS", {**sjac._FAST_COMPILE_OPTIONS, bogus: 1})
    monkeypatch.setattr(sjac, "_UNSUPPORTED_COMPILE_OPTIONS", set())
    prob = brusselator_2d(6)
    a = (0.3, prob.y0, *prob.args)
    sj = stiffasd.prepare_jacobian(prob.rhs, *a, argnums=1, fast_compile=True)
    dense = np.asarray(jax.jacfwd(prob.rhs, argnums=1)(*a))
    np.testing.assert_allclose(sj.csc(*a).toarray(), dense, rtol=1e-13, atol=1e-13)
    assert bogus in sjac._UNSUPPORTED_COMPILE_OPTIONS
    assert bogus not in sj._compile_options


def test_preparation_traces_the_function_once():
    prob = brusselator_2d(8)
    traces = []

    def rhs(t, y, *p):
        traces.append(1)  # runs once per trace, never per evaluation
        return prob.rhs(t, y, *p)

    stiffasd.prepare_jacobian(rhs, 0.0, prob.y0, *prob.args, argnums=1, mode="forward")
    assert len(traces) == 1  # output shape, pass directions and detection share one jaxpr
    j = stiffasd.jac(rhs, mode="forward")
    j(0.0, prob.y0, *prob.args)
    j(0.5, prob.y0, *prob.args)
    assert len(traces) == 1 + 2  # + the compiled passes, once


def test_generic_jacobian_formats():
    x = np.random.default_rng(3).standard_normal(12)
    dense = _dense(_chain, x)
    Js = stiffasd.jacobian(_chain)(x)
    assert sp.issparse(Js)
    np.testing.assert_allclose(Js.toarray(), dense, rtol=1e-12)
    Jb = jax.jit(stiffasd.jacobian(_chain, format="bcoo"))(x)
    np.testing.assert_allclose(np.asarray(Jb.todense()), dense, rtol=1e-12)
    with pytest.raises(ValueError, match="format"):
        stiffasd.jacobian(_chain, format="dense")


def test_data_is_jittable_and_vmappable():
    sj = stiffasd.prepare_jacobian(_chain, np.ones(10))
    xs = np.random.default_rng(4).standard_normal((3, 10))
    batched = jax.jit(jax.vmap(sj.data))(xs)
    for k in range(3):
        np.testing.assert_allclose(np.asarray(batched[k]), np.asarray(sj.data(xs[k])), rtol=1e-14)


def test_chunked_evaluation_matches():
    x = np.random.default_rng(5).standard_normal(40)
    full = stiffasd.prepare_jacobian(_chain, x, mode="forward").csc(x).toarray()
    chunked = stiffasd.prepare_jacobian(_chain, x, mode="forward", chunk_size=1).csc(x).toarray()
    np.testing.assert_array_equal(full, chunked)


def test_input_errors_name_the_argument():
    x = np.ones(4)
    with pytest.raises(ValueError, match=r"argnums must be the index of one argument"):
        stiffasd.prepare_jacobian(_chain, x, argnums=3)
    with pytest.raises(TypeError, match=r"floating-point array.*astype\(float\)"):
        stiffasd.prepare_jacobian(_chain, np.arange(4))
    with pytest.raises(TypeError, match="f must be callable"):
        stiffasd.prepare_jacobian("not a function", x)
    with pytest.raises(stiffasd.ShapeError, match="single array"):
        stiffasd.prepare_jacobian(lambda x: (x, x), x)


@pytest.mark.parametrize("seeds", ["constant", "colors"])
@pytest.mark.parametrize("structure", ["nonsymmetric", "symmetric"])
def test_one_field_stencil_values_match_dense(seeds, structure):
    # A single field whose passes end in elementwise operations (3D Allen-Cahn, jnp.pad
    # boundaries): XLA fuses the decompression gather into the passes and recomputes each
    # nonzero at its gathered index; values, gradients and vmap must still be exact.
    from stiffasd.problems import allen_cahn_3d

    prob = allen_cahn_3d(N=5)
    t, p = 0.0, jnp.asarray(prob.args[0])
    sj = stiffasd.prepare_jacobian(
        prob.rhs, t, prob.y0, p, argnums=1, seeds=seeds, structure=structure
    )
    dense_jac = jax.jit(jax.jacfwd(lambda y: prob.rhs(t, y, p)))
    rng = np.random.default_rng(7)
    for _ in range(2):
        y = jnp.asarray(prob.y0 + 0.3 * rng.standard_normal(prob.n))
        dense = np.asarray(dense_jac(y))
        np.testing.assert_allclose(
            sj.csc(t, y, p).toarray(), dense, rtol=1e-13, atol=1e-13 * np.abs(dense).max()
        )
    # differentiable and batchable: d/dy sum(J(y) values) against dense AD
    P = sj.pattern.to_dense()
    g = jax.jit(jax.grad(lambda y: jnp.sum(sj.data(t, y, p))))(y)
    g_ref = jax.jit(jax.grad(lambda y: jnp.sum(dense_jac(y) * P)))(y)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-12, atol=1e-9)
    ys = jnp.stack([y, 2.0 * y])
    batched = jax.jit(jax.vmap(lambda y: sj.data(t, y, p)))(ys)
    np.testing.assert_allclose(np.asarray(batched[1]), np.asarray(sj.data(t, ys[1], p)))
