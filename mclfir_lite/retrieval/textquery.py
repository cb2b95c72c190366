"""Language-conditioned queries: a small, trainable text side for attribute retrieval.

A shopper does not pick "the neckline head" from a menu; they type *"same neckline as
this, but in red"*. Language-based fashion retrieval (FocalLens: a text condition
focuses the image embedding; MagicLens: image + instruction -> target; dynamic fusion
of image and text) turns such a query into a ranking. This module does it offline, on
top of a trained :class:`~mclfir_lite.core.model.RetrievalModel`, in three small steps:

1. **Read the text.** :class:`TextEncoder` embeds a phrase as the mean of learned vectors
   of its hashed character n-grams (fastText style): ``"necklines"`` and
   ``"neckline"`` share most n-grams, so plurals, spelling variants and typos still
   land near the phrases seen in training. :class:`TextQueryModel` compares that
   embedding with three learned tables, by cosine similarity:

   * *kind*: is the clause about what to **keep** ("same neckline as this") or what to
     **change** ("but in red")?
   * *attribute*: which attribute the clause names (one class per attribute, plus
     ``"any"`` for "like this", which names none);
   * *value*: which (attribute, value) pair the clause asks for ("red" -> colour=red).

   :func:`phrase_dataset` writes the training phrases from templates and word lists
   (:data:`SYNTH_WORDS` for SynthFashion; other tables get words from their attribute
   and value names), and keeps some templates and typos apart as a held-out test.
2. **Parse a query.** :func:`split_clauses` cuts the query at commas, "but" and
   "and"; :meth:`TextQueryModel.parse` reads each clause and returns a
   :class:`ParsedQuery`: the attributes to keep from the query image and the values to
   change. "Choose the head by text" is the special case with one keep clause.
3. **Fuse image and text.** The candidates are ranked by a weighted sum of
   similarities, one per attribute involved:

       score(c) = sum_{a in keep}   w_keep   * <f_a(query image), f_a(c)>
                + sum_{a in change} w_change * <p_a(value),       f_a(c)>

   where ``f_a`` is attribute ``a``'s head and ``p_a(value)`` is the *value prototype*,
   the normalised mean ``f_a`` embedding of the training images with that value
   (:func:`value_prototypes`). A weighted sum of dot products is one dot product of
   concatenated vectors, so :func:`fuse` returns a query and a candidate matrix that
   the ordinary mAP code and :class:`~mclfir_lite.retrieval.index.GalleryIndex` rank as they are.

This is *static* late fusion: the parse fixes the weights, the same for every query of a
kind, and a clause the parser misreads (one clause asking for two things, a word it has never
seen) cannot be recovered. :mod:`mclfir_lite.retrieval.fusion` learns per-query weights instead
(dynamic fusion with a router, after Wu et al., ICASSP 2024; notebook 09 compares the two).

What real CLIP weights add: a text tower trained on hundreds of millions of captions
knows that "crew neck" is a neckline and "burgundy" a colour without ever seeing them
in our templates, and its image tower can score a value the retrieval model has no
prototype for (zero-shot). :func:`mclfir_lite.retrieval.zeroshot.load_clip` loads one when its
weights are on disk (it never downloads unless asked) and says why not otherwise.
"""
from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..training.evaluate import embed
from ..core.model import RetrievalModel

KINDS = ("keep", "change")
ANY = "any"  # the attribute class of clauses that name no attribute ("like this")

# ---------------------------------------------------------------------------- words

