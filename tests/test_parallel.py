"""Lab.run_many: several runs in worker processes give exactly what lab.run gives, one at a time."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mclfir_lite.lab.lab import Lab

ROOT = Path(__file__).resolve().parents[1]
STEPS = {"steps_per_attribute": 4}


@pytest.fixture()
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    return Lab.synthfashion(quick=True)


def test_run_many_equals_sequential_runs_and_reuses_the_cache(lab, tmp_path):
    many = lab.run_many(["finetune", "lwf"], processes=2, **STEPS)
    files = {n: r.checkpoint for n, r in many.items()}
    stamps = {n: f.stat().st_mtime_ns for n, f in files.items()}
    again = lab.run_many(["finetune", "lwf"], processes=2, **STEPS)   # cached: loaded, not retrained
    assert {n: f.stat().st_mtime_ns for n, f in files.items()} == stamps
    for f in files.values():
        f.unlink()
    for name in ("finetune", "lwf"):
        seq = lab.run(name, progress=False, threads=1, **STEPS).result()
        assert many[name].result()["map_matrix"] == seq["map_matrix"] == again[name].result()["map_matrix"]


def test_run_many_dict_form_applies_each_runs_overrides(lab):
    runs = lab.run_many({"lwf-a": ("lwf", {"distill_weight": 0.5}), "lwf-b": ("lwf", {"distill_weight": 2.0})},
                        processes=2, **STEPS)
    assert runs["lwf-a"].config.distill_weight == 0.5 and runs["lwf-b"].config.distill_weight == 2.0
    assert runs["lwf-a"].config.steps_per_attribute == 4


def test_run_many_refuses_a_string_and_bad_overrides(lab):
    with pytest.raises(TypeError, match="lab.run"):
        lab.run_many("mclfir")
    with pytest.raises(TypeError, match="give \\(strategy, "):
        lab.run_many({"x": ("lwf", 3)})


def test_a_script_without_a_main_guard_does_not_hang(tmp_path):
    """spawn re-runs the caller's script in each worker; run_many hides it, so this finishes."""
    script = tmp_path / "noguard.py"
    script.write_text(textwrap.dedent("""
        from mclfir_lite.lab.lab import Lab
        runs = Lab.synthfashion(quick=True).run_many(["finetune", "lwf"], processes=2, steps_per_attribute=2)
        print("done", sorted(runs))
    """))
    env = {**os.environ, "MCLFIR_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done ['finetune', 'lwf']" in out.stdout


def test_a_run_left_to_this_process_also_uses_one_thread(lab, monkeypatch):
    """One pending run (no worker started) is trained here, at one thread like a worker's."""
    seen = []
    real = Lab.run

    def spy(self, strategy, *args, **kwargs):
        seen.append(kwargs.get("threads"))
        return real(self, strategy, *args, **kwargs)

    monkeypatch.setattr(Lab, "run", spy)
    lab.run_many(["finetune"], processes=2, **STEPS)
    assert seen == [1]


def test_lab_run_trains_at_one_thread_by_default_and_restores_the_callers(lab, monkeypatch):
    """lab.run's numbers must not depend on the machine's cores: it trains at one thread
    unless told otherwise, whatever the caller set, and gives the caller's setting back."""
    import torch
    from mclfir_lite.training.runner import ContinualRunner
    seen = []
    real = ContinualRunner.run

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ContinualRunner, "run", spy)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        lab.run("finetune", progress=False, cache=False, **STEPS)
        lab.run("finetune", progress=False, cache=False, threads=None, **STEPS)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(old)
    assert seen == [1, 2] and after == 2


def test_run_labs_trains_runs_of_several_labs_as_lab_run_would(tmp_path, monkeypatch):
    """Runs of two labs (two seeds) in one pool: each equals its own lab's sequential run."""
    from mclfir_lite.lab.parallel import run_labs
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    labs = {seed: Lab.synthfashion(quick=True, seed=seed, increments=[["length"], ["colour"]]) for seed in (0, 1)}
    jobs = {(seed, s): (labs[seed], s, dict(STEPS)) for seed in (0, 1) for s in ("finetune", "lwf")}
    runs = run_labs(jobs, processes=2)
    assert set(runs) == set(jobs)
    for (seed, s), runner in runs.items():
        seq = labs[seed].run(s, progress=False, cache=False, **STEPS).result()
        assert runner.result()["map_matrix"] == seq["map_matrix"], (seed, s)
    assert runs[0, "lwf"].result()["map_matrix"] != runs[1, "lwf"].result()["map_matrix"]   # two seeds, two runs
    with pytest.raises(TypeError, match="run_labs"):
        run_labs({"x": ("lwf", {})})
