"""The 3-hour lab path, in one place: the README's table and each notebook's header line.

    python notebooks/lab_path.py      # rewrite both from LAB_PATH (a test checks they agree)

Working times are estimates for a learner who reads, runs and does the named exercises; the
notebooks' run times are measured separately (``execute_all.py``). What each row asks is
measured from the notebook itself (:func:`load`: the words of prose in the named sections and
the named exercises), and an estimate may not be under the time that takes at an adult's mean
silent-reading rate for non-fiction (:data:`WPM`) plus :data:`EXERCISE_MIN` per exercise
(``tests/test_notebooks_sync.py``): a notebook that grows makes its estimate fail, not silently
too short.
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))          # the package of this checkout
from mclfir_lite.files import write_between  # noqa: E402

README = HERE.parent / "README.md"
START, END = "<!-- lab-path:start -->", "<!-- lab-path:end -->"
MARKER = "<!-- lab -->"

# notebook prefix: (part, what to do, working minutes)
LAB_PATH = {
    "00": ("core", "sections 1–5", 10),
    "01": ("core", "all; exercises 01.1–01.3", 25),
    "02": ("optional", "all", 20),
    "03": ("core", "sections 1–4; exercise 03.1", 15),
    "04": ("core", "sections 1–6; exercises 04.1–04.2", 30),
    "05": ("core", "sections 1–4; exercise 05.1", 20),
    "06": ("core", "sections 1–5; exercises 06.1–06.3", 30),
    "07": ("core", "sections 1–6; exercise 07.1", 30),
    "08": ("optional", "all", 30),
    "09": ("optional", "all", 30),
    "10": ("optional", "all", 30),
    "11": ("optional", "all; then the remaining exercises of every notebook", 30),
}


WPM = 238            # Brysbaert (2019), "How many words do we read per minute?", J. Memory and Language 109
EXERCISE_MIN = 5     # per named exercise: read it, write the answer, run its check


def span(cells: list[dict], what: str) -> list[str]:
    """The markdown text a row's ``what`` names, line by line (a cell may hold several headings):
    "sections a–b" is the notebook from its start to the end of section b; "all" is everything
    before the Exercises, Questionnaire and References. A summary goes with the section before it."""
    m = re.search(r"sections (\d+)[–-](\d+)", what)
    out, current = [], 0
    for c in cells:
        if c["cell_type"] != "markdown":
            continue
        for line in "".join(c["source"]).split("\n"):
            if line.startswith("## "):
                n = re.match(r"(\d+)\.", line[3:])
                current = int(n.group(1)) if n else (
                    -1 if line[3:].startswith(("Exercises", "Questionnaire", "References")) else current)
            if current != -1 and (m is None or current <= int(m.group(2))):
                out.append(line)
    return out


def exercises(what: str) -> int:
    """How many exercises a row's ``what`` names ("exercise 03.1", "exercises 04.1–04.2")."""
    m = re.search(r"exercises? \d+\.(\d+)(?:[–-]\d+\.(\d+))?", what)
    return 0 if m is None else (int(m.group(2)) - int(m.group(1)) + 1 if m.group(2) else 1)


def load(prefix: str) -> dict:
    """What the row of notebook ``prefix`` asks, measured from the notebook: words of prose in the
    named sections, named exercises, and the least time they take (:data:`WPM`, :data:`EXERCISE_MIN`)."""
    _, what, _ = LAB_PATH[prefix]
    nb = json.loads(notebooks()[prefix].read_text(encoding="utf-8"))
    words = sum(len(line.split()) for line in span(nb["cells"], what))
    n = exercises(what)
    return {"words": words, "exercises": n, "least_minutes": math.ceil(words / WPM + EXERCISE_MIN * n)}


def notebooks() -> dict[str, Path]:
    return {p.name[:2]: p for p in sorted(HERE.glob("[0-9][0-9]_*.ipynb"))}


def header_line(prefix: str) -> str:
    part, what, minutes = LAB_PATH[prefix]
    where = "on the core path" if part == "core" else "an optional extension"
    return (f"{MARKER}*3-hour lab: {where}, about {minutes} min of work ({what}); "
            "see the README's \"A 3-hour lab\".*")


def table() -> str:
    rows = ["| part | notebook | what | words to read | exercises | least time (reading, exercises) | working time |",
            "|---|---|---|---:|---:|---:|---:|"]
    names = notebooks()
    need = {prefix: load(prefix) for prefix in LAB_PATH if prefix in names}   # each notebook read once
    for part in ("core", "optional"):
        for prefix, (p, what, minutes) in LAB_PATH.items():
            if p == part:
                title = names[prefix].stem[3:].replace("_", " ") if prefix in names else prefix
                m = need.get(prefix, {"words": "?", "exercises": "?", "least_minutes": "?"})
                words = f"{m['words']:,}" if isinstance(m["words"], int) else m["words"]
                rows.append(f"| {part} | {prefix} {title} | {what} | {words} | {m['exercises']} | "
                            f"{m['least_minutes']} min | {minutes} min |")
    core = sum(m for p, _, m in LAB_PATH.values() if p == "core")
    least = sum(m["least_minutes"] for p, m in need.items() if LAB_PATH[p][0] == "core")
    rows.append(f"| | core path in all | | | | {least} min | {core} min (the rest of 3 hours: a break and slack) |")
    return "\n".join(rows)


def stamped_header(source: str, line: str) -> str:
    """The first markdown cell's text with the lab line after the run-time line (or replaced)."""
    lines = source.split("\n")
    lines = [l for l in lines if not l.startswith(MARKER)]
    at = next((i + 1 for i, l in enumerate(lines) if l.startswith("<!-- time -->")), 1)
    return "\n".join(lines[:at] + ["", line] + lines[at:]).replace("\n\n\n", "\n\n")


def main() -> None:
    for prefix, path in notebooks().items():
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = nb["cells"][0]
        new = stamped_header("".join(cell["source"]), header_line(prefix))
        if new != "".join(cell["source"]):
            cell["source"] = new.splitlines(True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"stamped {path.name}")
    if write_between(README, "lab-path", table()):
        print("rewrote the README's lab table")


if __name__ == "__main__":
    main()
