"""Dynamic fusion of an image path and a text path, with a learned router (after seed 004).

Language-based fashion retrieval ranks a gallery for a query made of a reference image and
a text: *"same length as this, but in red"*. Static late fusion (``textquery.fuse``) adds
the image's similarity and the text's similarity with fixed weights. *Self-distilled Dynamic
Fusion Network for Language-based Fashion Retrieval* (Wu et al., ICASSP 2024, arXiv
2405.15451) instead lets **routers** choose, per query, how the image and the text are
combined, and stabilises those routing decisions with a **self path distillation** loss that
refines each query's path decision with previous path information.

This module is a small, offline version of that idea on top of a trained
:class:`~mclfir_lite.core.model.RetrievalModel`, for one pair of attributes: ``keep`` (read from
the image) and ``change`` (read from the text).

* **Image path**: the query image's embedding through the ``keep`` head, ``f_keep(q)``.
* **Text path**: a text encoder (hashed character n-grams, :class:`~mclfir_lite.retrieval.textquery.TextEncoder`,
  or a frozen CLIP text tower, :class:`ClipText`) and a linear map into the ``change``
  head's space, ``g(t)``.
* **Router**: a small MLP over ``[f_keep(q), t]`` giving per-query weights
  ``(w_img, w_txt)`` (a softmax). The fused score of a candidate ``c`` is

      s(q, c) = w_img * <f_keep(q), f_keep(c)> + w_txt * <g(t), f_change(c)>

  which is one dot product of ``[w_img f_keep(q), w_txt g(t)]`` with
  ``[f_keep(c), f_change(c)]``, so the ordinary mAP code ranks it.
* **Static baseline**: the same model with one learned weight pair for every query.
* **Self-distillation of the routing** (what we implement, not necessarily the paper's exact
  loss): an EMA copy of the fusion model is the teacher; its routing weights for the same
  query are the target of a KL term, ``KL(w_teacher || w_student)``. That makes a query's
  path decision follow its own earlier decisions, averaged over past steps.

The training captions are written from the labels with templates (:data:`TEMPLATES`,
``textquery.SYNTH_WORDS``). Held-out captions use new templates, or words that no training
caption contains (:data:`HELD_OUT_WORDS`), to test generalisation. Every query has a *kind*:
``"image"`` (only the kept attribute matters), ``"text"`` (only the requested value) or
``"both"``. Relevance follows the kind (:func:`query_labels`).

:class:`NameConditioned` is a separate, optional wrapper: it conditions a model's attribute
heads on a text embedding of the attribute's *name*, as the released MCL-FIR code feeds
512-d attribute vectors into its attention.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..core import metrics
from .textquery import SYNTH_WORDS, TextEncoder, attribute_words, joint_labels, value_words

KINDS = ("image", "text", "both")

# Caption templates: {a} names the kept attribute, {v} the requested value of the changed one.
TEMPLATES = {
    "train": {
        "image": ["same {a} as this", "with the same {a}", "{a} like this", "keep the {a}", "match the {a}"],
        "text": ["in {v}", "make it {v}", "a {v} one", "{v} instead", "show me {v}"],
        "both": ["same {a} as this but in {v}", "keep the {a}, make it {v}", "{a} like this in {v}",
                 "with the same {a} and {v}", "match the {a} but {v}"],
    },
    "held_out": {
        "image": ["identical {a} to the photo", "i want this {a}", "copy the {a}"],
        "text": ["switch to {v}", "i would like {v}", "go for {v} please"],
        "both": ["this {a} please, only {v}", "copy the {a} and go for {v}", "i want this {a} in {v}"],
    },
}

# Words no training caption contains (synonyms and paraphrases); values without an entry keep
# their training words.
HELD_OUT_WORDS: dict[str, dict] = {
    "attributes": {
        "sleeve_length": ["arm coverage"], "neckline": ["throat opening"], "length": ["how long it is"],
        "silhouette": ["outline"], "colour": ["hue", "tint"], "pattern": ["decoration", "graphic"],
    },
    "values": {
        "red": ["crimson", "ruby"], "orange": ["tangerine", "apricot"], "yellow": ["lemon", "mustard"],
        "green": ["emerald", "olive"], "blue": ["cobalt", "azure"], "purple": ["lilac", "lavender"],
        "black": ["ebony", "jet"], "white": ["ivory", "snow"],
        "solid": ["unpatterned", "monochrome"], "dots": ["spots", "spotted"], "checks": ["plaid", "tartan"],
        "h_stripes": ["horizontal bands"], "v_stripes": ["pinstripes"], "diagonal": ["slanted lines"],
    },
}


# ---------------------------------------------------------------------------- queries

@dataclass
class FusionQueries:
    """Composed queries: an image row, a caption, a kind (index into :data:`KINDS`) and the
    requested value of the changed attribute (-1 for ``"image"`` queries)."""

    rows: np.ndarray
    captions: list[str]
    kind: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, idx) -> "FusionQueries":
        idx = np.asarray(idx)
        return FusionQueries(self.rows[idx], [self.captions[i] for i in idx], self.kind[idx], self.target[idx])


def make_queries(rows: np.ndarray, change_labels: np.ndarray, keep_attr: str, change_attr: str,
                 change_values: list[str], templates: str = "train", words: dict | None = None,
                 seed: int = 0) -> FusionQueries:
    """One composed query per row of ``rows``: a random kind, a random template of that kind
    from ``TEMPLATES[templates]``, a random word for the kept attribute and, for ``"text"``
    and ``"both"``, a random requested value (for ``"both"`` never the row's own value, so
    the text really changes something) and a random word for it.

    ``words``: where the words come from (default ``textquery.SYNTH_WORDS``; pass
    :data:`HELD_OUT_WORDS` for unseen words; values it lacks keep their training words).
    """
    if templates not in TEMPLATES:
        raise ValueError(f"unknown templates {templates!r}; choose from {list(TEMPLATES)}")
    words = SYNTH_WORDS if words is None else words
    rng = np.random.default_rng(seed)
    rows = np.asarray(rows)
    n_v = len(change_values)
    kind = rng.integers(0, len(KINDS), len(rows))
    target = np.full(len(rows), -1, dtype=np.int64)
    captions = []
    a_words = attribute_words(keep_attr, words) if keep_attr in words.get("attributes", {}) \
        else attribute_words(keep_attr, SYNTH_WORDS)
    for i, r in enumerate(rows):
        k = KINDS[kind[i]]
        if k == "text":
            target[i] = rng.integers(n_v)
        elif k == "both":
            target[i] = (change_labels[r] + rng.integers(1, n_v)) % n_v
        v = change_values[target[i]] if target[i] >= 0 else None
        v_words = (value_words(v, words) if v in words.get("values", {}) else value_words(v, SYNTH_WORDS)) if v else [""]
        template = TEMPLATES[templates][k][rng.integers(len(TEMPLATES[templates][k]))]
        captions.append(template.format(a=a_words[rng.integers(len(a_words))], v=v_words[rng.integers(len(v_words))]))
    return FusionQueries(rows, captions, kind, target)


def query_labels(queries: FusionQueries, keep_labels: np.ndarray, change_labels: np.ndarray,
                 candidate_rows: np.ndarray, n_change: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels for the queries of one ``kind`` and for the candidates, such that a candidate is
    relevant exactly when its label equals the query's: the kept value (``"image"``), the
    requested value (``"text"``) or both at once (``"both"``, via ``textquery.joint_labels``)."""
    sel = queries.kind == kind
    q_keep, tgt = keep_labels[queries.rows[sel]], queries.target[sel]
    c_keep, c_change = keep_labels[candidate_rows], change_labels[candidate_rows]
    if KINDS[kind] == "image":
        return q_keep, c_keep
    if KINDS[kind] == "text":
        return tgt, c_change
    n_keep = int(max(keep_labels.max(), c_keep.max())) + 1
    return joint_labels([q_keep, tgt], [n_keep, n_change]), joint_labels([c_keep, c_change], [n_keep, n_change])


