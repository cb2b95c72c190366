"""Independent pieces of work (seeds, strategies, runs) in worker processes, one torch thread each.

Why one thread: the lesson's small networks gain nothing from a second torch thread on a CPU
(:mod:`mclfir_lite.lab.parallel` has the measurement), and a number made at one thread is the
same on a laptop with 8 cores and on CI's 2 (on the same kind of CPU). So two pieces of work
in two processes finish in about the time of one.

* :func:`torch_threads`: a block with ``n`` torch threads, restored after.
* :func:`map_processes`: ``[fn(x) for x in items]`` in up to one worker process per core
  ("spawn": safe in Jupyter and on every OS), in the items' order. ``fn`` must be a
  module-level function (the workers import it by name) and ``items`` picklable.

:mod:`mclfir_lite.lab.parallel` (runs of a lab) and
:mod:`mclfir_lite.retrieval.composed` (seeds) use it. Not everything gains: the cross-modal
command's image and text towers train faster at two threads than at one, so its four strategies
in two workers took as long as one after the other in one process (27 s against 28 s, quick size),
and so did the pretrained EfficientNet's trunk features in ``lab.run_labs`` (computed here, at
torch's threads).
"""
from __future__ import annotations

import multiprocessing
import sys
import types
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import torch

from .settings import usable_cores


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (None: leave them as they are), then restore."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def spawn_context():
    """The "spawn" start method: a fresh interpreter per worker (no forked torch thread pools)."""
    return multiprocessing.get_context("spawn")


@contextmanager
def bare_main():
    """Hide the caller's ``__main__`` while workers start. "spawn" re-runs the caller's script in
    each worker; a script without ``if __name__ == "__main__":`` would then start the work
    again inside the worker, which fails there and left the caller waiting for ever. The
    workers need nothing from ``__main__``: what they run comes from the package."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def one_thread(initializer=None, *initargs) -> None:
    """A worker's initializer: one torch thread, then ``initializer(*initargs)`` when given."""
    torch.set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)


def map_processes(fn, items, processes: int | None = None, initializer=None, initargs: tuple = (),
                  here=None) -> list:
    """``[fn(x) for x in items]``, each in a worker process with one torch thread, up to
    ``processes`` at a time (default: one per core); results in the items' order.

    ``initializer(*initargs)`` runs once in each worker (module-level, picklable), after its
    thread count is set. ``here``: what to do, in this process, with an item no worker did
    (default ``fn``; give another function when ``fn`` needs what ``initializer`` set up).

    With one item or one worker, the work is done here (still at one torch thread). An
    exception raised by ``fn`` is raised here. A worker that dies (out of memory, killed) is
    reported, and the items it left are done here, one after the other."""
    items = list(items)
    results, done = [None] * len(items), [False] * len(items)
    workers = min(len(items), processes or usable_cores())
    if workers > 1:
        try:
            with ProcessPoolExecutor(workers, mp_context=spawn_context(), initializer=one_thread,
                                     initargs=(initializer, *initargs)) as pool:
                with bare_main():   # the workers start here, as the items are submitted
                    futures = [pool.submit(fn, x) for x in items]
                for k, future in enumerate(futures):
                    results[k], done[k] = future.result(), True
        except BrokenProcessPool as err:
            warnings.warn(f"a worker process died ({err}); doing the remaining work here, one piece after "
                          "the other", stacklevel=2)
    with torch_threads(1):
        for k, x in enumerate(items):
            if not done[k]:
                results[k] = (here or fn)(x)
    return results
