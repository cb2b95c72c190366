"""The checks of notebooks 00 to 04 (registered in :mod:`mclfir_lite.lab.exercise_registry`;
notebooks call them through :func:`mclfir_lite.lab.exercises.check`)."""
from __future__ import annotations

from .exercise_registry import exercise, choices_hint, close_hint, near


# --- notebook 00

@exercise("00.1")
def _why_own_shade(answer):
    if str(answer).strip().lower().strip("()") != "b":
        return "look at the black garments above: which hue must stay dominant for the colour label to stay true?"


@exercise("00.2")
def _chance_level(answer, lab):
    import numpy as np
    if not isinstance(answer, dict):
        return "give a dict {attribute: chance level}, one entry per attribute of lab.protocol"
    expected = {}
    for a, split in lab.protocol.items():   # the rule of thumb: the mean fraction of relevant candidates
        cand = lab.table.labels[a][split.candidate]
        expected[a] = float(np.mean([(cand == v).mean() for v in lab.table.labels[a][split.query]]))
    return close_hint(answer, expected, 1e-6, "chance level per attribute") and (
        "for each query: (candidates with the query's value) / (all candidates); then average over the "
        "queries, one number per attribute of lab.protocol")


@exercise("00.3")
def _own_plan(answer, attributes):
    if not isinstance(answer, list) or not all(isinstance(g, list) and g for g in answer):
        return "use parse_increments(...): it returns a list of increments, each a list of attribute names"
    flat = [a for g in answer for a in g]
    if len(answer) < 2:
        return "a continual plan has at least two increments (separate them with ';')"
    if len(set(flat)) != len(flat) or not set(flat) <= set(attributes):
        return "every attribute of the table at most once, spelt as in table.attributes"


@exercise("00.quiz")
def _quiz_00(answer):
    return choices_hint(answer, {2: "b", 3: "a", 4: "a"},
                    {2: "relevance is judged per attribute (section 4)",
                     3: "the query and candidate sets are for evaluation only",
                     4: "what does a model receive training data for in a new increment?"})

# --- notebook 01
@exercise("01.1")
def _ap_at_k(answer):
    def reference(rel, k):
        rel, hits, total = list(rel)[:k], 0, 0.0
        for rank, r in enumerate(rel, start=1):
            if r:
                hits += 1
                total += hits / rank
        return total / hits if hits else 0.0
    cases = [([0, 1, 0, 0, 0, 0, 0, 0, 0, 1], 5), ([1, 0, 1, 0], 4), ([1, 0, 1, 0], 1), ([0, 0, 1, 1], 2), ([0, 1, 1], 3)]
    for rel, k in cases:
        if not near(answer(rel, k), reference(rel, k), 1e-9):
            return (f"ap_at_k({rel}, {k}) is not right: average the precision at the relevant ranks within the "
                    "top k, dividing by the relevant items found there (0 if none)")


@exercise("01.2")
def _order_only(answer, q_emb, c_emb, q_lab, c_lab):
    import numpy as np
    from ..core.metrics import average_precision_per_query
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        return ("give three things: (APs unchanged under exp?, APs unchanged under negation?, the mean AP "
                "of the negated similarities)")
    if len(np.atleast_1d(np.asarray(answer[2], dtype=float))) != 1:
        return "the third is one number: the mean of the negated similarities' APs over the queries"
    if (bool(answer[0]), bool(answer[1])) != (True, False):
        return ("compare the APs of exp(similarities) and of -similarities with the APs of the plain "
                "similarities, query by query")
    # -q . c = -(q . c): the package ranks the negated similarities (ties by candidate index, a stable sort)
    negated = float(average_precision_per_query(-q_emb, c_emb, q_lab, c_lab).mean())
    if not near(answer[2], negated, 1e-6):
        return ("the mean AP under negation: rank each query's candidates by -similarity, breaking ties "
                "by candidate index (np.argsort(..., kind='stable')), and average the APs")
    return None


