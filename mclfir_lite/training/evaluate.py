"""Evaluation: embeddings through an attribute's head, and mAP per attribute.

:func:`evaluate` is what the continual runner calls after every increment (every attribute
seen so far, on its query and candidate rows); :func:`embed` is what the notebooks, the
gallery index and the widgets use to embed images for one attribute.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core import metrics
from ..core.model import RetrievalModel
from ..data.table import AttributeSplit


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters."""
    return next(model.parameters()).device


@torch.no_grad()
def embed(model: RetrievalModel, images: torch.Tensor, rows: np.ndarray, attribute: str,
          batch_size: int = 512, features: dict | None = None) -> torch.Tensor:
    """Embeddings of ``images[rows]`` through ``attribute``'s head (eval mode, no grad).

    ``features`` may hold encoder outputs already computed for a shared encoder
    (``{"rows": rows, "feats": tensor}``), so that evaluating several attributes encodes
    each image once.
    """
    was_training = model.training
    model.eval()
    try:
        if features is not None and not model.isolated and np.array_equal(features["rows"], rows):
            return model.heads(features["feats"], attribute)
        enc, dev = model.encoder_for(attribute), device_of(model)
        out = [model.heads(enc(images[torch.as_tensor(rows[s:s + batch_size])].to(dev)), attribute)
               for s in range(0, len(rows), batch_size)]
        return torch.cat(out) if out else torch.empty(0, model.heads.embed_dim)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate(model: RetrievalModel, images: torch.Tensor, labels: dict[str, np.ndarray],
             protocol: dict[str, AttributeSplit], attributes: list[str],
             features: torch.Tensor | None = None, no_relevant: str = "zero") -> dict[str, float]:
    """mAP per attribute on its query and candidate rows. ``features``: cached outputs of a
    frozen encoder (or of a pretrained encoder's frozen trunk, when the model's encoder is its
    trainable :class:`~mclfir_lite.core.encoders.Tail`) for every row (see
    :mod:`mclfir_lite.retrieval.features`), used instead of the images."""
    result = {}
    cache = None
    inputs = images if features is None else features
    done = features is not None and not model.on_features   # the features are the encoder's output
    if not model.isolated or done:
        rows = np.unique(np.concatenate([np.concatenate([protocol[a].query, protocol[a].candidate])
                                         for a in attributes]))
        was_training = model.training
        model.eval()
        dev = device_of(model)
        feats = inputs[torch.as_tensor(rows)].to(dev) if done else \
            torch.cat([model.encoder(inputs[torch.as_tensor(rows[s:s + 512])].to(dev)) for s in range(0, len(rows), 512)])
        model.train(was_training)
        cache = {"rows": rows, "feats": feats}
    for attr in attributes:
        split = protocol[attr]
        if cache is not None:
            pos = {r: i for i, r in enumerate(cache["rows"])}
            q = model.heads(cache["feats"][[pos[r] for r in split.query]], attr)
            c = model.heads(cache["feats"][[pos[r] for r in split.candidate]], attr)
        else:
            q = embed(model, inputs, split.query, attr)
            c = embed(model, inputs, split.candidate, attr)
        result[attr] = metrics.mean_average_precision(q, c, labels[attr][split.query],
                                                      labels[attr][split.candidate], no_relevant=no_relevant)
    return result
