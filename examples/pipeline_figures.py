"""Pictures of the ASD pipeline for docs/pipeline.md: a pattern, its coloring, the compressed
matrix, and the arrowhead pattern where one-sided coloring fails.

    python examples/pipeline_figures.py [--out docs/pipeline]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from _common import colored_pattern, warm_up

import stiffasd
from stiffasd.problems import brusselator_2d, reservoir_exchange

ROOT = Path(__file__).resolve().parent.parent


def pipeline_figure(out: Path) -> dict:
    """Brusselator N = 4: pattern -> column coloring -> compressed J S (one column per JVP)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prob = brusselator_2d(4)
    t, y, args = 0.0, prob.y0, prob.args
    sj = stiffasd.prepare_jacobian(
        prob.rhs, jnp.asarray(t), jnp.asarray(y), *args, argnums=1, mode="forward"
    )
    c = sj.coloring
    J = sj.csc(jnp.asarray(t), jnp.asarray(y), *args)
    B = c.compress(J)  # m x ncolors: what the vmapped JVPs return
    n = prob.n

    fig, axes = plt.subplots(
        1, 3, figsize=(11, 4.0), dpi=90, gridspec_kw={"width_ratios": [1, 1, 0.55]}
    )
    rows, cols = sj.pattern.rows, sj.pattern.cols
    axes[0].scatter(cols, rows, s=18, marker="s", c="0.2", linewidths=0)
    axes[0].set_title(f"1. detected pattern\n{n}x{n}, nnz = {sj.pattern.nnz}", fontsize=9)
    colored_pattern(
        axes[1],
        sj,
        max_size=n,
        title=f"2. column coloring: {c.ncolors_column} colors\n"
        "(no two columns of one color share a row)",
    )
    cmap = plt.get_cmap("tab20", c.ncolors_column)
    colors = np.asarray(c.column_colors)
    # each nonzero J[i, j] lands in B[i, color(j)], alone in its cell
    axes[2].scatter(
        colors[cols],
        rows,
        c=colors[cols],
        cmap=cmap,
        vmin=-0.5,
        vmax=c.ncolors_column - 0.5,
        s=18,
        marker="s",
        linewidths=0,
    )
    axes[2].set_xlim(-0.5, c.ncolors_column - 0.5)
    axes[2].set_title(f"3. compressed J S\n{n}x{c.ncolors_column}: one JVP per column", fontsize=9)
    for ax in axes:
        ax.set_ylim(n - 0.5, -0.5)
        ax.tick_params(labelsize=7)
    axes[0].set_xlim(-0.5, n - 0.5)
    axes[0].set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out / "pipeline_brusselator.png", dpi=90)
    plt.close(fig)
    # decompression really recovers J from B (a check, not only a picture)
    J_back = c.decompress(B)
    assert np.allclose(J_back.toarray(), J.toarray())
    return dict(n=n, nnz=sj.pattern.nnz, colors=c.ncolors_column, B_max=float(np.abs(B).max()))


def arrowhead_figure(out: Path) -> dict:
    """Reservoir exchange: column, row and (where available) bidirectional coloring."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prob = reservoir_exchange(24)
    pattern = stiffasd.jacobian_sparsity(prob.rhs, 0.0, prob.y0, *prob.args, argnums=1)
    results = {
        p: stiffasd.color(pattern, partition=p, order="largest_first") for p in ("column", "row")
    }
    try:
        # order="best" tries several vertex orders and keeps the fewest passes (what
        # stiffasd.jac's auto mode does for bicoloring)
        results["bidirectional"] = stiffasd.color(pattern, partition="bidirectional", order="best")
    except (NotImplementedError, ValueError) as exc:  # bicoloring not available in this build
        print(f"bidirectional coloring unavailable: {exc}")

    class _View:  # what colored_pattern reads from a prepared Jacobian
        def __init__(self, c):
            self.pattern, self.coloring = pattern, c

    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.8), dpi=90)
    for ax, (part, c) in zip(axes, results.items(), strict=True):
        colored_pattern(
            ax,
            _View(c),
            max_size=pattern.shape[0],
            title=f"{part}: {c.ncolors_column} JVP + {c.ncolors_row} VJP passes",
        )
    fig.suptitle(f"arrowhead (shared reservoir), n = {prob.n}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "pipeline_arrowhead.png", dpi=90)
    plt.close(fig)
    return {p: (c.ncolors_column, c.ncolors_row) for p, c in results.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "pipeline"))
    opts = parser.parse_args(argv)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    warm_up()
    print("brusselator:", pipeline_figure(out))
    print("arrowhead passes (JVP, VJP):", arrowhead_figure(out))


if __name__ == "__main__":
    main()