@exercise("01.3")
def _positive_bwt(answer):
    import numpy as np
    from ..core.forgetting import backward_transfer
    R = np.asarray(answer, dtype=float)
    if R.ndim != 2 or R.shape[0] < 2:
        return "an accuracy matrix is 2-d, one row per increment (at least two)"
    if not np.isfinite(R).any():
        return "fill in the mAPs: an accuracy matrix of NaNs holds no result"
    if np.nanmin(R) < 0 or np.nanmax(R) > 1:
        return "mAPs lie between 0 and 1"
    if not backward_transfer(R) > 0:
        return "an old attribute must end above its mAP at arrival (its first non-NaN entry)"


@exercise("01.3b")
def _negative_forgetting(answer):
    if answer is not True:
        return "build a column that is still rising in the last row: what is best-earlier minus final then?"


@exercise("01.quiz")
def _quiz_01(answer):
    return choices_hint(answer, {1: "b", 2: "a", 3: "b", 4: "a", 7: "b"},
                    {1: "one relevant item: AP is the precision at its rank",
                     2: "a random ranking scores about the fraction of relevant candidates",
                     3: "see the definition of f_j in section 8",
                     4: "see the definition of BWT in section 8",
                     7: "which increment is the model after when the sequence ends?"})

# --- notebook 02
def _effnet_128_reference(lab) -> dict[str, float]:
    """EfficientNet-Lite0 at 128 px, pooled, on the first 50 queries / 150 candidates (30 / 90 quick)."""
    import torch
    from ..core import encoders
    from ..core import metrics
    from ..retrieval.features import pooled
    nq, nc = (30, 90) if lab.quick else (50, 150)
    enc = encoders.build_encoder("efficientnet_lite0", trainable=False, input_size=128)
    out = {}
    with torch.no_grad():
        for a in ("colour", "pattern"):
            split, lab_a = lab.protocol[a], lab.table.labels[a]
            q, c = split.query[:nq], split.candidate[:nc]
            emb = lambda rows: pooled(enc(lab.images[torch.as_tensor(rows)]))
            out[a] = metrics.mean_average_precision(emb(q), emb(c), lab_a[q], lab_a[c])
    return out


@exercise("02.1")
def _effnet_128(answer, lab):
    if not isinstance(answer, dict) or set(answer) != {"colour", "pattern"}:
        return "give a dict with the mAP for 'colour' and for 'pattern'"
    if not all(0.0 < float(v) <= 1.0 for v in answer.values()):
        return "mAPs lie in (0, 1]: did you pass the query and candidate labels of the same attribute?"
    return close_hint(answer, _effnet_128_reference(lab), 2e-3, "mAP at 128 px") and (
        "build the encoder with input_size=128, embed the first queries and candidates of each attribute "
        "with features.pooled, and evaluate with metrics.mean_average_precision")


@exercise("02.2")
def _concatenation(answer, model, lab):
    import numpy as np
    import torch
    from ..training.evaluate import embed
    from ..retrieval.zeroshot import embedding_map
    rows = np.arange(len(lab.table))
    both = torch.cat([embed(model, lab.images, rows, a) for a in ("length", "colour")], dim=1) / np.sqrt(2)
    expected = embedding_map(both, lab.table.labels, lab.protocol, ["length", "colour"])
    return close_hint(answer, expected, 1e-4, "mAP of the concatenation") and (
        "concatenate the length and colour heads' embeddings (in that order) of every image, scale by "
        "1/sqrt(2), and evaluate with map_per_attribute")


@exercise("02.3")
def _random_cnn_colour(answer):
    if str(answer).strip().lower().strip("()") != "b":
        return "what does average pooling keep of a filter's response map, and what does it throw away?"


@exercise("02.quiz")
def _quiz_02(answer):
    return choices_hint(answer, {1: "a", 2: "b", 4: "a"},
                    {1: "a generic embedding does not know which attribute you mean",
                     2: "which attribute was the colour head trained for?",
                     4: "which of them can be told, in words, which attribute you mean?"})

# --- notebook 03
@exercise("03.1")
def _tau_to_zero(answer):
    if isinstance(answer, bool):
        return "give a number: the loss's limit"
    if not near(answer, 0.0, 1e-2):
        return ("as tau -> 0 the softmax puts all its mass on the most similar item; if that is the partner, "
                "the loss is -log of what?")


