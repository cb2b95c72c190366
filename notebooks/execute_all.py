"""Re-execute the notebooks in place, in order, and record how long each took.

    python notebooks/execute_all.py                 # all of them, default mode (what is committed)
    python notebooks/execute_all.py 05 07           # only those whose names start with 05 or 07
    MCLFIR_QUICK=1 python notebooks/execute_all.py  # quick mode (do not commit those outputs)
    python notebooks/execute_all.py --keep-times 07 # refresh outputs against a warm cache; times untouched

Notebooks run in order in one process after another, sharing ``MCLFIR_CACHE``, so later
notebooks reuse the runs earlier ones trained (as a learner's do). Stops at the first
notebook that fails, names it, and leaves that file unchanged. ``make notebooks`` runs this
and then ``make_student_copies.py``.

Timing: each notebook's measured time is written into it, on the line that carries the
marker ``<!-- time -->`` (as "about N s on C cores (measured YYYY-MM-DD)"), and into the
README's timing table, between ``<!-- notebook-times:start -->`` and
``<!-- notebook-times:end -->`` when those markers are there (rows of notebooks that were not
run this time are kept). Quick-mode times say so. With ``--keep-times`` neither is written:
a notebook re-executed against a warm cache (its runs already trained) takes a fraction of
its time from an empty cache, which is the time a learner meets.

Expected numbers: in default mode, the instructor page's table of every checked result is
rewritten from the notebooks' claim lines (``expected_numbers.py``).
"""
from __future__ import annotations

import datetime
import os
import re
import sys
import time
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import expected_numbers  # (this folder is on sys.path when run as a script)
from make_student_copies import HERE, numbered_notebooks

sys.path.insert(0, str(HERE.parent))          # the package of this checkout, for its settings
from mclfir_lite.files import write_between  # noqa: E402
from mclfir_lite.settings import cpu_model, quick_mode, usable_cores  # noqa: E402

TIME_MARKER = "<!-- time -->"
README = HERE.parent / "README.md"
TABLE_START, TABLE_END = "<!-- notebook-times:start -->", "<!-- notebook-times:end -->"
TABLE_HEADER = ["| notebook | run time | cores | CPU | mode | measured |", "|---|---:|---:|---|---|---|"]
_ROW = re.compile(r"^\|\s*(?P<name>\d\d_\S+?)\s*\|\s*(?P<seconds>\d+) s\s*\|\s*(?P<cores>\d+)\s*\|"
                  r"(?:\s*(?P<cpu>[^|]*?)\s*\|)?\s*(?P<mode>\w+)\s*\|\s*(?P<day>[\d-]+)\s*\|\s*$")
BUDGET_TOTAL_S, BUDGET_EACH_S = 15 * 60, 3 * 60   # the series' budget at the default size
NOT_RECORDED = "not recorded"   # the CPU of a row written before the table had the column


def about(seconds: float) -> int:
    """A measured time as a learner should read it: whole seconds under 30 s, else to 5 s."""
    return max(1, round(seconds)) if seconds < 30 else int(5 * round(seconds / 5))


def time_line(seconds: float, n_cores: int, day: str, quick: bool, cpu: str | None = None) -> str:
    mode = " in quick mode" if quick else ""
    of = f" of an {cpu}" if cpu else ""
    return f"{TIME_MARKER}*Run time: about {about(seconds)} s on {n_cores} cores{of}{mode} (measured {day}).*"


class Row(NamedTuple):
    """One row of the README's timing table, parsed once (:func:`parse_row`), written by :func:`table_row`."""
    name: str
    seconds: int
    cores: int
    cpu: str
    quick: bool
    day: str


def table_row(name: str, seconds: float, cores: int, cpu: str, quick: bool, day: str) -> str:
    return f"| {name} | {about(seconds)} s | {cores} | {cpu} | {'quick' if quick else 'default'} | {day} |"


def parse_row(line: str) -> Row | None:
    """The :class:`Row` a line of the table holds, or None (the header, the total, prose)."""
    m = _ROW.match(line.strip())
    return Row(m["name"], int(m["seconds"]), int(m["cores"]), m["cpu"] or NOT_RECORDED, m["mode"] == "quick",
               m["day"]) if m else None


def stamp_time(nb, line: str) -> bool:
    """Replace the line that carries :data:`TIME_MARKER` in ``nb``'s markdown with ``line``;
    False when no markdown cell has the marker."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and TIME_MARKER in cell.source:
            cell.source = "\n".join(line if TIME_MARKER in old else old for old in cell.source.split("\n"))
            return True
    return False


def update_readme_times(measured: dict[str, dict], readme: Path = README) -> bool:
    """Rewrite the timing table between the README's markers with ``measured``
    (``{notebook file name: {"seconds", "cores", "quick", "day"}}``), keeping the rows of
    notebooks not in ``measured``. False (README untouched) when the markers are missing."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        return False
    lines = text[start + len(TABLE_START):end].splitlines()
    rows = {r.name: r for r in map(parse_row, lines) if r}
    before = dict(rows)
    for name, t in measured.items():
        rows[name] = Row(name, about(t["seconds"]), t["cores"], t.get("cpu") or NOT_RECORDED, t["quick"], t["day"])
    total = sum(r.seconds for r in rows.values())
    n_cpus = len({r.cpu for r in rows.values()})
    total = f"{total} s" if n_cpus == 1 else f"{total} s (rows from {n_cpus} CPUs: not one run's time)"
    body = (TABLE_HEADER + [table_row(*rows[n]) for n in sorted(rows)]
            + [f"| total | {total} | | | | |", "", budget_line(rows)] + earlier_lines(lines, before, rows))
    write_between(readme, "notebook-times", "\n".join(body))
    return True


