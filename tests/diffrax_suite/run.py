"""Run diffrax's own test suite with every implicit solver wrapped by `stiffasd.diffrax.sparse`.

    python tests/diffrax_suite/run.py [--tests DIR] [--select relevant|ci|FILE...]
                                      [--linear-solver direct|gmres] [--plain] [-n 2]

diffrax's tests are not part of its wheel, so they are located (in this order) at ``--tests``,
at ``$STIFFASD_DIFFRAX_TESTS``, in the cache ``~/.cache/stiffasd/diffrax-VERSION``, or cloned
there from diffrax's repository at the tag of the *installed* version (``git clone --depth 1
--branch vVERSION``). DIR is a checkout of diffrax (containing ``test/``).

The tests run as diffrax runs them (its ``conftest.py``, 64-bit floats, strict dtype promotion,
jaxtyping + beartype runtime checks of diffrax), with ``stiffasd_wrap_plugin`` patching the step
of every implicit solver of diffrax (see that module). With ``--plain`` the same selection runs
unwrapped too, so each wrapped failure is compared with diffrax's own outcome. Results go to
``tests/diffrax_suite/results/`` as JSON and Markdown (machine, versions, per-test outcome of the
tests that stepped an implicit solver).

Selections: ``relevant`` = the test files that build implicit solvers; ``ci`` = a subset that
covers every cause fixed so far in a few minutes (`CI_SELECTION`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = HERE / "results"
URL = "https://github.com/patrick-kidger/diffrax"

#: The test files of diffrax 0.7.2 that build implicit solvers.
RELEVANT = [
    "test/test_solver.py",
    "test/test_integrate.py",
    "test/test_interpolation.py",
    "test/test_global_interpolation.py",
    "test/test_detest.py",
    "test/test_adjoint.py",
    "test/test_event.py",
    "test/test_adaptive_stepsize_controller.py",
]
#: A few minutes on two cores: each cause once (complex, zero-size and pytree states through
#: test_basic's random shapes, solvers stepped eagerly, divergence reporting, closures).
CI_SELECTION = [
    "test/test_solver.py::test_implicit_euler_adaptive",
    "test/test_solver.py::test_sil3",
    "test/test_solver.py::test_implicit_closure_convert",
    "test/test_integrate.py::test_ode_order[float64-solver10]",  # ImplicitEuler, closure
    "test/test_integrate.py::test_ode_order[complex128-solver13]",  # Kvaerno5, complex
    "test/test_interpolation.py::test_derivative",
] + [  # ImplicitEuler (solver4), Kvaerno3 (solver5): random shapes, real and complex
    f"test/test_integrate.py::test_basic[stepsize_controller1-treedef{t}-{d}-float-solver{s}]"
    for t in range(3)
    for d in ("float32", "complex64")
    for s in (4, 5)
]


def _version() -> str:
    return metadata.version("diffrax")


def locate_tests(explicit: str | None) -> Path:
    """A checkout of diffrax's repository at the installed version (see the module docs)."""
    version = _version()
    for cand in (explicit, os.environ.get("STIFFASD_DIFFRAX_TESTS")):
        if cand:
            root = Path(cand).resolve()
            if root.name == "test":
                root = root.parent
            if not (root / "test" / "conftest.py").exists():
                raise SystemExit(f"run.py --tests {cand}: no test/conftest.py under {root}")
            return root
    cache = Path.home() / ".cache" / "stiffasd" / f"diffrax-{version}"
    if (cache / "test" / "conftest.py").exists():
        return cache
    git = shutil.which("git")
    if git is None:
        raise SystemExit("run.py: no diffrax tests found and no git to fetch them; pass --tests")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cmd = [git, "clone", "--quiet", "--depth", "1", "--branch", f"v{version}", URL, str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"run.py: could not fetch diffrax {version}'s tests ({done.stderr.strip()}); clone "
            f"{URL} at tag v{version} yourself and pass --tests DIR"
        )
    return cache


def _jaxtyping_option(root: Path) -> list[str]:
    """diffrax's own runtime type checks (its pyproject's addopts)."""
    spec = (
        "diffrax,beartype.beartype(conf=beartype.BeartypeConf("
        "strategy=beartype.BeartypeStrategy.On))"
    )
    py = root / "pyproject.toml"
    if py.exists():
        for line in py.read_text().splitlines():
            if line.strip().startswith("addopts") and "--jaxtyping-packages=" in line:
                spec = line.split("--jaxtyping-packages=", 1)[1].rstrip().rstrip('"')
    return [f"--jaxtyping-packages={spec}"]


