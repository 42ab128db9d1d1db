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


def test_color_reads_a_file_and_refuses_bad_ones_in_one_line(tmp_path, capsys):
    """`stiffasd color` on a missing, unreadable or malformed file: one line on stderr naming the
    file and the problem, exit status 1, no traceback; a dense (array) Matrix Market file gives
    its nonzeros."""
    import gzip

    good = tmp_path / "tri.mtx"
    good.write_text(
        "%%MatrixMarket matrix coordinate real general\n3 3 5\n"
        "1 1 2\n2 1 -1\n2 2 2\n3 2 -1\n3 3 2\n"
    )
    dense = tmp_path / "dense.mtx"
    dense.write_text("%%MatrixMarket matrix array real general\n2 2\n1\n0\n0\n1\n")
    assert main(["color", str(good)]) == 0
    assert "3 x 3, 5 nonzeros" in capsys.readouterr().out
    assert main(["color", str(dense)]) == 0
    assert "2 x 2, 2 nonzeros" in capsys.readouterr().out

    garbage = tmp_path / "garbage.mtx"
    garbage.write_text("not a matrix\n")
    truncated = tmp_path / "truncated.mtx"
    truncated.write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.0\n")
    not_gzip = tmp_path / "plain.mtx.gz"
    not_gzip.write_text("%%MatrixMarket\n")
    bad_gzip = tmp_path / "bad.mtx.gz"
    bad_gzip.write_bytes(gzip.compress(b"hello\n"))
    cases = {
        str(tmp_path / "missing.mtx"): "no such file",
        str(tmp_path): "is a directory",
        str(garbage): "not a readable Matrix Market file",
        str(truncated): "not a readable Matrix Market file",
        str(not_gzip): "not a readable Matrix Market file",
        str(bad_gzip): "not a readable Matrix Market file",
    }
    for path, problem in cases.items():
        assert main(["color", path]) == 1, path
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"stiffasd color: {path}: {problem}")
        assert "Traceback" not in captured.err and captured.out == ""
