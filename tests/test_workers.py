"""mclfir_lite.workers.map_processes: results in order, one torch thread per piece of work,
errors raised here, and a dead worker's work done here."""
from __future__ import annotations

import os

import pytest
import torch

from mclfir_lite.workers import map_processes, torch_threads


def _where(x):
    return x, torch.get_num_threads(), os.getpid()


def _fail(x):
    if x == "bad":
        raise ValueError(f"item {x!r} is bad")
    return x


def _die_in_worker(job):
    parent, x = job
    if x == "die" and os.getpid() != parent:
        os._exit(3)   # a worker killed (out of memory, say): no exception, the process is gone
    return x


def test_results_come_in_the_items_order_from_one_thread_workers():
    out = map_processes(_where, [3, 1, 2], processes=2)
    assert [x for x, _, _ in out] == [3, 1, 2]
    assert {threads for _, threads, _ in out} == {1}
    assert os.getpid() not in {pid for _, _, pid in out}


def test_one_worker_works_here_at_one_thread_and_restores_the_threads():
    with torch_threads(2):
        out = map_processes(_where, ["a", "b"], processes=1)
        assert torch.get_num_threads() == 2
    assert out == [("a", 1, os.getpid()), ("b", 1, os.getpid())]
    assert map_processes(_where, []) == []


def test_an_error_in_a_worker_is_raised_here():
    with pytest.raises(ValueError, match="'bad' is bad"):
        map_processes(_fail, ["good", "bad"], processes=2)


def test_a_dead_workers_items_are_done_here():
    with pytest.warns(UserWarning, match="worker process died"):
        out = map_processes(_die_in_worker, [(os.getpid(), x) for x in ("a", "die", "b")], processes=2)
    assert out == ["a", "die", "b"]


_SET_UP: dict = {}


def _set_up(value):
    _SET_UP["value"] = value


def _with_set_up(x):
    return x, _SET_UP.get("value"), torch.get_num_threads()


def test_an_initializer_sets_each_worker_up_after_its_one_thread():
    out = map_processes(_with_set_up, [1, 2, 3], processes=2, initializer=_set_up, initargs=("ready",))
    assert out == [(1, "ready", 1), (2, "ready", 1), (3, "ready", 1)]
    assert "value" not in _SET_UP   # the caller was not set up: only the workers


def test_work_left_to_this_process_goes_to_here_when_given():
    # one worker: nothing is sent out, so `here` does every item (fn would need the workers' set-up)
    assert map_processes(_with_set_up, [1, 2], processes=1, initializer=_set_up, initargs=("x",),
                         here=lambda x: ("here", x)) == [("here", 1), ("here", 2)]
    with pytest.warns(UserWarning, match="worker process died"):
        out = map_processes(_die_in_worker, [(os.getpid(), x) for x in ("a", "die")], processes=2,
                            here=lambda job: ("here", job[1]))
    assert out[1] == ("here", "die")
