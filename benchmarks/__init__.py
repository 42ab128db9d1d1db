"""Benchmarks of stiffasd (not tests): pytest-benchmark suites `bench_*.py` and comparison
scripts that write `benchmarks/results/*.json` and Markdown tables."""
