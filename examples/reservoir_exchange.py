"""Cells exchanging with one shared reservoir: an arrowhead Jacobian, with solve_ivp and stiffasd.

    python examples/reservoir_exchange.py --n_cells 400 --plot reservoir.png

Every cell sees the reservoir (a dense column) and the reservoir sees every cell (a dense row):
one-sided colorings need one pass per unknown, and so do colored finite differences
(jac_sparsity=). Bicoloring (forward and reverse passes together) needs 7 whatever n, and
stiffasd.jac's automatic mode picks it.
"""

from _common import main

from stiffasd.problems import reservoir_exchange

if __name__ == "__main__":
    main(reservoir_exchange, __doc__, "n_cells", 400)
