"""Cells exchanging with one shared reservoir: an arrowhead Jacobian, with solve_ivp and stiffasd.

    python examples/reservoir_exchange.py --n_cells 400 --plot reservoir.png
    python examples/reservoir_exchange.py --n_cells 10000 --strategies jac_sparsity stiffasd

Every cell sees the reservoir (a dense column) and the reservoir sees every cell (a dense row):
one-sided colorings need one pass per unknown, and so do colored finite differences
(jac_sparsity=). Bicoloring (forward and reverse passes together) needs 7 whatever n, and
stiffasd.jac's automatic mode picks it.

How much a whole solve gains depends on how many Jacobians the solver asks for. scipy's BDF
reuses one Jacobian for as long as Newton converges: on this problem it evaluates 1-2 for the
whole run, whatever n. Each costs n + 1 right-hand sides with finite differences, O(n^2) work in
all (and memory: 13 GB at n = 20001 in scipy's grouping), against well under a millisecond with
stiffasd; stiffasd pays instead a one-time preparation (detection, bicoloring, compilation:
0.1-0.6 s, most of it compilation). Measured with
`python -m benchmarks solve_ivp --parts arrowhead` (the benchmarks page, "Global coupling"):
the whole solve with stiffasd.jac is 1.7-2.0x faster than with ``jac_sparsity=`` at n = 1001
and 3001, 4x at n = 10001 and 23x at n = 20001 (8x and 39x with stiffasd.scipy.BDF as well).
"""

from _common import main

from stiffasd.problems import reservoir_exchange

if __name__ == "__main__":
    main(reservoir_exchange, __doc__, "n_cells", 400)
