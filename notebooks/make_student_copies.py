"""Write the student copies of the numbered notebooks.

For every ``notebooks/NN_*.ipynb`` this writes ``notebooks/student/NN_*.ipynb`` in which

* every cell tagged ``solution`` (in its metadata ``tags``) is replaced by a stub: a code
  cell ``# Your solution here``, or a markdown cell *Your answer here.*, tagged ``exercise``;
* a solution line that hands an answer to a check, ``name = <expression>  # answer``, stays in
  the stub as ``name = ...`` (or ``name = <stub>`` when written ``# answer: <stub>``), so the
  check call in the next (untagged) cell runs and says "not yet" until the student answers;
* all outputs, execution counts, execution timings and saved widget state are removed.

Usage (from the repository root or anywhere)::

    python notebooks/make_student_copies.py           # (re)write the student copies
    python notebooks/make_student_copies.py --check   # exit 1, listing stale or missing copies

``--check`` is what ``tests/test_notebooks_sync.py`` runs: after editing a notebook, re-run
this script and commit both.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
STUDENT_DIR = HERE / "student"
CODE_STUB = "# Your solution here\n"
MARKDOWN_STUB = "*Your answer here.*"
ANSWER_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*=\s*.*?#\s*answer(?::\s*(?P<stub>.+?))?\s*$")


def numbered_notebooks(folder: Path = HERE) -> list[Path]:
    """The numbered notebooks (``00_*.ipynb``, ``01_*.ipynb``, ...) of ``folder``, sorted."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def is_solution(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def code_stub(source: str) -> str:
    """The stub of a code solution: ``# Your solution here`` plus one ``name = ...`` line per
    answer line (``name = <expression>  # answer``) of ``source``, in order."""
    lines = [CODE_STUB.rstrip("\n")]
    for line in source.splitlines():
        m = ANSWER_LINE.match(line)
        if m:
            lines.append(f"{m['name']} = {m['stub'] or '...'}  # your answer")
    return "\n".join(lines) + "\n"


def student_copy(nb):
    """A copy of notebook ``nb`` with solutions stubbed and every output removed."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if is_solution(cell):
            if cell.cell_type == "code":
                stub = nbformat.v4.new_code_cell(code_stub(cell.source))
            else:
                stub = nbformat.v4.new_markdown_cell(MARKDOWN_STUB)
            stub.metadata = {"tags": ["exercise"]}
            if "id" in cell:
                stub["id"] = cell["id"]
            cell = stub
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def render(path: Path) -> str:
    """The text the student copy of ``path`` should have."""
    return nbformat.writes(student_copy(nbformat.read(path, as_version=4)))


def stale(folder: Path = HERE) -> list[str]:
    """Names of student copies that are missing, out of date, or have no source notebook."""
    out = []
    sources = numbered_notebooks(folder)
    for src in sources:
        dst = folder / "student" / src.name
        if not dst.is_file():
            out.append(f"{dst.name} (missing)")
        elif dst.read_text(encoding="utf-8") != render(src):
            out.append(f"{dst.name} (out of date)")
    names = {p.name for p in sources}
    for extra in sorted((folder / "student").glob("*.ipynb")):
        if extra.name not in names:
            out.append(f"{extra.name} (no source notebook)")
    return out


def write_all(folder: Path = HERE) -> list[Path]:
    """Write every student copy; remove copies whose source notebook is gone."""
    (folder / "student").mkdir(exist_ok=True)
    written = []
    names = set()
    for src in numbered_notebooks(folder):
        dst = folder / "student" / src.name
        dst.write_text(render(src), encoding="utf-8")
        written.append(dst)
        names.add(src.name)
    for extra in (folder / "student").glob("*.ipynb"):
        if extra.name not in names:
            extra.unlink()
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a copy is stale or missing")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        if bad:
            print("student copies out of date (run python notebooks/make_student_copies.py):")
            for line in bad:
                print("  " + line)
            return 1
        print(f"student copies up to date ({len(numbered_notebooks())} notebooks)")
        return 0
    for path in write_all():
        print(f"wrote student/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
