"""Re-execute the notebooks in place, in order, and print how long each took.

    python notebooks/execute_all.py                 # all of them, default mode (what is committed)
    python notebooks/execute_all.py 05 07           # only those whose names start with 05 or 07
    MCLFIR_QUICK=1 python notebooks/execute_all.py  # quick mode (do not commit those outputs)

Notebooks run in order in one process after another, sharing ``MCLFIR_CACHE``, so later
notebooks reuse the runs earlier ones trained (as a learner's do). Stops at the first
notebook that fails, names it, and leaves that file unchanged. ``make notebooks`` runs this
and then ``make_student_copies.py``.
"""
from __future__ import annotations

import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from make_student_copies import HERE, numbered_notebooks  # (this folder is on sys.path when run as a script)


def main(prefixes: list[str]) -> int:
    paths = [p for p in numbered_notebooks() if not prefixes or p.name.startswith(tuple(prefixes))]
    if not paths:
        print(f"no notebook in {HERE} starts with {prefixes}", file=sys.stderr)
        return 2
    total = 0.0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        try:
            NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        except CellExecutionError as err:
            print(f"{path.name}: FAILED after {time.perf_counter() - t0:.0f} s (file left unchanged)\n{err}",
                  file=sys.stderr)
            return 1
        seconds = time.perf_counter() - t0
        total += seconds
        nbformat.write(nb, path)
        print(f"{path.name:<45} {seconds:6.0f} s", flush=True)
    print(f"{'total':<45} {total:6.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
