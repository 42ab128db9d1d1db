"""The console script: `stiffasd demo` runs end to end and reports every strategy."""

from stiffasd.cli import main


def test_demo_small_grid(capsys):
    assert main(["demo", "--N", "6", "--repeat", "2", "--skip-default"]) == 0
    out = capsys.readouterr().out
    assert "each strategy ran 2 times" in out
    for label in ("jac_sparsity=", "stiffasd.jac (exact", "fixed-pattern LU"):
        assert label in out
    assert "all solves succeeded: True" in out


def test_usage_without_command(capsys):
    assert main([]) == 2
    assert "usage: stiffasd" in capsys.readouterr().out
