"""2D Brusselator with scipy's solve_ivp (BDF): three ways to get the Jacobian.

    python examples/brusselator_2d.py --N 32

1. the default: dense finite differences (n right-hand-side calls and a dense LU per Jacobian);
2. `jac_sparsity=`: colored finite differences with a hand-fed pattern;
3. `jac=stiffasd.jac(rhs)`: exact sparse Jacobians from compressed forward-mode AD, with the
   pattern detected and colored automatically.
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import stiffasd  # noqa: E402
from stiffasd._compare import compare_solve_ivp, format_table  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=32)
    parser.add_argument("--method", default="BDF")
    parser.add_argument("--skip-default", action="store_true")
    opts = parser.parse_args()

    problem = brusselator_2d(opts.N)
    # The right-hand side as a user writes it: plain jax.numpy (see stiffasd/problems.py).
    jac = stiffasd.jac(problem.rhs)
    prepared = jac.prepare(problem.t_span[0], problem.y0, *problem.args)
    print(f"{problem.name}: n = {problem.n}, nnz = {prepared.pattern.nnz}, "
          f"{prepared.ncolors} colors ({prepared.mode} mode)")
    strategies = ("jac_sparsity", "stiffasd") if opts.skip_default else (
        "default", "jac_sparsity", "stiffasd")
    records = compare_solve_ivp(problem, strategies, method=opts.method)
    print(format_table(records))


if __name__ == "__main__":
    main()