EARLIER = "Earlier, on another CPU: "
_EARLIER = re.compile(re.escape(EARLIER) + r"(?P<cpu>.+) \((?P<day>\d{4}-\d\d-\d\d)\): ")


def earlier_lines(lines: list[str], before: dict[str, Row], now: dict[str, Row]) -> list[str]:
    """The series' time on other CPUs, kept instead of lost: when the table held one default-size
    run on CPU Y (every row Y's) and a notebook is now measured on another CPU, Y's total and
    verdict become an "Earlier, on another CPU" line (one per CPU, the newest), even if the table
    now mixes CPUs (a notebook re-timed first, the rest later). The lines of ``lines`` are kept,
    except that of the CPU whose run the whole table now is (the table shows it). Each line is
    its own paragraph."""
    kept = {}
    for line in lines:
        m = _EARLIER.match(line)
        if m:
            kept[m["cpu"]] = line
    old_cpus = {r.cpu for r in before.values()}
    if (len(old_cpus) == 1 and NOT_RECORDED not in old_cpus and not any(r.quick for r in before.values())
            and any(r.cpu not in old_cpus for r in now.values())):
        (cpu,) = old_cpus
        total, over, met = budget(before)
        kept[cpu] = (f"{EARLIER}{cpu} ({max(r.day for r in before.values())}): {total} s in all, the budget "
                     + ("**met**." if met else "**not met**" + (f" (over {BUDGET_EACH_S // 60} minutes: "
                                                                 + ", ".join(over) + ")." if over else ".")))
    cpus_now = {r.cpu for r in now.values()}
    if len(cpus_now) == 1 and not any(r.quick for r in now.values()):
        kept.pop(next(iter(cpus_now)), None)
    return [x for line in kept.values() for x in ("", line)]


def budget(rows: dict[str, Row]) -> tuple[int, list[str], bool]:
    """(total seconds, the notebooks over :data:`BUDGET_EACH_S` as "name N s", whether the budget is met)."""
    total = sum(r.seconds for r in rows.values())
    over = [f"{r.name} {r.seconds} s" for r in rows.values() if r.seconds > BUDGET_EACH_S]
    return total, over, total <= BUDGET_TOTAL_S and not over


def budget_line(rows: dict[str, Row]) -> str:
    """The verdict on the series' budget (:data:`BUDGET_TOTAL_S` in all, :data:`BUDGET_EACH_S` per
    notebook, default size), from the table's rows: only rows of one CPU and the default mode
    are one run of the series that the budget is about."""
    found = list(rows.values())
    if len({r.cpu for r in found}) > 1 or any(r.quick for r in found):
        return "Budget: not checked (the rows are not one default-size run on one CPU)."
    total, over, met = budget(rows)
    return (f"Budget ({BUDGET_TOTAL_S // 60} minutes in all, {BUDGET_EACH_S // 60} per notebook, default size): "
            + ("**met** on this CPU." if met else "**not met** on this CPU: "
               + "; ".join(([f"{total} s in all"] if total > BUDGET_TOTAL_S else [])
                           + ([f"over {BUDGET_EACH_S // 60} minutes: " + ", ".join(over)] if over else [])) + "."))


def main(argv: list[str]) -> int:
    keep_times = "--keep-times" in argv
    prefixes = [a for a in argv if a != "--keep-times"]
    unknown = [a for a in prefixes if a.startswith("-")]
    if unknown:
        print(f"unknown option(s) {unknown}; usage: execute_all.py [--keep-times] [PREFIX ...]", file=sys.stderr)
        return 2
    # a reference solution that fails its exercise check fails the notebook (see mclfir_lite.lab.exercises.strict)
    os.environ.setdefault("MCLFIR_STRICT_EXERCISES", "1")
    paths = [p for p in numbered_notebooks() if not prefixes or p.name.startswith(tuple(prefixes))]
    if not paths:
        print(f"no notebook in {HERE} starts with {prefixes}", file=sys.stderr)
        return 2
    total, measured = 0.0, {}
    day, n_cores, quick, cpu = datetime.date.today().isoformat(), usable_cores(), quick_mode(), cpu_model()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        try:
            # no saved widget state: JupyterLab would not restore it; each widget carries a static PNG instead
            NotebookClient(nb, timeout=None, kernel_name="python3", store_widget_state=False,
                           resources={"metadata": {"path": str(HERE)}}).execute()
            nb.metadata.pop("widgets", None)
        except CellExecutionError as err:
            print(f"{path.name}: FAILED after {time.perf_counter() - t0:.0f} s (file left unchanged)\n{err}",
                  file=sys.stderr)
            return 1
        seconds = time.perf_counter() - t0
        total += seconds
        if keep_times:
            pass
        elif not stamp_time(nb, time_line(seconds, n_cores, day, quick, cpu)):
            print(f"{path.name}: no {TIME_MARKER} line at its top; its run time is not written into it", file=sys.stderr)
        measured[path.name] = {"seconds": seconds, "cores": n_cores, "quick": quick, "day": day, "cpu": cpu}
        nbformat.write(nb, path)
        print(f"{path.name:<45} {seconds:6.0f} s", flush=True)
    print(f"{'total':<45} {total:6.0f} s")
    if keep_times:
        print("--keep-times: run times not written (the notebooks and the README keep the measured ones)")
    elif update_readme_times(measured):
        print(f"timing table in {README.name} updated")
    if not quick and expected_numbers.update():   # quick-mode numbers are not the ones to expect
        print(f"expected numbers in docs/{expected_numbers.PAGE.name} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
