"""Test matrices shared by the linalg tests."""

import scipy.sparse as sp


def grid_laplacian(m: int) -> sp.csc_matrix:
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    return (sp.kron(t, sp.identity(m)) + sp.kron(sp.identity(m), t)).tocsc()
