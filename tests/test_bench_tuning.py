"""The tuning benchmark's grids: the same budget for every method, the preset inside each grid,
and quick mode's two configurations keeping the preset (so that a quick run still compares it)."""
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_tuning as T  # noqa: E402
from mclfir_lite.config import Config, preset, preset_config  # noqa: E402


def _used(quick):
    return {**dataclasses.asdict(Config()), **preset_config(preset(quick))}


def _is_preset(cfg, used):
    return all(used.get(k) == v for k, v in cfg.items())


def test_every_method_gets_the_same_budget_and_its_preset_is_in_its_grid():
    used = _used(False)
    assert {len(g) for g in T.SEARCH.values()} == {T.BUDGET}
    for m, grid in T.SEARCH.items():
        if m == "replay":       # "teacher" is a size computed at run time; the preset's size is in the grid
            grid = [c for c in grid if c["replay_per_attribute"] != "teacher"]
        assert any(_is_preset(c, used) for c in grid), f"{m}: the preset is not among {grid}"


def test_quick_mode_keeps_the_preset_and_one_alternative():
    used = _used(True)
    for m, grid in T.SEARCH.items():
        quick = T.quick_grid(grid, used)
        assert len(quick) == 2 and quick[0] != quick[1], m
        assert _is_preset(quick[0], used) and not _is_preset(quick[1], used), (m, quick)


def test_quick_grid_of_a_grid_without_the_preset_takes_its_first_two():
    grid = [{"lr": 1.0}, {"lr": 2.0}, {"lr": 3.0}]
    assert T.quick_grid(grid, {"lr": 9.0}) == grid[:2]