def relevance(queries: FusionQueries, keep_labels: np.ndarray, change_labels: np.ndarray,
              candidate_rows: np.ndarray) -> torch.Tensor:
    """``(n_queries, n_candidates)`` bool: is the candidate what the query asks for?"""
    c_keep = torch.as_tensor(keep_labels[candidate_rows])[None, :]
    c_change = torch.as_tensor(change_labels[candidate_rows])[None, :]
    same_keep = torch.as_tensor(keep_labels[queries.rows])[:, None] == c_keep
    right_value = torch.as_tensor(queries.target)[:, None] == c_change
    kind = torch.as_tensor(queries.kind)[:, None]
    return torch.where(kind == 0, same_keep, torch.where(kind == 1, right_value, same_keep & right_value))


def per_query_ap(fused_q: torch.Tensor, candidates: torch.Tensor, queries: FusionQueries, keep_labels: np.ndarray,
                 change_labels: np.ndarray, candidate_rows: np.ndarray, n_change: int) -> np.ndarray:
    """AP of every query (in the order of ``queries``) for fused query vectors against fused
    candidate vectors, with the relevance of its kind; NaN for a query with no relevant
    candidate (a "both" request whose combination the gallery lacks), which ``np.nanmean``
    leaves out, as :func:`chance_ap` does."""
    ap = np.full(len(queries), np.nan)
    for k in range(len(KINDS)):
        sel = np.flatnonzero(queries.kind == k)
        if sel.size:
            ql, cl = query_labels(queries, keep_labels, change_labels, candidate_rows, n_change, k)
            ap[sel] = metrics.average_precision_per_query(fused_q[torch.as_tensor(sel)], candidates, ql, cl)
    return ap


