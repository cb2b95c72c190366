"""Tests of the SynthFashion renderer (mclfir_lite/data/synth.py)."""
import numpy as np
import pytest

from mclfir_lite.data import synth
from mclfir_lite.data.synth import ATTRIBUTES, render, render_one


def test_attribute_table():
    assert list(ATTRIBUTES)[:6] == ["sleeve_length", "neckline", "length", "silhouette",
                                    "colour", "pattern"]
    for attr, values in ATTRIBUTES.items():
        assert 4 <= len(values) <= 8, attr
        assert len(set(values)) == len(values), attr


@pytest.mark.parametrize("size", [16, 32, 64, 96])
def test_shapes_and_dtypes(size):
    images, labels = render(3, size, seed=0)
    assert images.shape == (3, size, size, 3) and images.dtype == np.uint8
    assert list(labels) == list(ATTRIBUTES)
    for attr, lab in labels.items():
        assert lab.shape == (3,) and lab.dtype == np.int64, attr
    one = render_one({"sleeve_length": 0}, size)
    assert one.shape == (size, size, 3) and one.dtype == np.uint8


def test_empty():
    images, labels = render(0, 32)
    assert images.shape == (0, 32, 32, 3)
    assert all(lab.shape == (0,) for lab in labels.values())


def test_deterministic():
    a, la = render(6, 32, seed=3)
    b, lb = render(6, 32, seed=3)
    assert a.tobytes() == b.tobytes()
    assert all(np.array_equal(la[k], lb[k]) for k in ATTRIBUTES)
    c, _ = render(6, 32, seed=4)
    assert not np.array_equal(a, c)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(render_one({"colour": 2}, 32, rng_a), render_one({"colour": 2}, 32, rng_b))
    assert np.array_equal(render_one({"colour": 2}, 32), render_one({"colour": 2}, 32))


def test_nested():
    big, big_labels = render(12, 32, seed=1)
    small, small_labels = render(5, 32, seed=1)
    assert np.array_equal(big[:5], small)
    for attr in ATTRIBUTES:
        assert np.array_equal(big_labels[attr][:5], small_labels[attr])


def test_render_one_reproduces_render():
    images, labels = render(4, 32, seed=9)
    for i in range(4):
        lab = {a: int(labels[a][i]) for a in ATTRIBUTES}
        again = render_one(lab, 32, np.random.default_rng([9, i]))
        assert np.array_equal(again, images[i])


def test_labels_in_range_uniform_and_complete():
    n = 2000
    _, labels = render(n, 16, seed=0)
    for attr, values in ATTRIBUTES.items():
        lab = labels[attr]
        assert lab.min() >= 0 and lab.max() < len(values), attr
        counts = np.bincount(lab, minlength=len(values))
        assert (counts > 0).all(), f"{attr}: a value never appears: {counts}"
        expected = n / len(values)
        assert np.abs(counts - expected).max() < 0.3 * expected, f"{attr}: {counts}"
    # attributes are drawn independently: no two label columns are strongly correlated
    cols = np.stack([labels[a] for a in ATTRIBUTES]).astype(float)
    corr = np.corrcoef(cols)
    assert np.abs(corr - np.eye(len(ATTRIBUTES))).max() < 0.1


def _arm_region(rng_seed, size, margin=0.075):
    """Pixels near either arm (shoulder to hand) of render_one(..., default_rng(rng_seed))."""
    rng = np.random.default_rng(rng_seed)
    synth._draw_labels(rng)                    # render_one draws the labels first
    a, b = synth._transform(synth._draw_nuisance(rng), size)
    ys, xs = np.mgrid[:size, :size] + 0.5
    pix = np.stack([xs, ys], -1)
    scale = np.sqrt(abs(np.linalg.det(a)))     # pixels per figure unit
    near = np.zeros((size, size), bool)
    for side in (-1, 1):
        shoulder, wrist = synth._arm(side)
        p0, p1 = a @ shoulder + b, a @ (wrist + 0.06 * (wrist - shoulder)) + b
        d = p1 - p0
        t = np.clip(((pix - p0) @ d) / (d @ d), 0, 1)
        dist = np.linalg.norm(pix - (p0 + t[..., None] * d), axis=-1)
        near |= dist < margin * scale
    return near


@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_sleeve_length_changes_the_sleeves(rng_seed):
    size = 64
    images = [render_one({"sleeve_length": k}, size, np.random.default_rng(rng_seed))
              for k in range(len(ATTRIBUTES["sleeve_length"]))]
    arms = _arm_region(rng_seed, size)
    for k in range(1, len(images)):
        diff = np.abs(images[k].astype(int) - images[k - 1].astype(int)).max(-1)
        changed = diff > 0
        assert changed.sum() >= 4, f"sleeve {k - 1} -> {k} changed only {changed.sum()} pixels"
        assert not (changed & ~arms).any(), f"sleeve {k - 1} -> {k} changed pixels off the arms"
    short_vs_long = np.abs(images[0].astype(int) - images[-1].astype(int)).max(-1) > 30
    assert short_vs_long.sum() > 40