# How people name SynthFashion's attributes and values. The first word of each list is
# the canonical one; held-out phrases use the same words in unseen templates, with typos.
SYNTH_WORDS: dict[str, dict] = {
    "attributes": {
        "sleeve_length": ["sleeve length", "sleeves", "sleeve"],
        "neckline": ["neckline", "neck", "collar"],
        "length": ["length", "hemline", "hem"],
        "silhouette": ["silhouette", "shape", "cut"],
        "colour": ["colour", "color", "shade"],
        "pattern": ["pattern", "print", "motif"],
    },
    "values": {
        "sleeveless": ["sleeveless", "no sleeves"], "cap": ["cap sleeves", "cap"],
        "short": ["short sleeves", "short"], "elbow": ["elbow sleeves", "elbow length"],
        "three_quarter": ["three quarter sleeves", "3/4 sleeves"], "long": ["long sleeves", "long"],
        "round": ["round neck", "crew"], "v_neck": ["v-neck", "v neck"], "square": ["square neck", "square"],
        "high": ["high neck", "turtleneck"], "boat": ["boat neck", "bateau"],
        "cropped": ["cropped", "crop top"], "hip": ["hip length", "hip"], "thigh": ["thigh length", "mini"],
        "knee": ["knee length", "knee"], "ankle": ["ankle length", "maxi"],
        "fitted": ["fitted", "tight"], "straight": ["straight", "boxy"], "a_line": ["a-line", "a line"],
        "flared": ["flared", "flare"],
        "red": ["red", "scarlet"], "orange": ["orange"], "yellow": ["yellow"], "green": ["green"],
        "blue": ["blue", "navy"], "purple": ["purple", "violet"], "black": ["black"], "white": ["white"],
        "solid": ["solid", "plain"], "h_stripes": ["horizontal stripes"], "v_stripes": ["vertical stripes"],
        "dots": ["dots", "polka dots"], "checks": ["checks", "checked"], "diagonal": ["diagonal lines"],
    },
}

# Templates: {a} is an attribute word, {v} a value word. Training and held-out templates differ.
TEMPLATES = {
    "train": {
        "keep": ["same {a}", "same {a} as this", "with the same {a}", "{a} like this", "keep the {a}",
                 "match the {a}", "similar {a}", "the {a} of this one"],
        "any": ["like this", "similar to this", "something like this one", "this one", "more like this"],
        "change": ["in {v}", "{v}", "make it {v}", "{v} instead", "change it to {v}", "but {v}",
                   "with {v}", "a {v} one"],
    },
    "held_out": {
        "keep": ["identical {a} to this", "i want this {a}", "copy the {a}", "{a} should match",
                 "this exact {a}"],
        "any": ["looks like this", "similar to the photo", "one like that"],
        "change": ["but in {v} please", "switch to {v}", "i would like {v}", "rather {v}", "go for {v}"],
    },
}


def attribute_words(name: str, words: dict | None = None) -> list[str]:
    """Words for an attribute: from ``words`` if listed, else its name split into words
    (``"sleeve_length"`` -> ``"sleeve length"``, ``"baseColour"`` -> ``"base colour"``)."""
    if words and name in words.get("attributes", {}):
        return list(words["attributes"][name])
    return [_split_name(name)]


def value_words(value: str, words: dict | None = None) -> list[str]:
    """Words for a value, the same way as :func:`attribute_words`."""
    if words and value in words.get("values", {}):
        return list(words["values"][value])
    return [_split_name(value)]


def _split_name(name: str) -> str:
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return normalise(name)


# ---------------------------------------------------------------------------- text -> vector

