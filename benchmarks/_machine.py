"""Machine and version description stamped into every committed benchmark result."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """CPU model, core count, memory, OS, and versions of the packages that matter."""
    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        with open("/proc/meminfo") as fh:
            info["mem_total"] = fh.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    import importlib.metadata as md

    for pkg in ("stiffasd", "jax", "jaxlib", "numpy", "scipy", "numba", "diffrax", "lineax"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return info


def machine_markdown(info: dict | None = None) -> str:
    info = info or machine()
    keys = ("cpu", "cpu_count", "mem_total", "python", "jax", "numpy", "scipy", "numba")
    return "Machine: " + ", ".join(f"{k} {info[k]}" for k in keys if k in info)


def write_results(name: str, payload: dict, table: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` (payload + machine) and ``results/<name>.md``."""
    RESULTS.mkdir(exist_ok=True)
    info = machine()
    payload = {"machine": info, **payload}
    jpath = RESULTS / f"{name}.json"
    jpath.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    mpath = RESULTS / f"{name}.md"
    mpath.write_text(f"{table}\n\n{machine_markdown(info)}\n")
    return jpath, mpath
