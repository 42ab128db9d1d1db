"""Cells exchanging with one shared reservoir: an arrowhead Jacobian, with solve_ivp and stiffasd.

    python examples/reservoir_exchange.py --n_cells 400 --plot reservoir.png
    python examples/reservoir_exchange.py --n_cells 10000 --strategies jac_sparsity stiffasd

Every cell sees the reservoir (a dense column) and the reservoir sees every cell (a dense row):
one-sided colorings need one pass per unknown, and so do colored finite differences
(jac_sparsity=). Bicoloring (forward and reverse passes together) needs 7 whatever n, and
stiffasd.jac's automatic mode picks it.

How much a whole solve gains depends on how many Jacobians the solver asks for. scipy's BDF
reuses one Jacobian for as long as Newton converges: on this problem it evaluates 1-2 for the
whole run, whatever n. Each costs n + 1 right-hand sides with finite differences (about 1 s at
n = 3001 and 7-10 s at n = 10001 on the 2-core test machine) against well under a millisecond
with stiffasd, so the gain is bounded by the rest of the solve (right-hand sides, sparse LU,
scipy's step loop) and by stiffasd's one-time preparation. Measured
(`python -m benchmarks.compare_all --parts arrowhead`, benchmarks/results/all_arrowhead.md):
at n = 10001, stiffasd's solve without its preparation is about 27x faster than
``jac_sparsity=`` (one BLAS thread), but the preparation itself takes 7-9 s, most of it the
bicoloring search (several star colorings of a graph with a hub vertex of degree n), so the
whole first solve is 2-3x faster; at n = 1001-3001 the preparation (1.2-2.8 s) outweighs the
0.3-1.1 s of finite-difference Jacobians. On a busy machine, also set ``OPENBLAS_NUM_THREADS=1``:
the threaded vector norms in scipy's step loop cost milliseconds per call otherwise.
"""

from _common import main

from stiffasd.problems import reservoir_exchange

if __name__ == "__main__":
    main(reservoir_exchange, __doc__, "n_cells", 400)
