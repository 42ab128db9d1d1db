"""Standard stiff test problems written in plain jax.numpy, the way users write them.

Each constructor returns an [`OdeProblem`][stiffasd.problems.OdeProblem]: the right-hand side
``rhs(t, y, p)``, the initial state, the time span and the parameters, ready for
``solve_ivp(problem.rhs, problem.t_span, problem.y0, args=problem.args, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "OdeProblem",
    "PROBLEMS",
    "allen_cahn_3d",
    "advection_diffusion_reaction_2d",
    "brusselator_2d",
    "fitzhugh_nagumo_2d",
    "flame_1d",
    "gray_scott_2d",
    "reservoir_exchange",
    "robertson_diffusion_2d",
]


@dataclass(frozen=True)
class OdeProblem:
    """A stiff initial value problem ``y' = rhs(t, y, *args)``, ``y(t_span[0]) = y0``."""

    name: str
    rhs: Callable[..., Any]
    y0: np.ndarray
    t_span: tuple[float, float]
    args: tuple = ()
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.y0.size)

    def numpy_rhs(self) -> Callable[..., np.ndarray]:
        """The right-hand side jit-compiled once, returning NumPy arrays (what scipy wants)."""
        f = jax.jit(self.rhs)

        def fun(t, y, *args):
            return np.asarray(f(t, y, *args))

        return fun


def _laplacian_periodic(w: jax.Array) -> jax.Array:
    """5-point Laplacian stencil (unscaled) on a periodic grid."""
    return (
        jnp.roll(w, 1, axis=0)
        + jnp.roll(w, -1, axis=0)
        + jnp.roll(w, 1, axis=1)
        + jnp.roll(w, -1, axis=1)
        - 4.0 * w
    )


def brusselator_2d(
    N: int = 32,
    *,
    alpha: float = 10.0,
    A: float = 3.4,
    B: float = 1.0,
    t_span: tuple[float, float] = (0.0, 11.5),
    layout: str = "fields",
) -> OdeProblem:
    """The 2D Brusselator reaction-diffusion system on an ``N``-by-``N`` periodic grid.

    .. math::
        u_t = B + u^2 v - (A + 1) u + \\alpha \\Delta u + f(x, y, t), \\qquad
        v_t = A u - u^2 v + \\alpha \\Delta v

    on :math:`[0, 1]^2` with the 5-point Laplacian (grid spacing :math:`1 / (N - 1)`), the
    diffusion coefficient scaled by the grid (``alpha / dx**2``), and the localized forcing
    :math:`f = 5` inside the disc of radius 0.1 around (0.3, 0.6) for :math:`t \\ge 1.1`.
    Initial state :math:`u = 22 (y (1 - y))^{3/2}`, :math:`v = 27 (x (1 - x))^{3/2}`. The state
    is ``[u.ravel(), v.ravel()]`` (n = 2 N^2) with ``layout="fields"``, or an ``(N, N, 2)``
    array (``[..., 0] = u``, ``[..., 1] = v``) with ``layout="grid"``: grid first, so that the
    state can be split along the grid's first axis over the devices of a mesh (see
    `stiffasd.sharding`). This is the standard stiff PDE benchmark of Hairer & Wanner,
    *Solving ODEs II*, and of the SciML benchmarks.
    """
    if layout not in ("fields", "grid"):
        raise ValueError(f"brusselator_2d: layout must be 'fields' or 'grid', got {layout!r}.")
    xs = np.linspace(0.0, 1.0, N)
    dx = xs[1] - xs[0]
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    disc = ((X - 0.3) ** 2 + (Y - 0.6) ** 2) <= 0.1**2
    u0 = 22.0 * (Y * (1.0 - Y)) ** 1.5
    v0 = 27.0 * (X * (1.0 - X)) ** 1.5
    y0 = np.concatenate([u0.ravel(), v0.ravel()])
    p = np.array([A, B, alpha / dx**2])

    def rates(t, u, v, p):
        a, b, diff = p[0], p[1], p[2]
        forcing = jnp.where(disc & (t >= 1.1), 5.0, 0.0)
        uuv = u * u * v
        du = b + uuv - (a + 1.0) * u + diff * _laplacian_periodic(u) + forcing
        dv = a * u - uuv + diff * _laplacian_periodic(v)
        return du, dv

    if layout == "grid":
        y0 = np.stack([u0, v0], axis=-1)

        def rhs(t, y, p):
            du, dv = rates(t, y[..., 0], y[..., 1], p)
            return jnp.stack([du, dv], axis=-1)

        def fields(y):
            y = np.reshape(y, (N, N, 2))
            return {"u": y[..., 0], "v": y[..., 1]}

    else:

        def rhs(t, y, p):
            du, dv = rates(t, y[: N * N].reshape(N, N), y[N * N :].reshape(N, N), p)
            return jnp.concatenate([du.ravel(), dv.ravel()])

        def fields(y):
            return {"u": np.reshape(y[: N * N], (N, N)), "v": np.reshape(y[N * N :], (N, N))}

    name = f"brusselator_2d(N={N})" if layout == "fields" else f"brusselator_2d(N={N}, grid)"
    return OdeProblem(name, rhs, y0, t_span, (p,), {"N": N, "fields": fields})


