"""Retrieval from an indexed gallery, and what happens to the index when the model changes.

An index stores the candidate gallery's embeddings for one attribute, computed once;
a query is embedded with the same head and ranked against them. :func:`neighbours`
is the plain function behind the neighbour browser and the demo's neighbour grid.

Training, indexing and querying are three separate jobs (Wang, Herranz & van de Weijer,
*Continual learning in cross-modal retrieval*, CVPRW 2021, arXiv 2104.06806). After a
continual update there are two ways to serve an old attribute:

* **re-index**: embed the gallery again with the new model (queries and gallery both
  come from the new model, so both suffer from whatever it forgot);
* **keep the old index** ("stale"): the gallery keeps the embeddings of the model of its
  own time, only the queries come from the new model.

The paper finds that *not* re-indexing can give significant gains: the stored gallery
was embedded when the model was good at that task, and re-indexing would expose it to
the forgotten embedding. :func:`compare_indexing` measures all four combinations of
(query model, gallery model), per query, so that a difference can be compared with its
noise (:func:`paired_gap`); :func:`drift` and :meth:`GalleryIndex.staleness` measure
how far embeddings moved, :func:`separation` how well a set of embeddings (or a query
set against a gallery) still separates the attribute's values, and
:func:`reindex_cost` counts what re-indexing would cost. The diagram of the mechanism is
:func:`mclfir_lite.lab.diagrams.draw_reindexing` (figure code lives in the lab layer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core import metrics
from ..training.evaluate import embed
from ..core.model import RetrievalModel


def drift(old: torch.Tensor, new: torch.Tensor) -> float:
    """Mean cosine distance between matching rows of two sets of L2-normalised embeddings:
    ``1 - mean_i cos(old_i, new_i)``, clipped to ``[0, 2]`` (rounding can step outside).

    0 = nothing moved, 1 = orthogonal on average (no relation left), 2 = every vector
    points the opposite way. Values a little above 1 mean "slightly anti-aligned", not
    an error.
    """
    if old.shape != new.shape:
        raise ValueError(f"drift needs two sets of the same shape, got {tuple(old.shape)} and {tuple(new.shape)}")
    return float(np.clip(1 - float((old * new).sum(-1).mean()), 0.0, 2.0))


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
        """:func:`drift` between the stored embeddings and the ones ``model`` gives now, in
        ``[0, 2]`` (0 = unchanged, 1 = orthogonal, 2 = opposite)."""
        return drift(self.embeddings, embed(model, images, self.rows, self.attribute))


def index_map(query_model: RetrievalModel, images: torch.Tensor, labels: np.ndarray, query_rows: np.ndarray,
              index: GalleryIndex) -> float:
    """mAP of queries embedded by ``query_model`` against ``index`` (possibly built by another,
    older model): what a deployed system serves when the model is updated but the gallery
    is not re-indexed."""
    q = embed(query_model, images, np.asarray(query_rows), index.attribute)
    return metrics.mean_average_precision(q, index.embeddings, labels[np.asarray(query_rows)], labels[index.rows])


def separation(a: torch.Tensor, labels_a: np.ndarray, b: torch.Tensor | None = None,
               labels_b: np.ndarray | None = None) -> float:
    """How well embeddings separate an attribute's values: the mean cosine similarity of
    same-value pairs minus that of different-value pairs, between ``a`` and ``b``
    (default: ``a`` with itself, the diagonal left out). In ``[-2, 2]``; 0 = no
    structure left.

    With ``a`` = queries from today's model and ``b`` = a stored gallery it measures the
    **query-gallery consistency**: whether today's queries still land near the stored
    vectors of their own value.
    """
    self_pairs = b is None
    b = a if self_pairs else b
    labels_b = labels_a if self_pairs else labels_b
    sims = (a @ b.T).double()
    same = torch.as_tensor(np.asarray(labels_a)[:, None] == np.asarray(labels_b)[None, :])
    if self_pairs:
        same.fill_diagonal_(False)
        valid = ~torch.eye(len(a), dtype=torch.bool)
    else:
        valid = torch.ones_like(same)
    diff = valid & ~same
    if not same.any() or not diff.any():
        raise ValueError("separation needs both same-value and different-value pairs")
    return float(sims[same].mean() - sims[diff].mean())


def compare_indexing(model_then: RetrievalModel, model_now: RetrievalModel, images: torch.Tensor,
                     labels: np.ndarray, query_rows: np.ndarray, gallery_rows: np.ndarray, attribute: str) -> dict:
    """The four ways to pair a query model with a gallery model, per query.

    ``model_then``: the model the gallery was indexed with (right after ``attribute`` was
    learnt); ``model_now``: today's model. Returns

    * ``"ap"``: per-query AP arrays for ``"at_indexing"`` (then / then), ``"stale"``
      (now queries / then gallery: the old index kept), ``"reindexed"`` (now / now) and
      ``"old_queries"`` (then queries / now gallery, for completeness);
    * ``"map"``: their means;
    * ``"staleness"``: :func:`drift` of the gallery between the two models (and
      ``"query_drift"`` of the queries);
    * ``"separation"``: :func:`separation` of the gallery ``"then"`` and ``"now"``, and the
      query-gallery consistency ``"stale"`` (now queries vs then gallery) and
      ``"reindexed"`` (now vs now).
    """
    q_rows, g_rows = np.asarray(query_rows), np.asarray(gallery_rows)
    ql, gl = labels[q_rows], labels[g_rows]
    q = {"then": embed(model_then, images, q_rows, attribute), "now": embed(model_now, images, q_rows, attribute)}
    g = {"then": embed(model_then, images, g_rows, attribute), "now": embed(model_now, images, g_rows, attribute)}
    pairs = {"at_indexing": ("then", "then"), "stale": ("now", "then"), "reindexed": ("now", "now"),
             "old_queries": ("then", "now")}
    ap = {k: metrics.average_precision_per_query(q[a], g[b], ql, gl) for k, (a, b) in pairs.items()}
    # a query with no relevant candidate counts as AP 0, as in metrics.mean_average_precision
    return {"ap": ap, "map": {k: float(np.nan_to_num(v, nan=0.0).mean()) for k, v in ap.items()},
            "staleness": drift(g["then"], g["now"]), "query_drift": drift(q["then"], q["now"]),
            "separation": {"then": separation(g["then"], gl), "now": separation(g["now"], gl),
                           "stale": separation(q["now"], ql, g["then"], gl),
                           "reindexed": separation(q["now"], ql, g["now"], gl)}}


def paired_gap(ap_a: np.ndarray, ap_b: np.ndarray, z: float = 2.0) -> tuple[float, float]:
    """``(mean(ap_a - ap_b), noise)`` over the queries both define, where ``noise`` is ``z``
    standard errors of that mean (the same queries ranked two ways, so the difference is
    paired). A gap within the noise is "no difference here"; the noise is over queries,
    not over training seeds."""
    d = np.asarray(ap_a, dtype=float) - np.asarray(ap_b, dtype=float)
    d = d[~np.isnan(d)]
    if d.size < 2:
        raise ValueError(f"paired_gap needs at least two queries with an AP, got {d.size}")
    return float(d.mean()), float(z * d.std(ddof=1) / np.sqrt(d.size))


def reindex_cost(increments: list[list[str]], gallery_sizes: dict[str, int]) -> list[int]:
    """Gallery embeddings (head forward passes) that re-indexing every *earlier* attribute
    costs after each increment: entry ``t`` = the sum of the gallery sizes of the attributes
    learnt before increment ``t`` (0 for the first). Keeping the old index costs 0; a new
    attribute's own gallery is indexed once either way, so it is not counted."""
    out, seen = [], []
    for group in increments:
        missing = [a for a in group if a not in gallery_sizes]
        if missing:
            raise KeyError(f"no gallery size for attribute(s) {missing}")
        out.append(int(sum(gallery_sizes[a] for a in seen)))
        seen += group
    return out


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


def keep_or_reindex(ap_stale: np.ndarray, ap_reindexed: np.ndarray, min_gap: float = 0.01) -> tuple[str, float, float]:
    """Which serves an old attribute better: ``("keep", gap, margin)`` when the old index is
    better by more than ``margin``, ``("re-index", ...)`` when re-indexing is, else
    ``("no difference", ...)``. ``gap = mAP(stale) - mAP(re-indexed)`` over the same queries;
    ``margin = max(min_gap, the noise of :func:`paired_gap`)``."""
    gap, noise = paired_gap(ap_stale, ap_reindexed)
    margin = max(min_gap, noise)
    verdict = "keep" if gap > margin else "re-index" if gap < -margin else "no difference"
    return verdict, gap, margin
