"""The headless demo: results.json, figures, errors, and the lesson itself in quick mode."""
import json

import pytest

from mclfir_lite.cli.main import main


def test_demo_writes_results_and_figures(tmp_path, monkeypatch):
    from mclfir_lite.training.runner import ContinualRunner
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["demo", "--quick", "--strategies", "finetune", "isolated", "--steps", "3", "--n-images", "400",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["attributes"] == [a for g in report["increments"] for a in g]
    for name in ("finetune", "isolated"):
        r = report["strategies"][name]
        for key in ("map_matrix", "final_map", "mean_final_map", "forgetting", "bwt", "train_samples",
                    "train_seconds", "params"):
            assert key in r, key
        assert len(r["map_matrix"]) == len(report["increments"])
    assert set(report["chance_map"]) == set(report["attributes"])
    assert all(0 < v < 1 for v in report["chance_map"].values())
    assert "AP 0" in report["map_convention"]
    for name in ("finetune", "isolated"):
        assert isinstance(report["strategies"][name]["at_chance"], list)
    for png in ("forgetting.png", "accuracy_matrices.png", "neighbours.png"):
        assert (out / png).stat().st_size > 1000
    # the same command again resumes from the checkpoints: same numbers, no retraining
    first = report["strategies"]["finetune"]["map_matrix"]
    trained = []
    real = ContinualRunner.train_increment
    monkeypatch.setattr(ContinualRunner, "train_increment", lambda self, i: trained.append((self.strategy, i)) or real(self, i))
    assert main(args) == 0
    assert trained == [], f"the second run trained {trained} again"
    assert json.loads((out / "results.json").read_text())["strategies"]["finetune"]["map_matrix"] == first


@pytest.mark.parametrize("args, message", [
    (["--strategies", "magic"], "unknown strategy"),
    (["--increments", "length;sleeves"], "unknown attribute(s) ['sleeves']"),
    (["--increments", "length;;colour"], "increment 1"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
])
def test_demo_bad_input_names_the_culprit(tmp_path, capsys, args, message):
    code = main(["demo", "--quick", "--n-images", "200", "--out", str(tmp_path), "--no-progress", *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_demo_refuses_checkpoint_of_other_configuration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    base = ["demo", "--quick", "--strategies", "finetune", "--n-images", "300", "--out", str(tmp_path),
            "--no-progress"]
    assert main([*base, "--steps", "2"]) == 0
    assert main([*base, "--steps", "3"]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert main([*base, "--steps", "3", "--fresh"]) == 0


def test_quick_demo_shows_the_lesson(tmp_path, monkeypatch):
    """finetune forgets several times more than mclfir, at the same training cost."""
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "--quick", "--strategies", "finetune", "mclfir", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    s = json.loads((tmp_path / "results.json").read_text())["strategies"]
    ft, mc = s["finetune"], s["mclfir"]
    assert ft["forgetting"] > 0.2
    assert ft["forgetting"] > 3 * max(mc["forgetting"], 0.01)
    assert mc["mean_final_map"] > ft["mean_final_map"] + 0.1
    assert mc["train_samples"] == ft["train_samples"]


def test_each_increment_brings_its_own_images_unless_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    base = ["demo", "--quick", "--strategies", "finetune", "--steps", "2", "--n-images", "300", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "pools")]) == 0
    assert main([*base, "--out", str(tmp_path / "shared"), "--pools", "shared"]) == 0
    pools = json.loads((tmp_path / "pools" / "results.json").read_text())
    shared = json.loads((tmp_path / "shared" / "results.json").read_text())
    # with pools, each attribute is evaluated on its own increment's images: fewer queries
    a = pools["attributes"][0]
    assert pools["n_queries"][a] < shared["n_queries"][a]
