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
PAGE = HERE.parent / "docs" / "instructor.md"
START, END = "<!-- expected-numbers:start -->", "<!-- expected-numbers:end -->"
_CLAIM = re.compile(r"^✓ (?P<sentence>.+?)(?:\s{2}\[(?P<numbers>.*)\])?\s*$")


def claim_lines(path: Path) -> list[tuple[str, str]]:
    """``(sentence, numbers)`` of every claim the committed notebook ``path`` printed, in order."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                m = _CLAIM.match(line)
                if m:
                    out.append((m["sentence"], m["numbers"] or ""))
    return out


def _time_line(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    m = re.search(r"\*Run time: ([^*]+)\*", first)
    return f"run time {m.group(1).rstrip('.')}" if m else "run time not recorded"


def section() -> str:
    """The markdown between the markers."""
    rows = []
    for path in sorted(HERE.glob("[0-9][0-9]_*.ipynb")):
        lines = claim_lines(path)
        if not lines:
            continue
        n = f"{len(lines)} checked result{'s' if len(lines) > 1 else ''}"
        rows += ["", f"**{path.stem}**: {n}; {_time_line(path)}", ""]
        rows += ["| expected (written before the run) | measured in the committed run |", "|---|---|"]
        rows += [f"| {s.replace('|', '/')} | {n.replace('|', '/') or '(the sentence itself)'} |" for s, n in lines]
    return "\n".join(rows).strip("\n")


def update(page: Path = PAGE) -> bool:
    """Rewrite the section of ``page``; True when it changed."""
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{page}: no {START} ... {END} section to write the expected numbers into")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{section()}\n{END}{tail}"
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    print(f"{PAGE.name}: {'updated' if update() else 'already up to date'}")
    sys.exit(0)
