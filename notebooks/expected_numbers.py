"""The instructor page's expected numbers, read from the committed notebooks' own claim lines.

    python notebooks/expected_numbers.py      # rewrite the section of docs/instructor.md

Every checked result in a notebook prints one line, ``✓ <sentence>  [<numbers>]``, when the
notebook runs (:func:`mclfir_lite.lab.claims.claim`). The committed notebooks are executed at
the default size with this checkout's code (``execute_all.py``), so those lines are the numbers a
learner should see, each with the margin its sentence states. This script copies them, per
notebook, into ``docs/instructor.md`` between ``<!-- expected-numbers:start -->`` and
``<!-- expected-numbers:end -->``; ``execute_all.py`` runs it after the notebooks, and a test
checks that the page and the notebooks agree.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))          # the package of this checkout
from mclfir_lite.files import write_between  # noqa: E402
from mclfir_lite.lab.claims import parse_checked, when_written  # noqa: E402

PAGE = HERE.parent / "docs" / "instructor.md"
NAME = "expected-numbers"                      # the page's <!-- expected-numbers:start/end --> markers
START, END = f"<!-- {NAME}:start -->", f"<!-- {NAME}:end -->"


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _claims(nb: dict) -> list[tuple[str, str]]:
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                if (found := parse_checked(line)) is not None:
                    out.append(found)
    return out


def claim_lines(path: Path) -> list[tuple[str, str]]:
    """``(sentence, numbers)`` of every claim the committed notebook ``path`` printed, in order."""
    return _claims(_read(path))


def _row(sentence: str, numbers: str) -> str:
    """A table row: the sentence, when it was written (:func:`when_written`), what the run printed."""
    bare, written = when_written(sentence)
    when = "after the run (a guard)" if written == "after" else "before the run"
    return f"| {bare.replace('|', '/')} | {when} | {numbers.replace('|', '/') or '(the sentence itself)'} |"


def _time_line(nb: dict) -> str:
    m = re.search(r"\*Run time: ([^*]+)\*", "".join(nb["cells"][0]["source"]))
    return f"run time {m.group(1).rstrip('.')}" if m else "run time not recorded"


def section() -> str:
    """The markdown between the markers."""
    rows = []
    for path in sorted(HERE.glob("[0-9][0-9]_*.ipynb")):
        nb = _read(path)
        lines = _claims(nb)
        if not lines:
            continue
        n = f"{len(lines)} checked result{'s' if len(lines) > 1 else ''}"
        rows += ["", f"**{path.stem}**: {n}; {_time_line(nb)}", ""]
        rows += ["| expected | written | measured in the committed run |", "|---|---|---|"]
        rows += [_row(s, n) for s, n in lines]
    return "\n".join(rows).strip("\n")


def update(page: Path = PAGE) -> bool:
    """Rewrite the section of ``page``; True when it changed."""
    return write_between(page, NAME, section())


if __name__ == "__main__":
    print(f"{PAGE.name}: {'updated' if update() else 'already up to date'}")
    sys.exit(0)
