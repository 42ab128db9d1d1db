import os

import jax
import pytest
from threadpoolctl import threadpool_limits

jax.config.update("jax_enable_x64", True)
# The setting docs/gpu.md recommends for the compiled LU's CPU kernels (one BLAS thread): the
# tests run many small factorizations, which a multithreaded BLAS slows down 5-30x. Tests of
# the multithreaded case patch `blas_threads`. scipy.linalg first: the BLAS JAX's LAPACK calls
# go through is scipy's, and a limit only reaches the libraries already loaded.
import scipy.linalg  # noqa: E402,F401

threadpool_limits(1, "blas")


def pytest_addoption(parser):
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="also run tests marked slow (or set STIFFASD_RUN_SLOW=1)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("STIFFASD_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or STIFFASD_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
