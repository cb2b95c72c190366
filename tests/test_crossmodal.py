"""The crossmodal command and its pieces: captions, tokenizer, CLIP loss, results.json, resume, refusals."""
import json

import numpy as np
import pytest
import torch

from mclfir_lite.retrieval import captions as cap
from mclfir_lite.cli.main import main
from mclfir_lite.retrieval.compatibility import chance_recall
from mclfir_lite.retrieval.texttower import clip_loss

TINY = ["--steps", "3", "--n-train", "64", "--n-gallery", "40", "--image-size", "16"]


def test_captions_describe_what_they_mention():
    rng = np.random.default_rng(0)
    labels = {"colour": np.array([0, 0, 4]), "length": np.array([3, 1, 3])}
    text, said = cap.caption(labels, 0, ["colour", "length"], rng, min_mentioned=2)
    assert said == {"colour": 0, "length": 3} and "red" in text
    m = cap.matches(labels, [0, 1, 2], [said, {"colour": 0}])
    assert m.tolist() == [[True, True], [False, True], [False, False]]
    texts, values = cap.value_captions("colour", per_value=2)
    assert len(texts) == 16 and values.tolist() == sorted(values.tolist())
    assert not any(f.split()[0] in t.split()[0] for t in texts for f in cap.TRAIN_TEMPLATES)  # held-out frames


def test_tokenizer_only_grows():
    tok = cap.Tokenizer()
    tok.extend(["a red garment"])
    ids, offsets = tok.encode(["a red garment", "a scarlet garment"])
    tok.extend(["a blue garment with long sleeves"])
    assert tok.encode(["a red garment"])[0].tolist() == ids[:offsets[1]].tolist()   # old ids unchanged
    assert 0 in ids[offsets[1]:].tolist()        # "scarlet" was unknown: <unk>


def test_clip_loss_is_clips_with_one_positive():
    torch.manual_seed(0)
    i, t = torch.nn.functional.normalize(torch.randn(5, 8), dim=1), torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    s = i @ t.T / 0.1
    clip = (torch.nn.functional.cross_entropy(s, torch.arange(5)) + torch.nn.functional.cross_entropy(s.T, torch.arange(5))) / 2
    assert torch.allclose(clip_loss(i, t, torch.eye(5, dtype=torch.bool)), clip)


def test_chance_recall_by_hand():
    # one query, 4 candidates, 1 relevant: R@1 = 1/4, R@2 = 1/2
    assert chance_recall([1], [1, 0, 0, 0], 1) == pytest.approx(0.25)
    assert chance_recall([1], [1, 0, 0, 0], 2) == pytest.approx(0.5)


def test_crossmodal_writes_results_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["crossmodal", "--quick", *TINY, "--strategies", "finetune", "mclfir", "--out", str(out)]
    assert main(args) == 0
    r = json.loads((out / "results.json").read_text())
    T = len(r["plan"])
    assert T >= 3 and len(r["compatibility"]) == T and all(len(row) == T for row in r["compatibility"])
    assert 0 < r["chance"] < 1 and r["text_tower"]["used"]
    for st in ("finetune", "mclfir"):
        x = r["strategies"][st]
        assert set(x["final"]) == {"text_to_image", "image_to_text"}
        assert set(x["final"]["text_to_image"]) == {"reindexed", "old_index"}
        assert len(x["bct_criterion"]["pairs"]) == T * (T - 1) // 2
        b = x["backfilling"]
        assert len(b["random"]) == len(b["policy"]) == len(b["fractions"])
        assert b["random"][0] == pytest.approx(x["final"]["text_to_image"]["old_index"])
        assert b["random"][-1] == pytest.approx(x["final"]["text_to_image"]["reindexed"])
        assert {"R@1", "R@5"} <= set(x["recall"]["text_to_image"]) and "chance_image_to_text" in x["recall"]
    capsys.readouterr()
    assert main(args) == 0                                # again: resumed from the checkpoints
    assert "resumed after increment 3" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["compatibility"] == r["compatibility"]


