"""The benchmark harness cannot rot: every suite runs with ``--quick`` (nothing is timed here),
every committed result renders, and every docs table marker names a suite part that exists."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from benchmarks import SUITES
from benchmarks import __main__ as runner
from benchmarks._harness import DOCS, RESULTS, Part, in_child, refresh_docs, table, write

# The cheapest parts of each suite (a few seconds each with --quick), so that every suite, the
# figure writer and the child-process helper (jacobian/sharded) run in every test session; all
# parts of every suite run with --runslow.
CHEAP = {
    "detection": ["large", "scaling", "precision"], "coloring": ["scale"],
    "jacobian": ["external", "sharded"], "solve_ivp": ["scipy_lu"], "diffrax": ["testset"],
    "hessian": ["hessian"], "linalg": ["factor_solve", "peer"],
}  # fmt: skip


def _quick(suite, parts, tmp_path):
    docs_before = {p: p.read_text() for p in DOCS.rglob("*.md")}
    argv = [suite, "--quick", "--out", str(tmp_path)] + ["--parts", *parts] * bool(parts)
    assert runner.main(argv) == 0
    result = json.loads((tmp_path / "results" / f"{suite}.json").read_text())
    every = importlib.import_module(SUITES[suite]).PARTS
    assert set(result["parts"]) == set(parts or every)
    for payload in result["parts"].values():
        assert payload["quick"] is True
        assert payload["machine"]["cpu_count"] >= 1 and payload["commit"] and payload["date"]
    md = (tmp_path / "results" / f"{suite}.md").read_text()
    for name in result["parts"]:
        assert f"## {every[name].title}" in md
    # a quick run never touches the committed docs
    assert {p: p.read_text() for p in DOCS.rglob("*.md")} == docs_before


def test_cheap_parts_cover_every_suite():
    assert set(CHEAP) == set(SUITES)
    for suite, parts in CHEAP.items():
        assert set(parts) <= set(importlib.import_module(SUITES[suite]).PARTS), suite


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_suite_cheap_parts_run_quick(suite, tmp_path):
    _quick(suite, CHEAP[suite], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_suite_runs_quick(suite, tmp_path):
    _quick(suite, [], tmp_path)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_committed_result_renders(suite, tmp_path):
    """The current result file of each suite exists, holds every part, and renders."""
    path = RESULTS / f"{suite}.json"
    assert path.exists(), f"no current result for suite {suite}: run python -m benchmarks {suite}"
    result = json.loads(path.read_text())
    parts = importlib.import_module(SUITES[suite]).PARTS
    assert set(result["parts"]) == set(parts)
    write(suite, parts, result, tmp_path)
    assert (tmp_path / f"{suite}.md").read_text() == (RESULTS / f"{suite}.md").read_text()


def test_docs_markers_name_existing_parts():
    keys = set()
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        found = re.findall(r"<!-- table: ([\w-]+)/([\w-]+) -->", text)
        assert len(found) == text.count("<!-- end table -->"), page
        keys |= set(found)
    for suite, part in keys:
        assert suite in SUITES, (suite, part)
        assert part in importlib.import_module(SUITES[suite]).PARTS, (suite, part)


def test_refresh_docs_replaces_only_its_suite(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "p.md"
    page.write_text(
        "intro\n<!-- table: s/a -->\nold\n<!-- end table -->\nmiddle\n"
        "<!-- table: other/a -->\nkeep\n<!-- end table -->\n"
    )
    parts = {"a": Part("A", lambda quick: {}, lambda p: f"| x |\n|---|\n| {p['x']} |")}
    result = {"parts": {"a": {"x": 7, "date": "d", "commit": "c", "machine": {}}}}
    assert refresh_docs("s", parts, result, docs) == [page]
    text = page.read_text()
    assert "| 7 |" in text and "old" not in text and "keep" in text
    assert text.startswith("intro\n<!-- table: s/a -->\n") and "middle" in text
    # nothing to change: nothing written
    assert refresh_docs("s", parts, result, docs) == []


def test_in_child_reports_failures():
    # (its results come back in the cheap parts of the jacobian suite)
    with pytest.raises(RuntimeError, match="benchmarks._harness:no_such_function failed"):
        in_child("benchmarks._harness:no_such_function")


def test_table_columns_format_cells():
    columns = {"a": "{a}", "t": "{t:ms}", "r": "{r:.1fx}", "f": "{f:.2f}", "c": lambda r: r["a"]}
    rows = [dict(a=1, t=0.00123, r=2.345, f=0.5), dict(a=2, t=None, r=None)]
    assert table("", columns, rows).splitlines() == [
        "| a | t | r | f | c |", "|---|---|---|---|---|",
        "| 1 | 1.23 | 2.3x | 0.50 | 1 |", "| 2 | n/a | n/a |  | 2 |",
    ]  # fmt: skip
