"""The composed command and its pieces: the triplets, the fusions, results.json, resume, refusals."""
import json

import numpy as np
import pytest
import torch

from mclfir_lite.retrieval import composed
from mclfir_lite.retrieval.captions import Tokenizer
from mclfir_lite.cli.main import main

TINY = ["--steps", "3", "--n-train", "64", "--n-test", "9", "--image-size", "16", "--methods", "sum", "dynamic"]


def test_split_has_one_target_and_its_distractors():
    s = composed.Settings(image_size=16, siblings=3, near_misses=2)
    split = composed.make_split(4, s, seed=0, part=3, frames=composed.TEST_FRAMES, distractors=True)
    assert len(split["ref"]) == len(split["target"]) == len(split["texts"]) == 4
    assert len(split["negatives"]) == 4 * 5 and split["per_query_negatives"] == 5
    assert len(split["images"]) == 4 * (2 + 5)
    assert not (set(split["ref"]) & set(split["negatives"]))       # the reference is never in the gallery


@pytest.mark.parametrize("kind", composed.OPS)
def test_each_fusion_gives_unit_queries(kind):
    tok = Tokenizer()
    tok.extend(["make it red"])
    m = composed.Composer([kind], feat_dim=10, d=8, tokenizer=tok)
    q, w = m(torch.randn(3, 10), ["make it red"] * 3)
    assert q.shape == (3, 8) and torch.allclose(q.norm(dim=1), torch.ones(3))
    assert torch.allclose(w, torch.ones(3, 1))


def test_dynamic_routing_weights_sum_to_one():
    tok = Tokenizer()
    tok.extend(["make it red"])
    m = composed.Composer(list(composed.OPS), feat_dim=10, d=8, tokenizer=tok)
    _, w = m(torch.randn(5, 10), ["make it red"] * 5)
    assert w.shape == (5, len(composed.OPS)) and torch.allclose(w.sum(1), torch.ones(5))


def test_composed_writes_results_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(composed.PRESETS, "quick", composed.Settings(n_pretrain=200, pretrain_steps=5, n_val=4,
                                                                       siblings=3, near_misses=2, lrs=(1e-3,)))
    out = tmp_path / "run"
    args = ["composed", "--quick", *TINY, "--seeds", "0", "1", "--out", str(out)]
    assert main(args) == 0
    r = json.loads((out / "results.json").read_text())
    assert set(r["recall_at_10"]) == {"sum", "dynamic"} and set(r["recall_at_50"]) == {"sum", "dynamic"}
    assert r["chance_recall_at_10"] == pytest.approx(min(1.0, 10 / r["gallery_size"]))
    assert r["recall_at_10_ci"]["sum"]["n"] == 2 and r["recall_at_10_ci"]["sum"]["ci95"] is not None
    assert "dynamic_minus_best_static" in r
    capsys.readouterr()
    assert main(args) == 0                                # every method finished: nothing is retrained
    assert "R@10" not in "".join(l for l in capsys.readouterr().out.splitlines() if l.startswith("seed"))
    assert json.loads((out / "results.json").read_text())["recall_at_10"] == r["recall_at_10"]


@pytest.mark.parametrize("extra, message", [
    (["--methods", "magic"], "unknown method 'magic'"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--n-test", "-1"], "--n-test must be a positive integer"),
    (["--seeds", "1", "1"], "seeds must be distinct"),
    (["--seeds", "1", str(2**32)], "--seeds must be in 0..4294967295"),
    (["--seed", "-2"], "--seed must be in 0..4294967295"),
    (["--image-size", "100000"], "choose a smaller --image-size"),
    (["--out", ""], "--out is empty"),
    (["--n-test", "2"], "any ranking would score 1; give --n-test 3 or more"),
    (["--seed", "5", "--seeds", "1", "2"], "give --seed or --seeds, not both"),
])
def test_composed_refuses_bad_options(tmp_path, capsys, extra, message):
    assert main(["composed", "--quick", *TINY, "--out", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_quick_run_beats_chance(tmp_path):
    """The done-when criterion on one quick seed: every fusion and dynamic >= 3x chance at Recall@10."""
    out = tmp_path / "q"
    assert main(["composed", "--quick", "--seed", "5", "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert len([m for m in r["recall_at_10"] if m in composed.OPS]) >= 3 and "dynamic" in r["recall_at_10"]
    assert min(r["recall_at_10"].values()) >= 3 * r["chance_recall_at_10"]


def test_a_checkpoint_of_other_code_is_refused_or_made_again(tmp_path, capsys, monkeypatch):
    """A cache the notebooks made with an earlier version: refused by default (naming the checkpoint),
    made again with --recompute-stale (the notebooks' flag) instead of failing the notebook."""
    monkeypatch.setitem(composed.PRESETS, "quick", composed.Settings(n_pretrain=200, pretrain_steps=5, n_val=4,
                                                                       siblings=3, near_misses=2, lrs=(1e-3,)))
    out = tmp_path / "run"
    args = ["composed", "--quick", *TINY, "--methods", "sum", "--out", str(out)]
    assert main(args) == 0
    monkeypatch.setattr(composed, "code_digests", lambda modules: {"mclfir_lite.retrieval.composed": "other code"})
    capsys.readouterr()
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "seed0.pt" in err and "different configuration" in err and "--fresh" in err
    assert main([*args, "--recompute-stale"]) == 0
    printed = capsys.readouterr().out
    assert "made again (--recompute-stale)" in printed and "R@10" in printed      # trained again, not refused
    capsys.readouterr()
    assert main([*args, "--recompute-stale"]) == 0                                  # now it resumes
    assert "made again" not in capsys.readouterr().out


def test_a_results_json_of_other_methods_is_not_replaced_unawares(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["composed", "--quick", "--steps", "3", "--n-train", "64", "--n-test", "6", "--image-size", "16",
            "--out", str(out)]
    assert main([*args, "--methods", "sum"]) == 0
    first = (out / "results.json").read_text()
    assert main([*args, "--methods", "tirg"]) == 2
    assert "composed results of other options (methods: ['sum'] then, ['tirg'] now)" in capsys.readouterr().err
    assert (out / "results.json").read_text() == first
    (out / "results.json").write_text(json.dumps({"compatibility_strategy": "mclfir", "strategies": {}}))   # crossmodal's
    assert main([*args, "--methods", "sum"]) == 2
    assert "the composed command did not write" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["composed", "crossmodal"])
def test_out_that_is_a_file_is_named(tmp_path, capsys, command):
    (tmp_path / "taken").write_text("mine")
    assert main([command, "--quick", "--out", str(tmp_path / "taken")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and (tmp_path / "taken").read_text() == "mine"
