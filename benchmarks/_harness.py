"""The harness every suite shares: the machine record, the timing helpers, the results writer and
the docs-table refresher. See the package docstring (`benchmarks/__init__.py`) for how a suite
plugs in."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata as md
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
_PACKAGES = ("stiffasd", "jax", "jaxlib", "numpy", "scipy", "numba", "diffrax", "lineax")
_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS")  # recorded when set


# ------------------------------------------------------------------------------ the record
def machine() -> dict:
    """CPU model, core count, memory, load, OS and the versions of the packages that matter."""
    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        info["cpu"] = platform.processor()
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        info["mem_total"] = fh.readline().split(":", 1)[1].strip()
    info |= {var: os.environ[var] for var in _ENV if os.environ.get(var)}
    for pkg in _PACKAGES:
        with contextlib.suppress(md.PackageNotFoundError):
            info[pkg] = md.version(pkg)
    return info


def commit() -> str:
    """Short hash of the checkout measured, ``+dirty`` when stiffasd/ or benchmarks/ differ."""

    def git(*args):
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=ROOT, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "stiffasd", "benchmarks/*.py")
    return head + ("+dirty" if dirty else "")


def record() -> dict:
    """What every measured part carries: machine, commit and date (UTC)."""
    now = datetime.datetime.now(datetime.UTC)
    return {"machine": machine(), "commit": commit(), "date": now.strftime("%Y-%m-%d %H:%M UTC")}


def record_line(rec: dict) -> str:
    """One Markdown line naming where and when a part was measured."""
    m = rec.get("machine", {})
    keys = ("cpu", "cpu_count", "mem_total", "load_1min", "python", "jax", "numpy", "scipy", *_ENV)
    where = ", ".join(f"{k} {m[k]}" for k in keys if k in m)
    line = f"Measured {rec.get('date', '?')} at commit {rec.get('commit', '?')}; {where}"
    if rec.get("note"):
        line += f". {rec['note']}"
    return line


# ------------------------------------------------------------------------------- timing
def _ready(out):
    import jax

    return jax.block_until_ready(out)


def best_of(
    fn: Callable, *args: Any, reps: int = 20, min_time: float = 0.2, max_reps: int = 1000
) -> tuple[float, float]:
    """Best and median seconds of ``fn(*args)`` (JAX outputs waited for), after one warm-up
    call: at least ``reps`` calls and ``min_time`` seconds, at most ``max_reps`` calls."""
    _ready(fn(*args))
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        _ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if len(times) >= max_reps:
            break
    return float(np.min(times)), float(np.median(times))


def interleaved(
    fns: dict[str, Callable[[], Any]], *, rounds: int = 5, reps: int = 5, min_time: float = 0.05
) -> dict[str, float]:
    """Best seconds of each zero-argument callable, the callables taking turns for ``rounds``
    rounds (each round: ``best_of`` with ``reps`` calls), so that a burst of load on a shared
    machine hits all of them alike. Ratios of the results are what a table should show."""
    best = dict.fromkeys(fns, np.inf)
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_of(fn, reps=reps, min_time=min_time)[0])
    return best


def compile_and_time(
    fn: Callable, *args: Any, repeat: int = 1, before: Callable[[], Any] | None = None
) -> tuple[float, list[float], Any]:
    """jit-compile ``fn`` for ``args`` (timed apart), then run the compiled function ``repeat``
    times, calling ``before()`` ahead of each run (to reset counters).

    Returns:
        ``(compile seconds, wall seconds of every run, output of the last run)``.
    """
    import jax

    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    walls, out = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        out = _ready(compiled(*args))
        walls.append(time.perf_counter() - start)
    return compile_s, walls, out


def in_child(
    target: str,
    *args: Any,
    env: dict[str, str] | None = None,
    python: str | None = None,
    timeout: float | None = None,
) -> Any:
    """``module:function(*args)`` run in a fresh Python process (64-bit JAX of its own: forced
    host devices through ``env={"XLA_FLAGS": ...}``, a compilation cache of its own; another
    environment's interpreter with ``python``, importing this checkout); the function's
    JSON-serializable result comes back. A failure, or a child still running after
    ``timeout`` seconds, raises RuntimeError."""
    code = "from benchmarks._harness import _child; _child()"
    cmd = [python or sys.executable, "-c", code, target, json.dumps(args)]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})},
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"{target} still running after {timeout:g} s: stopped") from err
    if out.returncode:
        raise RuntimeError(f"{target} failed in its process:\n{out.stderr[-4000:]}")
    return json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))[7:])


def in_devices(target: str, devices: int, *args: Any) -> Any:
    """`in_child` with ``devices`` forced host devices (XLA sets them only before it starts)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    return in_child(target, devices, *args, env={"XLA_FLAGS": flags})


def _child() -> None:
    import importlib

    module, name = sys.argv[1].split(":")
    fn = getattr(importlib.import_module(module), name)
    import jax

    jax.config.update("jax_enable_x64", True)
    result = fn(*json.loads(sys.argv[2]))
    print("RESULT " + json.dumps(result, default=_default), flush=True)


def peak_rss_mb() -> float:
    """The process's largest resident set so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rel_diff(x, ref, floor: float = 1e-300) -> float:
    """``max |x - ref| / max(max |ref|, floor)`` (dense arrays or scipy sparse matrices)."""
    if hasattr(ref, "tocsc"):
        return float(abs(x - ref).max()) / max(float(abs(ref).max()), floor)
    x, ref = np.asarray(x), np.asarray(ref)
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), floor))


# ------------------------------------------------------------------------------ formatting
def ms(seconds: float | None) -> str:
    """Milliseconds with 3 significant digits; ``n/a`` for a missing or infinite value."""
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    return f"{1e3 * seconds:.3g}"


def ratio(a: float | None, b: float | None, fmt: str = ".1f") -> str:
    """``a / b`` as ``12.3x``; ``n/a`` when either is missing."""
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or b == 0:
        return "n/a"
    return f"{a / b:{fmt}}x"


def spread(values, fmt: str = ".1f") -> str:
    """``min-max x (median M x, k cases)`` of a list of ratios, for a table's summary line."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return "n/a"
    return f"{v.min():{fmt}}x to {v.max():{fmt}}x (median {np.median(v):{fmt}}x, {v.size} cases)"


class _Cell:
    """A table cell's value, formatted by a column's format field: a standard spec (missing or
    None: empty), ``ms`` (seconds as milliseconds, `ms`), or a standard spec ending in ``x``
    (a ratio such as ``12.3x``, `ratio`)."""

    def __init__(self, value):
        self.value = value

    def __format__(self, spec: str) -> str:
        v = self.value
        if spec == "ms":
            return ms(v)
        if len(spec) > 1 and spec.endswith("x"):
            return ratio(v, 1.0, spec[:-1])
        return "" if v is None else format(v, spec)


class _Row(dict):
    def __getitem__(self, key):
        return _Cell(self.get(key))


def table(caption: str, columns: dict[str, Any] | list[str], rows: list) -> str:
    """A Markdown table under its caption.

    ``columns`` maps each header to its cell: a format string over the row's keys (see `_Cell`:
    ``"{wall:.2f}"``, ``"{stiffasd_s:ms}"``, ``"{speedup:.1fx}"``) or a function of the row;
    ``rows`` are then dicts (a payload's rows). With a list of headers instead, ``rows`` are
    lists of cells, already formatted or str()-ed."""
    if isinstance(columns, dict):
        header = list(columns)
        rows = [
            [c(r) if callable(c) else c.format_map(_Row(r)) for c in columns.values()] for r in rows
        ]
    else:
        header = columns
    lines = [caption, ""] if caption else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- suites
@dataclass(frozen=True)
class Part:
    """One measured table of a suite.

    Args:
        title: heading of the table in the suite's Markdown.
        run: ``run(quick) -> payload``: measures and returns a JSON-serializable dict of every
            number (``quick``: small sizes, a few repeats; it must finish in seconds).
        render: ``render(payload) -> Markdown``: the table with its caption, from the payload
            alone (so that tables can be regenerated without measuring again).
        plot: optional ``plot(payload, directory) -> path``: draws the part's figure into
            ``directory`` (the docs' ``benchmarks/`` folder) from the payload alone.
    """

    title: str
    run: Callable[[bool], dict]
    render: Callable[[dict], str]
    plot: Callable[[dict, Path], Path] | None = None


def _default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serializable: {type(x).__name__}")


def load(suite: str, results: Path = RESULTS) -> dict:
    """The current result of ``suite`` (``{"suite", "parts": {name: payload}}``), or empty."""
    path = results / f"{suite}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return data if "parts" in data else {"suite": suite, "parts": {}}


def write(
    suite: str,
    parts: dict[str, Part],
    result: dict,
    results: Path = RESULTS,
    figures: Path | None = None,
) -> list[Path]:
    """Write ``results/<suite>.json`` (every number, with each part's record) and
    ``results/<suite>.md`` (every part's table under its title, with its record line); with
    ``figures``, draw the parts' figures there."""
    results.mkdir(parents=True, exist_ok=True)
    jpath = results / f"{suite}.json"
    jpath.write_text(json.dumps(result, indent=1, default=_default) + "\n")
    lines = [f"# Benchmark suite `{suite}`", "", f"Regenerate: `python -m benchmarks {suite}`.", ""]
    for name, part in parts.items():
        payload = result["parts"].get(name)
        if payload is None:
            continue
        lines += [f"## {part.title}", "", part.render(payload), "", record_line(payload), ""]
    mpath = results / f"{suite}.md"
    mpath.write_text("\n".join(lines))
    written = [jpath, mpath]
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        for name, part in parts.items():
            if part.plot is not None and name in result["parts"]:
                written.append(part.plot(result["parts"][name], figures))
    return written


def figure():
    """A new matplotlib figure and axes (non-interactive backend), for a part's plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.4), dpi=100)


def save_figure(fig, ax, path: Path, *, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend the log-log axes, write the figure to ``path`` and close it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_MARK = re.compile(
    r"(<!-- table: (?P<key>[\w-]+/[\w-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S
)


def refresh_docs(
    suite: str, parts: dict[str, Part], result: dict, docs: Path = DOCS, out: Path | None = None
) -> list[Path]:
    """Replace, in every docs page, the text between ``<!-- table: SUITE/PART -->`` and
    ``<!-- end table -->`` by that part's current table and record line. With ``out``, the
    changed pages are written under ``out`` instead of in place."""
    written = []
    for page in sorted(docs.rglob("*.md")):
        text = page.read_text()

        def fill(m):
            s, name = m["key"].split("/")
            if s != suite or name not in result["parts"]:
                return m[0]
            payload = result["parts"][name]
            body = f"{parts[name].render(payload)}\n\n*{record_line(payload)}*\n"
            return m[1] + body + m[4]

        new = _MARK.sub(fill, text)
        if new != text:
            target = page if out is None else out / page.relative_to(docs)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(new)
            written.append(target)
    return written