def gray_scott_2d(
    N: int = 64,
    *,
    F: float = 0.035,
    k: float = 0.065,
    Du: float = 2e-5,
    Dv: float = 1e-5,
    dx: float = 2.5 / 256,
    t_span: tuple[float, float] = (0.0, 3000.0),
    seed: int = 0,
) -> OdeProblem:
    """Pearson's 2D Gray-Scott reaction-diffusion system on an ``N``-by-``N`` periodic grid.

    .. math::
        u_t = D_u \\Delta u - u v^2 + F (1 - u), \\qquad
        v_t = D_v \\Delta v + u v^2 - (F + k) v

    on a periodic square of side ``N * dx`` (5-point Laplacian; the default spacing is
    Pearson's, 2.5 / 256). The state starts at :math:`u = 1, v = 0`, perturbed in a central
    square (:math:`u = 1/2, v = 1/4`) with 1% noise; with the default ``F, k`` the square
    splits into self-replicating spots over the long time span (thousands of time units),
    which implicit solvers cover in large steps.
    Pearson, "Complex patterns in a simple system", Science 261 (1993). State
    ``[u.ravel(), v.ravel()]`` (n = 2 N^2).
    """
    rng = np.random.default_rng(seed)
    u0 = np.ones((N, N))
    v0 = np.zeros((N, N))
    lo, hi = int(round(N * 0.4)), int(round(N * 0.6))
    u0[lo:hi, lo:hi] = 0.5
    v0[lo:hi, lo:hi] = 0.25
    u0 += 0.01 * rng.standard_normal((N, N))
    v0 += 0.01 * rng.standard_normal((N, N))
    y0 = np.concatenate([u0.ravel(), v0.ravel()])
    p = np.array([F, k, Du / dx**2, Dv / dx**2])

    def rhs(t, y, p):
        f, kk, du_, dv_ = p[0], p[1], p[2], p[3]
        u = y[: N * N].reshape(N, N)
        v = y[N * N :].reshape(N, N)
        uvv = u * v * v
        du = du_ * _laplacian_periodic(u) - uvv + f * (1.0 - u)
        dv = dv_ * _laplacian_periodic(v) + uvv - (f + kk) * v
        return jnp.concatenate([du.ravel(), dv.ravel()])

    def fields(y):
        return {"u": np.reshape(y[: N * N], (N, N)), "v": np.reshape(y[N * N :], (N, N))}

    return OdeProblem(f"gray_scott_2d(N={N})", rhs, y0, t_span, (p,), {"N": N, "fields": fields})