def normalise(text: str) -> str:
    """Lower case; ``_``, ``-`` and ``/`` become spaces; other punctuation is dropped."""
    text = re.sub(r"[_\-/]", " ", text.lower())
    text = re.sub(r"[^a-z0-9' ]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def tokens(text: str, n_min: int = 3, n_max: int = 4) -> list[str]:
    """The features of a phrase: each word whole (``"w:red"``) and the character n-grams
    of ``"<word>"`` for ``n_min <= n <= n_max`` (``"<re"``, ``"red"``, ``"ed>"``, ...)."""
    out = []
    for word in normalise(text).split():
        out.append("w:" + word)
        w = f"<{word}>"
        for n in range(n_min, n_max + 1):
            out.extend(w[i:i + n] for i in range(len(w) - n + 1))
    return out


def bucket(token: str, n_buckets: int) -> int:
    """A stable hash (CRC-32, unlike Python's salted ``hash``) of a token into ``n_buckets``."""
    return zlib.crc32(token.encode()) % n_buckets


@functools.lru_cache(maxsize=2 ** 16)
def token_ids(text: str, n_buckets: int) -> tuple[int, ...]:
    """The buckets of a phrase's tokens (an empty phrase gets the bucket of ``"w:"``).
    Cached: training sees the same phrases again and again, and tokenising them in Python
    cost more than the model's forward and backward passes."""
    return tuple(bucket(tok, n_buckets) for tok in (tokens(text) or ["w:"]))


class TextEncoder(nn.Module):
    """A phrase -> the L2-normalised mean of its tokens' learned vectors (hashing trick:
    ``n_buckets`` vectors shared by all possible n-grams, so no vocabulary is needed)."""

    def __init__(self, dim: int = 64, n_buckets: int = 2 ** 12):
        super().__init__()
        self.n_buckets = n_buckets
        self.table = nn.EmbeddingBag(n_buckets, dim, mode="mean")
        nn.init.normal_(self.table.weight, std=0.1)

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, offsets = [], []
        for t in texts:
            offsets.append(len(ids))
            ids.extend(token_ids(t, self.n_buckets))  # an empty phrase still gets a (meaningless) vector
        out = self.table(torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long))
        return F.normalize(out, dim=-1)


# ---------------------------------------------------------------------------- phrases

@dataclass
class Phrase:
    """A training or test phrase and what it means (``value`` is None for keep clauses)."""

    text: str
    kind: str
    attribute: str
    value: str | None = None


def typo(text: str, rng: np.random.Generator) -> str:
    """One random typo in a word of 4+ letters: drop, double or swap a letter."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 4]
    if not long:
        return text
    i = long[rng.integers(len(long))]
    w = words[i]
    j = int(rng.integers(1, len(w) - 1))     # never the first or last letter
    op = int(rng.integers(3))
    if op == 0:
        w = w[:j] + w[j + 1:]                    # drop a letter
    elif op == 1:
        w = w[:j] + w[j] + w[j:]                 # double a letter
    else:
        w = w[:j - 1] + w[j] + w[j - 1] + w[j + 1:]  # swap two neighbours
    words[i] = w
    return " ".join(words)


def phrase_dataset(values: dict[str, list[str]], split: str = "train", words: dict | None = None,
                   typos: float = 0.0, seed: int = 0) -> list[Phrase]:
    """Every template of ``split`` (``"train"`` or ``"held_out"``) filled with every word of
    every attribute (keep clauses) and every word of every value (change clauses), plus the
    "any" phrases. ``typos``: the fraction of phrases given one random typo."""
    if split not in TEMPLATES:
        raise ValueError(f"unknown split {split!r}; choose from {list(TEMPLATES)}")
    rng = np.random.default_rng(seed)
    t = TEMPLATES[split]
    out = [Phrase(p, "keep", ANY) for p in t["any"]]
    for attr, vals in values.items():
        for aw in attribute_words(attr, words):
            out += [Phrase(p.format(a=aw), "keep", attr) for p in t["keep"]]
        for v in vals:
            for vw in value_words(v, words):
                out += [Phrase(p.format(v=vw), "change", attr, v) for p in t["change"]]
    if typos:
        out = [Phrase(typo(p.text, rng), p.kind, p.attribute, p.value) if rng.random() < typos else p
               for p in out]
    return out


# ---------------------------------------------------------------------------- the model

@dataclass
class Clause:
    """What one clause says: ``kind`` (keep / change), ``attribute`` (or ``"any"``), ``value``
    (for change clauses) and the model's probabilities for them."""

    text: str
    kind: str
    attribute: str
    value: str | None
    confidence: float


@dataclass
class ParsedQuery:
    """Attributes to keep from the query image, and ``{attribute: value}`` to change to."""

    keep: list[str]
    change: dict[str, str]
    clauses: list[Clause] = field(default_factory=list)


def split_clauses(text: str) -> list[str]:
    """Cut a query into clauses at commas, semicolons, "but" and "and" (empty ones dropped)."""
    parts = re.split(r"[,;]|\bbut\b|\band\b", text.lower())
    return [p.strip() for p in parts if normalise(p)]


