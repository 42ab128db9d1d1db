"""stiffasd.jac with scipy's solve_ivp, and every error a user can hit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp

import stiffasd
from stiffasd.problems import brusselator_2d


def _dense_jac(prob):
    jf = jax.jit(jax.jacfwd(prob.rhs, argnums=1))
    return lambda t, y, *a: np.asarray(jf(t, y, *a))


@pytest.mark.parametrize("method", ["BDF", "Radau"])
def test_solve_ivp_matches_reference(method):
    prob = brusselator_2d(6, t_span=(0.0, 1.5))
    fun = prob.numpy_rhs()
    ref = solve_ivp(
        fun,
        prob.t_span,
        prob.y0,
        method="Radau",
        args=prob.args,
        rtol=1e-10,
        atol=1e-12,
        jac=_dense_jac(prob),
    )
    j = stiffasd.jac(prob.rhs)
    sol = solve_ivp(
        fun, prob.t_span, prob.y0, method=method, args=prob.args, rtol=1e-7, atol=1e-9, jac=j
    )
    assert sol.success and ref.success
    err = np.max(np.abs(sol.y[:, -1] - ref.y[:, -1]) / np.maximum(np.abs(ref.y[:, -1]), 1))
    assert err < 1e-5
    assert j.calls == sol.njev
    # exact Jacobians: the same work as with the dense exact Jacobian, up to step decisions
    # that rounding-level differences can flip. The dense one goes in as a sparse matrix, so
    # that both solves factor with the same (sparse) LU: scipy's dense and sparse LU round
    # differently, and Radau's step decisions follow (176 against 154 LUs here).
    dense_jac = _dense_jac(prob)
    dense = solve_ivp(
        fun,
        prob.t_span,
        prob.y0,
        method=method,
        args=prob.args,
        rtol=1e-7,
        atol=1e-9,
        jac=lambda t, y, *a: sp.csc_matrix(dense_jac(t, y, *a)),
    )
    assert abs(sol.njev - dense.njev) <= 2 and abs(sol.nlu - dense.nlu) <= 0.1 * dense.nlu + 2
    assert abs(sol.nfev - dense.nfev) <= 0.1 * dense.nfev


def test_sparsity_attribute_feeds_jac_sparsity():
    prob = brusselator_2d(6, t_span=(0.0, 0.5))
    j = stiffasd.jac(prob.rhs)
    with pytest.raises(RuntimeError, match="prepare"):
        j.pattern  # noqa: B018
    j.prepare(0.0, prob.y0, *prob.args)
    S = j.sparsity
    assert S.shape == (prob.n, prob.n) and S.nnz == j.pattern.nnz
    sol = solve_ivp(
        prob.numpy_rhs(), prob.t_span, prob.y0, method="BDF", args=prob.args, jac_sparsity=S
    )
    assert sol.success


def test_user_pattern_is_used_and_verified():
    prob = brusselator_2d(6)
    good = stiffasd.jac(prob.rhs).prepare(0.0, prob.y0, *prob.args).pattern
    j = stiffasd.jac(prob.rhs, sparsity=good.to_scipy(), verify=True)
    j(0.0, prob.y0, *prob.args)
    # drop the coupling entries: verify must catch it and name entries
    diag_only = stiffasd.SparsityPattern.identity(prob.n)
    with pytest.raises(stiffasd.PatternMismatchError, match=r"misses \d+ nonzero"):
        stiffasd.jac(prob.rhs, sparsity=diag_only, verify=True)(0.0, prob.y0, *prob.args)
    with pytest.raises(stiffasd.ShapeError, match="sparsity has shape"):
        stiffasd.jac(prob.rhs, sparsity=np.eye(3))(0.0, prob.y0, *prob.args)


def test_verify_large_uses_random_products():
    n = 5000

    def rhs(t, y):
        return -y + 0.5 * jnp.roll(y, 1)

    with pytest.raises(stiffasd.PatternMismatchError, match="random v"):
        stiffasd.jac(rhs, sparsity=stiffasd.SparsityPattern.identity(n), verify=True)(
            0.0, np.ones(n)
        )
    stiffasd.jac(rhs, verify=True)(0.0, np.ones(n))


def test_float64_without_x64_is_an_error():
    def rhs(t, y):
        return -y

    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(stiffasd.PrecisionError, match="jax_enable_x64"):
            stiffasd.jac(rhs)(0.0, np.ones(4))
    finally:
        jax.config.update("jax_enable_x64", True)


def test_numpy_inside_rhs_is_a_tracing_error():
    def rhs(t, y):
        return np.sin(y)

    with pytest.raises(stiffasd.TracingError, match="jax.numpy"):
        stiffasd.jac(rhs)(0.0, np.ones(4))


def test_inplace_assignment_is_a_tracing_error():
    def rhs(t, y):
        y[0] = 0.0
        return y

    with pytest.raises(stiffasd.TracingError, match=r"\.at\[i\]\.set"):
        stiffasd.jac(rhs)(0.0, np.ones(4))


def test_python_control_flow_is_a_tracing_error():
    def rhs(t, y):
        return -y if y[0] > 0 else y

    with pytest.raises(stiffasd.TracingError, match="jnp.where"):
        stiffasd.jac(rhs)(0.0, np.ones(4))


def test_wrong_output_shape_is_an_error():
    with pytest.raises(stiffasd.ShapeError, match="returned shape"):
        stiffasd.jac(lambda t, y: y[:-1])(0.0, np.ones(4))
    with pytest.raises(stiffasd.ShapeError, match="1D"):
        stiffasd.jac(lambda t, y: y)(0.0, np.ones((2, 2)))


def test_nonfinite_state_is_an_error():
    j = stiffasd.jac(lambda t, y: -y)
    y = np.ones(4)
    j(0.0, y)
    y[2] = np.nan
    with pytest.raises(stiffasd.NonFiniteError, match="NaN"):
        j(0.0, y)


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="format"):
        stiffasd.jac(lambda t, y: y, format="full")
    with pytest.raises(ValueError, match="mode"):
        stiffasd.jac(lambda t, y: y, mode="sideways")(0.0, np.ones(3))
    with pytest.raises(TypeError, match="callable"):
        stiffasd.jac(3)


def _reaction_diffusion_1d(t, y, k):
    lap = jnp.concatenate([y[1:2] - y[:1], y[2:] - 2 * y[1:-1] + y[:-2], y[-2:-1] - y[-1:]])
    return k * lap - y**3 + jnp.sin(t)


def test_lsoda_banded_format():
    n = 200
    y0 = np.linspace(0.0, 1.0, n)
    j = stiffasd.jac(_reaction_diffusion_1d, format="banded")
    j.prepare(0.0, y0, 2000.0)
    lband, uband = j.band
    assert (lband, uband) == (1, 1)
    packed = j(0.3, y0, 50.0)
    assert packed.shape == (lband + uband + 1, n)
    dense = np.asarray(jax.jacfwd(_reaction_diffusion_1d, argnums=1)(0.3, y0, 50.0))
    for d in range(-lband, uband + 1):  # packed[uband + i - j, j] = J[i, j]
        np.testing.assert_allclose(
            packed[uband - d, max(d, 0) : n + min(d, 0)], np.diagonal(dense, d), rtol=1e-13
        )
    fun = jax.jit(_reaction_diffusion_1d)
    sol = solve_ivp(
        fun,
        (0, 2),
        y0,
        method="LSODA",
        args=(50.0,),
        jac=j,
        lband=lband,
        uband=uband,
        rtol=1e-8,
        atol=1e-10,
    )
    ref = solve_ivp(
        fun,
        (0, 2),
        y0,
        method="Radau",
        args=(50.0,),
        rtol=1e-10,
        atol=1e-12,
        jac=lambda t, y, k: np.asarray(jax.jacfwd(fun, argnums=1)(t, y, k)),
    )
    assert sol.success
    np.testing.assert_allclose(sol.y[:, -1], ref.y[:, -1], rtol=1e-5, atol=1e-7)


def test_banded_format_refuses_wide_bands():
    def rhs(t, y):
        return -y + jnp.roll(y, 100)

    with pytest.raises(stiffasd.BandwidthError, match="too wide"):
        stiffasd.jac(rhs, format="banded")(0.0, np.ones(300))


# ------------------------------------------------------------------ LSODA, ode, odeint
def _rober(t, y):
    """Robertson's kinetics (Hairer & Wanner, Solving ODEs II, IV.10)."""
    r1, r2, r3 = 0.04 * y[0], 1e4 * y[1] * y[2], 3e7 * y[1] ** 2
    return jnp.stack([-r1 + r2, r1 - r2 - r3, r3])