def _silhouette_false_fraction(lab, batch_size: int) -> float:
    """Section 3's count for silhouette: one batch of doublets drawn with np.random.default_rng(0)."""
    import numpy as np
    from ..data.table import PairSampler
    sil = lab.table.labels["silhouette"]
    a, p = PairSampler(sil, lab.protocol["silhouette"].train).doublets(batch_size, np.random.default_rng(0))
    items = np.concatenate([sil[a], sil[p]])
    return float(((items[:, None] == items[None, :]).sum(axis=1) - 2).mean() / (2 * batch_size - 2))


@exercise("03.2")
def _silhouette_false_negatives(answer, lab, batch_size):
    frac = float(answer)
    if not 0 <= frac <= 1:
        return "a fraction of the 2B - 2 negatives lies between 0 and 1"
    if abs(frac - _silhouette_false_fraction(lab, batch_size)) > 1e-6:
        hint = ("count, in a batch drawn as in section 3 (PairSampler(...).doublets with "
                "np.random.default_rng(0)), for each of the 2B items the other items with its value except its "
                "partner, and divide the mean by the 2B - 2 negatives it is compared with")
        n_values = len(lab.table.values["silhouette"])
        if abs(frac - 1 / n_values) < 1e-9:
            hint = "1 / values is the prediction; now count them in the batch. " + hint
        return hint


def _zero_loss_fractions(lab, trained, attribute: str, config, n: int = 256, seed: int = 1) -> dict[str, float]:
    """Fractions of zero-loss triplets (squared distances, margin ``2 * config.margin``: the config's
    cosine margin, as notebook 03 and the runner train with) for an untrained
    model (seed 0) and for ``trained``, on ``n`` triplets sampled with ``default_rng(seed)``."""
    import numpy as np
    import torch
    from ..data.table import PairSampler
    from ..core.encoders import build_encoder
    from ..core.model import RetrievalModel
    untrained = RetrievalModel(lambda: build_encoder("smallcnn", width=config.encoder_width), config.embed_dim, seed=0)
    untrained.add_attribute(attribute)
    sampler = PairSampler(lab.table.labels[attribute], lab.protocol[attribute].train)
    out = {}
    for name, model in (("untrained", untrained), ("trained", trained)):
        a, p, q = sampler.triplets(n, np.random.default_rng(seed))
        with torch.no_grad():
            za, zp, zn = model(lab.images[torch.as_tensor(np.concatenate([a, p, q]))], attribute).split(n)
        per = (za - zp).pow(2).sum(-1) - (za - zn).pow(2).sum(-1) + 2 * config.margin
        out[name] = float((per <= 0).float().mean())
    return out


@exercise("03.3")
def _zero_loss_triplets(answer, lab, trained, attribute, config):
    if not isinstance(answer, dict) or set(answer) != {"untrained", "trained"}:
        return "give a dict with keys 'untrained' and 'trained'"
    u, t = float(answer["untrained"]), float(answer["trained"])
    if not (0 <= u <= 1 and 0 <= t <= 1):
        return "give fractions (between 0 and 1) for 'untrained' and 'trained'"
    ref = _zero_loss_fractions(lab, trained, attribute, config)
    # exact on the seeded sample: after training nearly every random triplet has zero loss, so a
    # tolerance of a few hundredths would accept the guess {"untrained": 0, "trained": 1}
    off = [k for k in ref if not near(answer[k], ref[k], 1e-6)]
    if off:
        return (f"{off} not right: a triplet has zero loss when d(a, n) >= d(a, p) + margin (squared distances, "
                "margin 2 * cfg.margin, the 0.2 on the cosine that section 4 trained with); sample sampler.triplets(256, np.random.default_rng(1)) for each model, and use "
                "models['triplet'] for 'trained' and a fresh RetrievalModel(..., seed=0) for 'untrained'")


@exercise("03.quiz")
def _quiz_03(answer):
    return choices_hint(answer, {1: "a", 2: "b", 3: "a", 5: "b"},
                    {1: "count the images in one triplet and in one doublet",
                     2: "a false negative is about the batch, not about the labels being wrong",
                     3: "when is there nothing to mask?",
                     5: "divide the similarities by a larger number: what happens to the softmax?"})

