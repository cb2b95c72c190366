"""``python -m mclfir_lite prepare-lab``: fill the cache before class.

Every notebook trains or renders what it shows through caches under ``MCLFIR_CACHE``
(rendered images, image and feature caches, one checkpoint per trained run). An instructor
runs this once on the lab machines (or on a shared ``MCLFIR_CACHE``) before the lab: it
executes every numbered notebook of this checkout in order, in memory (the notebook files
are not changed), so that a learner's first run of a cell loads a cached result instead of
training. It prints each notebook's time and the total; a notebook that fails is named and
the command exits 1.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fill the quick mode's cache (MCLFIR_QUICK=1) instead")
    p.add_argument("--only", nargs="+", default=None, metavar="NN",
                   help="only the notebooks whose names start with these prefixes (e.g. 04 05)")
    p.add_argument("--notebooks", default=str(NOTEBOOKS), help="the notebooks folder (default: this checkout's)")


def main(args) -> int:
    folder = Path(args.notebooks)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if args.only and paths:
        unknown = [o for o in args.only if not any(p.name.startswith(o) for p in paths)]
        if unknown:
            raise ValueError(f"--only {' '.join(unknown)}: no notebook's name starts with that in {folder} "
                             f"(they run from {paths[0].name[:2]} to {paths[-1].name[:2]})")
        paths = [p for p in paths if any(p.name.startswith(o) for o in args.only)]
    if not paths:
        raise FileNotFoundError(2, "no numbered notebooks (NN_*.ipynb) found here; prepare-lab runs from a checkout "
                                "of mclfir_lite (or pass --notebooks)", str(folder))
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from ..settings import cache_dir
    if args.quick:
        os.environ["MCLFIR_QUICK"] = "1"   # the kernels inherit it
    print(f"prepare-lab: {len(paths)} notebook(s), {'quick' if args.quick else 'default'} mode, "
          f"cache {cache_dir()}", flush=True)
    total = time.perf_counter()
    for p in paths:
        t0 = time.perf_counter()
        nb = nbformat.read(p, as_version=4)
        try:
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(p.parent)}}).execute()
        except CellExecutionError as err:
            print(f"prepare-lab: {p.name} failed: {str(err).strip().splitlines()[-1][:300]}", file=sys.stderr)
            return 1
        print(f"  {p.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"prepare-lab: done in {time.perf_counter() - total:.0f} s; the notebooks now load their runs "
          "from the cache", flush=True)
    return 0
