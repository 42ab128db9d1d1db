"""Pytree states (dicts, tuples of fields): stiffasd.jacobian, prepare_jacobian and stiffasd.jac
differentiate the raveled function (jax.flatten_util.ravel_pytree), checked against dense
jax.jacfwd of that raveled function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import stiffasd


def _rhs(t, y, k):
    """Two fields of different shapes: a 2D field with a 5-point stencil and a 1D reservoir
    per column, coupled both ways."""
    u, v = y["u"], y["v"]
    w = jnp.pad(u, 1, mode="edge")
    lap = w[2:, 1:-1] + w[:-2, 1:-1] + w[1:-1, 2:] + w[1:-1, :-2] - 4.0 * u
    du = k * lap - u**3 + v[None, :] * jnp.sin(t)
    dv = -v + jnp.sum(u, axis=0) ** 2 / u.shape[0]
    return {"u": du, "v": dv}


def _state(seed=0):
    rng = np.random.default_rng(seed)
    return {"u": rng.standard_normal((5, 4)), "v": rng.standard_normal(4)}


def _dense_raveled(f, y, *rest, argnums=0):
    """Dense jax.jacfwd of ``f`` with argument ``argnums`` and output raveled."""
    yflat, unravel = ravel_pytree(y)

    def flat(x):
        a = list(rest)
        a.insert(argnums, unravel(x))
        return ravel_pytree(f(*a))[0]

    return np.asarray(jax.jacfwd(flat)(yflat))


def test_jacobian_of_a_dict_state():
    y = _state()
    f = lambda y, t, k: _rhs(t, y, k)  # noqa: E731
    for fmt in ("scipy", "bcoo", "data"):
        out = stiffasd.jacobian(f, format=fmt)(y, 0.7, 3.0)
        dense = _dense_raveled(f, y, 0.7, 3.0)
        if fmt == "scipy":
            J = out.toarray()
        elif fmt == "bcoo":
            J = np.asarray(out.todense())
        else:
            sj = stiffasd.prepare_jacobian(f, y, 0.7, 3.0)
            J = sj.csc(y, 0.7, 3.0).toarray()
            np.testing.assert_allclose(np.asarray(out), sj.csc(y, 0.7, 3.0).data, rtol=1e-14)
        assert J.shape == (24, 24)
        np.testing.assert_allclose(J, dense, rtol=1e-13, atol=1e-13)
    # the pattern is exact: the raveled detection equals jacobian_sparsity on the pytree
    sj = stiffasd.prepare_jacobian(f, y, 0.7, 3.0, verify=True)
    assert sj.pattern == stiffasd.jacobian_sparsity(f, y, 0.7, 3.0)
    # a new value of the same structure reuses the preparation; inside jit too
    y2 = _state(1)
    np.testing.assert_allclose(
        sj.csc(y2, 0.2, 3.0).toarray(), _dense_raveled(f, y2, 0.2, 3.0), rtol=1e-13, atol=1e-13
    )
    data = jax.jit(lambda y: sj.data(y, 0.2, 3.0))(y2)
    np.testing.assert_allclose(np.asarray(data), sj.csc(y2, 0.2, 3.0).data, rtol=1e-13)


def test_tuple_of_fields_and_array_output():
    """A tuple of differently shaped arrays, an array output; a list of numbers stays one
    array as before."""

    def f(y):
        a, b = y
        return jnp.concatenate([a[1:] * a[:-1], b.sum(axis=1) * a[:3]])

    y = (np.linspace(0.1, 1.0, 6), np.arange(6.0).reshape(3, 2))
    J = stiffasd.jacobian(f)(y).toarray()
    np.testing.assert_allclose(J, _dense_raveled(f, y), rtol=1e-13, atol=1e-13)
    Jl = stiffasd.jacobian(lambda x: x[1:] * x[:-1])([0.5, 1.0, 2.0]).toarray()
    np.testing.assert_allclose(Jl, [[1.0, 0.5, 0.0], [0.0, 2.0, 1.0]])


def test_ode_jacobian_of_a_dict_state():
    y = _state()
    j = stiffasd.jac(_rhs)
    J = j(0.7, y, 3.0)
    np.testing.assert_allclose(
        J.toarray(), _dense_raveled(_rhs, y, 0.7, 3.0, argnums=1), atol=1e-13
    )
    assert j.pattern.shape == (24, 24) and j.calls == 1
    with pytest.raises(stiffasd.ShapeError, match="returned 4 values for a state of 24"):
        stiffasd.jac(lambda t, y: y["v"])(0.0, y)


def test_pytree_leaf_errors_name_the_leaf():
    y = {"u": np.ones(3), "n": np.arange(3)}
    with pytest.raises(TypeError, match=r"args\[0\]\['n'\].*int"):
        stiffasd.jacobian(lambda y: y["u"] * y["n"])(y)
    with pytest.raises(TypeError, match=r"y\['n'\]|args\[1\]\['n'\]"):
        stiffasd.jac(lambda t, y: {"u": y["u"], "n": y["u"]})(0.0, y)
