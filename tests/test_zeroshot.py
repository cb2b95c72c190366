"""Zero-shot / generic baselines: one attribute-blind embedding evaluated per attribute,
the chance row, and CLIP prompts (with a stand-in CLIP model; real weights are optional)."""
import json
import time

import numpy as np
import pytest
import torch

from mclfir_lite.core import encoders, metrics
from mclfir_lite.retrieval import zeroshot
from mclfir_lite.data.table import AttributeSplit, load_images, make_protocol
from mclfir_lite.data.datasets import synthfashion_table


pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")


def hand_made():
    """8 rows; attribute a = row // 4 (two values), attribute b = row % 2."""
    labels = {"a": np.array([0, 0, 0, 0, 1, 1, 1, 1]), "b": np.array([0, 1, 0, 1, 0, 1, 0, 1])}
    query, cand = np.array([0, 5]), np.array([1, 2, 3, 4, 6, 7])
    protocol = {k: AttributeSplit(np.array([], dtype=int), query, cand) for k in labels}
    return labels, protocol


def test_one_embedding_serves_one_attribute_not_the_other():
    labels, protocol = hand_made()
    emb = torch.nn.functional.one_hot(torch.as_tensor(labels["a"])).float()  # knows a, blind to b
    maps = zeroshot.embedding_map(emb, labels, protocol)
    assert maps["a"] == pytest.approx(1.0)
    # b, ranking by a (ties in candidate order): query 0 (b=0) ranks 1,2,3,4,6,7 and its relevant
    # 2, 4, 6 sit at ranks 2, 4, 5 -> AP (1/2 + 2/4 + 3/5) / 3; query 5 (b=1) ranks 4,6,7,1,2,3 and
    # its relevant 7, 1, 3 sit at ranks 3, 4, 6 -> AP (1/3 + 2/4 + 3/6) / 3
    assert maps["b"] == pytest.approx(((1 / 2 + 2 / 4 + 3 / 5) / 3 + (1 / 3 + 2 / 4 + 3 / 6) / 3) / 2)


def test_chance_is_the_expected_ap_of_a_random_ranking():
    labels, protocol = hand_made()
    ch = metrics.chance_map_per_attribute(labels, protocol, list(protocol))
    # a: query 0 (a=0) has 3 of 6 candidates relevant (1, 2, 3), query 5 (a=1) 3 (4, 6, 7);
    # b: query 0 (b=0) 3 (2, 4, 6), query 5 (b=1) 3 (1, 3, 7). With R = 3 of N = 6 and
    # H_6 = 49/20: E[AP] = H_6 / 6 + (R - 1)(6 - H_6) / 30 = 0.6450
    h6 = 49 / 20
    assert ch == {"a": pytest.approx(h6 / 6 + 2 * (6 - h6) / 30), "b": pytest.approx(h6 / 6 + 2 * (6 - h6) / 30)}
    with pytest.raises(ValueError, match="not in the protocol"):
        zeroshot.embedding_map(torch.zeros(8, 2), labels, protocol, ["c"])


@pytest.fixture(scope="module")
def tiny():
    table = synthfashion_table(n=160, size=16, seed=4)
    protocol = make_protocol(table, seed=4, max_queries=20, max_candidates=60)
    return table, load_images(table, 16, use_cache=False), protocol


def test_generic_baseline_is_offline_and_cached(tiny, tmp_path, monkeypatch):
    import socket
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args[1:] or args)
        raise OSError("no network in this test")
    for target, name in ((socket, "create_connection"), (socket.socket, "connect"), (socket, "getaddrinfo")):
        monkeypatch.setattr(target, name, no_network)
    table, imgs, protocol = tiny
    torch.manual_seed(0)
    enc = encoders.build_encoder("smallcnn", trainable=False, width=8)
    res = zeroshot.generic_baseline(imgs, table.labels, protocol, encoder=enc, key_parts=["tiny"])
    assert attempts == [], f"the generic baseline tried the network: {attempts}"
    assert set(res["map"]) == set(table.attributes) == set(res["chance"])
    assert all(0 <= v <= 1 for v in res["map"].values())
    assert res["mean_map"] == pytest.approx(np.mean(list(res["map"].values())))
    assert "smallcnn" in res["encoder"]
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 1
    json.dumps(res)
    # one attribute-blind embedding serves every attribute: the baseline's maps are those of the
    # generic embeddings, ranked per attribute; and the second time they come from the cache
    # (an encoder that can no longer run is never called)
    emb = zeroshot.generic_embeddings(enc, imgs, ["tiny"])
    assert torch.allclose(emb.norm(dim=-1), torch.ones(len(emb)), atol=1e-5)
    assert zeroshot.embedding_map(emb, table.labels, protocol) == res["map"]

    def boom(*args, **kwargs):
        raise AssertionError("the encoder ran again: the feature cache was not read")
    monkeypatch.setattr(enc, "forward", boom)
    again = zeroshot.generic_baseline(imgs, table.labels, protocol, encoder=enc, key_parts=["tiny"])
    assert again["map"] == res["map"]


