"""stiffasd.sundae: CVODE (scikit-sundae) sparse solver fed with a fixed pattern + CSC values."""

import os

# scikit-sundae's SuperLU_MT runs on OpenMP; on a busy 2-core machine its spinning threads make
# each factorization ~30x slower. Must be set before sksundae loads its OpenMP runtime.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402
from solver_problems import Brusselator2D, DiffusionReaction1D, Robertson  # noqa: E402

import stiffasd.sundae as sd  # noqa: E402
from stiffasd import SparsityPattern  # noqa: E402
from stiffasd.errors import PatternMismatchError, ShapeError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Custom sparse Jacobian approximation")
sksundae = pytest.importorskip("sksundae", reason="scikit-sundae not installed")


def test_jacfn_fills_csc_values_in_place():
    P = Brusselator2D(6)
    J = sd.jacobian(P.jac)  # pattern from .sparsity
    assert J.nnz == P.sparsity.nnz
    y = P.y0 + 0.3
    JJ = np.full(J.nnz, np.nan)
    J(0.5, y, None, JJ)
    dense = sp.csc_matrix((JJ, J.sparsity.indices, J.sparsity.indptr), shape=J.sparsity.shape)
    np.testing.assert_array_equal(dense.toarray(), P.jac(0.5, y).toarray())
    assert J.njev == 1
    assert J.sparsity.indices.dtype == sd._index_dtype()


def test_non_canonical_matrices_and_pattern_errors():
    P = DiffusionReaction1D(10)
    pattern = SparsityPattern.from_scipy(P.sparsity)

    def csr_jac(t, y):  # another format, fresh arrays every call
        return P.jac(t, y).tocsr()

    J = sd.jacobian(csr_jac, pattern=pattern)
    JJ = np.zeros(J.nnz)
    J(0.0, P.y0, None, JJ)
    np.testing.assert_array_equal(JJ, P.jac.data(0.0, P.y0))
    sub = sd.jacobian(lambda t, y: sp.diags(np.ones(10), format="csc"), pattern=pattern)
    sub(0.0, P.y0, None, JJ)
    np.testing.assert_array_equal(
        sp.csc_matrix((JJ, sub.sparsity.indices, sub.sparsity.indptr)).toarray(), np.eye(10)
    )
    far = sd.jacobian(
        lambda t, y: sp.csc_matrix(([1.0], ([0], [9])), shape=(10, 10)), pattern=pattern
    )
    with pytest.raises(PatternMismatchError, match="outside the sparsity"):
        far(0.0, P.y0, None, JJ)
    with pytest.raises(TypeError, match="exactly one"):
        sd.jacobian()
    with pytest.raises(TypeError, match="pattern"):
        sd.jacobian(lambda t, y: None)
    bad = sd.jacobian(values=lambda t, y: np.ones(3), pattern=pattern)
    with pytest.raises(ShapeError, match="CSC order"):
        bad(0.0, P.y0, None, JJ)


@pytest.mark.parametrize("problem", ["robertson", "brusselator"])
def test_cvode_sparse_matches_reference(problem):
    P = Robertson(t_end=1e3) if problem == "robertson" else Brusselator2D(8, t_end=1.5)
    ref = solve_ivp(P.rhs, P.t_span, P.y0, method="BDF", jac=P.jac, rtol=1e-10, atol=1e-12)
    solver = sd.cvode(P.rhs, P.jac, rtol=1e-8, atol=1e-10)
    soln = solver.solve(np.array(P.t_span), P.y0)
    assert soln.success, soln.message
    np.testing.assert_allclose(soln.y[-1], ref.y[:, -1], rtol=1e-5, atol=1e-7 * np.abs(ref.y).max())
    assert soln.nfev < 5000
    assert soln.njev > 0


def test_cvode_values_and_userdata():
    """Pattern + values (the stiffasd data-vector form), with args passed through userdata."""
    P = DiffusionReaction1D(40)
    scale = 1.0

    def rhsfn(t, y, yp, userdata):
        yp[:] = userdata[0] * P.rhs(t, y)

    J = sd.jacobian(values=lambda t, y, s: s * P.jac.data(t, y), pattern=P.sparsity)
    solver = sksundae.cvode.CVODE(
        rhsfn,
        userdata=(scale,),
        linsolver="sparse",
        sparsity=J.sparsity,
        jacfn=J.with_userdata,
        rtol=1e-8,
        atol=1e-10,
    )
    soln = solver.solve(np.array(P.t_span), P.y0)
    ref = solve_ivp(P.rhs, P.t_span, P.y0, method="Radau", jac=P.jac, rtol=1e-10, atol=1e-12)
    assert soln.success
    assert J.njev > 0
    np.testing.assert_allclose(soln.y[-1], ref.y[:, -1], rtol=1e-5, atol=1e-8)


def test_cvode_with_stiffasd_jac():
    import stiffasd
    from stiffasd.problems import brusselator_2d

    prob = brusselator_2d(8, t_span=(0.0, 1.5))
    fun = prob.numpy_rhs()
    jac = stiffasd.jac(prob.rhs)
    opts = sd.cvode_options(jac, prob.y0, args=prob.args)  # prepares (detects + colors) once
    assert opts["sparsity"].nnz == jac.pattern.nnz
    solver = sd.cvode(fun, jac, args=prob.args, rtol=1e-8, atol=1e-10)
    soln = solver.solve(np.array(prob.t_span), prob.y0)
    ref = solve_ivp(
        fun, prob.t_span, prob.y0, method="BDF", args=prob.args, jac=jac, rtol=1e-10, atol=1e-12
    )
    assert soln.success and soln.njev > 0
    np.testing.assert_allclose(soln.y[-1], ref.y[:, -1], rtol=1e-5, atol=1e-7)
