"""stiffasd's benchmarks: a few suites on one harness (not tests; nothing here is timed by pytest).

Run a suite::

    python -m benchmarks SUITE            # measure, write results/SUITE.{json,md}, refresh docs
    python -m benchmarks SUITE --quick    # small and fast, into a temporary directory
    python -m benchmarks SUITE --parts a b    # only these parts; the others are kept
    python -m benchmarks SUITE --render   # no measuring: tables from the current JSON

Each suite keeps one current result: ``results/SUITE.json`` (every number; each part with the
machine, the commit and the date it was measured) and ``results/SUITE.md`` (its tables). A docs
page shows a table by holding the two markers ``<!-- table: SUITE/PART -->`` and
``<!-- end table -->``; every run of the suite rewrites what lies between them.

The shared pieces:

* `benchmarks.problems`: the problem registry (stiffasd's own `stiffasd.problems`, plus the
  detection-only and Hessian functions, the stiff IVP test set and the sharding problems, which
  tests use too);
* `benchmarks._harness`: `record()` (machine, commit, date), the timing helpers (`best_of`,
  `interleaved`, `compile_and_time`), `in_child` / `in_devices` (a function run in a fresh
  process: forced host devices, an empty compilation cache), `table` (columns as format
  strings over a payload's rows: ``"{wall:.2f}"``, ``"{t:ms}"``, ``"{speedup:.1fx}"``), the
  results writer and the docs-table refresher.

How to add a suite:

1. Write ``benchmarks/NAME.py`` with a module docstring saying what it measures and a dict
   ``PARTS = {"part": Part(title, run, render)}`` (`benchmarks._harness.Part`): ``run(quick)``
   measures and returns a JSON-serializable dict; ``render(payload)`` turns that dict (and only
   it) into a Markdown table with its caption. ``quick`` must make the part finish in seconds:
   a test runs every suite that way.
2. Add ``"NAME": "benchmarks.NAME"`` to `SUITES` below.
3. Compare alternatives side by side in one process, interleaved, best of several
   (`interleaved`), and show ratios: the machine running them may be small and shared.
4. Put ``<!-- table: NAME/part -->`` / ``<!-- end table -->`` where a docs page shows the
   table, run ``python -m benchmarks NAME``, and commit ``results/NAME.*`` with the docs.
"""

SUITES = {
    "detection": "benchmarks.detection",
    "coloring": "benchmarks.coloring",
    "jacobian": "benchmarks.jacobian",
    "solve_ivp": "benchmarks.solve_ivp",
    "diffrax": "benchmarks.diffrax",
    "hessian": "benchmarks.hessian",
    "linalg": "benchmarks.linalg",
}
