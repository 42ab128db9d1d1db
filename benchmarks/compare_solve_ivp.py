"""solve_ivp BDF on the 2D Brusselator with the three Jacobian strategies, side by side.

    python -m benchmarks.compare_solve_ivp --sizes 16 32 64 128

Writes benchmarks/results/solve_ivp_brusselator.{json,md}. The dense finite-difference default
is run only up to --max-default-n unknowns (its n^2 memory and n^3 LU make it hopeless beyond).
"""

from __future__ import annotations

import argparse
import json

import jax

jax.config.update("jax_enable_x64", True)

from benchmarks._machine import write_results  # noqa: E402
from stiffasd._compare import FULL_STACK, LABELS, compare_solve_ivp  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--method", default="BDF")
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-8)
    parser.add_argument("--max-default-n", type=int, default=2048)
    parser.add_argument("--name", default="solve_ivp_brusselator")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per strategy (best kept), up to --repeat-max-n"
    )
    parser.add_argument("--repeat-max-n", type=int, default=8192)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of other sizes from the existing results file (marked 'earlier run')",
    )
    opts = parser.parse_args(argv)

    rows = []
    for N in opts.sizes:
        prob = brusselator_2d(N)
        strategies = ["jac_sparsity", "stiffasd", FULL_STACK]
        if prob.n <= opts.max_default_n:
            strategies.insert(0, "default")
        repeat = opts.repeat if prob.n <= opts.repeat_max_n else 1
        recs = compare_solve_ivp(
            prob, strategies, method=opts.method, rtol=opts.rtol, atol=opts.atol, repeat=repeat
        )
        by = {r.strategy: r for r in recs}
        for r in recs:
            d = r.as_dict()
            d["N"] = N
            d["repeat"] = repeat
            d["speedup_vs_jac_sparsity"] = by["jac_sparsity"].wall / r.wall
            if "default" in by:
                d["speedup_vs_default"] = by["default"].wall / r.wall
            rows.append(d)
            print(
                f"N={N:4d} {LABELS[r.strategy]:45s} {r.wall:8.3f} s  nfev={r.nfev:6d} "
                f"njev={r.njev:4d} nlu={r.nlu:4d} diff={r.max_rel_diff:.1e}",
                flush=True,
            )

    if opts.merge:
        from benchmarks._machine import RESULTS

        path = RESULTS / f"{opts.name}.json"
        if path.exists():
            old = json.loads(path.read_text())
            kept = [dict(d, earlier_run=True) for d in old["rows"] if d["N"] not in opts.sizes]
            rows = sorted(rows + kept, key=lambda d: d["N"])

    lines = [
        f"solve_ivp {opts.method} on the 2D Brusselator, t in [0, 11.5], rtol={opts.rtol}, "
        f"atol={opts.atol}. Wall time includes stiffasd's detection, coloring and compilation "
        "(column 'prepare'). Ratios are from the same run. Each strategy ran 'runs' times, "
        "interleaved with the others, and its fastest run is shown."
        + (
            " Sizes marked * are from an earlier run of this script (kept with --merge)."
            if any(d.get("earlier_run") for d in rows)
            else ""
        ),
        "",
        "| N | n | strategy | runs | wall [s] | prepare [s] | nfev | njev | nlu | vs default | "
        "vs jac_sparsity | max rel. diff |",
        "|" + "---|" * 12,
    ]
    for d in rows:
        vs_def = f"{d['speedup_vs_default']:.1f}x" if "speedup_vs_default" in d else "n/a"
        lines.append(
            f"| {d['N']}{'*' if d.get('earlier_run') else ''} | {d['n']} | {d['label']} | {d['repeat']} | {d['wall']:.3f} | "
            f"{d['prepare']:.3f} | "
            f"{d['nfev']} | {d['njev']} | {d['nlu']} | {vs_def} | "
            f"{d['speedup_vs_jac_sparsity']:.2f}x | {d['max_rel_diff']:.1e} |"
        )
    table = "\n".join(lines)
    write_results(
        opts.name,
        {"method": opts.method, "rtol": opts.rtol, "atol": opts.atol, "rows": rows},
        table,
    )
    print(table)


if __name__ == "__main__":
    main()
