"""The cost-curve benchmark (issue 20, item 6): its reading of a curve, its budgets, and a quick
run end to end (every method at each of its budgets, costs that grow with the budget, the README
text, and notebook 07's cell run on the result as it comes back from results.json)."""
import json
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common as C  # noqa: E402
import bench_cost_curves as B  # noqa: E402

NOTEBOOK_07 = next((Path(__file__).resolve().parents[1] / "notebooks").glob("07_*.ipynb"))


def _pts(*meanaps):
    return [{"budget": b, "meanap": m, "images": 1000.0 * b, "seconds": 10.0 * b}
            for b, m in zip((1, 2, 4, 8), meanaps)]


def test_reach_cost_reads_the_first_crossing_linearly_between_budgets():
    got = B.reach_cost(_pts(0.5, 0.7, 0.9, 0.95), 0.8)       # crosses between budgets 2 and 4, half way
    assert got == {"images": pytest.approx(3000.0), "seconds": pytest.approx(30.0), "at_smallest_budget": False}
    assert B.reach_cost(_pts(0.9, 0.7, 0.95, 0.99), 0.8)["at_smallest_budget"] is True   # the first point counts
    assert B.reach_cost(_pts(0.5, 0.6, 0.7, 0.79), 0.8) is None                          # never reached


@pytest.mark.parametrize("quick", [False, True])
def test_retrains_budget_of_one_third_is_the_continual_methods_steps(quick):
    """The paper's comparison (retrain at the continual budget) must be a point of retrain's curve."""
    from mclfir_lite.config import preset
    p = {**preset(quick), **(C.QUICK_SYNTH if quick else {})}
    assert 1 / 3 in B.budgets_of("retrain", quick) and round(p["retrain_steps"] / 3) == p["steps_per_attribute"]
    for name in B.METHODS:
        bs = B.budgets_of(name, quick)
        assert bs == sorted(bs) and len(bs) >= (2 if quick else 4), name


def test_a_method_with_fewer_budgets_keeps_the_table_aligned():
    r = {"seeds": [0], "target": 0.95, "line": 0.76, "reference": {"method": "joint", "budget": 8, "meanap": 0.8},
         "mean": {"joint": _pts(0.5, 0.7, 0.75, 0.8), "retrain": _pts(0.6, 0.9)},
         "reach": {"joint": B.reach_cost(_pts(0.5, 0.7, 0.75, 0.8), 0.76), "retrain": B.reach_cost(_pts(0.6, 0.9), 0.76)},
         "reach_per_seed": {"joint": {"0": None}, "retrain": {"0": None}}}
    rows = [line for line in B.render(r).splitlines() if line.startswith("| ")]
    assert len({line.count("|") for line in rows}) == 1, "every row must have the same number of cells"
    assert "| retrain | 0.600 (x1) | 0.900 (x2) |  |  | 1,533 |" in B.render(r)


def test_quick_run_measures_every_method_at_each_of_its_budgets(tmp_path, monkeypatch, strategies_run):
    monkeypatch.setenv("MCLFIR_BENCH_CACHE", str(tmp_path / "cache"))
    r = B.run(quick=True, seed=5, processes=1, out_dir=tmp_path / "out")
    assert r["seeds"] == [5] and set(r["mean"]) == set(B.METHODS) and r["runs"]["total"] == sum(
        len(B.budgets_of(n, True)) for n in B.METHODS)
    for name, pts in r["mean"].items():
        assert [p["budget"] for p in pts] == B.budgets_of(name, True)
        assert all(a["images"] < b["images"] for a, b in zip(pts, pts[1:])), f"{name}: cost must grow with the budget"
        assert r["reach_per_seed"][name]["5"] == r["reach"][name]          # one seed: its curve is the mean
    assert r["best"]["meanap"] == max(p["meanap"] for pts in r["mean"].values() for p in pts)
    assert (tmp_path / "out" / r["figure"]).is_file()
    text = B.readme(r)
    assert "What it shows" in text and all(f"`{name}`" in text for name in B.METHODS)
    assert "The paper's comparison as points on these curves" in text
    assert strategies_run and strategies_run <= set(C.code_scope(B, r)), "CODE_SCOPE must list every strategy it ran"
    # notebook 07's cell, on the result as benchmark_result gives it (through JSON): it reads what run() writes
    source = next(c.source for c in nbformat.read(NOTEBOOK_07, as_version=4).cells
                  if c.cell_type == "code" and 'benchmark_result("cost_curves"' in c.source)
    from mclfir_lite.lab import plots
    said = []
    scope = {"benchmark_result": lambda name, require_fresh=True: json.loads(json.dumps(r)), "plots": plots,
             "StaleResultError": RuntimeError, "claim": lambda sentence, holds, *a, **k: said.append((sentence, holds))}
    exec(source, scope)
    assert [s for s, _ in said] and all(isinstance(h, bool) for _, h in said)


def test_a_seed_that_disagrees_with_the_mean_curve_is_counted_out_of_every_seed():
    """The line that flags a verdict the seeds do not share names how many seeds there are (it said
    "these two" whatever their number)."""
    entry = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "results.json").read_text())
    r = entry["benchmarks"]["cost_curves"]["result"]
    n = len(r["seeds"])
    r["reach_per_seed"]["mclfir"] = {str(s): ({"images": 1.0, "seconds": 1.0} if k == 0 else None)
                                     for k, s in enumerate(r["seeds"])}
    r["reach"]["mclfir"] = None
    line = next(x for x in B.readme(r).split("\n") if x.startswith("* The seeds disagree for `mclfir`"))
    assert f"1 of {n} seeds' own curves" in line and line.endswith(f"a description of these {n}.")
