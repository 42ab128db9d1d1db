"""Command line: ``stiffasd demo``, ``stiffasd color FILE.mtx``."""

from __future__ import annotations

import argparse
import os
import platform
import sys


def _enable_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def demo(argv: list[str] | None = None) -> int:
    """Solve the 2D Brusselator with solve_ivp BDF with and without stiffasd; print the table."""
    parser = argparse.ArgumentParser(
        prog="stiffasd demo",
        description="2D Brusselator (stiff reaction-diffusion PDE) solved by scipy's solve_ivp "
        "BDF with dense finite differences, colored finite differences (jac_sparsity=) and "
        "stiffasd.jac.",
    )
    parser.add_argument("--N", type=int, default=24, help="grid size N (n = 2 N^2), default 24")
    parser.add_argument("--method", default="BDF", choices=["BDF", "Radau"])
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-8)
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs per strategy, in turns; the fastest is shown (default 2: a single run of a "
        "1-second solve varies by +-30%% on a busy machine)",
    )
    parser.add_argument(
        "--skip-default",
        action="store_true",
        help="skip the dense finite-difference run (slow for large N)",
    )
    opts = parser.parse_args(argv)
    _enable_x64()

    import jax

    from . import jac
    from ._compare import FULL_STACK, compare_solve_ivp, format_table
    from .problems import brusselator_2d

    problem = brusselator_2d(opts.N)
    print(
        f"stiffasd demo: {problem.name}, n = {problem.n}, t in {problem.t_span}, "
        f"solve_ivp method={opts.method}, rtol={opts.rtol}, atol={opts.atol}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, jax {jax.__version__}\n"
    )
    j = jac(problem.rhs)
    sj = j.prepare(problem.t_span[0], problem.y0, *problem.args)
    print(
        f"Jacobian pattern ({sj.pattern.nnz} nonzeros, {sj.pattern.nnz / problem.n:.1f} per row):"
    )
    print(sj.pattern)
    print(
        f"\n{sj.mode} mode: {sj.ncolors} compressed passes per Jacobian instead of "
        f"{problem.n}; detection {sj.timings['detect']:.3f} s, coloring "
        f"{sj.timings['color']:.3f} s\n"
    )
    strategies = ("jac_sparsity", "stiffasd", FULL_STACK)
    if not opts.skip_default:
        strategies = ("default", *strategies)
    records = compare_solve_ivp(
        problem,
        strategies,
        method=opts.method,
        rtol=opts.rtol,
        atol=opts.atol,
        repeat=opts.repeat,
    )
    if opts.repeat > 1:
        print(f"each strategy ran {opts.repeat} times in turns; the fastest run is shown\n")
    print(format_table(records))
    ok = all(r.success for r in records)
    worst = max(r.max_rel_diff for r in records)
    print(
        f"\nall solves succeeded: {ok}; largest relative difference between the final "
        f"states: {worst:.1e}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": demo, "color": _color}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(
            "usage: stiffasd {demo,color} [options]\n\n"
            "  demo             2D Brusselator with solve_ivp BDF, with and without stiffasd\n"
            "  color FILE.mtx   color a Matrix Market pattern, print colors and timing\n\n"
            "Run 'stiffasd COMMAND --help' for the options of a command."
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


def _color(argv: list[str]) -> int:
    from .coloring import cli_color

    return cli_color(argv)


if __name__ == "__main__":
    sys.exit(main())
