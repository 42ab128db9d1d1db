"""``python -m benchmarks SUITE [--quick] [--parts ...] [--render] [--out DIR]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import SUITES
from benchmarks._harness import DOCS, RESULTS, load, record, refresh_docs, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run one benchmark suite; write its results/SUITE.{json,md} and refresh "
        "the docs tables it feeds.",
    )
    add = parser.add_argument
    add("suite", choices=sorted(SUITES))
    add("--quick", action="store_true", help="small sizes, few repeats (seconds); results go "
        "to a temporary directory unless --out is given, and the docs are not touched")  # fmt: skip
    add("--parts", nargs="+", help="only these parts (the others are kept)")
    add("--render", action="store_true", help="measure nothing: rewrite the Markdown and docs "
        "tables (and figures) from the current JSON")  # fmt: skip
    add("--out", type=Path, help="write results (and changed docs pages) under this directory")
    opts = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    module = importlib.import_module(SUITES[opts.suite])
    parts = module.PARTS
    chosen = opts.parts or list(parts)
    unknown = sorted(set(chosen) - set(parts))
    if unknown:
        parser.error(f"suite {opts.suite!r} has no part(s) {unknown}; it has {sorted(parts)}")

    out = opts.out
    if out is None and opts.quick:
        out = Path(tempfile.mkdtemp(prefix=f"bench-{opts.suite}-"))
    results = RESULTS if out is None else out / "results"
    result = load(opts.suite, RESULTS if opts.render else results)
    if not opts.render:
        for name in chosen:
            start = time.perf_counter()
            payload = parts[name].run(opts.quick)
            result["parts"][name] = {**payload, **record(), "quick": opts.quick}
            print(f"== {opts.suite}/{name}: {time.perf_counter() - start:.1f} s", flush=True)
            write(opts.suite, parts, result, results)  # a later part's failure keeps this one
    docs_out = None if out is None else out / "docs"
    figures = (DOCS if docs_out is None else docs_out) / "benchmarks"
    written = write(opts.suite, parts, result, results, figures)
    written += refresh_docs(opts.suite, parts, result, DOCS, docs_out)
    for path in written:
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
