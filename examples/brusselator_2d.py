"""2D Brusselator with scipy's solve_ivp: three ways to get the Jacobian.

    python examples/brusselator_2d.py --N 16 --plot brusselator.png

1. the default: dense finite differences (n right-hand-side calls and a dense LU per Jacobian);
2. `jac_sparsity=`: colored finite differences with a hand-fed pattern;
3. `jac=stiffasd.jac(rhs)`: exact sparse Jacobians from compressed forward-mode AD, with the
   pattern detected and colored automatically.

The right-hand side is plain jax.numpy (see stiffasd.problems.brusselator_2d).
"""

from _common import main

from stiffasd.problems import brusselator_2d

if __name__ == "__main__":
    main(brusselator_2d, __doc__, "N", 16)
