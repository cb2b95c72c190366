"""index_map: queries from one model against an index built by another."""
import numpy as np
import torch

from mclfir_lite import metrics
from mclfir_lite.continual import embed
from mclfir_lite.encoders import SmallCNN
from mclfir_lite.index import GalleryIndex, index_map
from mclfir_lite.model import RetrievalModel


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
