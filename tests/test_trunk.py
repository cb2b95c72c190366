"""A pretrained encoder that trains on a CPU (issue 21): a frozen trunk whose outputs are cached,
its last stage(s) trained; and per-increment pools on a real catalogue."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mclfir_lite.core import encoders
from mclfir_lite.config import Config
from mclfir_lite.training.runner import ContinualRunner
from mclfir_lite.data.table import FashionTable, make_protocol
from mclfir_lite.data.datasets import per_increment_pools, synthfashion_table
from mclfir_lite.retrieval.features import encode_dataset

ROOT = Path(__file__).resolve().parent.parent


def images(n=24, size=32, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


@pytest.mark.parametrize("blocks", [0, 1, 3, 7])
def test_trunk_then_tail_is_the_whole_encoder(blocks):
    whole = encoders.EfficientNetLite0(pretrained=True).eval()
    trunk, tail = encoders.split_encoder("efficientnet_lite0", blocks)
    x = images(4)
    with torch.no_grad():
        want = whole(x)
        got = tail.eval()(trunk(x))
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert tail.out_channels == whole.out_channels
    assert all(not p.requires_grad for p in trunk.parameters())
    assert (sum(p.numel() for p in tail.parameters()) > 0) == (blocks > 0)


@pytest.mark.parametrize("name,blocks", [("efficientnet_lite0", 8), ("efficientnet_lite0", -1), ("smallcnn", 1)])
def test_trainable_blocks_out_of_range_or_unsplittable_is_refused(name, blocks):
    with pytest.raises(ValueError, match="trainable blocks"):
        encoders.check_trainable_blocks(name, blocks)
    with pytest.raises(ValueError, match="trainable blocks"):
        Config(encoder=name, trainable_blocks=blocks).validate()


def test_tail_keeps_its_batchnorm_statistics_while_training():
    tail = encoders.split_encoder("efficientnet_lite0", 1)[1]
    tail.train()
    bns = [m for m in tail.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(m.training for m in bns)


def _tiny(pools_table=None):
    table = pools_table or synthfashion_table(n=160, size=32, seed=0)
    protocol = make_protocol(table, seed=0, max_queries=20, max_candidates=40)
    return table, protocol, torch.from_numpy(table.images).permute(0, 3, 1, 2).contiguous()


def test_runner_trains_the_tail_on_cached_trunk_features(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    table, protocol, imgs = _tiny()
    trunk, _ = encoders.split_encoder("efficientnet_lite0", 1)
    feats = encode_dataset(trunk, imgs, ["t"], progress=False)
    assert feats.shape[1] == 192                       # the input of the last stage
    cfg = Config(encoder="efficientnet_lite0", trainable_blocks=1, steps_per_attribute=3, batch_size=8,
                 embed_dim=16, flip=False)
    runner = ContinualRunner("finetune", imgs, table.labels, protocol, [["colour"], ["length"]], cfg,
                             progress=False, features=feats)
    before = {k: v.clone() for k, v in runner.model.encoder.state_dict().items()}
    res = runner.run()
    after = runner.model.encoder.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("weight" in k for k in moved)                       # the tail trained
    assert not any("running_mean" in k or "running_var" in k for k in moved)   # its BN statistics did not
    assert set(res["final_map"]) == {"colour", "length"}
    # another cut is another run: it never resumes this one
    other = ContinualRunner("finetune", imgs, table.labels, protocol, [["colour"], ["length"]],
                            Config(**{**cfg.__dict__, "trainable_blocks": 2}), progress=False,
                            features=encode_dataset(encoders.split_encoder("efficientnet_lite0", 2)[0], imgs,
                                                    ["t"], progress=False))
    assert other.fingerprint["hash"] != runner.fingerprint["hash"]


def test_tail_without_features_is_refused():
    table, protocol, imgs = _tiny()
    with pytest.raises(ValueError, match="cached features"):
        ContinualRunner("finetune", imgs, table.labels, protocol, [["colour"]],
                        Config(encoder="efficientnet_lite0", trainable_blocks=1), progress=False)


def test_per_increment_pools_deal_each_row_to_one_increment():
    rng = np.random.default_rng(0)
    n = 600
    labels = {"a": rng.integers(0, 4, n), "b": rng.integers(0, 3, n), "c": rng.integers(0, 5, n)}
    split = np.where(rng.random(n) < 0.7, "train", "test")
    table = FashionTable([f"{i}.jpg" for i in range(n)], labels,
                         {"a": list("pqrs"), "b": list("xyz"), "c": list("vwxyz")}, split, name="t")
    pooled = per_increment_pools(table, [["a"], ["b", "c"]], seed=3)
    on_a, on_b, on_c = (pooled.labels[k] >= 0 for k in "abc")
    assert not (on_a & on_b).any() and np.array_equal(on_b, on_c) and (on_a | on_b).all()
    assert abs(on_a.sum() - n / 2) <= 2                              # stratified round robin: halves
    for attr, keep in (("a", on_a), ("b", on_b), ("c", on_c)):
        assert np.array_equal(pooled.labels[attr][keep], labels[attr][keep])
        for v in range(len(table.values[attr])):                     # every value keeps test rows
            assert ((pooled.labels[attr] == v) & (split == "test")).sum() > 0
    assert pooled.name != table.name
    again = per_increment_pools(table, [["a"], ["b", "c"]], seed=3)
    assert all(np.array_equal(again.labels[k], pooled.labels[k]) for k in "abc")


def _demo(tmp_path, *extra):
    env = {"MCLFIR_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mclfir_lite", "demo", "--quick", "--n-images", "240",
                           "--steps", "2", "--image-size", "32", "--no-progress", *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def test_cli_records_the_pretrained_encoder_and_its_trainable_blocks(tmp_path):
    out = tmp_path / "r"
    p = _demo(tmp_path, "--strategies", "finetune", "--encoder", "efficientnet_lite0", "--trainable-blocks", "2",
              "--out", str(out))
    assert p.returncode == 0, p.stderr
    enc = json.loads((out / "results.json").read_text())["encoder"]
    assert enc["trainable_blocks"] == 2 and "ImageNet" in enc["used"] and Path(enc["trunk_cache"]).is_file()
    assert enc["trunk_parameters"] > 0
    # a changed cut never resumes the run made with another
    p = _demo(tmp_path, "--strategies", "finetune", "--encoder", "efficientnet_lite0", "--trainable-blocks", "1",
              "--out", str(out))
    assert p.returncode == 2 and "trainable_blocks" in p.stderr


@pytest.mark.parametrize("extra,message", [
    (["--encoder", "efficientnet_lite0", "--trainable-blocks", "9"], "between 0 and 7"),
    (["--trainable-blocks", "1"], "cannot be split"),
    (["--encoder", "efficientnet_lite0", "--trainable-blocks", "2", "--frozen-encoder"], "give one of them"),
])
def test_cli_refuses_bad_trainable_blocks(tmp_path, extra, message):
    p = _demo(tmp_path, "--strategies", "finetune", "--out", str(tmp_path / "r"), *extra)
    assert p.returncode == 2 and message in p.stderr, p.stderr