def allen_cahn_3d(
    N: int = 16,
    *,
    eps: float = 0.05,
    radius: float = 0.35,
    boundary: float = -1.0,
    t_span: tuple[float, float] = (0.0, 0.02),
) -> OdeProblem:
    """The 3D Allen-Cahn equation with Dirichlet boundaries, 7-point stencil via ``jnp.pad``.

    .. math::
        u_t = \\Delta u + \\frac{u - u^3}{\\varepsilon^2}

    on the unit cube with ``N`` interior points per direction (spacing ``1 / (N + 1)``) and
    :math:`u = ` ``boundary`` on the faces, imposed by padding the interior values with
    ``jnp.pad(u, 1, constant_values=boundary)`` before the 7-point Laplacian. The initial
    state is a diffuse ball :math:`u_0 = \\tanh((R - r) / (\\sqrt{2}\\varepsilon))` that shrinks
    by mean curvature (it vanishes near :math:`t = R^2 / 4`). The Laplacian makes the system
    stiff (:math:`\\lambda \\approx -12 / h^2`). n = N^3.
    """
    h = 1.0 / (N + 1)
    xs = np.linspace(h, 1.0 - h, N)
    X, Y, Z = np.meshgrid(xs, xs, xs, indexing="ij")
    r = np.sqrt((X - 0.5) ** 2 + (Y - 0.5) ** 2 + (Z - 0.5) ** 2)
    y0 = np.tanh((radius - r) / (np.sqrt(2.0) * eps)).ravel()
    p = np.array([1.0 / h**2, 1.0 / eps**2])

    def rhs(t, y, p):
        inv_h2, inv_eps2 = p[0], p[1]
        u = y.reshape(N, N, N)
        w = jnp.pad(u, 1, constant_values=boundary)
        lap = (
            w[2:, 1:-1, 1:-1]
            + w[:-2, 1:-1, 1:-1]
            + w[1:-1, 2:, 1:-1]
            + w[1:-1, :-2, 1:-1]
            + w[1:-1, 1:-1, 2:]
            + w[1:-1, 1:-1, :-2]
            - 6.0 * u
        )
        return (inv_h2 * lap + inv_eps2 * (u - u**3)).ravel()

    def fields(y):
        u = np.reshape(y, (N, N, N))
        return {"u (mid-plane z = 1/2)": u[:, :, N // 2]}

    return OdeProblem(f"allen_cahn_3d(N={N})", rhs, y0, t_span, (p,), {"N": N, "fields": fields})


def fitzhugh_nagumo_2d(
    N: int = 32,
    *,
    a: float = 2.8e-4,
    b: float = 5e-3,
    tau: float = 0.1,
    k: float = -0.005,
    side: float = 2.0,
    t_span: tuple[float, float] = (0.0, 200.0),
    seed: int = 0,
) -> OdeProblem:
    """FitzHugh-Nagumo reaction-diffusion on an ``N``-by-``N`` grid with zero-flux (Neumann)
    boundaries: Turing patterns growing out of noise.

    .. math::
        u_t = a \\Delta u + u - u^3 - v + k, \\qquad \\tau v_t = b \\Delta v + u - v

    on a square of side ``side`` (cell-centred grid, spacing ``side / N``), the boundary
    imposed by ``jnp.pad(mode="edge")`` before the 5-point Laplacian. The inhibitor ``v``
    diffuses faster than the activator ``u``, so the uniform state breaks into spots and
    stripes; the random initial state (uniform on [0, 1), ``seed``) settles over the default
    span, where implicit solvers take steps of tens of time units. At such steps the Newton
    matrices lose their diagonal dominance (the ``u``-``v`` coupling outweighs the shifted
    diagonal) and partial pivoting swaps rows: the case for which ``ordering="auto"`` of
    `stiffasd.scipy` falls back on COLAMD. FitzHugh, Biophys. J. 1 (1961); Nagumo, Arimoto &
    Yoshizawa, Proc. IRE 50 (1962). State ``[u.ravel(), v.ravel()]`` (n = 2 N^2).
    """
    h = side / N
    y0 = np.random.default_rng(seed).random(2 * N * N)
    p = np.array([a / h**2, b / h**2, tau, k])

    def laplacian(w):
        z = jnp.pad(w, 1, mode="edge")  # zero flux: the ghost cell copies its neighbour
        return z[2:, 1:-1] + z[:-2, 1:-1] + z[1:-1, 2:] + z[1:-1, :-2] - 4.0 * w

    def rhs(t, y, p):
        du_, dv_, tau_, k_ = p[0], p[1], p[2], p[3]
        u = y[: N * N].reshape(N, N)
        v = y[N * N :].reshape(N, N)
        du = du_ * laplacian(u) + u - u**3 - v + k_
        dv = (dv_ * laplacian(v) + u - v) / tau_
        return jnp.concatenate([du.ravel(), dv.ravel()])

    def fields(y):
        return {"u": np.reshape(y[: N * N], (N, N)), "v": np.reshape(y[N * N :], (N, N))}

    return OdeProblem(
        f"fitzhugh_nagumo_2d(N={N})", rhs, y0, t_span, (p,), {"N": N, "fields": fields}
    )


def advection_diffusion_reaction_2d(
    N: int = 48,
    *,
    speed: float = 20.0,
    D: float = 1e-3,
    rate: float = 50.0,
    t_span: tuple[float, float] = (0.0, 0.3),
) -> OdeProblem:
    """Advection-diffusion-reaction in a rotating flow, first-order upwinding via ``jnp.where``.

    .. math::
        u_t + \\mathbf a \\cdot \\nabla u = D \\Delta u + k\\, u^2 (1 - u),
        \\qquad \\mathbf a = s\\,(-(y - 1/2),\\; x - 1/2)

    on the unit square with ``N`` interior points per direction and :math:`u = 0` on the
    boundary (``jnp.pad``). The advective derivative is upwinded: the one-sided difference is
    chosen per cell with ``jnp.where(a > 0, backward, forward)``; the velocity field is a
    constant of the right-hand side, so the detected pattern keeps only the upwind neighbour.
    The autocatalytic (combustion-like, Fisher-KPP) source makes a burning blob that is carried
    around and spreads. n = N^2.
    """
    h = 1.0 / (N + 1)
    xs = np.linspace(h, 1.0 - h, N)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    ax = -speed * (Y - 0.5)
    ay = speed * (X - 0.5)
    y0 = np.exp(-((X - 0.7) ** 2 + (Y - 0.5) ** 2) / 0.01).ravel()
    p = np.array([D / h**2, 1.0 / h, rate])

    def rhs(t, y, p):
        diff, inv_h, k = p[0], p[1], p[2]
        u = y.reshape(N, N)
        w = jnp.pad(u, 1)  # u = 0 on the boundary
        east, west = w[2:, 1:-1], w[:-2, 1:-1]
        north, south = w[1:-1, 2:], w[1:-1, :-2]
        dudx = jnp.where(ax > 0, u - west, east - u)
        dudy = jnp.where(ay > 0, u - south, north - u)
        lap = east + west + north + south - 4.0 * u
        return (-inv_h * (ax * dudx + ay * dudy) + diff * lap + k * u * u * (1.0 - u)).ravel()

    def fields(y):
        return {"u": np.reshape(y, (N, N))}

    return OdeProblem(
        f"advection_diffusion_reaction_2d(N={N})", rhs, y0, t_span, (p,), {"N": N, "fields": fields}
    )


def _robertson_rates(c: jax.Array, k: jax.Array) -> jax.Array:
    """Robertson's three-species kinetics in one cell: ``c`` = concentrations, ``k`` = rates."""
    a, b, cc = c[0], c[1], c[2]
    r1 = k[0] * a
    r2 = k[1] * b * cc
    r3 = k[2] * b * b
    return jnp.stack([-r1 + r2, r1 - r2 - r3, r3])


def robertson_diffusion_2d(
    N: int = 16, *, D: float = 0.1, t_span: tuple[float, float] = (0.0, 40.0)
) -> OdeProblem:
    """Robertson's stiff chemical kinetics in every cell of an ``N``-by-``N`` grid, coupled by
    diffusion (zero-flux boundaries).

    Each cell holds three species with the classic rates
    :math:`A \\to B` (:math:`k_1 = 0.04`, scaled by a smooth "temperature" factor varying
    across the grid), :math:`B + C \\to A + C` (:math:`10^4`), :math:`2B \\to B + C`
    (:math:`3 \\cdot 10^7`): eigenvalues spread over ten orders of magnitude. The per-cell
    rates are written once for a single cell and mapped over the grid with ``jax.vmap``; all
    species diffuse with a 5-point Laplacian whose zero-flux boundary is
    ``jnp.pad(mode="edge")``. Robertson (1966); Hairer & Wanner, *Solving ODEs II*, IV.10.
    The state is cell-major (``c.reshape(N, N, 3)``), so each cell's 3-by-3 block sits on the
    diagonal. n = 3 N^2.
    """
    h = 1.0 / N
    xs = (np.arange(N) + 0.5) * h
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    temperature = 1.0 + 2.0 * np.exp(-((X - 0.3) ** 2 + (Y - 0.3) ** 2) / 0.05)
    k = np.stack([0.04 * temperature, np.full_like(X, 1e4), np.full_like(X, 3e7)], axis=-1)
    c0 = np.zeros((N, N, 3))
    c0[..., 0] = 1.0
    y0 = c0.ravel()
    p = np.array([D / h**2])

    rates = jax.vmap(jax.vmap(_robertson_rates))

    def rhs(t, y, p):
        c = y.reshape(N, N, 3)
        w = jnp.pad(c, ((1, 1), (1, 1), (0, 0)), mode="edge")
        lap = w[2:, 1:-1] + w[:-2, 1:-1] + w[1:-1, 2:] + w[1:-1, :-2] - 4.0 * c
        return (rates(c, k) + p[0] * lap).ravel()

    def fields(y):
        c = np.reshape(y, (N, N, 3))
        return {"A": c[..., 0], "B (x 1e4)": 1e4 * c[..., 1], "C": c[..., 2]}

    return OdeProblem(
        f"robertson_diffusion_2d(N={N})", rhs, y0, t_span, (p,), {"N": N, "fields": fields}
    )


def reservoir_exchange(
    n_cells: int = 1000,
    *,
    D: float = 1.0,
    volume: float | None = None,
    t_span: tuple[float, float] = (0.0, 2.0),
    seed: int = 0,
) -> OdeProblem:
    """A chain of cells exchanging with one shared, well-mixed reservoir (global coupling).

    .. math::
        \\dot u_i = D (u_{i-1} - 2 u_i + u_{i+1}) + \\kappa_i (R - u_i) - \\frac{u_i^2}{1 + u_i},
        \\qquad \\dot R = \\frac{1}{V} \\sum_i \\kappa_i (u_i - R)

    with zero-flux chain ends and exchange rates :math:`\\kappa_i` spread over
    :math:`[1, 10^3]` (the fast ones make it stiff); the reservoir volume defaults to
    ``n_cells`` (a mean field: :math:`R` follows the average exchange). State ``[u_1..u_n, R]``
    (n = ``n_cells`` + 1). The Jacobian is an *arrowhead*: tridiagonal plus a dense last
    column (every cell sees :math:`R`) and a dense last row (:math:`R` sees every cell).
    Any column coloring needs n colors (the dense row makes all columns conflict), any row
    coloring needs n colors too (the dense column); a bicoloring (forward and reverse
    passes together) needs a handful (7 with stiffasd's, whatever n). This is where colored
    finite differences (``jac_sparsity=``) cost n right-hand-side evaluations per Jacobian.
    """
    rng = np.random.default_rng(seed)
    kappa = 10.0 ** rng.uniform(0.0, 3.0, n_cells)
    y0 = np.concatenate([1.0 + 0.5 * np.sin(np.linspace(0.0, 6.0 * np.pi, n_cells)), [0.0]])
    p = np.array([D, 1.0 / (n_cells if volume is None else volume)])

    def rhs(t, y, p):
        d, inv_v = p[0], p[1]
        u, R = y[:-1], y[-1]
        w = jnp.pad(u, 1, mode="edge")
        exchange = kappa * (R - u)
        du = d * (w[2:] - 2.0 * u + w[:-2]) + exchange - u * u / (1.0 + u)
        dR = -inv_v * jnp.sum(exchange)
        return jnp.concatenate([du, dR[None]])

    def fields(y):
        return {"u (cells)": np.asarray(y[:-1]), "reservoir R": np.asarray(y[-1:])}

    return OdeProblem(
        f"reservoir_exchange(n_cells={n_cells})",
        rhs,
        y0,
        t_span,
        (p,),
        {"n_cells": n_cells, "fields": fields},
    )


def flame_1d(
    N: int = 200,
    *,
    L: float = 30.0,
    beta: float = 10.0,
    alpha: float = 0.8,
    lewis: float = 1.0,
    t_span: tuple[float, float] = (0.0, 10.0),
) -> OdeProblem:
    """A 1D premixed flame: one-step Arrhenius chemistry with high activation energy.

    Nondimensional thermo-diffusive model (Zeldovich-Frank-Kamenetskii scaling):

    .. math::
        T_t = T_{xx} + \\omega, \\qquad Y_t = \\mathrm{Le}^{-1} Y_{xx} - \\omega, \\qquad
        \\omega = \\frac{\\beta^2}{2\\,\\mathrm{Le}}\\, Y
        \\exp\\!\\Big(\\frac{\\beta (T - 1)}{1 + \\alpha (T - 1)}\\Big)

    on :math:`[0, L]` with ``N`` interior points: burnt gas at the left end (Dirichlet
    :math:`T = 1, Y = 0`), zero flux at the right end. The flame ignited at the left runs to
    the right at about unit speed. The Zeldovich number ``beta`` makes the source switch on
    sharply near :math:`T = 1` — the stiffness that makes combustion codes implicit. The
    state is ``[T, Y]`` (n = 2 N). Buckmaster & Ludford, *Theory of Laminar Flames* (1982).
    """
    h = L / (N + 1)
    xs = np.linspace(h, L - h, N)
    T0 = np.exp(-np.maximum(xs - 2.0, 0.0))
    Y0 = 1.0 - T0
    y0 = np.concatenate([T0, Y0])
    p = np.array([1.0 / h**2, beta, alpha, lewis])

    def rhs(t, y, p):
        inv_h2, b, a, le = p[0], p[1], p[2], p[3]
        T, Y = y[:N], y[N:]
        Tw = jnp.concatenate([jnp.ones(1), T, T[-1:]])  # burnt left, zero flux right
        Yw = jnp.concatenate([jnp.zeros(1), Y, Y[-1:]])
        omega = b * b / (2.0 * le) * Y * jnp.exp(b * (T - 1.0) / (1.0 + a * (T - 1.0)))
        dT = inv_h2 * (Tw[2:] - 2.0 * T + Tw[:-2]) + omega
        dY = inv_h2 / le * (Yw[2:] - 2.0 * Y + Yw[:-2]) - omega
        return jnp.concatenate([dT, dY])

    def fields(y):
        return {"T": np.asarray(y[:N]), "Y": np.asarray(y[N:])}

    return OdeProblem(
        f"flame_1d(N={N})", rhs, y0, t_span, (p,), {"N": N, "x": xs, "fields": fields}
    )


#: Every problem constructor by name (used by the examples, tests and benchmarks).
PROBLEMS: dict[str, Callable[..., OdeProblem]] = {
    "brusselator_2d": brusselator_2d,
    "gray_scott_2d": gray_scott_2d,
    "allen_cahn_3d": allen_cahn_3d,
    "advection_diffusion_reaction_2d": advection_diffusion_reaction_2d,
    "robertson_diffusion_2d": robertson_diffusion_2d,
    "reservoir_exchange": reservoir_exchange,
    "flame_1d": flame_1d,
    "fitzhugh_nagumo_2d": fitzhugh_nagumo_2d,
}
