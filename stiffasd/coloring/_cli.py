"""``stiffasd color FILE.mtx``: color a Matrix Market pattern and print the result."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time

import numpy as np
import scipy.io
import scipy.sparse as sp

from ._api import BEST_ORDERS, DECOMPRESSIONS, PARTITIONS, STRUCTURES, color
from ._graph import as_pattern
from .check import check_coloring
from .orders import ORDERS


def read_matrix_market(path: str):
    """A scipy sparse matrix from a Matrix Market file (``.mtx`` or ``.mtx.gz``); a dense
    (``array``) file gives its nonzero entries."""
    if str(path).endswith(".gz"):
        with gzip.open(path, "rb") as f:
            matrix = scipy.io.mmread(f, spmatrix=False)
    else:
        matrix = scipy.io.mmread(path, spmatrix=False)
    if isinstance(matrix, np.ndarray):
        matrix = sp.coo_array(matrix)
    return matrix


def _read_or_explain(path: str):
    """The matrix at ``path``, or ``None`` after a one-line explanation on stderr."""
    if not os.path.exists(path):
        problem = "no such file"
    elif os.path.isdir(path):
        problem = "is a directory, not a Matrix Market file"
    else:
        try:
            return read_matrix_market(path)
        except (OSError, EOFError, ValueError, UnicodeDecodeError, RuntimeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            problem = f"not a readable Matrix Market file ({reason})"
    print(f"stiffasd color: {path}: {problem}", file=sys.stderr)
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stiffasd color",
        description="Color the sparsity pattern of a Matrix Market file and print the number of "
        "compressed passes per direction, the time, and the lower bound.",
    )
    p.add_argument("file", help="Matrix Market file (.mtx or .mtx.gz); stored entries count")
    p.add_argument("--partition", choices=PARTITIONS, default="column")
    p.add_argument(
        "--order",
        choices=ORDERS + ("best", "all"),
        default="natural",
        help="vertex order; 'all' prints one line per order",
    )
    p.add_argument("--structure", choices=STRUCTURES, default="nonsymmetric")
    p.add_argument("--decompression", choices=DECOMPRESSIONS, default="direct")
    p.add_argument("--no-postprocess", action="store_true", help="keep every color")
    p.add_argument("--seed", type=int, default=0, help="seed of the random order")
    p.add_argument("--check", action="store_true", help="verify the coloring with check_coloring")
    return p


def cli_color(argv: list[str] | None = None) -> int:
    """Run ``stiffasd color``; returns the exit status (0, or 1 when the file cannot be read)."""
    args = _parser().parse_args(argv)
    matrix = _read_or_explain(args.file)
    if matrix is None:
        return 1
    pattern = as_pattern(matrix, "stiffasd color")
    m, n = pattern.shape
    print(f"{args.file}: {m} x {n}, {pattern.nnz} nonzeros")
    if pattern.nnz:
        print(
            f"lower bounds: column coloring >= {int(pattern.row_counts.max())} "
            f"(max nonzeros per row), row coloring >= {int(pattern.col_counts.max())} "
            "(max nonzeros per column)"
        )
    orders = BEST_ORDERS if args.order == "all" else (args.order,)
    for order in orders:
        t0 = time.perf_counter()
        r = color(
            pattern,
            structure=args.structure,
            partition=args.partition,
            order=order,
            decompression=args.decompression,
            postprocess=not args.no_postprocess,
            seed=args.seed,
        )
        dt = time.perf_counter() - t0
        line = (
            f"{args.partition:>13} {r.chosen_order if order == 'best' else order:>22}: "
            f"{r.ncolors_column} column colors + {r.ncolors_row} row colors = {r.ncolors} passes"
            f"  ({dt * 1e3:.1f} ms)"
        )
        if args.check:
            check_coloring(pattern, r)
            line += "  [checked]"
        print(line)
    return 0
