"""Tables with controls: seeds aggregated as mean ± std, a chance row, attributes at chance marked."""
import pytest

from mclfir_lite.lab.report import mean_std, over_seeds, strategy_table


def result(seed, final, chance, forgetting=0.1, samples=100):
    attrs = list(final)
    return {"attributes": attrs, "increments": [[a] for a in attrs], "final_map": final, "chance_map": chance,
            "final_meanap": sum(final.values()) / len(final), "mean_final_map": sum(final.values()) / len(final),
            "forgetting": forgetting, "bwt": None if forgetting is None else -forgetting, "train_samples": samples,
            "teacher_samples": 0, "optimizer_steps": 10, "train_seconds": 1.0,
            "map_matrix": [[final[attrs[0]], None], [final[attrs[0]], final[attrs[1]]]],
            "params": {"stored": 5, "trainable": 5}, "config": {"seed": seed}}


def test_mean_std_skips_none_and_uses_population_std():
    assert mean_std([None, None]) is None
    x = mean_std([0.5, 0.7, None])
    assert x["mean"] == pytest.approx(0.6) and x["std"] == pytest.approx(0.1) and x["n"] == 2


def test_over_seeds_and_table_mark_attributes_at_chance():
    chance = {"a": 0.2, "b": 0.3}
    runs = {"good": [result(0, {"a": 0.9, "b": 0.8}, chance), result(1, {"a": 0.7, "b": 0.6}, chance)],
            "bad": [result(0, {"a": 0.9, "b": 0.31}, chance, forgetting=None)]}
    s = over_seeds(runs)
    assert s["good"]["final_map"]["a"]["mean"] == pytest.approx(0.8)
    assert s["good"]["final_map"]["a"]["std"] == pytest.approx(0.1)
    assert s["good"]["map_matrix"][0][1] is None and s["good"]["map_matrix"][1][0] == pytest.approx(0.8)
    assert s["bad"]["at_chance"] == ["b"] and s["good"]["at_chance"] == []
    assert s["bad"]["forgetting"] is None
    t = strategy_table(s)
    assert "| *chance* | 0.200 | 0.300 |" in t
    assert "0.310*" in t                      # at chance: marked
    assert "0.800 ± 0.100" in t               # mean ± std over two seeds
    assert "| bad |" in t and "n/a" in t      # no forgetting for a from-scratch strategy
    with pytest.raises(ValueError, match="no result"):
        over_seeds({"empty": []})
