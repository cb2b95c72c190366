"""Measuring old and new indexes together: compatibility matrix, BCT's criterion, backfilling.

The functions of :mod:`mclfir_lite.retrieval.crossmodal`'s evaluation. Each takes ``indexes``, a list
with one entry per increment: ``{"gallery": image embeddings of the gallery, "texts":
{attribute: embeddings of that attribute's test captions}}``, both made by the model of that
increment (:func:`mclfir_lite.retrieval.crossmodal.build_indexes`), and ``data`` (its ``gallery`` labels
and test ``queries``). Mixing rows and columns of different increments is exactly the
question "can a new query model search an old index?".

* :func:`compatibility`: the T x T matrix of mAP, query model ``i`` x index ``j``.
* :func:`bct_criterion`: Shen et al.'s (CVPR 2020) empirical compatibility criterion.
* :func:`backfill_curve`: mAP against the fraction of the gallery re-indexed (FastFill,
  Jaeckle et al., ICLR 2023), random order against a policy order.
* :func:`recalls` and :func:`chance_recall`: Recall@K both ways, and its value for a random
  ranking.
* :func:`held_out_words`: captions with synonyms no training caption contains.

mAP follows the package's convention (:func:`mclfir_lite.core.metrics.mean_average_precision`):
a query's relevant items are those with its value of the attribute its caption names.
"""
from __future__ import annotations

import numpy as np
import torch

from . import captions as cap
from ..core.metrics import chance_map, mean_average_precision, recall_at_k

RECALL_KS = (1, 5)
BACKFILL_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def text_to_image(text_index: dict, gallery: torch.Tensor, data, attrs) -> dict[str, float]:
    """Per attribute: mAP of that attribute's test captions ranking the gallery."""
    g_labels = data["gallery"][1]
    return {a: mean_average_precision(text_index[a], gallery, data["queries"][a][1], g_labels[a]) for a in attrs}


def image_to_text(gallery: torch.Tensor, text_index: dict, data, attrs) -> dict[str, float]:
    """Per attribute: mAP of gallery images ranking that attribute's test captions."""
    g_labels = data["gallery"][1]
    return {a: mean_average_precision(gallery, text_index[a], g_labels[a], data["queries"][a][1]) for a in attrs}


def seen(plan, i: int) -> list[str]:
    return [a for g in plan[: i + 1] for a in g]


def compatibility(indexes, data, plan, direction: str = "text_to_image") -> list[list[float]]:
    """``C[i][j]``: the query model after ``i`` against the index built after ``j``, mean over
    the attributes seen up to ``i``. text -> image: text tower ``i``, gallery images ``j``;
    image -> text: image tower ``i`` (the query images), caption index ``j``."""
    T = len(indexes)
    out = [[0.0] * T for _ in range(T)]
    for i in range(T):
        for j in range(T):
            if direction == "text_to_image":
                per = text_to_image(indexes[i]["texts"], indexes[j]["gallery"], data, seen(plan, i))
            else:
                per = image_to_text(indexes[i]["gallery"], indexes[j]["texts"], data, seen(plan, i))
            out[i][j] = float(np.mean(list(per.values())))
    return out


def bct_criterion(indexes, data, plan, direction: str = "text_to_image") -> dict:
    """Shen et al.'s empirical compatibility criterion, for every ``i > j``, on the attributes
    known at ``j``: M(new query model ``i``, old index ``j``) >= M(old ``j``, old ``j``).
    text -> image: new text tower on the old gallery; image -> text: new image tower's
    queries on the old caption index. ``margin`` is the difference (holds: margin >= 0)."""
    one = text_to_image if direction == "text_to_image" else image_to_text
    key = "texts" if direction == "text_to_image" else "gallery"     # the query side
    other = "gallery" if direction == "text_to_image" else "texts"   # the indexed side
    pairs = []
    for i in range(len(indexes)):
        for j in range(i):
            attrs = seen(plan, j)
            new = np.mean(list(one(indexes[i][key], indexes[j][other], data, attrs).values()))
            old = np.mean(list(one(indexes[j][key], indexes[j][other], data, attrs).values()))
            pairs.append({"new": i, "old": j, "new_query_old_index": float(new), "old_query_old_index": float(old),
                          "margin": float(new - old), "holds": bool(new >= old)})
    return {"direction": direction, "pairs": pairs, "holds": all(p["holds"] for p in pairs)}


