"""The renderer's styles (mclfir_lite.data.synth.STYLES): v1 unchanged, every style deterministic,
and each attribute's values visibly different in v2 (a cheap counterfactual check)."""
import hashlib
import itertools

import numpy as np
import pytest

from mclfir_lite.data import synth
from mclfir_lite.data.synth import ATTRIBUTES, STYLES, render, render_one

# sha256 of the images and labels below, computed with the renderer as it was before styles
# existed (commit f504eb2): style "v1" must keep drawing exactly these bytes.
V1_DIGEST = "e7e23d1370e63c560a483bbae7b9bd96f5ec07dd2d37a331ac6c6faefc34dcbd"


def _digest(**style) -> str:
    h = hashlib.sha256()
    for n, size, seed, dom in [(24, 48, 0, None), (16, 32, 3, None), (8, 64, 5, [0, 1, 2, 3, 4, 0, 1, 2]),
                               (6, 17, 1, None)]:
        im, lab = render(n, size=size, seed=seed, domains=dom, **style)
        h.update(im.tobytes())
        for a in ATTRIBUTES:
            h.update(lab[a].tobytes())
    h.update(render_one({"sleeve_length": "cap", "pattern": 3}, size=40, rng=np.random.default_rng(9),
                        **style).tobytes())
    return h.hexdigest()


def test_v1_is_byte_identical_to_the_renderer_before_styles():
    assert _digest() == V1_DIGEST
    assert _digest(style="v1") == V1_DIGEST


@pytest.mark.parametrize("style", sorted(STYLES))
def test_style_deterministic_and_nested(style):
    a, la = render(8, 48, seed=4, style=style)
    b, lb = render(8, 48, seed=4, style=style)
    assert a.tobytes() == b.tobytes()
    small, _ = render(3, 48, seed=4, style=style)
    assert np.array_equal(a[:3], small)
    lab = {k: int(la[k][5]) for k in ATTRIBUTES}
    assert np.array_equal(render_one(lab, 48, np.random.default_rng([4, 5]), style=style), a[5])


def test_styles_share_labels_but_not_pixels():
    a, la = render(10, 48, seed=2, style="v1")
    b, lb = render(10, 48, seed=2, style="v2")
    assert all(np.array_equal(la[k], lb[k]) for k in ATTRIBUTES)
    assert not np.array_equal(a, b)


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown style 'v9'"):
        render(1, 32, style="v9")
    with pytest.raises(ValueError, match="unknown style"):
        render_one({}, 32, style="nope")


def _changed_pixels(attr: str, style: str, size: int = 48, n: int = 12) -> dict:
    """For every pair of values of ``attr``: the pixels (out of size x size) that change by more
    than 40 grey levels when only that attribute changes, over ``n`` figures."""
    values = ATTRIBUTES[attr]
    out = {pair: [] for pair in itertools.combinations(range(len(values)), 2)}
    for s in range(n):
        ims = [render_one({attr: k}, size, np.random.default_rng([77, s]), style=style).astype(int)
               for k in range(len(values))]
        for i, j in out:
            out[i, j].append(int((np.abs(ims[i] - ims[j]).max(-1) > 40).sum()))
    return out


# v2 at 48 px: the least different pair of values of each attribute still changes at least this
# many pixels on the median figure (v1: sleeve_length 31, neckline 9, silhouette 56).
V2_MIN_CHANGED = {"sleeve_length": 40, "neckline": 18, "length": 80, "silhouette": 90, "colour": 150,
                  "pattern": 90}


@pytest.mark.parametrize("attr", list(ATTRIBUTES))
def test_v2_values_distinguishable_at_48px(attr):
    changed = _changed_pixels(attr, "v2")
    worst = min(changed, key=lambda p: np.median(changed[p]))
    names = [ATTRIBUTES[attr][k] for k in worst]
    assert np.median(changed[worst]) >= V2_MIN_CHANGED[attr], (names, changed[worst])


def test_v2_fine_attributes_more_visible_than_v1():
    for attr in ("sleeve_length", "neckline", "silhouette"):
        v1, v2 = _changed_pixels(attr, "v1"), _changed_pixels(attr, "v2")
        least = lambda c: min(np.median(v) for v in c.values())
        assert least(v2) > 1.3 * least(v1), attr


def test_load_dataset_takes_a_style_and_v1_is_the_default(isolated_cache):
    """style= reaches the renderer through load_dataset and Lab; v1 stays the default, byte for
    byte and by name (so no fingerprint changes); a style on another dataset is refused."""
    from mclfir_lite.data.datasets import load_dataset
    ref = load_dataset("synthfashion", n=60, size=24, seed=3, increments="synth6")
    v1 = load_dataset("synthfashion", n=60, size=24, seed=3, increments="synth6", style="v1")
    v2 = load_dataset("synthfashion", n=60, size=24, seed=3, increments="synth6", style="v2")
    assert np.array_equal(ref.images, v1.images) and ref.name == v1.name
    assert not np.array_equal(v1.images, v2.images) and v2.name == v1.name + "-stylev2"
    assert all(np.array_equal(v1.labels[a], v2.labels[a]) for a in ATTRIBUTES)
    with pytest.raises(ValueError, match="unknown style"):
        load_dataset("synthfashion", n=60, size=24, seed=3, style="v9")
    with pytest.raises(ValueError, match="synthfashion only"):
        load_dataset("table", "x.csv", style="v2")
