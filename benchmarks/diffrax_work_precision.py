"""Work-precision: sparse diffrax implicit solvers against scipy BDF / Radau, 2D Brusselator.

    python benchmarks/diffrax_work_precision.py --N 32 --rtols 1e-3 1e-4 1e-5 1e-6 \
        --diffrax Kvaerno5 Kvaerno5@pid Kvaerno3 Kvaerno5:diffrax --plot

Every method solves `stiffasd.problems.brusselator_2d(N)` on t in [0, 11.5] with rtol in
``--rtols`` and atol = rtol * 1e-3:

* diffrax (``--diffrax``: Kvaerno5, KenCarp4, ...) with ``stiffasd.diffrax.sparse(solver)``
  (direct sparse LU; ``Kvaerno5:diffrax`` for diffrax's own VeryChord termination, see
  `stiffasd.diffrax.SparseVeryChord`), a PIDController (``--controller``, see `controller_options`), dt0 = 1e-3;
  compile time (lower + compile) is reported apart, run time is the best of ``--repeat`` runs of
  the compiled solve;
* scipy ``solve_ivp`` with ``method=stiffasd.scipy.BDF`` / ``stiffasd.scipy.Radau`` and
  ``jac=stiffasd.jac(rhs)`` (exact sparse Jacobian); detection and compilation are done before
  the timer starts; best of ``--repeat`` runs.

Error: ``max_i |y_i(t1) - ref_i| / max(|ref_i|, 1)`` against a tight reference (stiffasd.scipy.Radau
at rtol 1e-10, atol 1e-13). The ratio "at equal accuracy" interpolates the scipy curve (log time
against log error, piecewise linear, no extrapolation) at each diffrax point's error.

Writes benchmarks/results/diffrax_work_precision[-TAG].json and .md and, with ``--plot``,
docs/diffrax_work_precision.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stiffasd.diffrax as sdx  # noqa: E402
import stiffasd.scipy as ss  # noqa: E402
from benchmarks._machine import RESULTS, machine  # noqa: E402
from benchmarks._timing import compile_and_time  # noqa: E402
from benchmarks.diffrax_brusselator import prepared_scipy_inputs  # noqa: E402
from stiffasd.problems import brusselator_2d  # noqa: E402

T1, DT0 = 11.5, 1e-3
CONTROLLERS = {"default": {}, "pid": {"pcoeff": 0.3, "icoeff": 0.4}}
DOCS = Path(__file__).resolve().parent.parent / "docs"


def controller_options(name: str) -> dict:
    """``default``, ``pid``, optionally suffixed ``-fmaxF`` (factormax = F)."""
    base, _, fmax = name.partition("-fmax")
    opts = dict(CONTROLLERS[base])
    if fmax:
        opts["factormax"] = float(fmax)
    return opts


def rel_error(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1.0)))


def reference(problem, cache_dir: Path, method: str = "radau") -> np.ndarray:
    suffix = "" if method == "radau" else "_bdf"
    path = cache_dir / f"diffrax_wp_ref_N{problem.info['N']}{suffix}.npy"
    if path.exists():
        return np.load(path)
    rec = run_scipy(problem, "Radau" if method == "radau" else "BDF", 1e-10, 1e-13, repeat=1)
    np.save(path, rec["y1"])
    return rec["y1"]


def run_scipy(problem, method: str, rtol: float, atol: float, repeat: int) -> dict:
    f, jac = prepared_scipy_inputs(problem)  # compiled and prepared: not timed
    cls = {"BDF": ss.BDF, "Radau": ss.Radau}[method]
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        sol = solve_ivp(
            f,
            (0.0, T1),
            np.asarray(problem.y0),
            method=cls,
            args=problem.args,
            jac=jac,
            rtol=rtol,
            atol=atol,
        )
        best = min(best, time.perf_counter() - t)
    return {
        "method": f"scipy {method}",
        "rtol": rtol,
        "compile_s": None,
        "run_s": best,
        "steps": int(sol.t.size - 1),
        "rejected": None,
        "njev": int(sol.njev),
        "nlu": int(sol.nlu),
        "y1": sol.y[:, -1],
    }


def run_diffrax(problem, name: str, ctrl: str, rtol: float, atol: float, repeat: int) -> dict:
    base, _, iteration = name.partition(":")  # "Kvaerno5" or "Kvaerno5:diffrax"
    solver = sdx.sparse(getattr(diffrax, base)(), iteration=iteration or "converge")
    term = diffrax.ODETerm(problem.rhs)
    controller = diffrax.PIDController(rtol=rtol, atol=atol, **controller_options(ctrl))

    def solve(y0, p):
        sol = diffrax.diffeqsolve(
            term,
            solver,
            0.0,
            T1,
            DT0,
            y0,
            args=p,
            stepsize_controller=controller,
            max_steps=200_000,
        )
        return sol.ys[-1], sol.stats

    y0 = jnp.asarray(problem.y0)
    p = jnp.asarray(problem.args[0])
    compile_s, walls, (y1, stats) = compile_and_time(
        solve, y0, p, repeat=repeat, before=sdx.reset_stats
    )
    best = min(walls)
    work = sdx.stats()
    return {
        "method": f"diffrax {name} ({ctrl})",
        "rtol": rtol,
        "compile_s": compile_s,
        "run_s": best,
        "steps": int(stats["num_steps"]),
        "rejected": int(stats["num_rejected_steps"]),
        "njev": work["jacobians"],
        "nlu": work["factorizations"],
        "y1": np.asarray(y1),
    }


def time_at_error(curve: list[dict], err: float) -> float | None:
    """Run time of a method at error ``err``: log-log piecewise-linear interpolation of its
    (error, time) points; None outside their range."""
    pts = sorted((r["err"], r["run_s"]) for r in curve)
    le = np.log([p[0] for p in pts])
    lt = np.log([p[1] for p in pts])
    x = np.log(err)
    if x < le.min() or x > le.max():
        return None
    # errors are not monotone in rtol in general: interpolate on the sorted points
    return float(np.exp(np.interp(x, le, lt)))


def ratios(records: list[dict]) -> None:
    for N in sorted({r["N"] for r in records}):
        rows = [r for r in records if r["N"] == N]
        scipy_methods = sorted({r["method"] for r in rows if r["method"].startswith("scipy")})
        for r in rows:
            if r["method"].startswith("scipy"):
                continue
            for sm in scipy_methods:
                t = time_at_error([s for s in rows if s["method"] == sm], r["err"])
                r[f"ratio_vs_{sm}"] = None if t is None else r["run_s"] / t


def write(records: list[dict], tag: str, opts) -> None:
    ratios(records)
    name = "diffrax_work_precision" + (f"-{tag}" if tag else "")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": dict(machine(), loadavg=os.getloadavg()),
        "t1": T1,
        "dt0": DT0,
        "error": "max_i |y_i - ref_i| / max(|ref_i|, 1) at t1; ref: stiffasd.scipy."
        f"{'Radau' if opts.ref == 'radau' else 'BDF'} rtol 1e-10 atol 1e-13",
        "records": records,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    scipy_methods = sorted({r["method"] for r in records if r["method"].startswith("scipy")})
    head = " | ".join(f"time / {m} at equal error" for m in scipy_methods)
    lines = [
        f"# Work-precision on the 2D Brusselator (t in [0, {T1}], atol = rtol * 1e-3)",
        "",
        "Error: max_i |y_i(t1) - ref_i| / max(|ref_i|, 1), reference stiffasd.scipy."
        f"{'Radau' if opts.ref == 'radau' else 'BDF'} rtol 1e-10. Ratio: run time divided by "
        "the scipy method's time interpolated (log-log) at the same error; blank outside its "
        "range.",
        "",
        f"| N | method | rtol | error | run s | compile s | steps (rej.) | Jac. | LU | {head} |",
        "|---|---|---|---|---|---|---|---|---|" + "---|" * len(scipy_methods),
    ]
    for r in records:
        cells = " | ".join(
            "" if r.get(f"ratio_vs_{m}") is None else f"{r[f'ratio_vs_{m}']:.2f}"
            for m in scipy_methods
        )
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        rej = "" if r["rejected"] is None else f" ({r['rejected']})"
        lines.append(
            f"| {r['N']} | {r['method']} | {r['rtol']:g} | {r['err']:.2e} | {r['run_s']:.2f} | "
            f"{comp} | {r['steps']}{rej} | {r['njev']} | {r['nlu']} | {cells} |"
        )
    m = out["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu')}, {m.get('cpu_count')} cores (shared), load average at the "
        f"end {', '.join(f'{x:.1f}' for x in m['loadavg'])}; jax {m.get('jax')}, diffrax "
        f"{m.get('diffrax')}, scipy {m.get('scipy')}, python {m.get('python')}.",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    if opts.plot:
        plot(records, DOCS / "diffrax_work_precision.png")


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ns = sorted({r["N"] for r in records})
    # one color per method across panels
    methods = sorted({r["method"] for r in records})
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(Ns), figsize=(6 * len(Ns), 4.5), squeeze=False)
    for ax, N in zip(axes[0], Ns, strict=True):
        rows = [r for r in records if r["N"] == N]
        for meth in dict.fromkeys(r["method"] for r in rows):
            pts = sorted((r["err"], r["run_s"], r["rtol"]) for r in rows if r["method"] == meth)
            style = "--o" if meth.startswith("scipy") else "-s"
            ax.loglog(
                [p[0] for p in pts], [p[1] for p in pts], style, color=colors[meth], label=meth
            )
        ax.set_xlabel("error at t1 (max |y - ref| / max(|ref|, 1))")
        ax.set_ylabel("run time, s (diffrax: compile excluded)")
        ax.set_title(f"2D Brusselator, N = {N} (n = {2 * N * N})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[32])
    parser.add_argument("--rtols", type=float, nargs="+", default=[1e-3, 1e-4, 1e-5, 1e-6])
    parser.add_argument("--diffrax", nargs="+", default=["Kvaerno5"])
    parser.add_argument("--controller", nargs="+", default=["default"])
    parser.add_argument("--scipy", nargs="+", default=["BDF", "Radau"])
    parser.add_argument(
        "--scipy-extra-rtols",
        type=float,
        nargs="*",
        default=[],
        help="further rtols for the scipy methods only (to cover the diffrax errors)",
    )
    parser.add_argument(
        "--ref",
        choices=["radau", "bdf"],
        default="radau",
        help="reference: stiffasd.scipy.Radau (default) or BDF, rtol 1e-10, atol 1e-13",
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tag", default="")
    parser.add_argument("--plot", action="store_true")
    parser.add_argument("--cache-dir", default="/tmp")
    parser.add_argument(
        "--replot",
        nargs="+",
        metavar="JSON[:METHOD]",
        help="only redraw docs/diffrax_work_precision.png from result files; ':METHOD' keeps "
        "only that method's records of a file (e.g. the before/after comparison)",
    )
    opts = parser.parse_args()
    if opts.replot:
        records = []
        for spec in opts.replot:
            path, _, meth = spec.partition(":")
            recs = json.loads(Path(path).read_text())["records"]
            records += [r for r in recs if not meth or r["method"] == meth]
        plot(records, DOCS / "diffrax_work_precision.png")
        return

    records: list[dict] = []
    for N in opts.N:
        problem = brusselator_2d(N)
        ref = reference(problem, Path(opts.cache_dir), opts.ref)
        jobs = [("scipy", m, None) for m in opts.scipy]
        for spec in opts.diffrax:  # "Kvaerno5", "Kvaerno5:diffrax", "Kvaerno5@pid-fmax2"
            meth, _, ctrl = spec.partition("@")
            jobs += [("diffrax", meth, c) for c in ([ctrl] if ctrl else opts.controller)]
        # Interleaved (tolerance-major): on a shared machine the load drifts over minutes,
        # so the methods compared at one tolerance run next to each other.
        runs = [(job, rtol) for rtol in opts.rtols for job in jobs]
        runs += [
            (job, rtol) for rtol in opts.scipy_extra_rtols for job in jobs if job[0] == "scipy"
        ]
        for (kind, meth, ctrl), rtol in runs:
            atol = rtol * 1e-3
            print(f"N={N} {kind} {meth} {ctrl or ''} rtol={rtol:g} ...", flush=True)
            if kind == "scipy":
                rec = run_scipy(problem, meth, rtol, atol, opts.repeat)
            else:
                rec = run_diffrax(problem, meth, ctrl, rtol, atol, opts.repeat)
            rec["err"] = rel_error(rec.pop("y1"), ref)
            rec.update(N=N, n=problem.n, atol=atol)
            records.append(rec)
            print(json.dumps(rec), flush=True)
            write(records, opts.tag, opts)  # keep partial results


if __name__ == "__main__":
    main()
