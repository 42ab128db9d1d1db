"""The example scripts: every one parses --help, and the shared driver runs a tiny problem end
to end (numbers and plot)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_help(script, examples_on_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(script), run_name="__main__")
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_driver_runs_and_plots(examples_on_path, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import _common

    from stiffasd.problems import reservoir_exchange

    prob = reservoir_exchange(12, t_span=(0.0, 0.2))
    out = tmp_path / "r.png"
    opts = _common.parser("doc", "n_cells", 12).parse_args(["--plot", str(out)])
    result = _common.run(prob, opts)
    text = capsys.readouterr().out
    assert f"n = {prob.n}" in text and "colors:" in text and "stiffasd.jac" in text
    d = result["described"]
    assert d["nnz"] == 3 * 12 - 2 + 2 * 12 + 1 and d["colors_column"] + d["colors_row"] >= 2
    recs = {r.strategy: r for r in result["records"]}
    assert set(recs) == {"default", "jac_sparsity", "stiffasd"}
    assert all(r.success for r in recs.values())
    assert recs["default"].max_rel_diff < 1e-4
    assert out.exists() and 1000 < out.stat().st_size < 200_000
