"""Every rule: soundness (pattern ⊇ dense AD nonzeros at random points) and exactness where the
global pattern allows it. A registry test fails if a registered primitive is never exercised."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import pytest
from detect_helpers import check, primitives_in

import stiffasd
from stiffasd.detect import registered_primitives

lax = jax.lax
C5 = jnp.array([0.0, 1.0, 2.0, 0.0, 3.0])
SPARSE_M = jnp.array(
    [[2.0, -1, 0, 0, 0], [-1, 2, -1, 0, 0], [0, -1, 2, -1, 0], [0, 0, -1, 2, -1], [0, 0, 0, -1, 2]]
)
K3 = jnp.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]


def _ste_jvp():
    @jax.custom_jvp
    def ste(x):
        return jnp.round(x)

    ste.defjvp(lambda p, t: (ste(p[0]), t[0]))
    return ste


def _ste_vjp():
    @jax.custom_vjp
    def ste(x):
        return jnp.round(x)

    ste.defvjp(lambda x: (ste(x), None), lambda r, ct: (ct,))
    return ste


def _jvp_coupled():
    # The JVP rule couples neighbours although the primal is elementwise: detection must follow
    # the rule, not the primal code.
    @jax.custom_jvp
    def g(x):
        return jnp.sin(x)

    g.defjvp(lambda p, t: (g(p[0]), jnp.cos(p[0]) * t[0] + jnp.roll(t[0], 1)))
    return g


def _vjp_coupled():
    @jax.custom_vjp
    def g(x):
        return x * 2.0

    g.defvjp(lambda x: (g(x), x), lambda r, ct: (ct * r + jnp.roll(ct, -1),))
    return g


STE_JVP, STE_VJP, JVP_C, VJP_C = _ste_jvp(), _ste_vjp(), _jvp_coupled(), _vjp_coupled()

# (id, f, input shape, domain, exact, jacobian mode)
CASES = [
    # -- elementwise unary
    ("neg", lambda x: -x, (5,), "real", True, "fwd"),
    ("sin", jnp.sin, (5,), "real", True, "fwd"),
    ("cos", jnp.cos, (5,), "real", True, "fwd"),
    ("tan", jnp.tan, (5,), "unit", True, "fwd"),
    ("asin", jnp.arcsin, (5,), "unit", True, "fwd"),
    ("acos", jnp.arccos, (5,), "unit", True, "fwd"),
    ("atan", jnp.arctan, (5,), "real", True, "fwd"),
    ("sinh", jnp.sinh, (5,), "real", True, "fwd"),
    ("cosh", jnp.cosh, (5,), "real", True, "fwd"),
    ("tanh", jnp.tanh, (5,), "real", True, "fwd"),
    ("asinh", jnp.arcsinh, (5,), "real", True, "fwd"),
    ("acosh", jnp.arccosh, (5,), "gt1", True, "fwd"),
    ("atanh", jnp.arctanh, (5,), "unit", True, "fwd"),
    ("exp", jnp.exp, (5,), "real", True, "fwd"),
    ("exp2", jnp.exp2, (5,), "real", True, "fwd"),
    ("log", jnp.log, (5,), "pos", True, "fwd"),
    ("log1p", jnp.log1p, (5,), "pos", True, "fwd"),
    ("expm1", jnp.expm1, (5,), "real", True, "fwd"),
    ("sqrt", jnp.sqrt, (5,), "pos", True, "fwd"),
    ("rsqrt", lax.rsqrt, (5,), "pos", True, "fwd"),
    ("cbrt", jnp.cbrt, (5,), "pos", True, "fwd"),
    ("logistic", jax.nn.sigmoid, (5,), "real", True, "fwd"),
    ("erf", jss.erf, (5,), "real", True, "fwd"),
    ("erfc", jss.erfc, (5,), "real", True, "fwd"),
    ("erf_inv", jss.erfinv, (5,), "unit", True, "fwd"),
    ("lgamma", jss.gammaln, (5,), "pos", True, "fwd"),
    ("digamma", jss.digamma, (5,), "pos", True, "fwd"),
    ("polygamma", lambda x: jss.polygamma(1, x), (5,), "pos", True, "fwd"),
    ("zeta", lambda x: jss.zeta(x + 1.5, 2.0), (5,), "pos", True, "fwd"),
    ("igamma", lambda x: jss.gammainc(2.0, x), (5,), "pos", True, "fwd"),
    ("igammac", lambda x: jss.gammaincc(2.0, x), (5,), "pos", True, "fwd"),
    ("betainc", lambda x: jss.betainc(2.0, 3.0, x), (5,), "prob", True, "fwd"),
    ("bessel_i0e", jss.i0e, (5,), "real", True, "fwd"),
    ("bessel_i1e", jss.i1e, (5,), "real", True, "fwd"),
    ("abs", jnp.abs, (5,), "real", True, "fwd"),
    ("square", jnp.square, (5,), "real", True, "fwd"),
    ("integer_pow", lambda x: x**3 + x**0, (5,), "real", True, "fwd"),
    (
        "sign_floor_ceil_round",
        lambda x: jnp.sign(x) + jnp.floor(x) + jnp.ceil(x) + jnp.round(x) + x,
        (5,),
        "real",
        True,
        "fwd",
    ),
    ("is_finite", lambda x: jnp.where(jnp.isfinite(x), x, 0.0), (5,), "real", True, "fwd"),
    ("stop_gradient", lambda x: lax.stop_gradient(x) * 2 + x[::-1], (5,), "real", True, "fwd"),
    ("reduce_precision", lambda x: lax.reduce_precision(x, 8, 23), (5,), "real", True, "fwd"),
    ("copy", lambda x: jnp.array(x, copy=True) * 2, (5,), "real", True, "fwd"),
    ("optimization_barrier", lambda x: lax.optimization_barrier(x) * 2, (5,), "real", True, "fwd"),
    (
        "convert",
        lambda x: x.astype(jnp.float32).astype(jnp.float64) + x.astype(jnp.int32),
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "complex_parts",
        lambda x: jnp.real(jnp.exp(1j * x) * (x + 1j)) + jnp.imag(jnp.conj(x + 2j * x[::-1])),
        (5,),
        "real",
        True,
        "fwd",
    ),
    ("complex_abs", lambda x: jnp.abs(lax.complex(x, x[::-1])), (4,), "real", True, "fwd"),
    # -- binary / n-ary with broadcasting
    (
        "add_sub_bcast",
        lambda x: x.reshape(2, 3) * 2.0 + x[:3] - x[3:].sum(),
        (6,),
        "real",
        True,
        "fwd",
    ),
    ("mul_const_zero", lambda x: x * C5 + x[::-1] * x, (5,), "real", True, "fwd"),
    ("div", lambda x: x / (x[::-1] + 3.0) + C5 / (x + 3.0), (5,), "pos", True, "fwd"),
    ("pow", lambda x: jnp.power(x, x[::-1]), (5,), "pos", True, "fwd"),
    ("atan2", lambda x: jnp.arctan2(x, x[::-1]), (6,), "pos", True, "fwd"),
    ("rem", lambda x: jnp.fmod(x * 3, x[::-1] + 0.1), (5,), "pos", True, "fwd"),
    (
        "max_min",
        lambda x: jnp.maximum(x, x[::-1]) + jnp.minimum(x, 0.5),
        (5,),
        "real",
        False,
        "fwd",
    ),
    ("clamp", lambda x: jnp.clip(x, -0.5, x[::-1]), (6,), "real", False, "fwd"),
    (
        "where_unknown_pred",
        lambda x: jnp.where(x > 0, x**2, jnp.sin(x[::-1])),
        (6,),
        "real",
        False,
        "fwd",
    ),
    (
        "where_const_pred",
        lambda x: jnp.where(jnp.arange(6) % 2 == 0, x, x[::-1]),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "select_n_3",
        lambda x: lax.select_n(jnp.array([0, 1, 2, 0]), x[:4], x[4:8], x[8:]),
        (12,),
        "real",
        True,
        "fwd",
    ),
    (
        "comparisons",
        lambda x: (x > 0).astype(float) * x + (x == x[::-1]) * 1.0,
        (5,),
        "pos",
        True,
        "fwd",
    ),
    (
        "add_any",
        lambda x: jax.grad(lambda y: (y * y).sum() + (y * jnp.sin(y)).sum())(x),
        (5,),
        "real",
        True,
        "fwd",
    ),
    # -- data movement
    (
        "reshape_transpose",
        lambda x: x.reshape(2, 3).T.ravel() * jnp.arange(6.0),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "squeeze_expand",
        lambda x: jnp.expand_dims(jnp.squeeze(x.reshape(1, 6)), 0)[0, 1:],
        (6,),
        "real",
        True,
        "fwd",
    ),
    ("rev", lambda x: jnp.flip(x.reshape(2, 3), (0, 1)), (6,), "real", True, "fwd"),
    ("slice_strided", lambda x: x[1::2] * x[:-1:2], (8,), "real", True, "fwd"),
    (
        "concatenate",
        lambda x: jnp.concatenate([x[2:], x[:2] ** 2, jnp.ones(2)]),
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "pad",
        lambda x: jnp.pad(x, (2, 1)) + jnp.pad(x, (1, 2), mode="edge"),
        (5,),
        "real",
        True,
        "fwd",
    ),
    ("pad_interior_negative", lambda x: lax.pad(x, 0.0, [(-1, 2, 1)]), (5,), "real", True, "fwd"),
    (
        "broadcast_in_dim",
        lambda x: jnp.broadcast_to(x[:3], (2, 3)) * x[3:, None],
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "roll",
        lambda x: jnp.roll(x.reshape(3, 3), (1, -1), (0, 1)) - x.reshape(3, 3),
        (9,),
        "real",
        True,
        "fwd",
    ),
    (
        "dynamic_slice_const",
        lambda x: lax.dynamic_slice(x, (jnp.array(2),), (3,)),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "dynamic_slice_clamped",
        lambda x: lax.dynamic_slice(x, (jnp.array(5),), (3,)),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "dynamic_slice_data",
        lambda x: lax.dynamic_slice(x, ((x[0] > 0).astype(int),), (3,)),
        (6,),
        "real",
        False,
        "fwd",
    ),
    (
        "dynamic_update_slice",
        lambda x: lax.dynamic_update_slice(x, x[:2] ** 2, (jnp.array(3),)),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "gather_const",
        lambda x: x[jnp.array([3, 0, 0, 5])] * x[jnp.array([[1], [2]])].ravel().sum(),
        (6,),
        "real",
        True,
        "fwd",
    ),
    ("gather_2d", lambda x: x.reshape(3, 4)[jnp.array([2, 0]), 1:3], (12,), "real", True, "fwd"),
    (
        "gather_fill",
        lambda x: jnp.take(x, jnp.array([1, 9, -9]), mode="fill", fill_value=0.0),
        (6,),
        "real",
        True,
        "fwd",
    ),
    ("gather_data_dependent", lambda x: x[jnp.argmax(x)] * x, (5,), "real", False, "fwd"),
    ("split", lambda x: jnp.split(x, 3)[1] * jnp.split(x, 3)[2], (6,), "real", True, "fwd"),
    ("stack", lambda x: jnp.stack([x[:3], x[3:] ** 2]), (6,), "real", True, "fwd"),
    ("tile", lambda x: jnp.tile(x[:2], 3) * x, (6,), "real", True, "fwd"),
    (
        "unstack",
        lambda x: lax.unstack_p.bind(x.reshape(2, 3), axis=0)[1] * x[:3],
        (6,),
        "real",
        True,
        "fwd",
    ),
    ("scatter_set", lambda x: x.at[jnp.array([1, 3])].set(x[4:] ** 2), (6,), "real", True, "fwd"),
    ("scatter_add", lambda x: x.at[jnp.array([1, 1, 3])].add(x[3:]), (6,), "real", True, "fwd"),
    (
        "scatter_sub",
        lambda x: jnp.zeros(6).at[jnp.array([0, 2])].subtract(x[:2]) + 2 * x,
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "scatter_mul",
        lambda x: x.at[jnp.array([0, 2])].multiply(x[4:], unique_indices=True),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "scatter_min_max",
        lambda x: x.at[jnp.array([0, 2])].min(x[4:]) + x.at[jnp.array([1])].max(x[5:]),
        (6,),
        "real",
        False,
        "fwd",
    ),
    (
        "scatter_2d",
        lambda x: jnp.zeros((3, 3)).at[jnp.array([0, 2]), 1].set(x[:2]).at[1, :].add(x[2:5]),
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "scatter_drop",
        lambda x: x.at[jnp.array([1, 10])].set(x[:2] * 3, mode="drop"),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "scatter_data_dependent",
        lambda x: x.at[jnp.argmin(x)].set(0.0) + x.at[jnp.argmax(x)].add(x[0]),
        (5,),
        "real",
        False,
        "fwd",
    ),
    (
        "interp_const_query",
        lambda x: jnp.interp(jnp.array([0.5, 2.5, 4.0]), jnp.arange(6.0), x),
        (6,),
        "real",
        True,
        "fwd",
    ),
    # -- reductions
    ("reduce_sum_axes", lambda x: x.reshape(2, 3, 2).sum(axis=(0, 2)), (12,), "real", True, "fwd"),
    ("reduce_prod", lambda x: x.reshape(2, 3).prod(axis=1), (6,), "real", True, "fwd"),
    (
        "reduce_max_min",
        lambda x: x.reshape(2, 3).max(axis=1) + x.reshape(2, 3).min(axis=1),
        (6,),
        "real",
        False,
        "fwd",
    ),
    ("argmax_argmin", lambda x: x * jnp.argmax(x) + jnp.argmin(x), (5,), "real", True, "fwd"),
    ("cumsum", lambda x: jnp.cumsum(x.reshape(2, 3), axis=1), (6,), "real", True, "fwd"),
    ("cumsum_reverse", lambda x: lax.cumsum(x, reverse=True), (5,), "real", True, "fwd"),
    ("cumprod", lambda x: jnp.cumprod(x), (5,), "pos", True, "fwd"),
    (
        "cummax_cummin",
        lambda x: lax.cummax(x) + lax.cummin(x, reverse=True),
        (5,),
        "real",
        False,
        "fwd",
    ),
    ("cumlogsumexp", lambda x: lax.cumlogsumexp(x), (5,), "real", True, "fwd"),
    (
        "reduce_window_sum",
        lambda x: lax.reduce_window(x.reshape(4, 4), 0.0, lax.add, (2, 3), (1, 1), "SAME").ravel(),
        (16,),
        "real",
        True,
        "fwd",
    ),
    (
        "reduce_window_max",
        lambda x: lax.reduce_window(
            x.reshape(4, 4), -jnp.inf, lax.max, (2, 2), (2, 1), "VALID"
        ).ravel(),
        (16,),
        "real",
        False,
        "fwd",
    ),
    (
        "reduce_window_min",
        lambda x: lax.reduce_window(
            x, jnp.inf, lax.min, (3,), (1,), [(1, 1)], window_dilation=(2,)
        ),
        (8,),
        "real",
        False,
        "fwd",
    ),
    (
        "reduce_window_generic",
        lambda x: lax.reduce_window(
            (x, x**2), (0.0, 0.0), lambda a, b: (a[0] + b[0], a[1] * b[1]), (2,), (1,), "VALID"
        )[1],
        (6,),
        "real",
        False,
        "cols",
    ),
    (
        "avg_pool",
        lambda x: jax.lax.reduce_window(
            x.reshape(1, 6, 1), 0.0, lax.add, (1, 2, 1), (1, 2, 1), "VALID"
        ).ravel(),
        (6,),
        "real",
        True,
        "fwd",
    ),
    ("sort", lambda x: jnp.sort(x.reshape(2, 3), axis=1).ravel(), (6,), "real", False, "fwd"),
    ("argsort", lambda x: x[jnp.argsort(x)], (5,), "real", False, "fwd"),
    ("sort_multi", lambda x: lax.sort((x[:3], x[3:]), num_keys=1)[1], (6,), "real", False, "fwd"),
    ("top_k", lambda x: lax.top_k(x, 2)[0], (5,), "real", False, "fwd"),
    (
        "top_k_axis0",
        lambda x: lax.top_k(x.reshape(3, 2), 2, axis=0)[0].ravel(),
        (6,),
        "real",
        False,
        "fwd",
    ),
    # -- linear
    ("dot_matvec_const_sparse", lambda x: SPARSE_M @ x, (5,), "real", True, "fwd"),
    ("dot_vecmat_const", lambda x: x @ SPARSE_M, (5,), "real", True, "fwd"),
    (
        "dot_both_variable",
        lambda x: x[:6].reshape(2, 3) @ x[6:].reshape(3, 2),
        (12,),
        "real",
        True,
        "fwd",
    ),
    (
        "dot_batched",
        lambda x: jnp.einsum("bij,bj->bi", x[:8].reshape(2, 2, 2), x[8:].reshape(2, 2)),
        (12,),
        "real",
        True,
        "fwd",
    ),
    ("dot_outer", lambda x: jnp.outer(x[:2], x[2:]).ravel(), (5,), "real", True, "fwd"),
    (
        "conv_const_kernel",
        lambda x: lax.conv_general_dilated(x.reshape(1, 1, 4, 4), K3, (1, 1), "SAME").ravel(),
        (16,),
        "real",
        True,
        "fwd",
    ),
    (
        "conv_strided_dilated",
        lambda x: lax.conv_general_dilated(
            x.reshape(1, 2, 5, 1),
            jnp.ones((3, 2, 2, 1)).at[0, 1].set(0.0),
            (2, 1),
            [(1, 1), (0, 0)],
            rhs_dilation=(2, 1),
        ).ravel(),
        (10,),
        "real",
        True,
        "fwd",
    ),
    (
        "conv_variable_kernel",
        lambda x: jnp.convolve(x[:6], x[6:], mode="same"),
        (9,),
        "real",
        False,
        "fwd",
    ),
    (
        "conv_1d_np",
        lambda x: jnp.convolve(x, jnp.array([1.0, -2.0, 1.0]), mode="valid"),
        (7,),
        "real",
        True,
        "fwd",
    ),
    # -- control flow and calls
    (
        "jit_nested",
        lambda x: jax.jit(lambda y: jax.jit(jnp.sin)(y) * y[::-1])(x),
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "remat",
        lambda x: jax.checkpoint(lambda y: jnp.sin(y) * y[::-1])(x),
        (5,),
        "real",
        True,
        "fwd",
    ),
    ("custom_jvp_ste", lambda x: STE_JVP(x), (5,), "real", True, "fwd"),
    ("custom_jvp_coupled", lambda x: JVP_C(x), (5,), "real", True, "fwd"),
    (
        "custom_jvp_relu",
        lambda x: jax.nn.relu(x) + jax.nn.softplus(x[::-1]),
        (5,),
        "real",
        False,
        "fwd",
    ),
    ("custom_vjp_ste", lambda x: STE_VJP(x), (5,), "real", True, "rev"),
    ("custom_vjp_coupled", lambda x: VJP_C(x[::-1]), (5,), "real", True, "rev"),
    (
        "cond_unknown",
        lambda x: lax.cond(x[0] > 0, lambda y: y * 2, lambda y: jnp.roll(y, 1), x),
        (5,),
        "real",
        False,
        "fwd",
    ),
    (
        "cond_const",
        lambda x: lax.cond(True, lambda y: y * 2, lambda y: jnp.roll(y, 1), x),
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "switch",
        lambda x: lax.switch(jnp.array(2), [jnp.sin, jnp.cos, lambda y: y[::-1]], x),
        (5,),
        "real",
        True,
        "fwd",
    ),
    (
        "fori_short",
        lambda x: lax.fori_loop(0, 3, lambda i, z: z + 0.1 * jnp.roll(z, 1), x),
        (8,),
        "real",
        True,
        "fwd",
    ),
    (
        "fori_long",
        lambda x: lax.fori_loop(0, 40, lambda i, z: z + 0.1 * jnp.roll(z, 1), x),
        (64,),
        "real",
        True,
        "fwd",
    ),
    (
        "fori_counter_index",
        lambda x: lax.fori_loop(0, 4, lambda i, z: z.at[i].set(z[i + 1] ** 2), x),
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "fori_long_counter_index",
        lambda x: lax.fori_loop(0, 30, lambda i, z: z.at[i].add(z[i + 1]), x),
        (32,),
        "real",
        False,
        "fwd",
    ),
    (
        "scan_xs",
        lambda x: lax.scan(lambda c, xi: (c * 0.5 + xi, c * xi), 0.0, x)[1],
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "scan_long_xs",
        lambda x: lax.scan(lambda c, xi: (c * 0.5 + xi, c * xi), 0.0, x)[1],
        (40,),
        "real",
        False,
        "fwd",
    ),
    (
        "scan_reverse",
        lambda x: lax.scan(lambda c, xi: (c + xi, c), 0.0, x, reverse=True)[1],
        (30,),
        "real",
        True,
        "fwd",
    ),
    (
        "while_counter",
        lambda x: lax.while_loop(
            lambda c: c[1] < 3, lambda c: (c[0] + jnp.roll(c[0], 1) ** 2, c[1] + 1), (x, 0)
        )[0],
        (6,),
        "real",
        True,
        "fwd",
    ),
    (
        "while_data",
        lambda x: lax.while_loop(
            lambda c: c[0].sum() < 100.0, lambda c: (c[0] * 2 + c[0][::-1], c[1] + 1), (x, 0)
        )[0],
        (6,),
        "pos",
        False,
        "rev_unsupported",
    ),
    (
        "linear_solve",
        lambda x: jnp.linalg.solve(x[:4].reshape(2, 2) + 3 * jnp.eye(2), x[4:]),
        (6,),
        "pos",
        True,
        "fwd",
    ),
    (
        "cholesky",
        lambda x: jnp.linalg.cholesky(x.reshape(2, 2) @ x.reshape(2, 2).T + jnp.eye(2)).ravel(),
        (4,),
        "real",
        False,
        "fwd",
    ),
    ("qr", lambda x: jnp.linalg.qr(x.reshape(3, 2))[1].ravel(), (6,), "real", False, "fwd"),
    (
        "eigh",
        lambda x: jnp.linalg.eigh(x.reshape(2, 2) + x.reshape(2, 2).T)[0],
        (4,),
        "real",
        False,
        "fwd",
    ),
    (
        "svd",
        lambda x: jnp.linalg.svd(x.reshape(3, 2), compute_uv=False),
        (6,),
        "real",
        False,
        "fwd",
    ),
    ("lu_det", lambda x: jnp.linalg.det(x.reshape(2, 2, 2)), (8,), "real", False, "fwd"),
    (
        "triangular_solve",
        lambda x: jax.scipy.linalg.solve_triangular(
            jnp.tril(x[:4].reshape(2, 2)) + 3 * jnp.eye(2), x[4:], lower=True
        ),
        (6,),
        "pos",
        False,
        "fwd",
    ),
    (
        "tridiagonal_solve",
        lambda x: lax.linalg.tridiagonal_solve(
            jnp.array([0.0, 1, 1]), x[:3] + 4, jnp.array([1.0, 1, 0]), x[3:].reshape(3, 1)
        ).ravel(),
        (6,),
        "pos",
        False,
        "fwd",
    ),
    ("fft", lambda x: jnp.real(jnp.fft.fft(x)), (4,), "real", False, "fwd"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule(case):
    name, f, shape, domain, exact, mode = case
    if mode == "rev_unsupported":
        # jacfwd works for while loops (jacrev does not): forward mode is the reference.
        mode = "fwd"
    check(f, shape, domain, exact=exact, mode=mode)


def test_every_registered_primitive_is_tested():
    covered: set[str] = set()
    for _name, f, shape, *_ in CASES:
        covered |= primitives_in(f, np.ones(shape))
    covered |= TESTED_ELSEWHERE
    untested = sorted(p.name for p in registered_primitives() if p.name not in covered)
    assert not untested, f"registered primitives without a test: {untested}"


# Exercised by dedicated tests in other files of tests/detect (listed by test name).
TESTED_ELSEWHERE = {
    "closed_call",  # test_special.py::test_closed_call_and_eval_jaxpr
    "eval_jaxpr",  # same
    "igamma_grad_a",  # test_special.py::test_elementwise_without_second_derivative
    "random_gamma_grad",  # same
    "bcoo_dot_general",  # test_special.py::test_bcoo_dot_general
    # same test (BCSR operand); registered once jax.experimental.sparse is imported, which
    # depends on which tests ran before in the process
    "bcsr_dot_general",
    "call_hi_primitive",  # test_special.py::test_hi_primitive
    # registered once equinox is imported
    "select_if_vmap",  # test_special.py::test_equinox_select_if_vmap
    "nondifferentiable_backward",  # same
}


def test_reentrant_custom_jvp_rule_terminates():
    """A JVP rule that calls the function itself (implicit-function wrappers do) is traced
    again at every level; detection must see the re-entry and stop, still exact."""

    @jax.custom_jvp
    def g(x):
        return jnp.sin(x) * jnp.roll(x, 1)

    @g.defjvp
    def g_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = g(x)  # re-enters the custom_jvp with primal values only
        return y, jnp.cos(x) * jnp.roll(x, 1) * t + jnp.sin(x) * jnp.roll(t, 1)

    x = np.linspace(0.1, 1.0, 7)
    pattern = stiffasd.jacobian_sparsity(g, x)
    dense = np.asarray(jax.jacfwd(g)(x)) != 0
    assert pattern == stiffasd.SparsityPattern.from_dense(dense)


def test_custom_jvp_applied_to_its_own_tangent_keeps_the_body_pattern():
    """A JVP rule that applies the function itself to the tangent (optimistix's `_asarray`,
    which wraps every root-find residual): inside the JVP program that call runs its primal
    body, so the pattern is the body's, not dense."""

    @jax.custom_jvp
    def g(x):
        return 3.0 * jnp.roll(x, 1)

    @g.defjvp
    def g_jvp(primals, tangents):
        return g(primals[0]), g(tangents[0])

    x = np.linspace(0.1, 1.0, 7)
    pattern = stiffasd.jacobian_sparsity(lambda x: g(jnp.sin(x)) + x, x)
    dense = np.asarray(jax.jacfwd(lambda x: g(jnp.sin(x)) + x)(x)) != 0
    assert pattern == stiffasd.SparsityPattern.from_dense(dense)
    assert pattern.nnz == 14
