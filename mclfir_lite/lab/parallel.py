"""Several runs at once: a worker process per run, one torch thread each.

Why: the lesson's small CNN gains nothing from a second torch thread on a CPU. On the project's
2-core machine, idle, one ``mclfir`` run took 19.3 s with 2 threads and 17.3 s with 1, and two
1-thread runs side by side took 18.5 s each (measured by hand, 60 steps per
attribute, default size). So two runs in two processes finish in about the time of one.

How: :func:`run_many` (runs of one lab) and :func:`run_labs` (runs of several labs, e.g. one
per seed) send the runs that are not in the labs' run cache yet to worker processes ("spawn":
safe in Jupyter and on every OS). Each worker rebuilds the labs from their fields (no
rendering, no files read) and trains through the same cache; the caller then loads every run
from the cache, so what comes back is exactly what ``lab.run`` returns.

Numbers: a run's numbers depend on the number of torch threads (how far: ``bench_threads``,
in the README), not on the number of workers. Every run made here, in a worker or in this
process, uses one thread (:func:`mclfir_lite.workers.torch_threads`), as the benchmarks and ``lab.run`` (by default)
do: then the numbers are the same on a laptop with 8 cores and on CI's 2 (on the same kind of
CPU: another may round differently).
"""
from __future__ import annotations

import dataclasses
import time

import torch

from ..settings import cache_dir, usable_cores
from ..training.checkpoint import CheckpointError
from ..workers import map_processes

_LABS: list = []   # the worker's labs, set once per worker by _init


def _state(lab) -> dict:
    """The lab's fields, picklable without shared memory: images as a numpy array (a torch
    tensor would travel through /dev/shm, which containers often keep small)."""
    state = {f.name: getattr(lab, f.name) for f in dataclasses.fields(lab)}
    state["images"] = lab.images.numpy()
    state["runs_dir"] = lab.runs_dir or cache_dir() / "runs"   # the caller's cache, whatever the worker's env
    return state


def _init(labs: list) -> None:
    global _LABS
    _LABS = [cls(**{**state, "images": torch.from_numpy(state["images"])}) for cls, state in labs]


def _train(job: tuple) -> tuple[str, float]:
    k, strategy, overrides = job
    start = time.perf_counter()
    _LABS[k].run(strategy, progress=False, **overrides)
    return strategy, time.perf_counter() - start


def _cached(lab, strategy: str, overrides: dict):
    """The run's runner, loaded, when it is finished in the lab's cache; None when it is not
    (missing, unfinished, or a damaged or foreign file)."""
    runner = lab.runner(strategy, cache=True, progress=False, **overrides)
    try:
        runner.load()
    except CheckpointError:
        return None
    return runner if runner.done == len(lab.increments) else None


def run_many(lab, jobs: dict[str, tuple[str, dict]], processes: int | None = None, progress: bool = False) -> dict:
    """Train ``jobs`` = ``{name: (strategy, config overrides)}`` of ``lab``, up to ``processes``
    at a time (default: one per core), and return ``{name: runner}`` as ``lab.run`` would.

    Runs already in the cache are loaded, not retrained. On a GPU (``config.device`` not
    "cpu") the runs are made one after the other in this process. A worker that dies (out of
    memory, killed) is reported, and the runs it left are made here, one after the other."""
    for name, job in jobs.items():
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[1], dict)):
            raise TypeError(f"run_many: job {name!r}: give (strategy, {{Config field: value}}), got {job!r}")
    return run_labs({name: (lab, strategy, overrides) for name, (strategy, overrides) in jobs.items()},
                    processes=processes, progress=progress)


def run_labs(jobs: dict, processes: int | None = None, progress: bool = False) -> dict:
    """:func:`run_many` for runs of several labs (other seeds or plans): ``jobs`` = ``{name:
    (lab, strategy, config overrides)}``; returns ``{name: runner}``. Each worker rebuilds every
    lab that has a pending run, so keep the labs small (quick size) or few."""
    for name, job in jobs.items():
        if not (isinstance(job, tuple) and len(job) == 3 and isinstance(job[2], dict)):
            raise TypeError(f"run_labs: job {name!r}: give (lab, strategy, {{Config field: value}}), got {job!r}")
    loaded = {n: _cached(*j) for n, j in jobs.items()}
    pending = {n: j for n, j in jobs.items() if loaded[n] is None}
    labs = list({id(lab): lab for lab, _, _ in pending.values()}.values())
    index = {id(lab): k for k, lab in enumerate(labs)}
    unique = list({(index[id(lab)], s, repr(sorted(ov.items()))): (index[id(lab)], s, ov)
                   for lab, s, ov in pending.values()}.values())   # each run once
    trunks = {(index[id(lab)], ov.get("trainable_blocks", lab.config.trainable_blocks))
              for lab, _, ov in pending.values()}
    for k, tb in trunks:
        if tb is not None:
            labs[k].trunk_features(tb)   # computed once here (and cached on disk), not once per worker
    workers = min(len(unique), processes or usable_cores())
    if workers > 1 and all(lab.config.device == "cpu" for lab in labs):
        start = time.perf_counter()
        done = map_processes(_train, unique, workers, initializer=_init,
                             initargs=([(type(lab), _state(lab)) for lab in labs],),
                             here=lambda job: None)   # a dead worker's runs: trained below, from this process
        if progress:
            for strategy, seconds in filter(None, done):
                print(f"trained {strategy} in {seconds:.0f} s")
            print(f"{len(unique)} runs in {time.perf_counter() - start:.0f} s with {workers} worker processes")
    # the workers' runs come from the cache; what is left (one run, or a dead worker's) is trained here
    return {name: loaded[name] or lab.run(strategy, progress=progress, threads=1, **overrides)
            for name, (lab, strategy, overrides) in jobs.items()}
