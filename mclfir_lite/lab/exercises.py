"""Self-checking exercises: each exercise of a notebook has a check function here.

A student copy keeps the call, e.g. ``exercises.check("04.1", answer)``. The check says
"correct", or gives a hint without printing the solution; an unanswered stub (``None`` or
``...``) gets "not yet", never an error, so a student copy runs top to bottom.

Checks are registered with :func:`exercise`; each returns ``None`` when the answer is
right, or a hint (a string) when it is not.

**Strict mode.** In a notebook that holds the reference solutions, a wrong answer means the
solution (or its check) broke. Under nbmake, in CI (``CI=true``) or with
``MCLFIR_STRICT_EXERCISES=1``, :func:`check` raises :class:`ExerciseError` for an answer that
fails its check, so the run fails instead of printing a hint nobody reads. An unanswered stub
still only says "not yet" (student copies run top to bottom in every mode).
``MCLFIR_STRICT_EXERCISES=0`` turns strict mode off.
"""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["exercise", "check", "CHECKS", "ExerciseError", "strict"]


class ExerciseError(AssertionError):
    """A notebook's answer (its reference solution) failed the exercise's check in strict mode."""


def strict() -> bool:
    """True under nbmake, in CI (``CI`` true) or with ``MCLFIR_STRICT_EXERCISES=1``; ``=0`` wins.

    nbmake is detected through ``PYTEST_CURRENT_TEST``, which pytest sets while a test runs and
    the notebook's kernel inherits: it names the ``.ipynb`` being run."""
    flag = os.environ.get("MCLFIR_STRICT_EXERCISES", "").strip().lower()
    if flag:
        return flag in {"1", "true", "yes", "on"}
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    return ".ipynb" in os.environ.get("PYTEST_CURRENT_TEST", "")

CHECKS: dict[str, Callable] = {}


def exercise(key: str):
    """Register a check function under ``key`` ("<notebook>.<number>", e.g. "04.1")."""
    def register(fn: Callable) -> Callable:
        if key in CHECKS:
            raise ValueError(f"exercise {key!r} registered twice")
        CHECKS[key] = fn
        return fn
    return register


def _unanswered(answer) -> bool:
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


def check(key: str, answer, *context) -> bool:
    """Check ``answer`` for exercise ``key``; prints "correct", "not yet" or a hint and returns
    True only when correct. ``context`` is whatever the check needs from the notebook.
    In strict mode (see :func:`strict`) a wrong answer raises :class:`ExerciseError`."""
    if key not in CHECKS:
        raise KeyError(f"no exercise {key!r}; known: {sorted(CHECKS)}")
    if _unanswered(answer):
        print(f"exercise {key}: not yet answered (replace the ... with your answer and run the cell again)")
        return False
    try:
        hint = CHECKS[key](answer, *context)
    except Exception as err:  # a wrong type or shape is a hint, not a crash
        hint = f"your answer could not be checked ({type(err).__name__}: {err})"
    if hint:
        if strict():
            raise ExerciseError(f"exercise {key}: the notebook's answer fails its check ({hint}); "
                                "fix the reference solution or the check (strict mode: nbmake, CI=true "
                                "or MCLFIR_STRICT_EXERCISES=1)")
        print(f"exercise {key}: not yet. Hint: {hint}")
        return False
    print(f"exercise {key}: correct")
    return True


# Checks, one section per notebook (keep each notebook's checks in its own section).

# --- notebook 00
def _choices(answer, expected: dict, hints: dict) -> str | None:
    """Multiple-choice answers ``{question: "a"}`` against ``expected``; a hint naming each
    unanswered or wrong question (never the right letter), or None when all are right."""
    if not isinstance(answer, dict):
        return f"give a dict {{question number: letter}}, e.g. {{{next(iter(expected))}: \"a\"}}"
    notes = []
    for q, right in expected.items():
        given = answer.get(q, ...)
        if given is ... or given is None:
            notes.append(f"question {q} not answered yet")
        elif str(given).strip().lower().strip("()") != right:
            notes.append(f"question {q}: {hints.get(q, 'read that section again')}")
    return "; ".join(notes) or None