@pytest.mark.parametrize("extra, message", [
    (["--strategies", "magic"], "unknown strategy 'magic'"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--n-gallery", "-3"], "--n-gallery must be a positive integer"),
    (["--text-tower", "gpt"], "unknown --text-tower 'gpt'"),
    (["--seed", str(2**32)], "--seed must be in 0..4294967295"),
    (["--seed", "-1"], "--seed must be in 0..4294967295"),
    (["--image-size", "100000"], "choose a smaller --image-size"),
    (["--out", ""], "--out is empty"),
    (["--n-gallery", "2"], "--n-gallery 2 is too small: no gallery image has"),
])
def test_crossmodal_refuses_bad_options(tmp_path, capsys, extra, message):
    assert main(["crossmodal", "--quick", *TINY, "--out", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_clip_text_tower_falls_back_and_says_so(monkeypatch):
    from mclfir_lite.retrieval import zeroshot
    from mclfir_lite.retrieval.texttower import TextTower, build_text_tower
    monkeypatch.setattr(zeroshot, "load_clip", lambda *a, **k: (None, None, "no weights here"))
    tower, info = build_text_tower("clip")
    assert isinstance(tower, TextTower) and "no weights here" in info["why"]


def test_quick_diagonal_is_above_chance(tmp_path):
    """The done-when criterion on one quick seed (mclfir, the headline strategy)."""
    out = tmp_path / "q"
    assert main(["crossmodal", "--quick", "--seed", "5", "--strategies", "mclfir", "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert min(r["compatibility"][i][i] for i in range(len(r["compatibility"]))) >= r["chance"] + 0.1


def test_a_checkpoint_of_other_code_is_made_again_with_recompute_stale(tmp_path, capsys, monkeypatch):
    from pathlib import Path
    from mclfir_lite.retrieval import crossmodal
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    args = ["crossmodal", "--quick", *TINY, "--strategies", "finetune", "--out", str(out)]
    assert main(args) == 0
    monkeypatch.setattr(crossmodal, "code_digest", lambda: "other code")
    capsys.readouterr()
    assert main(args) != 0 and "finetune.pt" in capsys.readouterr().err          # refused, naming the checkpoint
    assert main([*args, "--recompute-stale"]) == 0
    printed = capsys.readouterr().out
    assert "made again (--recompute-stale)" in printed and "resumed" not in printed
    assert f"checkpoint {Path('run') / 'checkpoints' / 'finetune.pt'} was made with" in printed   # shown relative
    (out / "checkpoints" / "finetune.pt").write_bytes(b"not a checkpoint")    # damaged: made again too
    assert main([*args, "--recompute-stale"]) == 0
    assert "made again (--recompute-stale)" in capsys.readouterr().out


def test_a_results_json_in_out_is_never_replaced_unawares(tmp_path, capsys):
    """Another command's results.json, a file that is not JSON, and this command's results of other
    options are refused before any work and left as they are; --fresh replaces this command's own."""
    out = tmp_path / "run"
    out.mkdir()
    foreign = {"format": "mclfir_lite.results", "command": "python -m mclfir_lite demo", "strategies": {"finetune": {}}}
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "finetune.pt").write_bytes(b"the demo's")    # the same name as crossmodal's own
    for content in (json.dumps(foreign), "{not json"):
        (out / "results.json").write_text(content)
        for extra in ([], ["--fresh"]):     # --fresh deletes nothing in a folder it may not use
            assert main(["crossmodal", "--quick", *TINY, "--strategies", "finetune", "--out", str(out), *extra]) == 2
            err = capsys.readouterr().err
            assert "the crossmodal command did not write" in err and "never replaced" in err
            assert (out / "results.json").read_text() == content
            assert (out / "checkpoints" / "finetune.pt").read_bytes() == b"the demo's"
    (out / "results.json").write_text(json.dumps(foreign))
    assert main(["crossmodal", "--quick", *TINY, "--out", str(out)]) == 2
    assert "(the demo command wrote it)" in capsys.readouterr().err
    (out / "results.json").unlink()
    (out / "checkpoints" / "finetune.pt").unlink()
    args = ["crossmodal", "--quick", *TINY, "--out", str(out)]
    assert main([*args, "--strategies", "finetune"]) == 0
    first = (out / "results.json").read_text()
    assert json.loads(first)["made_by"] == "crossmodal"
    assert main([*args, "--strategies", "bct"]) == 2                 # other options: refused, kept
    assert "other options (strategies: ['finetune'] then, ['bct'] now)" in capsys.readouterr().err
    assert (out / "results.json").read_text() == first
    assert main([*args, "--strategies", "finetune"]) == 0            # the same options: the same experiment
    assert main([*args, "--strategies", "bct", "--fresh"]) == 0      # --fresh replaces it
    assert list(json.loads((out / "results.json").read_text())["strategies"]) == ["bct"]