def _hires(t, y):
    """HIRES, eight reactions of plant physiology (Schaefer 1975; Hairer & Wanner IV.10)."""
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    r = 280.0 * y6 * y8
    return jnp.stack(
        [
            -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
            1.71 * y1 - 8.75 * y2,
            -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
            8.32 * y2 + 1.71 * y3 - 1.12 * y4,
            -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
            -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
            r - 1.81 * y7,
            -r + 1.81 * y7,
        ]
    )


STIFF_SMALL = {
    "rober": (_rober, np.array([1.0, 0.0, 0.0]), (0.0, 1e5), 1e-8),
    "hires": (_hires, np.array([1.0, 0, 0, 0, 0, 0, 0, 0.0057]), (0.0, 321.8122), 1e-10),
}


@pytest.mark.parametrize("name", sorted(STIFF_SMALL))
def test_lsoda_takes_the_default_jacobian(name):
    """solve_ivp(method="LSODA", jac=stiffasd.jac(rhs)) works as is: LSODA gets a dense array
    (it takes no sparse matrices), about the run of the dense exact Jacobian (rounding-level
    differences of the values flip step decisions), less work than its own finite
    differences, and the answer of a tight reference."""
    rhs, y0, t_span, atol = STIFF_SMALL[name]
    fun = jax.jit(rhs)
    jf = jax.jit(jax.jacfwd(rhs, argnums=1))
    j = stiffasd.jac(rhs)
    kw = dict(rtol=1e-6, atol=atol)
    sol = solve_ivp(fun, t_span, y0, method="LSODA", jac=j, **kw)
    dense = solve_ivp(fun, t_span, y0, method="LSODA", jac=lambda t, y: np.asarray(jf(t, y)), **kw)
    fd = solve_ivp(fun, t_span, y0, method="LSODA", **kw)
    ref = solve_ivp(
        fun, t_span, y0, method="Radau", rtol=1e-11, atol=1e-3 * atol, jac=lambda t, y: jf(t, y)
    )
    assert sol.success and ref.success
    assert sol.njev > 0 and j.calls == sol.njev  # LSODA went stiff and used it
    assert abs(sol.nfev - dense.nfev) <= 0.1 * dense.nfev
    assert abs(sol.njev - dense.njev) <= 0.1 * dense.njev + 2
    assert sol.nfev < fd.nfev
    err = np.abs(sol.y[:, -1] - ref.y[:, -1]) / (1e-6 * np.abs(ref.y[:, -1]) + atol)
    assert err.max() < 20, err