class TextQueryModel(nn.Module):
    """A :class:`TextEncoder` and three tables of learned class vectors (kinds, attributes
    plus ``"any"``, and every (attribute, value) pair); logits are cosine similarities
    divided by ``temperature``."""

    def __init__(self, values: dict[str, list[str]], dim: int = 64, n_buckets: int = 2 ** 12,
                 temperature: float = 0.1, seed: int = 0):
        super().__init__()
        if not values:
            raise ValueError("TextQueryModel needs at least one attribute")
        self.values = {a: list(v) for a, v in values.items()}
        self.attribute_names = list(values) + [ANY]
        self.pairs = [(a, v) for a, vals in self.values.items() for v in vals]
        self.temperature = temperature
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.encoder = TextEncoder(dim, n_buckets)
            self.kind_table = nn.Parameter(torch.randn(len(KINDS), dim) * 0.1)
            self.attribute_table = nn.Parameter(torch.randn(len(self.attribute_names), dim) * 0.1)
            self.value_table = nn.Parameter(torch.randn(len(self.pairs), dim) * 0.1)

    def forward(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``{"kind": (B, 2), "attribute": (B, n_attributes + 1), "value": (B, n_pairs)}`` logits."""
        z = self.encoder(texts)
        score = lambda table: z @ F.normalize(table, dim=-1).T / self.temperature
        return {"kind": score(self.kind_table), "attribute": score(self.attribute_table),
                "value": score(self.value_table)}

    def loss(self, phrases: list[Phrase]) -> torch.Tensor:
        """Cross-entropy on kind and attribute for every phrase, and on the value for change phrases."""
        out = self([p.text for p in phrases])
        kind = torch.tensor([KINDS.index(p.kind) for p in phrases])
        attr = torch.tensor([self.attribute_names.index(p.attribute) for p in phrases])
        loss = F.cross_entropy(out["kind"], kind) + F.cross_entropy(out["attribute"], attr)
        change = [i for i, p in enumerate(phrases) if p.value is not None]
        if change:
            pair = torch.tensor([self.pairs.index((phrases[i].attribute, phrases[i].value)) for i in change])
            loss = loss + F.cross_entropy(out["value"][change], pair)
        return loss

    @torch.no_grad()
    def read(self, clause: str) -> Clause:
        """The most probable meaning of one clause. A change clause's attribute is the one of
        its most probable (attribute, value) pair, so the two always agree."""
        out = {k: v[0].softmax(-1) for k, v in self([clause]).items()}
        kind = KINDS[int(out["kind"].argmax())]
        if kind == "change":
            j = int(out["value"].argmax())
            attr, value = self.pairs[j]
            return Clause(clause, kind, attr, value, float(out["kind"].max() * out["value"][j]))
        j = int(out["attribute"].argmax())
        return Clause(clause, kind, self.attribute_names[j], None, float(out["kind"].max() * out["attribute"][j]))

    def parse(self, query: str) -> ParsedQuery:
        """Read every clause of ``query``. A keep clause naming no attribute ("like this") keeps
        every attribute that is not changed; a changed attribute is never also kept."""
        clauses = [self.read(c) for c in split_clauses(query)]
        change = {c.attribute: c.value for c in clauses if c.kind == "change"}
        keep = []
        for c in clauses:
            if c.kind != "keep":
                continue
            names = list(self.values) if c.attribute == ANY else [c.attribute]
            keep += [a for a in names if a not in change and a not in keep]
        return ParsedQuery(keep, change, clauses)

    @torch.no_grad()
    def accuracy(self, phrases: list[Phrase]) -> dict[str, float]:
        """Fraction of ``phrases`` whose kind, attribute and (for change phrases) value are read right."""
        got = [self.read(p.text) for p in phrases]
        kind = np.mean([g.kind == p.kind for g, p in zip(got, phrases)])
        attr = np.mean([g.kind == p.kind and g.attribute == p.attribute for g, p in zip(got, phrases)])
        ch = [(g, p) for g, p in zip(got, phrases) if p.value is not None]
        value = np.mean([g.value == p.value and g.attribute == p.attribute for g, p in ch]) if ch else float("nan")
        return {"kind": float(kind), "attribute": float(attr), "value": float(value)}


def train_text_model(model: TextQueryModel, phrases: list[Phrase], steps: int = 200, batch_size: int = 64,
                     lr: float = 0.05, seed: int = 0) -> list[float]:
    """Adam on :meth:`TextQueryModel.loss` over random batches of ``phrases``; returns the losses."""
    if not phrases:
        raise ValueError("no training phrases")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the matrices are tiny: more threads only add overhead
    try:
        for _ in range(steps):
            batch = [phrases[i] for i in rng.integers(0, len(phrases), batch_size)]
            loss = model.loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
        model.eval()
    return losses


# ---------------------------------------------------------------------------- image + text

@torch.no_grad()
def value_prototypes(model: RetrievalModel, images: torch.Tensor, labels: np.ndarray, rows: np.ndarray,
                     attribute: str, n_values: int) -> torch.Tensor:
    """``(n_values, d)``: per value, the L2-normalised mean embedding (through ``attribute``'s
    head) of ``rows`` with that value; a zero vector for a value no row has."""
    rows = np.asarray(rows)
    z = embed(model, images, rows, attribute)
    lab = torch.as_tensor(labels[rows])
    protos = torch.zeros(n_values, z.shape[1])
    protos.index_add_(0, lab, z)
    return F.normalize(protos, dim=-1)  # a zero row stays zero


def fuse(query_parts: list[torch.Tensor], candidate_parts: list[torch.Tensor],
         weights: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``w_i * q_i`` and ``c_i`` so that ``fused_q @ fused_c.T = sum_i w_i q_i @ c_i.T``.

    ``query_parts[i]``: ``(n_q, d_i)`` or ``(d_i,)`` (one vector for every query, e.g. a
    prototype); ``candidate_parts[i]``: ``(n_c, d_i)``.
    """
    if not (len(query_parts) == len(candidate_parts) == len(weights)) or not weights:
        raise ValueError("fuse needs as many query parts, candidate parts and weights, at least one")
    n_q = max(q.shape[0] if q.dim() == 2 else 1 for q in query_parts)
    qs = [w * (q if q.dim() == 2 else q.expand(n_q, -1)) for q, w in zip(query_parts, weights)]
    return torch.cat(qs, dim=1), torch.cat(candidate_parts, dim=1)


def joint_labels(labels: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One label per row for several attributes at once (mixed radix), so that two rows share
    it exactly when they share every attribute: ``l_0 * s_1 * ... + l_1 * s_2 * ... + l_last``."""
    out = np.zeros(len(labels[0]), dtype=np.int64)
    for lab, size in zip(labels, sizes):
        out = out * size + np.asarray(lab, dtype=np.int64)
    return out


@torch.no_grad()
def composed_embeddings(model: RetrievalModel, images: torch.Tensor, query_rows: np.ndarray,
                        candidate_rows: np.ndarray, keep: list[str], change: dict[str, np.ndarray],
                        prototypes: dict[str, torch.Tensor], w_keep: float = 1.0,
                        w_change: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused query and candidate embeddings for "keep these attributes of the query image,
    change those to these values".

    ``change``: ``{attribute: value index per query (n_q,)}``; ``prototypes``: ``{attribute:
    (n_values, d)}`` from :func:`value_prototypes`. Either part may be empty (image only /
    text only), not both.
    """
    if not keep and not change:
        raise ValueError("nothing to query: keep and change are both empty")
    q_parts, c_parts, weights = [], [], []
    for a in keep:
        q_parts.append(embed(model, images, np.asarray(query_rows), a))
        c_parts.append(embed(model, images, np.asarray(candidate_rows), a))
        weights.append(w_keep)
    for a, targets in change.items():
        q_parts.append(prototypes[a][torch.as_tensor(np.asarray(targets))])
        c_parts.append(embed(model, images, np.asarray(candidate_rows), a))
        weights.append(w_change)
    return fuse(q_parts, c_parts, weights)
