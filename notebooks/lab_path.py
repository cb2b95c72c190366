"""The 3-hour lab path, in one place: the README's table and each notebook's header line.

    python notebooks/lab_path.py      # rewrite both from LAB_PATH (a test checks they agree)

Working times are estimates for a learner who reads, runs and does the named exercises; the
notebooks' run times are measured separately (``execute_all.py``).
"""
from __future__ import annotations

import json
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
    "06": ("core", "sections 1–5; exercises 06.1–06.3", 25),
    "07": ("core", "sections 1–6; exercise 07.1", 30),
    "08": ("optional", "all", 30),
    "09": ("optional", "all", 30),
    "10": ("optional", "all", 30),
    "11": ("optional", "all; then the remaining exercises of every notebook", 30),
}


def notebooks() -> dict[str, Path]:
    return {p.name[:2]: p for p in sorted(HERE.glob("[0-9][0-9]_*.ipynb"))}


def header_line(prefix: str) -> str:
    part, what, minutes = LAB_PATH[prefix]
    where = "on the core path" if part == "core" else "an optional extension"
    return (f"{MARKER}*3-hour lab: {where}, about {minutes} min of work ({what}); "
            "see the README's \"A 3-hour lab\".*")


def table() -> str:
    rows = ["| part | notebook | what | working time |", "|---|---|---|---:|"]
    names = notebooks()
    for part in ("core", "optional"):
        for prefix, (p, what, minutes) in LAB_PATH.items():
            if p == part:
                title = names[prefix].stem[3:].replace("_", " ") if prefix in names else prefix
                rows.append(f"| {part} | {prefix} {title} | {what} | {minutes} min |")
    core = sum(m for p, _, m in LAB_PATH.values() if p == "core")
    rows.append(f"| | core path in all | | {core} min (the rest of 3 hours: a break and slack) |")
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