def test_every_attribute_changes_the_image():
    rng_seed = 4
    for attr, values in ATTRIBUTES.items():
        images = [render_one({attr: k}, 48, np.random.default_rng(rng_seed)) for k in range(len(values))]
        for j in range(len(values)):
            for k in range(j):
                assert not np.array_equal(images[j], images[k]), f"{attr}: {values[j]} == {values[k]}"


def test_value_names_accepted():
    by_index = render_one({"sleeve_length": 5, "colour": 4}, 32, np.random.default_rng(0))
    by_name = render_one({"sleeve_length": "long", "colour": "blue"}, 32, np.random.default_rng(0))
    assert np.array_equal(by_index, by_name)


def test_nuisance_varies_with_identical_labels():
    labels = {a: 0 for a in ATTRIBUTES}
    x = render_one(labels, 64, np.random.default_rng(1)).astype(int)
    y = render_one(labels, 64, np.random.default_rng(2)).astype(int)
    assert np.abs(x - y).mean() > 5
    # the background differs too (corners are background: the figure is centred)
    corners = (slice(0, 4), slice(0, 4))
    assert np.abs(x[corners].mean((0, 1)) - y[corners].mean((0, 1))).max() > 2
    for img in (x, y):
        assert img.std() > 10                         # not a constant image
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 100


def test_argument_validation():
    with pytest.raises(ValueError, match="n must be"):
        render(-1)
    with pytest.raises(ValueError, match="n must be"):
        render(2.5)
    with pytest.raises(ValueError, match="size must be"):
        render(2, size=8)
    with pytest.raises(ValueError, match="size must be"):
        render_one({}, size=15)
    with pytest.raises(ValueError, match="seed must be"):
        render(2, seed=-1)
    with pytest.raises(ValueError, match="'sleeve'"):
        render_one({"sleeve": 1})
    with pytest.raises(ValueError, match="'neckline'"):
        render_one({"neckline": len(ATTRIBUTES["neckline"])})
    with pytest.raises(ValueError, match="'colour'"):
        render_one({"colour": -1})
    with pytest.raises(ValueError, match="'teal'"):
        render_one({"colour": "teal"})


# ---------------------------------------------------------------- pools and domains

def test_each_increment_brings_its_own_images(tmp_path, monkeypatch):
    from mclfir_lite.data.datasets import synthfashion_table
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    plan = [["length"], ["pattern", "colour"]]
    t = synthfashion_table(n=60, size=24, seed=1, increments=plan)
    own = {a: t.labels[a] >= 0 for a in ("length", "pattern", "colour")}
    assert not (own["length"] & own["pattern"]).any()             # disjoint pools
    assert (own["pattern"] == own["colour"]).all()                # one pool per increment
    assert (own["length"] | own["pattern"]).all()                 # every row is in a pool
    assert 20 <= own["length"].sum() <= 40
    assert (t.labels["neckline"] >= 0).all()                      # attributes outside the plan keep labels
    shared = synthfashion_table(n=60, size=24, seed=1, increments=plan, pools="shared")
    assert all((shared.labels[a] >= 0).all() for a in own)
    plain = synthfashion_table(n=60, size=24, seed=1)
    np.testing.assert_array_equal(shared.images, plain.images)     # same pixels: only the labelling differs
    np.testing.assert_array_equal(t.labels["length"][own["length"]], plain.labels["length"][own["length"]])
    with pytest.raises(ValueError, match="pools"):
        synthfashion_table(n=10, size=24, increments=plan, pools="mixed")


def test_domain_shift_changes_the_backdrop_not_the_labels(tmp_path, monkeypatch):
    from mclfir_lite.data.datasets import synthfashion_table
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    plan = [["length"], ["colour"], ["pattern"]]
    a = synthfashion_table(n=90, size=24, seed=2, increments=plan)
    b = synthfashion_table(n=90, size=24, seed=2, increments=plan, domain_shift=True)
    for attr in ("length", "colour", "pattern"):
        np.testing.assert_array_equal(a.labels[attr], b.labels[attr])
    pool1 = b.labels["colour"] >= 0                                # domain 1: warm beige, brighter backdrop
    corner = lambda t, m: t.images[m][:, :3, :3].mean()
    assert corner(b, pool1) > corner(a, pool1) + 5
    pool0 = b.labels["length"] >= 0                                # domain 0 is unchanged
    np.testing.assert_array_equal(a.images[pool0], b.images[pool0])


def test_rendered_images_are_cached_on_disk(tmp_path, monkeypatch):
    from mclfir_lite.data.datasets import synthfashion_table
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path))
    first = synthfashion_table(n=20, size=24, seed=3)
    files = list((tmp_path / "synthfashion").glob("*.npz"))
    assert len(files) == 1
    from mclfir_lite.data import synth
    real_render = synth.render

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered again: the cache was not read")
    monkeypatch.setattr(synth, "render", no_rendering)
    again = synthfashion_table(n=20, size=24, seed=3)            # from the file, not rendered
    np.testing.assert_array_equal(first.images, again.images)
    monkeypatch.setattr(synth, "render", real_render)
    files[0].write_bytes(b"garbage")                               # a damaged cache entry renders anew
    np.testing.assert_array_equal(synthfashion_table(n=20, size=24, seed=3).images, first.images)