def test_lsoda_banded_and_other_odepack_callers():
    """Given lband/uband, LSODA gets its packed band (from the default format too); a band
    narrower than the pattern is a clear error; scipy.integrate.ode (vode) and odeint
    (tfirst=True) get dense arrays, and odeint without tfirst says what to do."""
    from scipy.integrate import ode, odeint

    n = 60
    y0 = np.linspace(0.0, 1.0, n)
    fun = jax.jit(_reaction_diffusion_1d)
    j = stiffasd.jac(_reaction_diffusion_1d)
    j.prepare(0.0, y0, 2000.0)
    lband, uband = j.band
    kw = dict(args=(2000.0,), rtol=1e-8, atol=1e-10)  # stiff: LSODA switches to BDF
    ref = solve_ivp(fun, (0, 2), y0, method="LSODA", jac=stiffasd.jac(_reaction_diffusion_1d), **kw)
    for extra in (dict(lband=lband, uband=uband), dict(lband=2, uband=3)):  # wider is fine
        sol = solve_ivp(fun, (0, 2), y0, method="LSODA", jac=j, **extra, **kw)
        assert sol.success and sol.njev > 0
        np.testing.assert_allclose(sol.y[:, -1], ref.y[:, -1], rtol=1e-6, atol=1e-8)
    with pytest.raises(stiffasd.BandwidthError, match=r"lband=1, uband=0.*jac\.band"):
        solve_ivp(fun, (0, 2), y0, method="LSODA", jac=j, lband=1, uband=0, **kw)

    y_ode = odeint(fun, y0, [0.0, 2.0], args=(2000.0,), Dfun=j, tfirst=True, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(y_ode[-1], ref.y[:, -1], rtol=1e-6, atol=1e-8)
    with pytest.raises(TypeError, match="tfirst=True"):
        odeint(lambda y, t, k: fun(t, y, k), y0, [0.0, 2.0], args=(2000.0,), Dfun=j)

    r = ode(fun, j).set_integrator("vode", method="bdf", with_jacobian=True, rtol=1e-8, atol=1e-10)
    r.set_initial_value(y0, 0.0).set_f_params(2000.0).set_jac_params(2000.0)
    np.testing.assert_allclose(r.integrate(2.0), ref.y[:, -1], rtol=1e-6, atol=1e-8)

    # format="dense" for any other caller; the default stays sparse for BDF/Radau
    d = stiffasd.jac(_reaction_diffusion_1d, format="dense")(0.3, y0, 50.0)
    dense = np.asarray(jax.jacfwd(_reaction_diffusion_1d, argnums=1)(0.3, y0, 50.0))
    assert isinstance(d, np.ndarray) and d.shape == (n, n)
    np.testing.assert_array_equal(d, dense)
    assert sp.issparse(j(0.3, y0, 50.0))


def test_tutorial_prints_what_its_comments_say(capsys):
    """The getting-started page's first example runs, and `print(jac)` prints what the comment
    next to it says."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "tutorial.md").read_text()
    code = re.search(r"## A stiff PDE with solve_ivp.*?```python\n(.*?)```", page, re.S).group(1)
    expected = re.search(r"^print\(jac\)\n# (.*)$", code, re.M).group(1)
    exec(compile(code, "tutorial.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == expected
