"""The strategies benchmark end to end at quick size: three different task orders, the
strategies it ran, joint's doubled budget paired with the same seeds, issue 20's bar on every
(order, seed), paired differences, and the README text generated from it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_strategies as B  # noqa: E402


def test_quick_run_has_three_orders_paired_statistics_and_a_readme(tmp_path, monkeypatch, strategies_run):
    monkeypatch.setenv("MCLFIR_BENCH_CACHE", str(tmp_path / "cache"))
    r = B.run(quick=True, seed=3, strategies=("joint", "isolated", "finetune", "mclfir"), doubled_seeds=1,
              joint_budgets=(4,), processes=1)
    assert r["seeds"] == [3, 4] and r["strategies"] == ["joint", "isolated", "finetune", "mclfir"]
    import _common as C
    assert strategies_run and strategies_run <= set(C.code_scope(B, r)), "CODE_SCOPE must list every strategy the benchmark ran"
    specs = [B._spec(o["plan"]) for o in r["orders"]]
    assert len(specs) == 3 == len(set(specs)) and set(r["by_order"]) == {o["name"] for o in r["orders"]}
    assert r["joint_doubled_seeds"] == [3] and r["joint_same_seeds"]["final_meanap"]["n"] == 1
    assert r["per_run_checks"]["runs"] == 6
    curve = r["joint_budget_curve"]      # 1x, 2x (always) and 4x, on the same seed
    assert [c["multiplier"] for c in curve] == [1, 2, 4] and all(c["seeds"] == [3] for c in curve)
    assert curve[0]["final_meanap"] == r["joint_same_seeds"]["final_meanap"]["mean"]
    assert curve[1]["final_meanap"] == r["joint_doubled"]["final_meanap"]["mean"]
    assert r["joint_converged_at"] in (None, 1, 2) and r["runs"]["total"] == 3 * 4 * 2 + 2
    d = r["joint_doubling"]                # paired, seed by seed: 1x -> 2x and 2x -> 4x
    assert [(x["from"], x["to"]) for x in d] == [(1, 2), (2, 4)] and all(x["seeds"] == [3] for x in d)
    assert d[1]["meanap"]["mean"] == curve[2]["final_meanap"] - curve[1]["final_meanap"]
    assert set(d[0]["per_attribute"]) == set(curve[0]["final_map"]) and d[0]["per_attribute"]["length"]["resolution"] == 0.02
    row = r["paired"]["joint vs mclfir"]
    assert row["meanap"]["n"] == 6 and row["meanap"]["lo"] <= row["meanap"]["mean"] <= row["meanap"]["hi"]
    assert set(r["paired"]) == {"mclfir vs finetune", "joint vs mclfir", "joint vs finetune"}
    # the first seed's whole runs, with their fingerprints: what notebook 07 reads instead of retraining
    import dataclasses, json
    import _common as C
    from mclfir_lite.lab.lab import benchmark_runs
    bench = {**json.loads(json.dumps(r)), "_fresh": True}      # as benchmark_result gives it
    lab = C.synth_lab(True, 3, increments=B._spec(r["increments"]))
    given = benchmark_runs(bench, lab, ["joint", "mclfir", "replay"])
    assert sorted(given) == ["joint", "mclfir"]                 # replay was not run
    again = lab.run("joint", cache=False, progress=False).result()   # trained again, not from the cache
    assert given["joint"]["map_matrix"] == again["map_matrix"] and given["joint"]["final_meanap"] == again["final_meanap"]
    assert benchmark_runs(bench, C.synth_lab(True, 4, increments=B._spec(r["increments"])), ["joint"]) == {}
    other = dataclasses.replace(lab, config=dataclasses.replace(lab.config, lr=lab.config.lr * 2))
    assert benchmark_runs(bench, other, ["joint"]) == {}                              # another setting
    assert benchmark_runs({**bench, "_fresh": False}, lab, ["joint"]) == {}          # stale code
    validation = C.synth_lab(True, 3, validation=True, increments=B._spec(r["increments"]))
    assert benchmark_runs(bench, validation, ["joint"]) == {}                         # another protocol
    text = B.readme(r)
    assert "joint's MeanAP against its budget" in text and "training runs" in text
    assert "| joint |" in text and "all orders" in text and "seeds [3]" in text and "(order, seed) runs" in text


def test_doubling_pairs_runs_of_the_same_seed():
    run = lambda seed, meanap, a: {"config": {"seed": seed}, "final_meanap": meanap, "attributes": ["a"],
                                   "final_map": {"a": a}}
    by = {1: [run(0, 0.80, 0.70), run(1, 0.82, 0.71)], 2: [run(1, 0.84, 0.70), run(0, 0.81, 0.75)]}
    [d] = B.doubling_pairs(by)
    assert d["seeds"] == [0, 1] and abs(d["meanap"]["mean"] - 0.015) < 1e-12
    assert abs(d["per_attribute"]["a"]["mean"] - 0.02) < 1e-12 and d["meanap"]["n"] == 2
    assert B.doubling_pairs({1: by[1]}) == [] and B.doubling_pairs({1: by[1], 4: by[2]}) == []


def test_converged_at_needs_both_meanap_and_every_attribute_to_settle():
    point = lambda m, meanap, a, b: {"multiplier": m, "final_meanap": meanap, "final_map": {"a": a, "b": b}}
    assert B.converged_at([point(1, 0.80, 0.7, 0.9), point(2, 0.82, 0.72, 0.92), point(4, 0.825, 0.725, 0.925)]) == 2
    # MeanAP settles at 2x but one attribute still moves by 0.03: not converged there
    assert B.converged_at([point(1, 0.80, 0.7, 0.9), point(2, 0.805, 0.73, 0.88)]) is None
    assert B.converged_at([point(1, 0.80, 0.7, 0.9), point(2, 0.82, 0.72, 0.92)]) is None
    assert B.converged_at([point(1, 0.80, 0.7, 0.9), point(2, 0.805, 0.71, 0.9)]) == 1


def test_baselines_run_on_three_measured_orders_with_mclfir_beside_them(tmp_path, monkeypatch, strategies_run):
    """bench_baselines: no isolated among its strategies, yet the third order is built from a
    measured hardest attribute (isolated runs on the lesson's order, counted in the cost); the
    pairs are the baselines' against mclfir; no vacuous bar. replay also runs at the teacher's
    bytes and at the tuning's best size, on every seed and order, paired with mclfir."""
    import _common as C
    import bench_baselines as BB
    import bench_tuning as T
    monkeypatch.setenv("MCLFIR_BENCH_CACHE", str(tmp_path / "cache"))
    jobs, run_many = [], C.run_many
    monkeypatch.setattr(C, "run_many", lambda js, *a, **k: jobs.extend(js) or run_many(js, *a, **k))
    r = BB.run(quick=True, seed=3, processes=1)
    assert r["strategies"] == list(BB.STRATEGIES) and "isolated" not in r["summary"]
    assert strategies_run and strategies_run <= set(C.code_scope(BB, r)), "CODE_SCOPE must list every strategy it ran"
    assert len({B._spec(o["plan"]) for o in r["orders"]}) == 3 and r["hardest"] in r["summary"]["mclfir"]["attributes"]
    sized = T.teacher_sized_replay(C.synth_lab(True, 3))["replay_per_attribute"]
    assert r["replay_sizes"]["sizes"] == {"replay (teacher bytes)": sized, "replay (512 rows)": 512}
    for size in (sized, 512):   # each size trained on every seed of every order, and nothing else at that size
        at = [(seed, s, kw["increments"]) for seed, s, ov, kw in jobs if ov.get("replay_per_attribute") == size]
        assert {s for _, s, _ in at} == {"replay"}
        assert sorted((seed, inc) for seed, _, inc in at) == sorted((seed, B._spec(o["plan"])) for o in r["orders"] for seed in r["seeds"])
    variants = len(BB.REPLAY_SIZES) * 2 * 3
    assert r["runs"]["total"] == len(BB.STRATEGIES) * 2 * 3 + 2 + variants   # + the isolated runs behind `hardest`
    assert {"mclfir vs ewc", "mclfir vs replay", "mclfir vs derpp", "derpp vs replay",
            "mclfir vs replay (teacher bytes)", "mclfir vs replay (512 rows)"} == set(r["paired"])
    assert all(m["n"] == 6 for m in r["paired"]["mclfir vs replay (teacher bytes)"].values())
    for o in r["by_order"].values():
        assert [x["seed"] for x in o["per_seed"]["replay (512 rows)"]] == r["seeds"]
    assert r["per_run_checks"] is None and "checks" not in r and "joint_doubled" not in r
    text = BB.readme(r)
    assert "| replay |" in text and "mclfir vs ewc" in text and "Issue 20's bar" not in text
    assert "| replay (teacher bytes) |" in text and f"`replay (teacher bytes)` {sized} (" in text
    lines = BB.shows(r)         # one line per buffer size, smallest first, each pair's verdicts from the result
    assert [l.split("`")[3] for l in lines[:3]] == sorted(["replay", *BB.REPLAY_SIZES], key=lambda n: {
        "replay": r["replay_sizes"]["preset"], **r["replay_sizes"]["sizes"]}[n])
    assert all(line in text for line in lines)
    verdicts = {"above": "mclfir vs replay (teacher bytes)", "undecided": "mclfir vs replay (512 rows)"}
    for verdict, pair in verdicts.items():   # the closing line follows the verdicts
        r["paired"][pair]["meanap"]["verdict"] = verdict
    assert "ends above `replay (teacher bytes)` but not above `replay (512 rows)`" in "\n".join(BB.shows(r))
    r["paired"]["mclfir vs replay (512 rows)"]["meanap"]["verdict"] = "above"
    r["paired"]["mclfir vs replay"]["meanap"]["verdict"] = "above"
    assert any("above `replay` at every buffer size" in line for line in BB.shows(r))
    for o in r["by_order"].values():         # nothing at chance anywhere, then one attribute: by the largest
        o["summary"]["replay (512 rows)"]["at_chance"] = o["summary"]["mclfir"]["at_chance"] = []   # buffer only
    assert not any("MeanAP hides" in line for line in BB.shows(r))
    order = r["orders"][0]["name"]
    r["by_order"][order]["summary"]["replay (512 rows)"]["at_chance"] = ["colour"]
    r["by_order"][order]["summary"]["mclfir"]["at_chance"] = []
    assert f"`replay (512 rows)`: {order} `colour`" in "\n".join(BB.shows(r))
    assert f"MeanAP hides what `replay (512 rows)` gives up" in BB.shows(r)[-1] and f"{order}: `colour`" in BB.shows(r)[-1]
    r["by_order"][order]["summary"]["mclfir"]["at_chance"] = ["colour"]           # mclfir loses it too: no such line
    assert not any("MeanAP hides" in line for line in BB.shows(r))
    assert "% of an attribute's training rows" in BB.buffers(r) and r["replay_sizes"]["train_rows"]
