"""Issue 20's bar as bench_learnable computes it per (order, seed), and the README table it writes:
only entries measured with this code and the preset's settings count; each check can fail."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_learnable as BL  # noqa: E402
from mclfir_lite.files import code_digest  # noqa: E402
from mclfir_lite.lab.lab import preset_fields  # noqa: E402

PLAN = [["a", "b"], ["c"]]


def entry(strategy, above, meanap, matrix=None, seed=1, code=None, overrides=None, preset=None):
    """A bench_learnable entry: ``above`` is mAP above chance per attribute."""
    return {"style": "v2", "plan": PLAN, "seed": seed, "strategy": strategy, "image_size": 48, "n_images": 6000,
            "config_overrides": overrides or {}, "code": code or code_digest(), "final_meanap": meanap,
            "preset": preset or preset_fields(False),
            "attributes": {a: {"map": 0.2 + v, "chance": 0.2, "above_chance": v, "passes": None}
                           for a, v in zip("abc", above)},
            "map_matrix": matrix or [[0.9, 0.9, None], [0.9, 0.9, 0.9]]}


def good():
    return [entry("isolated", (0.5, 0.4, 0.6), 0.8), entry("joint", (0.4, 0.3, 0.5), 0.78),
            entry("finetune", (0.0, 0.0, 0.6), 0.4, [[0.9, 0.9, None], [0.2, 0.2, 0.9]]),
            entry("lwf", (0.4, 0.3, 0.1), 0.7, [[0.9, 0.9, None], [0.85, 0.85, 0.3]]),
            entry("mclfir", (0.4, 0.3, 0.1), 0.77, [[0.9, 0.9, None], [0.8, 0.8, 0.3]])]


def test_the_bar_passes_and_each_check_can_fail():
    [row] = BL.bar(good())
    assert row["checks"] == {"isolated": True, "joint": True, "upper_bound": True, "forgetting": True}
    assert row["best_rival"] == "mclfir" and row["forgetting"]["finetune"] == pytest.approx(0.7)
    bad = {"isolated": entry("isolated", (0.5, 0.29, 0.6), 0.8), "joint": entry("joint", (0.4, 0.19, 0.5), 0.78),
           "upper_bound": entry("mclfir", (0.4, 0.3, 0.1), 0.795, [[0.9, 0.9, None], [0.8, 0.8, 0.3]]),
           "forgetting": entry("mclfir", (0.4, 0.3, 0.1), 0.77, [[0.9, 0.9, None], [0.6, 0.6, 0.3]])}
    for check, e in bad.items():
        entries = [x for x in good() if x["strategy"] != e["strategy"]] + [e]
        [row] = BL.bar(entries)
        assert row["checks"][check] is False, check
        assert all(v for k, v in row["checks"].items() if k != check), check


def test_only_this_codes_entries_at_the_presets_settings_count():
    older_preset = {**preset_fields(False), "joint_steps": 1}
    unrecorded = entry("joint", (0.0, 0.0, 0.0), 0.1, seed=5)
    del unrecorded["preset"]
    entries = good() + [entry("joint", (0.0, 0.0, 0.0), 0.1, seed=2, code="0" * 12),
                        entry("joint", (0.0, 0.0, 0.0), 0.1, seed=3, overrides={"joint_steps": 200}),
                        entry("joint", (0.0, 0.0, 0.0), 0.1, seed=4, preset=older_preset), unrecorded]
    rows = BL.bar(entries)
    assert [r["seed"] for r in rows] == [1]
    [row] = BL.bar([e for e in good() if e["strategy"] != "finetune"])
    assert row["checks"]["forgetting"] is None                 # a missing run: no verdict either way


def test_the_readme_table_goes_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n<!-- {BL.README_MARKER}:start -->\nold\n<!-- {BL.README_MARKER}:end -->\nafter\n")
    text = BL.render_bar(BL.bar(good()))
    BL.C.write_between(BL.README_MARKER, text, readme)
    s = readme.read_text()
    assert s.startswith("before\n") and s.endswith("after\n") and "old" not in s
    assert code_digest() in s and "| a;b,c |" not in s and "a,b;c" in s
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        BL.C.write_between(BL.README_MARKER, text, readme)


def test_what_the_runs_show_says_when_retrain_beats_joint():
    """retrain above joint is said in words, with its numbers (a fresh model at retrain's budget beats
    the cumulative joint); below or level, it is not."""
    above = BL.shows(good() + [entry("retrain", (0.45, 0.35, 0.55), 0.83)])
    assert "MeanAP +0.050 against `joint`'s" in above and "ends above `joint` on 1 of 1 seeds" in above
    level = BL.shows(good() + [entry("retrain", (0.45, 0.35, 0.55), 0.785)])
    assert "MeanAP +0.005 against `joint`'s" in level and "ends above `joint`" not in level