# ---------------------------------------------------------------------------- CLIP with a stand-in model

class OracleCLIP(torch.nn.Module):
    """A stand-in with open_clip's interface: images are embedded as the one-hot of their
    colour (read from a pixel), prompts as the one-hot of the value they name."""

    def __init__(self, names, lookup):
        super().__init__()
        self.names, self.lookup = names, lookup   # lookup: image tensor -> value index
        self.visual = type("V", (), {"image_size": 16, "preprocess_cfg": {"mean": (0, 0, 0), "std": (1, 1, 1)}})()
        self.logit_scale = torch.nn.Parameter(torch.tensor(np.log(100.0), dtype=torch.float32))

    def encode_image(self, x):
        return torch.nn.functional.one_hot(self.lookup(x), len(self.names)).float()

    def encode_text(self, tokens):
        return torch.nn.functional.one_hot(tokens, len(self.names)).float()


def test_clip_zero_shot_with_a_perfect_stand_in_scores_one(tiny):
    table, imgs, protocol = tiny
    attr = "colour"
    names = table.values[attr]
    labels = table.labels[attr]
    # a lookup that knows each image's colour label (by its pixels, via a dict on bytes)
    by_bytes = {imgs[i].numpy().tobytes(): int(labels[i]) for i in range(len(imgs))}
    def lookup(x):  # x: normalised floats in [0, 1] here (mean 0, std 1)
        return torch.tensor([by_bytes[(xi * 255).round().to(torch.uint8).numpy().tobytes()] for xi in x])
    seen = []
    def tokenizer(texts):
        seen.extend(texts)
        return torch.tensor([next(k for k, v in enumerate(names) if f"with {zeroshot.readable(v)} " in t)
                             for t in texts])
    model = OracleCLIP(names, lookup)
    res = zeroshot.clip_zero_shot(imgs, table.labels, table.values, protocol, [attr],
                                  clip=(model, tokenizer, "oracle"))
    assert res["accuracy"][attr] == 1.0 and res["map"][attr] == pytest.approx(1.0)
    assert res["image_map"][attr] == pytest.approx(1.0) and res["model"] == "oracle"
    assert seen[0] == f"a photo of a garment with {zeroshot.readable(names[0])} colour"


def test_prompts_are_readable():
    assert zeroshot.readable("baseColour") == "base colour"
    assert zeroshot.readable("sleeve_length") == "sleeve length"
    assert zeroshot.prompts("neckline", ["v_neck", "crew"]) == [
        "a photo of a garment with v neck neckline", "a photo of a garment with crew neckline"]


def test_without_clip_weights_the_baseline_says_why_and_returns_none(tiny, capsys, monkeypatch):
    table, imgs, protocol = tiny
    monkeypatch.setattr(encoders, "network_available", lambda *a, **k: pytest.fail("no network call expected"))
    t0 = time.perf_counter()
    assert zeroshot.clip_zero_shot(imgs, table.labels, table.values, protocol,
                                   pretrained="/no/such/clip.pt") is None
    assert "checkpoint not found" in capsys.readouterr().out
    model, tok, why = zeroshot.load_clip("ViT-B-32", "laion2b_s34b_b79k")  # a hub tag, not downloaded
    if model is not None:
        pytest.skip("these CLIP weights are in the local Hugging Face cache of this machine")
    assert tok is None and "not in the local cache" in why
    assert time.perf_counter() - t0 < 25


def test_clip_zero_shot_runs_with_a_tiny_open_clip_model(tiny, tmp_path):
    """open_clip's real interface (tokenizer, encode_image, encode_text) with a tiny random model."""
    import open_clip
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "mclfir-tiny-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "mclfir-tiny-test.json")
    model = open_clip.create_model("mclfir-tiny-test", pretrained=None).eval()
    table, imgs, protocol = tiny
    res = zeroshot.clip_zero_shot(imgs, table.labels, table.values, protocol, ["colour", "length"],
                                  clip=(model, open_clip.get_tokenizer("mclfir-tiny-test"), "tiny"))
    for key in ("accuracy", "map", "image_map", "chance"):
        assert set(res[key]) == {"colour", "length"} and all(0 <= v <= 1 for v in res[key].values())
