"""index_map: queries from one model against an index built by another."""
import numpy as np
import torch

from mclfir_lite.core import metrics
from mclfir_lite.training.evaluate import embed
from mclfir_lite.core.encoders import SmallCNN
from mclfir_lite.lab.diagrams import draw_reindexing
from mclfir_lite.retrieval.index import (GalleryIndex, compare_indexing, drift, index_map, paired_gap, reindex_cost,
                                         separation)
from mclfir_lite.core.model import RetrievalModel


def _model(seed):
    m = RetrievalModel(lambda: SmallCNN(width=8), embed_dim=8, seed=seed)
    m.add_attribute("colour")
    return m


def test_index_map_same_model_equals_plain_map_and_stale_index_differs():
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8)
    labels = np.arange(30) % 3
    q, c = np.arange(6), np.arange(6, 30)
    old, new = _model(0), _model(1)
    idx = GalleryIndex.build(old, images, c, "colour")
    fresh = metrics.mean_average_precision(embed(old, images, q, "colour"), embed(old, images, c, "colour"),
                                           labels[q], labels[c])
    assert index_map(old, images, labels, q, idx) == fresh
    assert idx.staleness(old, images) < 1e-6
    # a different model: its queries are ranked against the old model's gallery embeddings
    stale = metrics.mean_average_precision(embed(new, images, q, "colour"), idx.embeddings, labels[q], labels[c])
    assert index_map(new, images, labels, q, idx) == stale
    assert idx.staleness(new, images) > 0.01


def test_drift_scale_is_0_to_2_with_hand_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert drift(a, a) == 0.0
    assert np.isclose(drift(a, torch.tensor([[0.0, 1.0], [1.0, 0.0]])), 1.0)      # orthogonal
    assert drift(a, -a) == 2.0                                                     # opposite
    assert drift(a, a * (1 + 1e-7)) == 0.0                                         # rounding is clipped
    import pytest
    with pytest.raises(ValueError, match="same shape"):
        drift(a, a[:1])


def test_separation_by_hand():
    # two values, perfectly clustered: same-value cos 1, different-value cos 0
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    lab = np.array([0, 0, 1, 1])
    assert np.isclose(separation(e, lab), 1.0)
    assert np.isclose(separation(e, lab, -e, lab), -1.0)       # a query set pointing the other way
    assert np.isclose(separation(e, lab, e, 1 - lab), -1.0)


def test_compare_indexing_four_pairs_match_plain_map():
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    labels = np.arange(40) % 3
    q, g = np.arange(8), np.arange(8, 40)
    then, now = _model(0), _model(1)
    out = compare_indexing(then, now, images, labels, q, g, "colour")
    idx = GalleryIndex.build(then, images, g, "colour")
    assert np.isclose(out["map"]["stale"], index_map(now, images, labels, q, idx))
    assert np.isclose(out["map"]["at_indexing"], index_map(then, images, labels, q, idx))
    assert np.isclose(out["map"]["reindexed"], index_map(now, images, labels, q, GalleryIndex.build(now, images, g, "colour")))
    assert np.isclose(out["staleness"], idx.staleness(now, images))
    assert set(out["separation"]) == {"then", "now", "stale", "reindexed"}


def test_paired_gap_and_reindex_cost():
    gap, noise = paired_gap(np.array([1.0, 0.5, np.nan, 0.7]), np.array([0.5, 0.5, 0.2, 0.4]))
    d = np.array([0.5, 0.0, 0.3])
    assert np.isclose(gap, d.mean()) and np.isclose(noise, 2 * d.std(ddof=1) / np.sqrt(3))
    assert reindex_cost([["a"], ["b", "c"], ["d"]], {"a": 10, "b": 5, "c": 7, "d": 3}) == [0, 10, 22]
    import pytest
    with pytest.raises(KeyError, match="'d'"):
        reindex_cost([["a"], ["d"]], {"a": 1})


def test_draw_reindexing_draws():
    import matplotlib
    matplotlib.use("Agg")
    ax = draw_reindexing()
    assert len(ax.patches) > 8 and any("re-index" in t.get_text() for t in ax.texts)


def test_keep_or_reindex_verdicts():
    from mclfir_lite.retrieval.index import keep_or_reindex
    rng = np.random.default_rng(0)
    base = rng.random(200)
    assert keep_or_reindex(base + 0.1, base)[0] == "keep"
    assert keep_or_reindex(base, base + 0.1)[0] == "re-index"
    v, gap, margin = keep_or_reindex(base + rng.normal(0, 0.001, 200), base)
    assert v == "no difference" and abs(gap) <= margin and margin >= 0.01


def test_exercise_08_2_check(capsys):
    from mclfir_lite.lab import exercises
    inc, sizes = [["a"], ["b"], ["c"]], {"a": 10, "b": 5, "c": 7}
    assert exercises.check("08.2", 25, inc, sizes)              # 10 after inc 2, 15 after inc 3
    assert not exercises.check("08.2", 44, inc, sizes)          # every gallery after every increment
    assert "before" in capsys.readouterr().out
    assert not exercises.check("08.2", ..., inc, sizes)
    assert "not yet answered" in capsys.readouterr().out