def chance_recall(query_labels, cand_labels, k: int) -> float:
    """Recall@k of a random ranking: per query ``1 - C(N-R, k) / C(N, k)`` (queries with R = 0
    left out, as :func:`mclfir_lite.core.metrics.recall_at_k` does)."""
    cl = np.asarray(cand_labels)
    n, out = len(cl), []
    for q in np.asarray(query_labels):
        r = int((cl == q).sum())
        if r:
            miss = np.prod([(n - r - i) / (n - i) for i in range(min(k, n))])
            out.append(1.0 - max(miss, 0.0))
    return float(np.mean(out)) if out else float("nan")


def recalls(idx: dict, data, attrs) -> dict:
    """Recall@K both ways (mean over attributes) of one model's own indexes, and chance."""
    g_emb, g_labels = idx["gallery"], data["gallery"][1]
    out = {"text_to_image": {}, "image_to_text": {}, "chance_text_to_image": {}, "chance_image_to_text": {}}
    for k in RECALL_KS:
        q = data["queries"]
        out["text_to_image"][f"R@{k}"] = float(np.mean(
            [recall_at_k(idx["texts"][a], g_emb, q[a][1], g_labels[a], k) for a in attrs]))
        out["image_to_text"][f"R@{k}"] = float(np.mean(
            [recall_at_k(g_emb, idx["texts"][a], g_labels[a], q[a][1], k) for a in attrs]))
        out["chance_text_to_image"][f"R@{k}"] = float(np.mean([chance_recall(q[a][1], g_labels[a], k) for a in attrs]))
        out["chance_image_to_text"][f"R@{k}"] = float(np.mean([chance_recall(g_labels[a], q[a][1], k) for a in attrs]))
    return out


def backfill_curve(indexes, data, plan, seed: int) -> dict:
    """Text -> image mAP of the final query model on a gallery in which a fraction has been
    re-indexed with the final image tower and the rest keeps the first increment's embeddings.

    Two orders: random, and a policy that needs no new embedding (it must choose *before*
    paying for re-indexing): the images the old model was least sure about first, i.e.
    lowest top cosine to any caption of the old text index (FastFill learns such an
    uncertainty; ours is a heuristic). The area under each curve summarises it."""
    old, new, final = indexes[0]["gallery"], indexes[-1]["gallery"], indexes[-1]["texts"]
    attrs = seen(plan, len(plan) - 1)
    n = len(old)
    known = torch.cat([indexes[0]["texts"][a] for a in plan[0]])
    orders = {"random": np.random.default_rng([seed, 77]).permutation(n),
              "policy": np.argsort((old @ known.T).max(1).values.numpy(), kind="stable")}
    out = {"fractions": list(BACKFILL_FRACTIONS),
           "policy_description": "lowest top cosine of the old image embedding to the old caption index first"}
    for name, order in orders.items():
        curve = []
        for f in BACKFILL_FRACTIONS:
            mixed = old.clone()
            rows = torch.from_numpy(order[: int(round(f * n))].copy())
            mixed[rows] = new[rows]
            curve.append(float(np.mean(list(text_to_image(final, mixed, data, attrs).values()))))
        out[name] = curve
        y, x = np.asarray(curve), np.asarray(BACKFILL_FRACTIONS)
        out[f"auc_{name}"] = float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())   # trapezoid rule
    return out


def held_out_words(model, data, plan, seed: int) -> dict:
    """Final text -> image mAP on captions whose value word is a synonym never seen in training
    (:data:`mclfir_lite.retrieval.captions.HELD_OUT_WORDS`), against the same queries in known words."""
    attrs = [a for a in seen(plan, len(plan) - 1) if a in cap.HELD_OUT_WORDS]
    if not attrs:
        return {"attributes": []}
    g = model.embed_images(data["gallery"][0])
    res = {"attributes": attrs, "held_out": [], "known_words": [], "chance": []}
    for a in attrs:
        names = [cap.ATTRIBUTES[a].index(v) for v in cap.HELD_OUT_WORDS[a]]
        for key, flag in (("held_out", True), ("known_words", False)):
            texts, vals = cap.value_captions(a, seed, held_out_words=flag)
            keep = np.isin(vals, names)
            emb = model.embed_texts([t for t, k in zip(texts, keep) if k])
            res[key].append(mean_average_precision(emb, g, vals[keep], data["gallery"][1][a]))
        res["chance"].append(chance_map(vals[keep], data["gallery"][1][a]))
    return {k: (float(np.mean(v)) if k != "attributes" else v) for k, v in res.items()}
