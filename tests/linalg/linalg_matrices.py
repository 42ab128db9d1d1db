"""Test matrices shared by the linalg tests, and the accuracy check of a linear solve."""

import numpy as np
import scipy.sparse as sp


def grid_laplacian(m: int) -> sp.csc_matrix:
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    return (sp.kron(t, sp.identity(m)) + sp.kron(sp.identity(m), t)).tocsc()


def assert_solves(A, x, b, *, c: float = 32.0, forward: bool = True) -> None:
    """``x`` solves ``A x = b`` as well as a backward-stable solver can: the normwise backward
    error ``||b - A x|| / (||A|| ||x|| + ||b||)`` (Rigal & Gaches 1967) is at most ``c * eps``,
    and the forward error against LAPACK's dense solve is within ``cond(A)`` times that (both
    in the infinity norm). Elementwise relative tolerances are not a property of a stable solve:
    a small component of an ill-conditioned system carries the whole vector's rounding.
    ``forward=False`` skips the dense reference (O(n^3)): the backward error is the solver's
    property, the forward error follows from it."""
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    x, b = np.asarray(x), np.asarray(b)
    eps = np.finfo(np.result_type(A, x)).eps
    norm = lambda v: np.linalg.norm(v, np.inf)  # noqa: E731
    backward = norm(b - A @ x) / (norm(A) * norm(x) + norm(b))
    assert backward <= c * eps, f"backward error {backward:.2e} > {c:g} eps"
    if not forward:
        return
    x_ref = np.linalg.solve(A, b)
    forward = norm(x - x_ref) / norm(x_ref)
    bound = 2 * c * eps * np.linalg.cond(A, np.inf)
    assert forward <= bound, f"forward error {forward:.2e} > {bound:.2e} (2 c eps cond(A))"


def activator_inhibitor(m: int, tau: float = 0.1) -> sp.csc_matrix:
    """Jacobian of a two-field reaction-diffusion system on an ``m``-by-``m`` grid (FitzHugh-
    Nagumo linearised at rest): slow activator diffusion, a strong ``u``-``v`` coupling. Newton
    matrices ``sigma I - J`` with a small shift pivot away from the diagonal."""
    L = -grid_laplacian(m)
    eye = sp.identity(m * m)
    return sp.bmat([[0.07 * L + eye, -eye], [eye / tau, (1.2 * L - eye) / tau]]).tocsc()
