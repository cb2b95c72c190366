"""The strategies benchmark end to end at quick size: three different task orders, the
strategies it ran, joint's doubled budget paired with the same seeds, issue 20's bar on every
(order, seed), paired differences, and the README text generated from it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_strategies as B  # noqa: E402


def test_quick_run_has_three_orders_paired_statistics_and_a_readme(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_BENCH_CACHE", str(tmp_path / "cache"))
    r = B.run(quick=True, seed=3, strategies=("joint", "isolated", "finetune", "mclfir"), doubled_seeds=1,
              processes=1)
    assert r["seeds"] == [3, 4] and r["strategies"] == ["joint", "isolated", "finetune", "mclfir"]
    specs = [B._spec(o["plan"]) for o in r["orders"]]
    assert len(specs) == 3 == len(set(specs)) and set(r["by_order"]) == {o["name"] for o in r["orders"]}
    assert r["joint_doubled_seeds"] == [3] and r["joint_same_seeds"]["final_meanap"]["n"] == 1
    assert r["per_run_checks"]["runs"] == 6
    row = r["paired"]["joint vs mclfir"]
    assert row["meanap"]["n"] == 6 and row["meanap"]["lo"] <= row["meanap"]["mean"] <= row["meanap"]["hi"]
    assert set(r["paired"]) == {"mclfir vs finetune", "joint vs mclfir", "joint vs finetune"}
    text = B.readme(r)
    assert "| joint |" in text and "all orders" in text and "seeds [3]" in text and "(order, seed) runs" in text
