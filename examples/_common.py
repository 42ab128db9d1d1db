"""Shared driver of the example scripts: build a problem, prepare its sparse Jacobian, solve it
with and without stiffasd, print the numbers, optionally plot.

Each ``examples/<name>.py`` only states its problem and defaults; run any of them with
``--help``. The plots need matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "stiffasd" / "__init__.py").exists():
    # run from a source checkout: use the package next to examples/, not an installed copy
    sys.path.insert(0, str(_CHECKOUT))

import stiffasd  # noqa: E402
from stiffasd._compare import compare_solve_ivp, format_table, warm_up  # noqa: E402,F401
from stiffasd.problems import OdeProblem  # noqa: E402


def parser(
    doc: str, size_name: str, size_default: int, *, max_default_n: int = 600
) -> argparse.ArgumentParser:
    """The command line every example shares; ``size_name`` is the problem's size argument."""
    p = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[1:]),
    )
    p.add_argument(
        f"--{size_name}",
        type=int,
        default=size_default,
        dest="size",
        help=f"problem size ({size_name}; default {size_default})",
    )
    p.add_argument("--t-end", type=float, default=None, help="end of the time span")
    p.add_argument("--method", default="BDF", choices=["BDF", "Radau"])
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--atol", type=float, default=1e-8)
    p.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        choices=["default", "jac_sparsity", "stiffasd"],
        help="Jacobian strategies to compare (default: all three, dense finite "
        f"differences only while n <= {max_default_n})",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="save the final state and the sparsity pattern with its coloring",
    )
    p.set_defaults(max_default_n=max_default_n)
    return p


def describe(problem: OdeProblem) -> dict:
    """Detect and color (timed), compile one Jacobian (timed); print and return the numbers."""
    startup = warm_up()
    print(f"(numba start-up, once per process: {startup:.2f} s)")
    t0, y0, args = problem.t_span[0], problem.y0, problem.args
    jac = stiffasd.jac(problem.rhs)
    start = time.perf_counter()
    sj = jac.prepare(t0, y0, *args)
    prepare = time.perf_counter() - start
    start = time.perf_counter()
    jac(t0, y0, *args)
    compile_s = time.perf_counter() - start
    c = sj.coloring
    info = dict(
        n=problem.n,
        nnz=sj.pattern.nnz,
        mode=sj.mode,
        colors_column=c.ncolors_column,
        colors_row=c.ncolors_row,
        detect_s=sj.timings["detect"],
        color_s=sj.timings["color"],
        prepare_s=prepare,
        compile_s=compile_s,
        numba_startup_s=startup,
    )
    print(
        f"{problem.name}: n = {info['n']}, nnz = {info['nnz']} "
        f"({info['nnz'] / info['n']:.1f} per row)"
    )
    print(
        f"  colors: {c.ncolors_column} column (JVP) + {c.ncolors_row} row (VJP) -> "
        f"{sj.mode} mode, {sj.ncolors} passes per Jacobian instead of {problem.n}"
    )
    print(
        f"  detection {1e3 * info['detect_s']:.1f} ms, coloring {1e3 * info['color_s']:.1f} ms, "
        f"first Jacobian (compilation) {1e3 * compile_s:.0f} ms"
    )
    return {"jac": jac, "sparse": sj, **info}


def run(problem: OdeProblem, opts: argparse.Namespace) -> dict:
    """Describe, solve with the chosen strategies, print the table, plot if asked."""
    described = describe(problem)
    strategies = opts.strategies or (
        ["default", "jac_sparsity", "stiffasd"]
        if problem.n <= opts.max_default_n
        else ["jac_sparsity", "stiffasd"]
    )
    print(f"solve_ivp {opts.method}, t in {problem.t_span}, rtol={opts.rtol}, atol={opts.atol}:")
    records = compare_solve_ivp(
        problem, strategies, method=opts.method, rtol=opts.rtol, atol=opts.atol
    )
    print(format_table(records))
    if opts.plot:
        y_final = records[-1].y_final
        plot(problem, described["sparse"], y_final, opts.plot)
        print(f"saved {opts.plot}")
    return {"described": described, "records": records}


