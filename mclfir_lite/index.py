"""Retrieval from an indexed gallery.

An index stores the candidate gallery's embeddings for one attribute, computed once;
a query is embedded with the same head and ranked against them. :func:`neighbours`
is the plain function behind the neighbour browser and the demo's neighbour grid.

Why it matters for continual learning (Wang et al., CVPRW 2021): if the model changes
after an increment, a gallery indexed with the old model no longer matches queries
embedded with the new one, unless the embedding of old attributes stays put. Re-indexing
a large gallery after every increment is costly; :meth:`GalleryIndex.staleness` measures
how far the stored embeddings have moved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import metrics
from .continual import embed
from .model import RetrievalModel


@dataclass
class GalleryIndex:
    attribute: str
    rows: np.ndarray            # gallery rows of the dataset
    embeddings: torch.Tensor    # (len(rows), d), L2-normalised

    @classmethod
    def build(cls, model: RetrievalModel, images: torch.Tensor, rows: np.ndarray, attribute: str) -> "GalleryIndex":
        return cls(attribute, np.asarray(rows), embed(model, images, np.asarray(rows), attribute))

    def search(self, query_emb: torch.Tensor, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` gallery rows and their similarities for each query embedding (ties by row order)."""
        sims = query_emb @ self.embeddings.T
        order = torch.sort(-sims, dim=-1, stable=True).indices[..., :k]
        return self.rows[order.numpy()], torch.gather(sims, -1, order).numpy()

    def staleness(self, model: RetrievalModel, images: torch.Tensor) -> float:
        """Mean cosine distance between stored embeddings and the ones ``model`` gives now."""
        fresh = embed(model, images, self.rows, self.attribute)
        return float(1 - (fresh * self.embeddings).sum(-1).mean())


def index_map(query_model: RetrievalModel, images: torch.Tensor, labels: np.ndarray, query_rows: np.ndarray,
              index: GalleryIndex) -> float:
    """mAP of queries embedded by ``query_model`` against ``index`` (possibly built by another,
    older model): what a deployed system serves when the model is updated but the gallery
    is not re-indexed."""
    q = embed(query_model, images, np.asarray(query_rows), index.attribute)
    return metrics.mean_average_precision(q, index.embeddings, labels[np.asarray(query_rows)], labels[index.rows])


def neighbours(model: RetrievalModel, images: torch.Tensor, labels: np.ndarray, query_row: int,
               candidate_rows: np.ndarray, attribute: str, k: int = 8,
               index: GalleryIndex | None = None) -> dict:
    """Top-``k`` neighbours of one query among the candidates for ``attribute``.

    Returns ``{"rows", "similarities", "relevant" (bool per neighbour), "ap" (the query's
    AP over the full ranking), "query_label"}``.
    """
    if index is None or index.attribute != attribute:
        index = GalleryIndex.build(model, images, candidate_rows, attribute)
    q = embed(model, images, np.array([query_row]), attribute)
    rows, sims = index.search(q, k)
    rel = labels[rows[0]] == labels[query_row]
    ap = metrics.average_precision_per_query(q, index.embeddings, labels[[query_row]], labels[index.rows])[0]
    return {"rows": rows[0], "similarities": sims[0], "relevant": rel,
            "ap": float(ap), "query_label": int(labels[query_row])}