# --- notebook 04
@exercise("04.1")
def _old_encoder_back(answer, result, t0, run, lab):
    if not isinstance(answer, dict):
        return "give the dict that evaluate(...) returns: {attribute: mAP}"
    attributes = list(result["attributes"])
    missing = [a for a in attributes if a not in answer]
    if missing:
        return f"evaluate every attribute of the run, the later ones too; {missing} are missing"
    R = result["map_matrix"]
    seen = [a for j, a in enumerate(attributes) if R[t0][j] is not None]
    off = [a for a in seen if not near(answer[a], R[t0][attributes.index(a)], 1e-3)]
    if off:
        return (f"{off} do not come back to their mAP after increment {t0 + 1}: load the *encoder* of the model "
                f"after increment {t0 + 1} into the final model (keep the final heads)")
    # the attributes learnt after t0: what the final heads give on the old encoder (a copy of row t0 has none)
    from ..training.evaluate import evaluate
    swapped = run.model_after(len(R) - 1)
    swapped.encoder.load_state_dict(run.model_after(t0).encoder.state_dict())
    later = [a for a in attributes if a not in seen]
    expected = evaluate(swapped, lab.images, lab.table.labels, lab.protocol, later) if later else {}
    wrong = [a for a in later if not near(answer[a], expected[a], 1e-3)]
    if wrong:
        return (f"{wrong}: not what the final model's heads give on the encoder of increment {t0 + 1}; evaluate "
                "that swapped model on every attribute, the ones learnt later included")
    return None


@exercise("04.2")
def _drift_per_attribute(answer, run, lab, result, old):
    from ..retrieval.index import GalleryIndex
    from ..core.forgetting import first_seen
    import numpy as np
    R = np.array([[np.nan if v is None else v for v in row] for row in result["map_matrix"]], dtype=float)
    first = first_seen(R)
    final = run.model_after(len(R) - 1)
    expected = {}
    for a in old:
        t_a = int(first[result["attributes"].index(a)])
        idx = GalleryIndex.build(run.model_after(t_a), lab.images, lab.protocol[a].candidate, a)
        expected[a] = idx.staleness(final, lab.images)
    return close_hint(answer, expected, 1e-4, "staleness per old attribute") and (
        "index each old attribute's candidates with the model right after that attribute was learnt, and "
        "measure the staleness under the final model")


@exercise("04.3")
def _per_value(answer, lab, runners, attribute, t_before, t_after, cache=None, n_queries: int = 50):
    import numpy as np
    from .views import neighbour_view
    value_names = lab.table.values[attribute]
    if not isinstance(answer, dict) or not answer or not set(answer) <= set(value_names):
        return f"group by view['query_value']; the keys should be values such as {value_names[:2]}"
    for v, pair in answer.items():
        b, a = (float(x) for x in pair)
        if not (0 <= b <= 1 and 0 <= a <= 1):
            return f"{v}: give (mean AP before, mean AP after), each between 0 and 1"
    per_value: dict = {}
    for q in range(n_queries):
        b = neighbour_view(lab, runners, "finetune", attribute, t_before, q, cache=cache)
        a = neighbour_view(lab, runners, "finetune", attribute, t_after, q, cache=cache)
        per_value.setdefault(b["query_value"], []).append((b["ap"], a["ap"]))
    missing = sorted(set(per_value) - set(answer))
    if missing:
        return f"the first {n_queries} queries also have the values {missing}: group all of them"
    for v, pairs in per_value.items():
        if np.abs(np.asarray(answer[v], dtype=float) - np.mean(pairs, axis=0)).max() > 1e-3:
            return (f"{v}: not the mean APs of its queries among the first {n_queries} (before: the model after "
                    "t0, after: the final model)")


@exercise("04.quiz")
def _quiz_04(answer):
    return choices_hint(answer, {1: "b", 2: "a", 3: "c", 5: "b"},
                    {1: "does an old head get a gradient when its attribute is not in the loss?",
                     2: "put the old encoder back (exercise 1): what comes back?",
                     3: "forgetting measures a fall from a best earlier mAP",
                     5: "what did the model that made the stored embeddings look like?"})
