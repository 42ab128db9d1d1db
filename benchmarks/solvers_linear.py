"""Sparse direct solvers for repeated factorization with a FIXED pattern (solve_ivp's Newton
matrices ``I - c J`` on the 2D Brusselator).

Each candidate is timed on the same sequence of matrices (same pattern, values from the Jacobian at
a state and several step-size factors ``c``): one-off setup (ordering / symbolic analysis, when the
candidate separates it), numeric factorization per matrix, one solve, and the fill
(nnz(L) + nnz(U)).
Every solve is checked by its residual.

Run: ``PYTHONPATH=. python benchmarks/solvers_linear.py [--sizes 32 64 128] [--cand /tmp/cand]``;
writes benchmarks/results/solvers_linear.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.problems import Brusselator2D  # noqa: E402

C_VALUES = (1e-4, 1e-3, 1e-2)


def _matrices(N):
    P = Brusselator2D(N)
    rng = np.random.default_rng(0)
    y = P.y0 * (1.0 + 0.1 * rng.random(P.n))
    J = P.jac(0.0, y)
    eye = sp.identity(P.n, format="csc")
    out = []
    for c in C_VALUES:
        A = (eye - c * J).tocsc()
        A.sort_indices()
        out.append(A)
    return out


def _perm_map(A, p):
    """Positions that reorder A.data into the data of A[p][:, p] (computed once)."""
    T = sp.csc_matrix((np.arange(A.nnz, dtype=np.float64) + 1.0, A.indices, A.indptr), A.shape)
    B = T[p][:, p].tocsc()
    B.sort_indices()
    return B.data.astype(np.int64) - 1, B.indices, B.indptr


class SpluSpec:
    """scipy splu with a permc_spec: ordering + symbolic + numeric at every factorization."""

    def __init__(self, spec):
        self.name = f"splu {spec}"
        self.spec = spec

    def setup(self, A):
        pass

    def factor(self, A):
        self.lu = splu(A, permc_spec=self.spec)

    def solve(self, b):
        return self.lu.solve(b)

    def fill(self):
        return self.lu.L.nnz + self.lu.U.nnz


class SpluPrePermuted:
    """splu on the symmetrically pre-permuted matrix with permc_spec="NATURAL": the fill-reducing
    ordering is computed once (setup) and SuperLU skips ordering at every factorization."""

    def __init__(self, ordering, diag_pivot_thresh=1.0):
        self.ordering = ordering
        self.thresh = diag_pivot_thresh
        self.name = f"splu pre-permuted ({ordering}) NATURAL, diag_pivot_thresh={diag_pivot_thresh}"

    def setup(self, A):
        if self.ordering == "RCM":
            p = reverse_cuthill_mckee(A, symmetric_mode=False)
        elif self.ordering == "METIS":
            from stiffasd.scipy import nested_dissection

            p = nested_dissection(*A.nonzero(), A.shape[0])
        else:
            p = splu(A, permc_spec=self.ordering).perm_c
            p = np.argsort(p)
        self.p = np.asarray(p, dtype=np.int64)
        self.map, self.indices, self.indptr = _perm_map(A, self.p)

    def factor(self, A):
        B = sp.csc_matrix((A.data[self.map], self.indices, self.indptr), A.shape)
        self.lu = splu(
            B,
            permc_spec="NATURAL",
            diag_pivot_thresh=self.thresh,
            options=dict(SymmetricMode=self.thresh < 1.0),
        )

    def solve(self, b):
        x = np.empty_like(b)
        x[self.p] = self.lu.solve(b[self.p])
        return x

    def fill(self):
        return self.lu.L.nnz + self.lu.U.nnz


class StiffasdFixedPatternLU:
    """stiffasd.scipy.FixedPatternLU: the chosen scheme (SuperLU on the pre-permuted pattern, METIS
    nested-dissection ordering computed at the first factorization, values scattered into it)."""

    name = "stiffasd.scipy.FixedPatternLU (SuperLU, METIS ordering once)"

    def setup(self, A):
        from stiffasd.scipy import FixedPatternLU

        self.F = FixedPatternLU(A.indptr, A.indices, A.shape[0])
        self.F.factor(A.data, 0.0, -1.0)  # the first factorization fixes the ordering

    def factor(self, A):
        self.fac = self.F.factor(A.data, 0.0, -1.0)  # 0 * I - (-1) * A = A

    def solve(self, b):
        return self.fac.solve(b)

    def fill(self):
        return self.F.fill


class KvxoptSolver:
    """kvxopt (CVXOPT fork with SuiteSparse): symbolic once, numeric per matrix."""

    def __init__(self, lib):
        self.libname = lib
        self.name = f"kvxopt {lib} (symbolic once)"

    def setup(self, A):
        import kvxopt
        from kvxopt import klu, umfpack

        self.kv = kvxopt
        self.lib = klu if self.libname == "KLU" else umfpack
        coo = A.tocoo()
        self.row = coo.row.tolist()
        self.col = coo.col.tolist()
        self.order = np.lexsort((coo.row, coo.col))
        self.Fs = self.lib.symbolic(self._conv(A))

    def _conv(self, A):
        # kvxopt builds its spmatrix from triplets; the conversion is part of the per-call price
        coo = A.tocoo()
        return self.kv.spmatrix(
            self.kv.matrix(coo.data),
            self.kv.matrix(coo.row.astype(np.int64)),
            self.kv.matrix(coo.col.astype(np.int64)),
            A.shape,
        )

    def factor(self, A):
        self.A = self._conv(A)
        self.Fn = self.lib.numeric(self.A, self.Fs)

    def solve(self, b):
        x = self.kv.matrix(b.copy())
        if self.libname == "KLU":
            self.lib.solve(self.A, self.Fs, self.Fn, x)
        else:
            self.lib.solve(self.A, self.Fn, x)
        return np.array(x).ravel()

    def fill(self):
        return -1


class PypardisoSolver:
    """MKL PARDISO through pypardiso: analysis (METIS ordering + symbolic) once (phase 11),
    numeric factorization per matrix (phase 22), solve (phase 33)."""

    name = "pypardiso (MKL PARDISO, analysis once)"

    def setup(self, A):
        from pypardiso import PyPardisoSolver

        self.ps = PyPardisoSolver(mtype=11)
        self.b0 = np.zeros(A.shape[0])
        self.ps.set_phase(11)
        self.ps._call_pardiso(self._csr(A), self.b0)

    @staticmethod
    def _csr(A):
        B = A.tocsr()
        B.sort_indices()
        return B

    def factor(self, A):
        self.A = self._csr(A)
        self.ps.set_phase(22)
        self.ps._call_pardiso(self.A, self.b0)

    def solve(self, b):
        self.ps.set_phase(33)
        return self.ps._call_pardiso(self.A, b)

    def fill(self):
        return int(self.ps.iparm[17])


class PyKLUSolver:
    """PyKLU: full KLU analysis + factorization at every call (no refactor in its API)."""

    name = "PyKLU (full factor per call)"

    def setup(self, A):
        from PyKLU import Klu

        self.Klu = Klu

    def factor(self, A):
        self.K = self.Klu(A)

    def solve(self, b):
        return self.K.solve(b)

    def fill(self):
        return -1


def _time(fn, repeat=1):
    """Best CPU time of this process over ``repeat`` calls: the machine is shared, and CPU time
    is what other jobs disturb least. (PARDISO may use 2 threads: its CPU time then adds both.)"""
    best = np.inf
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def run(sizes, candidates, max_time_per_factor=20.0):
    rows = []
    for N in sizes:
        mats = _matrices(N)
        b = np.random.default_rng(1).random(mats[0].shape[0])
        for cand in candidates:
            try:
                t_setup = _time(lambda cand=cand, A0=mats[0]: cand.setup(A0))
                t_factor = []
                for A in mats:
                    t_factor.append(_time(lambda cand=cand, A=A: cand.factor(A)))
                    if t_factor[-1] > max_time_per_factor:
                        break
                t_solve = _time(lambda cand=cand, b=b: cand.solve(b), repeat=3)
                x = cand.solve(b)
                res = float(np.abs(mats[len(t_factor) - 1] @ x - b).max())
                row = dict(
                    N=N,
                    n=mats[0].shape[0],
                    nnz=int(mats[0].nnz),
                    solver=cand.name,
                    setup_s=t_setup,
                    factor_s=float(np.median(t_factor)),
                    solve_s=t_solve,
                    fill=int(cand.fill()),
                    residual=res,
                )
            except Exception as e:  # a candidate that fails is recorded, not hidden
                row = dict(N=N, n=mats[0].shape[0], solver=cand.name, error=repr(e)[:200])
            print(row, flush=True)
            rows.append(row)
    return rows


def machine():
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = [
        ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")
    ]
    return dict(
        cpu=model[0] if model else platform.processor(),
        cores=os.cpu_count(),
        python=platform.python_version(),
        numpy=np.__version__,
        scipy=scipy.__version__,
        note="shared 2-core machine (other jobs running): compare rows of one run, not runs",
    )


def to_markdown(rows, mach):
    out = [
        "# Repeated sparse LU with a fixed pattern: Brusselator 2D Newton matrices I - cJ",
        "",
        f"Machine: {mach}",
        "",
        "Times are CPU seconds of the process (the machine is shared with other jobs; PARDISO "
        "may use 2 threads, whose CPU time adds up). "
        "Factor = median over c in {1e-4, 1e-3, 1e-2} of one numeric factorization (ordering "
        "included unless the solver separates it into setup). Solve = one right-hand side.",
        "",
        "| N | n | solver | setup (ms) | factor (ms) | solve (ms) | fill nnz(L+U) | residual |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['N']} | {r['n']} | {r['solver']} | failed: {r['error']} | | | | |")
            continue
        fill = r["fill"] if r["fill"] >= 0 else "n/a"
        out.append(
            f"| {r['N']} | {r['n']} | {r['solver']} | {r['setup_s'] * 1e3:.1f} | "
            f"{r['factor_s'] * 1e3:.1f} | {r['solve_s'] * 1e3:.2f} | {fill} | {r['residual']:.1e} |"
        )
    return "\n".join(out) + "\n"


def rewrite_markdown(path):
    """Regenerate the markdown table from a results JSON."""
    with open(path + ".json") as f:
        res = json.load(f)
    with open(path + ".md", "w") as f:
        f.write(to_markdown(res["rows"], res["machine"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument(
        "--cand", default=None, help="folder(s) with optional candidates, ':'-separated"
    )
    ap.add_argument("--out", default="benchmarks/results/solvers_linear")
    args = ap.parse_args()
    cands = [
        SpluSpec("COLAMD"),
        SpluSpec("MMD_AT_PLUS_A"),
        SpluSpec("MMD_ATA"),
        SpluPrePermuted("MMD_AT_PLUS_A", 1.0),
        SpluPrePermuted("MMD_AT_PLUS_A", 0.1),
        SpluPrePermuted("RCM", 1.0),
        SpluPrePermuted("METIS", 1.0),
        SpluPrePermuted("METIS", 0.1),
    ]
    try:
        import stiffasd.scipy  # noqa: F401

        cands.append(StiffasdFixedPatternLU())
    except ImportError:
        pass
    if args.cand:
        for d in args.cand.split(":"):
            sys.path.insert(0, d)
    try:
        import kvxopt  # noqa: F401

        cands += [KvxoptSolver("KLU"), KvxoptSolver("UMFPACK")]
    except ImportError:
        print("kvxopt not installed: skipped")
    try:
        import PyKLU  # noqa: F401

        cands.append(PyKLUSolver())
    except ImportError:
        print("PyKLU not installed: skipped")
    try:
        import pypardiso  # noqa: F401

        cands.append(PypardisoSolver())
    except ImportError:
        print("pypardiso not installed: skipped")
    rows = run(args.sizes, cands)
    mach = machine()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(dict(machine=mach, rows=rows), f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(to_markdown(rows, mach))


if __name__ == "__main__":
    main()
