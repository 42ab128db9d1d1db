"""Run every example with its defaults and write its docs page with the picture.

    python examples/make_gallery.py [names ...]

For each ``examples/<name>.py``: runs it with ``--plot docs/examples/<name>.png``, and writes
``docs/examples/<name>.md`` from the script's docstring, the problem's docstring, the printed
numbers and the picture. The pages are generated, so the numbers shown are the ones measured.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs" / "examples"
NAMES = [
    "brusselator_2d",
    "gray_scott_2d",
    "allen_cahn_3d",
    "advection_diffusion_reaction_2d",
    "robertson_diffusion_2d",
    "reservoir_exchange",
    "flame_1d",
]


def _problem_doc(name: str) -> str:
    sys.path.insert(0, str(ROOT))
    from stiffasd import problems

    # the docstrings use reST math; the docs render $...$ (arithmatex)
    return _rest_math_to_md(inspect.getdoc(getattr(problems, name)) or "")


def _rest_math_to_md(doc: str) -> str:
    out, lines, i = [], doc.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == ".. math::":
            block = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i].strip())
                i += 1
            out += ["$$", *[b for b in block if b], "$$", ""]
            continue
        out.append(line)
        i += 1
    return re.sub(r":math:`([^`]*)`", r"$\1$", "\n".join(out))


def page(name: str, output: str) -> str:
    script = (EXAMPLES / f"{name}.py").read_text()
    sdoc = ast.get_docstring(ast.parse(script)) or name
    title, _, rest = sdoc.partition("\n")
    body = textwrap.dedent(rest).strip().splitlines()
    commands = [line.strip() for line in body if line.strip().startswith("python ")]
    text = "\n".join(line for line in body if not line.strip().startswith("python ")).strip()
    return "\n".join(
        [
            f"# {title.strip()}",
            "",
            "```bash",
            *commands,
            "```",
            "",
            text,
            "",
            "## The problem",
            "",
            _problem_doc(name),
            "",
            "## Output (default size, this machine)",
            "",
            "```text",
            output.strip(),
            "```",
            "",
            f"![{name}: final state and colored Jacobian pattern]({name}.png)",
            "",
            "Left: the final state of the stiffasd solve. Right: the Jacobian's sparsity pattern "
            "(its leading block for large n), each nonzero colored by the compressed pass that "
            "computes it. Wall times include stiffasd's detection, coloring and compilation "
            "(`prepare` column); the machine is a shared 2-core box, so ratios from the same run "
            f"are what matter. Source: `examples/{name}.py`; regenerate this page with "
            f"`python examples/make_gallery.py {name}`.",
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=NAMES)
    opts = parser.parse_args(argv)
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in opts.names:
        png = DOCS / f"{name}.png"
        cmd = [sys.executable, str(EXAMPLES / f"{name}.py"), "--plot", str(png)]
        print("running", " ".join(cmd[1:]), flush=True)
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        lines = res.stdout.splitlines()
        output = "\n".join(line for line in lines if not line.startswith("saved "))
        (DOCS / f"{name}.md").write_text(page(name, output))
        print(output, flush=True)


if __name__ == "__main__":
    main()