def chance_ap(queries: FusionQueries, keep_labels: np.ndarray, change_labels: np.ndarray,
              candidate_rows: np.ndarray) -> np.ndarray:
    """Per query, the expected AP of a random ranking (:func:`mclfir_lite.core.metrics.expected_random_ap`
    of its number of relevant candidates; NaN, like its AP, when it has none)."""
    rel = relevance(queries, keep_labels, change_labels, candidate_rows)
    return metrics.expected_random_ap(rel.sum(1).numpy(), np.full(len(queries), rel.shape[1]))


# ---------------------------------------------------------------------------- text encoders

class ClipText(nn.Module):
    """A frozen open_clip text tower as a text encoder: ``list[str] -> (B, D)`` L2-normalised
    features (cached per string). ``clip``: the ``(model, tokenizer, description)`` triple of
    :func:`mclfir_lite.retrieval.zeroshot.load_clip`."""

    def __init__(self, clip):
        super().__init__()
        model, self.tokenizer, self.description = clip
        if model is None:
            raise ValueError(f"no CLIP model: {self.description}")
        self._model = [model]                     # a list: keeps CLIP out of this module's parameters
        self._cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.dim = int(model.encode_text(self.tokenizer(["a"])).shape[-1])

    @torch.no_grad()
    def forward(self, texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            out = F.normalize(self._model[0].encode_text(self.tokenizer(new)).float(), dim=-1)
            self._cache.update(zip(new, out))
        return torch.stack([self._cache[t] for t in texts])


# ---------------------------------------------------------------------------- the model

class FusionModel(nn.Module):
    """Image path + text path, fused with per-query (``dynamic=True``) or global weights."""

    def __init__(self, image_dim: int, change_dim: int, text_encoder: nn.Module | None = None,
                 text_dim: int = 64, hidden: int = 32, dynamic: bool = True, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.text = text_encoder if text_encoder is not None else TextEncoder(text_dim)
            text_dim = getattr(self.text, "dim", text_dim)
            self.to_change = nn.Linear(text_dim, change_dim)
            self.dynamic = dynamic
            if dynamic:
                self.router = nn.Sequential(nn.Linear(image_dim + text_dim, hidden), nn.ReLU(),
                                            nn.Linear(hidden, 2))
            else:
                self.router_logits = nn.Parameter(torch.zeros(2))

    def route(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` weights (image path, text path), summing to 1 per query."""
        if self.dynamic:
            return torch.softmax(self.router(torch.cat([image_emb, text_emb], dim=1)), dim=-1)
        return torch.softmax(self.router_logits, dim=-1).expand(len(image_emb), 2)

    def forward(self, image_emb: torch.Tensor, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused query vectors ``[w_img * image_emb, w_txt * g(text)]`` and the weights."""
        t = self.text(captions)
        w = self.route(image_emb, t)
        g = F.normalize(self.to_change(t), dim=-1)
        return torch.cat([w[:, :1] * image_emb, w[:, 1:] * g], dim=1), w


def candidate_vectors(keep_emb: torch.Tensor, change_emb: torch.Tensor) -> torch.Tensor:
    """``[f_keep(c), f_change(c)]``: what fused queries are ranked against."""
    return torch.cat([keep_emb, change_emb], dim=1)


def multi_positive_nce(scores: torch.Tensor, relevant: torch.Tensor, temperature: float) -> torch.Tensor:
    """``-log( sum_{pos} exp(s/T) / sum_{all} exp(s/T) )`` averaged over rows with a positive."""
    logits = scores / temperature
    has = relevant.any(1)
    pos = torch.logsumexp(logits.masked_fill(~relevant, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - pos)[has].mean()


def train_fusion(model: FusionModel, queries: FusionQueries, image_emb: torch.Tensor, pool: torch.Tensor,
                 pool_rows: np.ndarray, keep_labels: np.ndarray, change_labels: np.ndarray, steps: int = 300,
                 batch_size: int = 64, pool_size: int = 256, lr: float = 0.01, temperature: float = 0.1,
                 distill: float = 0.0, ema_decay: float = 0.99, seed: int = 0) -> dict[str, list[float]]:
    """Train ``model`` on ``queries`` (``image_emb[i]``: query ``i``'s image-path embedding)
    against random candidates from ``pool`` (fused candidate vectors of ``pool_rows``).

    Loss: :func:`multi_positive_nce` of the fused scores, plus, when ``distill > 0``,
    ``distill * KL(w_teacher || w_student)`` of the routing weights, the teacher being an EMA
    (``ema_decay`` per step) of the model itself. Returns ``{"loss", "distill"}`` per step.
    """
    if len(queries) != len(image_emb):
        raise ValueError(f"{len(queries)} queries but {len(image_emb)} image embeddings")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    teacher = copy.deepcopy(model).requires_grad_(False) if distill > 0 else None
    log = {"loss": [], "distill": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add overhead
    model.train()
    try:
        for _ in range(steps):
            qi = rng.integers(0, len(queries), batch_size)
            ci = rng.choice(len(pool_rows), size=min(pool_size, len(pool_rows)), replace=False)
            batch = queries.subset(qi)
            fused, w = model(image_emb[torch.as_tensor(qi)], batch.captions)
            rel = relevance(batch, keep_labels, change_labels, pool_rows[ci])
            loss = multi_positive_nce(fused @ pool[torch.as_tensor(ci)].T, rel, temperature)
            kd = torch.zeros(())
            if teacher is not None:
                with torch.no_grad():
                    _, w_t = teacher(image_emb[torch.as_tensor(qi)], batch.captions)
                kd = F.kl_div(w.clamp_min(1e-8).log(), w_t, reduction="batchmean")
                loss = loss + distill * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if teacher is not None:
                with torch.no_grad():
                    for pt, ps in zip(teacher.parameters(), model.parameters()):
                        pt.mul_(ema_decay).add_(ps.detach(), alpha=1 - ema_decay)
            log["loss"].append(loss.item())
            log["distill"].append(kd.item())
    finally:
        torch.set_num_threads(threads)
        model.eval()
    return log


@torch.no_grad()
def fused_queries(model: FusionModel, image_emb: torch.Tensor, queries: FusionQueries) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused query vectors and routing weights for every query (eval mode)."""
    model.eval()
    return model(image_emb, queries.captions)


def fixed_queries(image_emb: torch.Tensor, text_vectors: torch.Tensor, w_img: np.ndarray,
                  w_txt: np.ndarray) -> torch.Tensor:
    """Fused query vectors with given per-query weights (a parser's hard choices or an
    oracle's): ``[w_img * image_emb, w_txt * text_vectors]``."""
    wi = torch.as_tensor(np.asarray(w_img, dtype=np.float32))[:, None]
    wt = torch.as_tensor(np.asarray(w_txt, dtype=np.float32))[:, None]
    return torch.cat([wi * image_emb, wt * text_vectors], dim=1)


def parse_weights(text_model, captions: list[str], keep_attr: str, change_attr: str,
                  change_values: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the template parser (:class:`~mclfir_lite.retrieval.textquery.TextQueryModel`) makes of each
    caption, as static late-fusion weights: ``w_img = 1`` if it keeps ``keep_attr`` (or
    everything), ``w_txt = 1`` if it changes ``change_attr``, and the value index it reads
    (-1 if none)."""
    w_img, w_txt, value = np.zeros(len(captions)), np.zeros(len(captions)), np.full(len(captions), -1)
    for i, c in enumerate(captions):
        p = text_model.parse(c)
        w_img[i] = float(keep_attr in p.keep)
        if change_attr in p.change:
            w_txt[i], value[i] = 1.0, change_values.index(p.change[change_attr])
    return w_img, w_txt, value


# ---------------------------------------------------------------------------- names as conditions

class NameConditioned(nn.Module):
    """Wrap a :class:`~mclfir_lite.core.model.RetrievalModel` so that each attribute head sees the
    encoder features gated by a text embedding of the attribute's *name*:

        feats' = feats * (1 + tanh(W t_name))        (per channel)

    ``name_encoder``: ``list[str] -> (n, D)`` (a CLIP text tower via :class:`ClipText`, or a
    :class:`~mclfir_lite.retrieval.textquery.TextEncoder`). ``W`` starts at zero, so the wrapped model
    gives exactly the wrapped model's embeddings until ``W`` is trained; the heads themselves
    are untouched. Names with similar words (``"sleeve length"``, ``"sleeve"``) get similar
    gates, which is what lets a new attribute start from a related old one.
    """

    def __init__(self, model, name_encoder: nn.Module, name_fn=None):
        super().__init__()
        from .zeroshot import readable
        self.model, self.names = model, name_encoder
        self.name_fn = name_fn or readable
        dim = getattr(name_encoder, "dim", None) or int(name_encoder(["x"]).shape[-1])
        self.gate = nn.Linear(dim, model.out_channels, bias=False)
        nn.init.zeros_(self.gate.weight)

    def channel_gate(self, attribute: str) -> torch.Tensor:
        """``(C,)`` multiplicative gate of ``attribute`` (all ones before training)."""
        with torch.no_grad():
            t = self.names([self.name_fn(attribute)])
        return 1 + torch.tanh(self.gate(t))[0]

    def forward(self, images: torch.Tensor, attribute: str) -> torch.Tensor:
        feats = self.model.encoder_for(attribute)(images)
        g = self.channel_gate(attribute)
        feats = feats * (g[None, :, None, None] if feats.dim() == 4 else g[None, :])
        return self.model.heads(feats, attribute)
