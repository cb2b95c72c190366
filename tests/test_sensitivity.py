"""Counterfactual sensitivity (issue 20, item 8): the images differ only where they should,
and the matrix sees a head that follows its attribute."""
import numpy as np
import pytest
import torch

from mclfir_lite.retrieval.sensitivity import FACTORS, NUISANCE, counterfactual_images, selectivity, sensitivity
from mclfir_lite.data.synth import ATTRIBUTES


@pytest.fixture(scope="module")
def images():
    return counterfactual_images(6, 32, seed=3)


def test_each_factor_changes_the_image_and_nothing_else_is_random(images):
    assert set(images) == {"base", *FACTORS}
    for f in FACTORS:
        assert images[f].shape == images["base"].shape and images[f].dtype == torch.uint8
    again = counterfactual_images(6, 32, seed=3)
    assert all(torch.equal(images[k], again[k]) for k in images)
    # a garment's colour change moves many pixels; a neckline change few; both some
    for f in ("colour", "neckline", NUISANCE):
        assert (images[f] != images["base"]).any(dim=(1, 2, 3)).all(), f


def test_a_change_of_colour_keeps_the_pose(images):
    """Same nuisances: the background (corners) is identical when only the colour changes,
    and differs when the nuisances are redrawn."""
    corner = lambda x: x[:, :, :3, :3].float()
    assert torch.equal(corner(images["colour"]), corner(images["base"]))
    assert not torch.equal(corner(images[NUISANCE]), corner(images["base"]))


class _ColourHead(torch.nn.Module):
    """A stand-in model whose only head reads the chromaticity at the garment's centre (brightness
    divided out): it must follow colour more than anything else."""
    attributes = ["colour"]
    isolated, training = False, False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encoder_for(self, attribute):
        def centre_chroma(x):
            s = x.shape[-1]
            c = x[:, :, s // 2 - 3: s // 2 + 3, s // 2 - 3: s // 2 + 3].float().mean(dim=(2, 3))
            return c / c.sum(1, keepdim=True)
        return centre_chroma

    def heads(self, feats, attribute):
        return feats - 1 / 3

    def parameters(self):
        return iter([torch.zeros(1)])


def test_a_head_that_reads_colour_is_selective_for_colour(images):
    m = sensitivity(_ColourHead(), images)
    assert set(m) == {"colour"} and set(m["colour"]) == set(FACTORS)
    assert m["colour"]["colour"] == max(m["colour"].values())
    assert selectivity(m)["colour"] > 1


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n must be"):
        counterfactual_images(0, 32)


def test_the_benchmark_draws_its_garments_in_the_style_of_the_lab(monkeypatch):
    """bench_sensitivity redraws garments for models trained on the lab's images: it must draw
    them with the same renderer calibration (the default preset's is v2, not the function's v1)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_sensitivity
    from mclfir_lite import config
    from mclfir_lite.retrieval import sensitivity as S
    monkeypatch.setitem(config.PRESETS["quick"], "style", "v2")     # the quick lab drawn in v2
    seen = {}

    def spy(n, size, seed=0, style="v1"):
        seen["style"] = style
        raise RuntimeError("stop: the style was seen")
    monkeypatch.setattr(S, "counterfactual_images", spy)
    with pytest.raises(RuntimeError, match="style was seen"):
        bench_sensitivity.run(quick=True, seed=0)
    assert seen["style"] == "v2"