# --------------------------------------------------------------------------------- plotting
def colored_pattern(ax, sparse, max_size: int = 160, title: str | None = None) -> None:
    """Scatter the leading block of the pattern, each nonzero colored by the pass that
    computes it (its column's color for JVPs, its row's color for VJPs)."""
    import matplotlib.pyplot as plt

    pattern, c = sparse.pattern, sparse.coloring
    m, n = pattern.shape
    # a leading block shows a stencil best; a dense row or column (global coupling) only
    # shows in the whole matrix
    dense_line = max(pattern.row_counts.max(initial=0), pattern.col_counts.max(initial=0)) > 50
    k = max(m, n) if dense_line else min(max_size, m, n)
    rows, cols = pattern.csc_indices, pattern.csc_cols  # the data order decompression fills
    gather = c.gather
    if gather is not None:
        # the flat buffer is [JVP color 0 (m values), JVP color 1, ..., VJP color 0 (n), ...]:
        # where an entry is gathered from says which pass computes it
        g = np.asarray(gather)
        jvp_part = c.ncolors_column * m
        which = np.where(
            g < jvp_part, g // max(m, 1), c.ncolors_column + (g - jvp_part) // max(n, 1)
        )
    else:  # substitution plans solve along trees: show the column's (or row's) color
        col_c = np.asarray(c.column_colors)[cols]
        which = np.where(col_c >= 0, col_c, c.ncolors_column + np.asarray(c.row_colors)[rows])
    keep = (rows < k) & (cols < k)
    rows, cols, which = rows[keep], cols[keep], which[keep]
    cmap = plt.get_cmap("tab20", max(c.ncolors, 1))
    size = max(1.0, 1500.0 / k)
    ax.scatter(
        cols,
        rows,
        c=which,
        cmap=cmap,
        vmin=-0.5,
        vmax=max(c.ncolors, 1) - 0.5,
        s=size,
        marker="s",
        linewidths=0,
    )
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_aspect("equal")
    part = f"{c.ncolors_column} JVP + {c.ncolors_row} VJP passes"
    where = f"{m}x{n}" if k == n else f"{k}x{k} of {m}x{n}"
    ax.set_title(title or f"Jacobian pattern ({where})\ncolored by pass: {part}", fontsize=9)
    ax.tick_params(labelsize=7)


def plot(problem: OdeProblem, sparse, y_final: np.ndarray, out: str) -> None:
    """Final state fields next to the colored sparsity pattern, saved as a compact PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = problem.info["fields"](np.asarray(y_final))
    big = {k: v for k, v in fields.items() if np.size(v) > 1}
    scalars = {k: float(np.ravel(v)[0]) for k, v in fields.items() if np.size(v) == 1}
    ncols = len(big) + 1
    fig, axes = plt.subplots(1, ncols, figsize=(3.4 * ncols, 3.3), dpi=90)
    axes = np.atleast_1d(axes)
    x = problem.info.get("x")
    for ax, (name, v) in zip(axes, big.items(), strict=False):
        v = np.asarray(v)
        if v.ndim == 2:
            im = ax.imshow(v.T, origin="lower", cmap="viridis", extent=(0, 1, 0, 1))
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
        else:
            ax.plot(x if x is not None and len(x) == v.size else np.arange(v.size), v, lw=1.2)
            ax.grid(alpha=0.3)
        extra = ", ".join(f"{k} = {s:.3g}" for k, s in scalars.items())
        ax.set_title(
            f"{name} at t = {problem.t_span[1]:g}" + (f"\n{extra}" if extra else ""), fontsize=9
        )
        ax.tick_params(labelsize=7)
    colored_pattern(axes[-1], sparse)
    fig.suptitle(problem.name, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(
    make: Callable[..., OdeProblem], doc: str, size_name: str, size_default: int, **parser_options
) -> dict:
    """Entry point used by each example script."""
    opts = parser(doc, size_name, size_default, **parser_options).parse_args()
    kwargs = {size_name: opts.size}
    problem = make(**kwargs)
    if opts.t_end is not None:
        problem = make(**kwargs, t_span=(problem.t_span[0], opts.t_end))
    return run(problem, opts)