def run_pytest(root, selection, *, wrap, linear_solver, workers, timeout, extra):
    """One pytest run; returns {test id: (outcome, seconds, message)} and the reached tests."""
    tmp = Path(tempfile.mkdtemp(prefix="diffrax-suite-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE), env.get("PYTHONPATH", "")])
    env["STIFFASD_DIFFRAX_WRAP"] = "1" if wrap else "0"
    env["STIFFASD_DIFFRAX_LINEAR_SOLVER"] = linear_solver
    env["STIFFASD_DIFFRAX_REACHED"] = str(tmp / "reached")
    cmd = [sys.executable, "-m", "pytest", *selection, "-p", "stiffasd_wrap_plugin", "-q"]
    cmd += ["-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:benchmark"]
    cmd += _jaxtyping_option(root) + ["--junitxml", str(tmp / "junit.xml")]
    if workers > 1:
        cmd += ["-n", str(workers)]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    cmd += extra
    print("+", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=root, env=env)
    wall = time.perf_counter() - t0
    outcomes = {}
    for case in ET.parse(tmp / "junit.xml").getroot().iter("testcase"):
        name = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (
                    (node.get("message") or "").splitlines()[0][:200] if node.get("message") else ""
                )
                break
        if "Timeout" in message:
            outcome = "timeout"
        outcomes[name] = (outcome, float(case.get("time", 0.0)), message)
    reached = {}
    for f in tmp.glob("reached.*.json"):
        reached.update(json.loads(f.read_text()))
    shutil.rmtree(tmp, ignore_errors=True)
    return outcomes, reached, wall


def _machine() -> dict:
    import jax

    versions = {p: metadata.version(p) for p in ("diffrax", "optimistix", "equinox", "lineax")}
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return dict(
        python=platform.python_version(),
        jax=jax.__version__,
        cpus=os.cpu_count(),
        machine=platform.machine(),
        commit=commit,
        **versions,
    )


def _markdown(report: dict) -> str:
    runs = report["runs"]
    lines = [
        f"# diffrax {report['machine']['diffrax']}'s tests with stiffasd.diffrax.sparse",
        "",
        f"Selection: `{' '.join(report['selection'])}`; linear solver `{report['linear_solver']}`;"
        f" per-test timeout {report['timeout']} s; commit {report['machine']['commit']};"
        f" JAX {report['machine']['jax']}, Python {report['machine']['python']},"
        f" {report['machine']['cpus']} CPUs.",
        "",
        "| run | tests that stepped an implicit solver | passed | failed | error | timeout | "
        "skipped | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        c = run["counts"]
        lines.append(
            f"| {name} | {run['reached']} | {c.get('passed', 0)} | {c.get('failed', 0)} | "
            f"{c.get('error', 0)} | {c.get('timeout', 0)} | {c.get('skipped', 0)} | "
            f"{run['wall_s']:.0f} |"
        )
    bad = [
        (t, r) for t, r in report["tests"].items() if r["wrapped"][0] not in ("passed", "skipped")
    ]
    lines += ["", f"Wrapped tests that did not pass: {len(bad)}", ""]
    if bad:
        lines += ["| test | wrapped | plain | message |", "|---|---|---|---|"]
        for t, r in sorted(bad):
            plain = r.get("plain", ["not run"])[0]
            msg = r["wrapped"][2].replace("|", "/")
            lines.append(f"| `{t}` | {r['wrapped'][0]} | {plain} | {msg} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", help="a checkout of diffrax at the installed version")
    ap.add_argument("--select", nargs="+", default=["relevant"])
    ap.add_argument("--linear-solver", default="auto", choices=["auto", "jax", "direct", "gmres"])
    ap.add_argument("--plain", action="store_true", help="also run the selection unwrapped")
    ap.add_argument("-n", "--workers", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=600, help="per test, seconds")
    ap.add_argument("--name", default=None, help="result file stem (default from the options)")
    ap.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")
    args = ap.parse_args(argv)
    root = locate_tests(args.tests)
    selection = []
    for s in args.select:
        selection += {"relevant": RELEVANT, "ci": CI_SELECTION}.get(s, [s])
    report = dict(
        machine=_machine(),
        selection=selection,
        linear_solver=args.linear_solver,
        timeout=args.timeout,
        runs={},
        tests={},
    )
    kinds = [("wrapped", True)] + ([("plain", False)] if args.plain else [])
    for name, wrap in kinds:
        outcomes, reached, wall = run_pytest(
            root,
            selection,
            wrap=wrap,
            linear_solver=args.linear_solver,
            workers=args.workers,
            timeout=args.timeout,
            extra=args.pytest_args,
        )
        ids = {t for t in outcomes if t in reached}
        counts: dict[str, int] = {}
        for t in ids:
            counts[outcomes[t][0]] = counts.get(outcomes[t][0], 0) + 1
            report["tests"].setdefault(t, {"solvers": reached[t]})[name] = outcomes[t]
        report["runs"][name] = dict(reached=len(ids), counts=counts, wall_s=wall)
    stem = args.name or f"diffrax-{_version()}-{'-'.join(args.select)}-{args.linear_solver}"
    stem = stem.replace("/", "_").replace(":", "_")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    (RESULTS / f"{stem}.md").write_text(_markdown(report))
    print(_markdown(report))
    wrapped = report["runs"]["wrapped"]
    failed = wrapped["reached"] - wrapped["counts"].get("passed", 0)
    failed -= wrapped["counts"].get("skipped", 0)
    if args.plain:  # count only the tests that diffrax's own solvers pass
        failed = sum(
            1
            for r in report["tests"].values()
            if r.get("plain", ("",))[0] == "passed"
            and r.get("wrapped", ("",))[0] not in ("passed", "skipped")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