def _near(answer, expected, tol: float) -> bool:
    return abs(float(answer) - float(expected)) <= tol


def _close(answer: dict, expected: dict, tol: float, what: str) -> str | None:
    """A dict of numbers against the expected dict, key by key, within ``tol``."""
    missing = sorted(set(expected) - set(answer))
    if missing:
        return f"{what}: no value for {missing}"
    off = [k for k in expected if not _near(answer[k], expected[k], tol)]
    return f"{what}: not right for {off}" if off else None


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
    return _close(answer, expected, 1e-6, "chance level per attribute") and (
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
    return _choices(answer, {2: "b", 3: "a", 4: "a"},
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
        if abs(float(answer(rel, k)) - reference(rel, k)) > 1e-9:
            return (f"ap_at_k({rel}, {k}) is not right: average the precision at the relevant ranks within the "
                    "top k, dividing by the relevant items found there (0 if none)")


@exercise("01.2")
def _order_only(answer):
    if tuple(bool(x) for x in answer) != (True, False):
        return ("give (APs unchanged under exp?, APs unchanged under negation?) as two booleans, computed by "
                "comparing with the APs of the plain similarities")


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
    return _choices(answer, {1: "b", 2: "a", 3: "b", 4: "a", 7: "b"},
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
    return _close(answer, _effnet_128_reference(lab), 2e-3, "mAP at 128 px") and (
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
    return _close(answer, expected, 1e-4, "mAP of the concatenation") and (
        "concatenate the length and colour heads' embeddings (in that order) of every image, scale by "
        "1/sqrt(2), and evaluate with map_per_attribute")


@exercise("02.3")
def _random_cnn_colour(answer):
    if str(answer).strip().lower().strip("()") != "b":
        return "what does average pooling keep of a filter's response map, and what does it throw away?"


@exercise("02.quiz")
def _quiz_02(answer):
    return _choices(answer, {1: "a", 2: "b", 4: "a"},
                    {1: "a generic embedding does not know which attribute you mean",
                     2: "which attribute was the colour head trained for?",
                     4: "which of them can be told, in words, which attribute you mean?"})

# --- notebook 03
@exercise("03.1")
def _tau_to_zero(answer):
    if isinstance(answer, bool):
        return "give a number: the loss's limit"
    if abs(float(answer)) > 1e-2:
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
    """Fractions of zero-loss triplets (squared distances, the config's margin) for an untrained
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
        per = (za - zp).pow(2).sum(-1) - (za - zn).pow(2).sum(-1) + config.margin
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
    off = [k for k in ref if abs(float(answer[k]) - ref[k]) > 1e-6]
    if off:
        return (f"{off} not right: a triplet has zero loss when d(a, n) >= d(a, p) + margin (squared distances, "
                "cfg.margin); sample sampler.triplets(256, np.random.default_rng(1)) for each model, and use "
                "models['triplet'] for 'trained' and a fresh RetrievalModel(..., seed=0) for 'untrained'")


@exercise("03.quiz")
def _quiz_03(answer):
    return _choices(answer, {1: "a", 2: "b", 3: "a", 5: "b"},
                    {1: "count the images in one triplet and in one doublet",
                     2: "a false negative is about the batch, not about the labels being wrong",
                     3: "when is there nothing to mask?",
                     5: "divide the similarities by a larger number: what happens to the softmax?"})

# --- notebook 04
@exercise("04.1")
def _old_encoder_back(answer, result, t0):
    if not isinstance(answer, dict):
        return "give the dict that evaluate(...) returns: {attribute: mAP}"
    R = result["map_matrix"]
    seen = [a for j, a in enumerate(result["attributes"]) if R[t0][j] is not None]
    missing = [a for a in seen if a not in answer]
    if missing:
        return f"evaluate every attribute of the run; {missing} are missing"
    off = [a for a in seen if abs(float(answer[a]) - R[t0][result["attributes"].index(a)]) > 1e-3]
    if off:
        return (f"{off} do not come back to their mAP after increment {t0 + 1}: load the *encoder* of the model "
                f"after increment {t0 + 1} into the final model (keep the final heads)")


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
    return _close(answer, expected, 1e-4, "staleness per old attribute") and (
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
    return _choices(answer, {1: "b", 2: "a", 3: "c", 5: "b"},
                    {1: "does an old head get a gradient when its attribute is not in the loss?",
                     2: "put the old encoder back (exercise 1): what comes back?",
                     3: "forgetting measures a fall from a best earlier mAP",
                     5: "what did the model that made the stored embeddings look like?"})

# --- notebook 05

@exercise("05.1")
def _check_05_1(answer):
    import torchvision
    from ..core.heads import AttributeHead
    from ..core.model import count_parameters
    resnet = torchvision.models.resnet50(weights=None)
    encoder = sum(count_parameters(getattr(resnet, n)) for n in ("conv1", "bn1", "layer1", "layer2", "layer3"))
    if int(answer) != 8 * (encoder + count_parameters(AttributeHead(1024, 128))):
        return "isolated keeps one encoder (conv1 .. layer3) *and* one AttributeHead(1024, 128) per attribute"


@exercise("05.2")
def _check_05_2(answer, results):
    attrs = list(results["isolated"]["final_map"])
    if answer not in attrs:
        return f"answer with one of the plan's attributes: {attrs}"
    best = max(attrs, key=lambda a: results["isolated"]["final_map"][a] - results["frozen"]["final_map"][a])
    if answer != best:
        return "take the difference isolated - frozen of the final mAP, attribute by attribute"


def _length_attention(lab, model, value: str, n: int = 100):
    """The ``length`` head's spatial attention, averaged over ``n`` training images of ``value``."""
    import torch
    labels, train = lab.table.labels["length"], lab.protocol["length"].train
    rows = train[labels[train] == lab.table.values["length"].index(value)][:n]
    head = model.heads.heads["length"]
    with torch.no_grad():
        feats = model.encoder_for("length")(lab.images[torch.as_tensor(rows)])
        gated = feats * head.channel_gate(feats.mean(dim=(2, 3)))[:, :, None, None]
        alpha = torch.softmax(head.spatial(gated).flatten(2), dim=-1)
    return alpha.mean(0).reshape(feats.shape[2:]).numpy()


@exercise("05.3")
def _check_05_3(answer, lab, model):
    import numpy as np
    a, b = _length_attention(lab, model, "cropped"), _length_attention(lab, model, "ankle")
    if abs(float(answer) - 0.5 * float(np.abs(a - b).sum())) > 1e-3:
        return "average each value's attention maps, then take half the sum of the absolute differences"


@exercise("05.4")
def _check_05_4(answer, lab, results):
    options = ("like frozen", "between", "like finetune")
    if answer not in options:
        return f"answer one of {options}"
    soft = lab.run("ewc", ewc_lambda=1.0, progress=False).result()
    if abs(soft["forgetting"] - results["frozen"]["forgetting"]) <= 0.02:
        right = "like frozen"
    elif abs(soft["forgetting"] - results["finetune"]["forgetting"]) <= 0.02:
        right = "like finetune"
    else:
        right = "between"
    if answer != right:
        return "compare the soft run's forgetting with frozen's and finetune's"


# --- notebook 06

@exercise("06.1")
def _check_06_1(answer, decay):
    import math
    if abs(float(answer) - math.log(0.5) / math.log(decay)) > 1.0:
        return "solve d^t = 1/2 for t: t = ln(1/2) / ln(d)"


@exercise("06.2")
def _check_06_2(answer, decay, steps):
    if abs(float(answer) - decay ** steps) > 0.01:
        return "after S steps the snapshot's weight is d multiplied by itself S times"


def _old_map(lab, strategy: str, old: str, **overrides) -> float:
    return lab.run(strategy, progress=False, **overrides).result()["final_map"][old]


@exercise("06.3")
def _check_06_3(answer, sweep, old):
    if answer not in ("embedding", "feature"):
        return 'answer "embedding" or "feature"'
    feat = _old_map(sweep, "mclfir", old, distill_weight=0.0, feature_distill_weight=1.0)
    emb = _old_map(sweep, "mclfir", old, distill_weight=1.0, feature_distill_weight=0.0)
    if answer != ("embedding" if emb >= feat else "feature"):
        return "compare the old attribute's final mAP in the two runs"


@exercise("06.4")
def _check_06_4(answer, old, new):
    from .lab import Lab
    if answer not in ("shared", "per_increment"):
        return 'answer "shared" or "per_increment"'
    kept = {p: _old_map(Lab.synthfashion(quick=True, increments=[[old], [new]], pools=p), "lwf", old)
            for p in ("per_increment", "shared")}
    if answer != max(kept, key=kept.get):
        return "compare the old attribute's final mAP of the two lwf runs"


# --- notebook 07

@exercise("07.1")
def _check_07_1(answer, results):
    per_step = {s: (results[s]["train_samples"] + results[s]["teacher_samples"]) / results[s]["optimizer_steps"]
                for s in ("finetune", "lwf")}
    if answer not in per_step:
        return "answer with one of the two names, 'finetune' or 'lwf'"
    if answer != max(per_step, key=per_step.get):
        return "count the teacher's forward passes too (teacher_samples)"


@exercise("07.2")
def _check_07_2(answer, steps_per_attribute):
    if int(answer) != steps_per_attribute * 6 * 7 // 2:
        return "increment t re-trains t attributes: S (1 + 2 + ... + T)"


@exercise("07.3")
def _check_07_3(answer, results):
    if sorted(answer) != sorted(s for s, r in results.items() if r["at_chance"]):
        return "look at each result's 'at_chance' list (the '*' in the table)"

# --- notebook 08

@exercise("08.1")
def _staleness_by_hand(answer, index, model, images):
    expected = index.staleness(model, images)
    if not 0.0 <= float(answer) <= 2.0:
        return "staleness is a cosine distance, 1 - mean cosine, so it lies between 0 and 2"
    if not _near(answer, expected, 1e-4):
        return ("embed the gallery with both models (the index's model and the final one), take the "
                "row-wise dot products (cosines of unit vectors), average them, and subtract from 1")
    return None


@exercise("08.2")
def _reindex_cost(answer, increments, gallery_sizes):
    from ..retrieval.index import reindex_cost
    expected = sum(reindex_cost(increments, gallery_sizes))
    if int(answer) != answer:
        return "a number of gallery embeddings is a whole number"
    if int(answer) == sum(gallery_sizes[a] for g in increments for a in g) * (len(increments) - 1):
        return "after increment t only the attributes learnt *before* t need re-indexing"
    if int(answer) != expected:
        return ("after each increment t (from the second on), add the gallery sizes of every attribute "
                "learnt before t; a new attribute's own gallery is indexed once either way")
    return None


@exercise("08.3")
def _compatibility_cell(answer, indexes, data, plan, i, j):
    import numpy as np
    from ..retrieval import compatibility as compat
    expected = float(np.mean(list(compat.text_to_image(indexes[i]["texts"], indexes[j]["gallery"], data,
                                                       compat.seen(plan, i)).values())))
    attrs_j = compat.seen(plan, j)
    only_known = float(np.mean(list(compat.text_to_image(indexes[i]["texts"], indexes[j]["gallery"], data,
                                                         attrs_j).values())))
    if not 0.0 <= float(answer) <= 1.0:
        return "an mAP lies between 0 and 1"
    if _near(answer, only_known, 1e-6) and not _near(answer, expected, 1e-6):
        return (f"C[{i}][{j}] averages over every attribute seen up to increment {i + 1} (what a user may ask "
                f"for then), not only those known at increment {j + 1}")
    if not _near(answer, expected, 1e-4):
        return (f"queries: the captions embedded by the text tower of increment {i + 1} (indexes[{i}]['texts']); "
                f"gallery: indexes[{j}]['gallery']; one mAP per attribute with data['queries'][a][1] and "
                "data['gallery'][1][a] as labels, then their mean")
    return None


@exercise("08.4")
def _protected_side(answer, strategies):
    expected = {"finetune": "none", "lwf": "image", "mclfir": "image", "bct": "text"}
    expected = {k: expected[k] for k in strategies}
    if not isinstance(answer, dict) or set(answer) != set(expected):
        return f"give a dict with one entry per strategy: {sorted(expected)}"
    wrong = sorted(k for k in expected if str(answer[k]).strip().lower() != expected[k])
    if wrong:
        return (f"look again at the extra loss of {wrong} in mclfir_lite.retrieval.crossmodal.extra_loss: which tower's "
                "output does it compare with the old model's, and which tower gets the gradient?")
    return None


@exercise("08.quiz")
def _quiz_08(answer):
    return _choices(answer, {1: "b", 2: "b", 3: "b", 4: "a"},
                    {1: "what is stored in an index, and when was it computed?",
                     2: "compare the stale mAP with the mAP at indexing time in section 4",
                     3: "which side of a text -> image search is the query, and does a word's vector move?",
                     4: "the criterion puts a new query model on an old index against the old model on it"})

# --- notebook 09

@exercise("09.1")
def _chance_recall(answer, gallery_size):
    n = int(gallery_size)
    if not isinstance(answer, dict) or set(answer) != {10, 50}:
        return "give a dict {10: Recall@10 of a random ranking, 50: Recall@50 of a random ranking}"
    expected = {k: min(1.0, k / n) for k in (10, 50)}
    if any(_near(answer[k], 1 / n, 1e-9) for k in (10, 50)):
        return "that is the chance of the target being *first*; Recall@K asks whether it is among the first K"
    if any(_near(answer[k], k / 100, 1e-9) or _near(answer[k], 1 / k, 1e-9) for k in (10, 50)):
        return "the gallery size matters: one target among gallery_size images"
    bad = [k for k in (10, 50) if not _near(answer[k], expected[k], 1e-9)]
    if bad:
        return f"not right for K = {bad}: with one relevant item among N, a random ranking puts it in the top K with probability K / N"
    return None


@exercise("09.2")
def _film_by_hand(answer, op, r, t):
    import torch
    with torch.no_grad():
        expected = op(r, t)
    answer = torch.as_tensor(answer, dtype=expected.dtype)
    if tuple(answer.shape) != tuple(expected.shape):
        return f"the output has one row per query and the embedding size as columns: shape {tuple(expected.shape)}"
    with torch.no_grad():
        if torch.allclose(answer, r * op.scale(t) + op.shift(t), atol=1e-5):
            return "FiLM keeps the image feature when the text asks for nothing: r * (1 + scale(t)), not r * scale(t)"
    if not torch.allclose(answer, expected, atol=1e-5):
        return "r * (1 + op.scale(t)) + op.shift(t): the text's scale multiplies each image feature, its shift adds to it"
    return None


@exercise("09.3")
def _paired_differences(answer, report, seeds):
    import numpy as np
    per = report["per_seed"]
    expected = [per[str(s)]["dynamic"]["recall_at_10"] - per[str(s)]["dynamic_no_sd"]["recall_at_10"] for s in seeds]
    try:
        got = [float(x) for x in answer]
    except TypeError:
        return "give a list of numbers, one per seed, in the order of SEEDS"
    if len(got) != len(expected):
        return f"one difference per seed: {len(expected)} numbers"
    if np.allclose(got, [-x for x in expected], atol=1e-9) and not np.allclose(expected, 0):
        return "dynamic minus dynamic_no_sd, not the other way round"
    if not np.allclose(got, expected, atol=1e-9):
        return ("for each seed s: report['per_seed'][str(s)]['dynamic']['recall_at_10'] minus the same for "
                "'dynamic_no_sd'")
    return None


@exercise("09.quiz")
def _quiz_09(answer):
    return _choices(answer, {1: "a", 2: "b", 3: "a", 4: "b"},
                    {1: "static: is the operation the same for every query?",
                     2: "look at Composer.routing in mclfir_lite.retrieval.composed",
                     3: "one target among N: where does a random ranking put it?",
                     4: "what does differs() compare the gap with?"})

# --- notebook 10
@exercise("10.1")
def _folder_per_value(answer):
    from ..data.table import FashionTable
    if not isinstance(answer, FashionTable):
        return "read your CSV back with read_table(...) and give the FashionTable"
    if answer.attributes != ["colour"]:
        return f"one attribute, 'colour', taken from the folder name (got {answer.attributes})"
    test = float((answer.split == "test").mean())
    if abs(test - 0.25) > 0.05:
        return f"a quarter of the rows should be 'test' (got {test:.0%})"


@exercise("10.2")
def _tiny_run(answer):
    import math
    need = ("strategy", "attributes", "map_matrix", "final_map", "chance_map", "optimizer_steps", "config")
    if not isinstance(answer, dict) or any(k not in answer for k in need):
        return "give the run's result(): lab.run(...).result()"
    if answer["attributes"] != ["neckline", "colour"] or len(answer["map_matrix"]) != 2:
        return "the plan is two increments: neckline, then colour"
    if answer["strategy"] != "finetune":
        return "train the finetune strategy"
    R = answer["map_matrix"]
    if [len(row) for row in R] != [2, 2] or R[0][1] is not None or any(v is None for v in (R[0][0], *R[1])):
        return "the matrix of a finished run: row 1 evaluates neckline only, row 2 both attributes"
    if not all(isinstance(v, float) and math.isfinite(v) and 0 <= v <= 1 for v in (R[0][0], *R[1])):
        return "every mAP of the matrix is a number between 0 and 1"
    if answer["final_map"] != {"neckline": R[1][0], "colour": R[1][1]} or set(answer["chance_map"]) != {"neckline", "colour"}:
        return "the result is not consistent (final_map is the matrix's last row): give run.result() unchanged"
    steps = answer["config"].get("steps_per_attribute") if isinstance(answer["config"], dict) else None
    if not steps or answer["optimizer_steps"] != 2 * steps:
        return "finetune trains steps_per_attribute steps per increment: give run.result() of a finished run"


@exercise("10.3")
def _long_tail(answer, available: bool = False):
    """``available``: whether the Fashion Product Images subset is on this machine."""
    if isinstance(answer, str) and answer == "no data":
        return ("the subset is here (real is not None): prepare it with min_count=500" if available else None)
    import numpy as np
    from ..data.table import FashionTable
    if not isinstance(answer, FashionTable):
        return "give the prepared FashionTable (or \"no data\" when the subset is not available)"
    if not available:
        return "the subset is not available here: answer \"no data\""
    if len(answer.images) == 0 or not answer.attributes:
        return "the prepared table is empty: did the preparer find the subset's styles.csv?"
    for a in answer.attributes:
        codes = answer.labels[a][answer.labels[a] >= 0]
        if np.bincount(codes).min() < 500:
            return f"{a} keeps a value with fewer than 500 images: did you pass min_count=500?"


@exercise("10.quiz")
def _quiz_10(answer):
    return _choices(answer, {1: "b", 2: "b", 4: "a"},
                    {1: "FashionAI labels one attribute per image: what would the other cells hold?",
                     2: "section 1 says where image paths start from",
                     4: "section 5: one switch, the same code"})

# --- notebook 11
@exercise("11.1")
def _glossary_chance(answer):
    from ..core.metrics import chance_map
    if abs(float(answer) - chance_map([0, 2], [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])) > 1e-6:
        return ("the fraction of relevant candidates is only the rule of thumb: use the exact expectation, "
                "metrics.chance_map(query_labels, candidate_labels)")


@exercise("11.2")
def _glossary_bwt(answer):
    if abs(float(answer[0]) - 0.15) > 1e-6 or abs(float(answer[1]) + 0.1) > 1e-6:
        return ("forgetting: best earlier mAP minus final; BWT: final minus mAP at arrival; both averaged over "
                "the attributes that arrived before the last increment")


@exercise("11.quiz")
def _quiz_11(answer):
    return _choices(answer, {1: "c", 2: "a", 3: "b", 4: "c", 5: "a", 6: "b"},
                    {1: "which term is about learning new things, which about keeping old ones?",
                     2: "a doublet is a pair",
                     3: "the stored embeddings were made by another model",
                     4: "what does the teacher follow, and how slowly?",
                     5: "an upper bound sees everything at once",
                     6: "which mean counts every query once?"})
