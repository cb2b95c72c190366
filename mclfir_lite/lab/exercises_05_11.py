"""The checks of notebooks 05 to 11 (registered in :mod:`mclfir_lite.lab.exercise_registry`;
notebooks call them through :func:`mclfir_lite.lab.exercises.check`)."""
from __future__ import annotations

from .exercise_registry import exercise, choices_hint, near


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
    if not near(answer, 0.5 * float(np.abs(a - b).sum()), 1e-3):
        return "average each value's attention maps, then take half the sum of the absolute differences"


@exercise("05.4")
def _check_05_4(answer, lab, results):
    options = ("like frozen", "between", "like finetune")
    if not isinstance(answer, dict):
        return 'give a dict {"forgetting": the soft run\'s average forgetting, "where": one of ' + f"{options}}}"
    if set(answer) != {"forgetting", "where"}:
        return f"give exactly the keys 'forgetting' and 'where' (got {sorted(map(str, answer))})"
    if answer["where"] not in options:
        return f"'where' is one of {options}"
    soft = lab.run("ewc", ewc_lambda=1.0, progress=False).result()
    if not near(answer["forgetting"], soft["forgetting"], 1e-3):
        return "'forgetting' is the soft run's own: lab.run(\"ewc\", ewc_lambda=1.0, ...).result()[\"forgetting\"]"
    if abs(soft["forgetting"] - results["frozen"]["forgetting"]) <= 0.02:
        right = "like frozen"
    elif abs(soft["forgetting"] - results["finetune"]["forgetting"]) <= 0.02:
        right = "like finetune"
    else:
        right = "between"
    if answer["where"] != right:
        return "compare the soft run's forgetting with frozen's and finetune's (within 0.02)"


@exercise("05.quiz")
def _quiz_05(answer):
    return choices_hint(answer, {1: "b", 3: "c", 4: "b", 5: "a"},
                    {1: "the gate has one number per channel: what does multiplying by it select?",
                     3: "count what exercise 1 counts for the isolated design, attribute by attribute",
                     4: "what does the Fisher information F_i measure, and on which weights is the penalty?",
                     5: "lambda F_i is the stiffness of the spring: what does a stiffer spring do to the encoder?"})


# --- notebook 06

@exercise("06.1")
def _check_06_1(answer, decay):
    import math
    if not near(answer, math.log(0.5) / math.log(decay), 1.0):
        return "solve d^t = 1/2 for t: t = ln(1/2) / ln(d)"


@exercise("06.2")
def _check_06_2(answer, decay, steps):
    if not near(answer, decay ** steps, 0.01):
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
def _check_06_4(answer, old, new, seeds):
    """The paired verdict over ``seeds`` (t interval, resolution 0.02) of the old attribute's
    final mAP under ``lwf``, shared images minus images per increment: one seed decides nothing."""
    from .lab import Lab
    from .report import paired_difference
    words = {"above": "shared", "below": "per_increment", "no difference": "no difference", "undecided": "undecided"}
    if answer not in words.values():
        return 'answer "shared", "per_increment", "no difference" or "undecided"'
    if len(seeds) < 2:
        return "run at least two seeds: one seed has no interval"
    kept = {p: [_old_map(Lab.synthfashion(quick=True, increments=[[old], [new]], pools=p, seed=s), "lwf", old)
                for s in seeds] for p in ("shared", "per_increment")}
    verdict = paired_difference(kept["shared"], kept["per_increment"], resolution=0.02, interval="t")["verdict"]
    if answer != words[verdict]:
        return ("pair the seeds (the same seed in both lists) and read the whole 95% interval of shared - "
                "per_increment against +-0.02: paired_difference(..., resolution=0.02, interval='t')")


@exercise("06.quiz")
def _quiz_06(answer):
    return choices_hint(answer, {1: "b", 2: "a", 4: "a", 5: "c"},
                    {1: "unroll the update (section 2): to what age do the weights (1 - d) d^k average?",
                     2: "each step keeps the fraction d of what the teacher held of the snapshot",
                     4: "how long is an L2-normalised embedding, and what does retrieval by cosine compare?",
                     5: "section 5, after the claims: how does the released code's teacher compare with lwf's?"})


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
    # recomputed from the numbers with the rule the lesson states (final mAP within 0.05 of chance),
    # not read from the results' own "at_chance" lists, which a solution would read too
    from ..core.metrics import AT_CHANCE_MARGIN
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple, set)):
        return "answer with a list of strategy names, e.g. ['lwf']"
    near = sorted(s for s, r in results.items()
                  if any(r["final_map"][a] < r["chance_map"][a] + AT_CHANCE_MARGIN for a in r["final_map"]))
    if sorted(answer) != near:
        return (f"a strategy belongs in the list when one of its attributes ends within {AT_CHANCE_MARGIN} of "
                "chance: compare each result's final_map with its chance_map (the '*' in the table)")


@exercise("07.quiz")
def _quiz_07(answer):
    return choices_hint(answer, {2: "c", 3: "c", 5: "a", 6: "b"},
                    {2: "section 2: take an attribute that finetune ends at chance and read its column of the accuracy matrix: was it ever high?",
                     3: "an upper bound must learn every attribute: which one did a plain sum leave behind?",
                     5: "section 5: would a static model trained with the same budget cost more?",
                     6: "add up the new and the seen attributes of each increment; is a teacher's forward pass free?"})

# --- notebook 08

@exercise("08.1")
def _staleness_by_hand(answer, index, model, images):
    expected = index.staleness(model, images)
    if not 0.0 <= float(answer) <= 2.0:
        return "staleness is a cosine distance, 1 - mean cosine, so it lies between 0 and 2"
    if not near(answer, expected, 1e-4):
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
    if near(answer, only_known, 1e-6) and not near(answer, expected, 1e-6):
        return (f"C[{i}][{j}] averages over every attribute seen up to increment {i + 1} (what a user may ask "
                f"for then), not only those known at increment {j + 1}")
    if not near(answer, expected, 1e-4):
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
    return choices_hint(answer, {1: "b", 2: "b", 3: "b", 4: "a"},
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
    if any(near(answer[k], 1 / n, 1e-9) for k in (10, 50)):
        return "that is the chance of the target being *first*; Recall@K asks whether it is among the first K"
    if any(near(answer[k], k / 100, 1e-9) or near(answer[k], 1 / k, 1e-9) for k in (10, 50)):
        return "the gallery size matters: one target among gallery_size images"
    bad = [k for k in (10, 50) if not near(answer[k], expected[k], 1e-9)]
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
    return choices_hint(answer, {1: "a", 2: "b", 3: "a", 4: "b"},
                    {1: "static: is the operation the same for every query?",
                     2: "look at Composer.routing in mclfir_lite.retrieval.composed",
                     3: "one target among N: where does a random ranking put it?",
                     4: "section 5: which verdict says the interval lies inside ±0.02, and which that it straddles it?"})

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
    from pathlib import PurePath
    names, codes = answer.values["colour"], answer.labels["colour"]
    wrong = [str(img) for img, c in zip(answer.images, codes)
             if c < 0 or names[c] != PurePath(str(img).replace("\\", "/")).parent.name]
    if wrong:
        return (f"{len(wrong)} of {len(codes)} rows do not have their folder's name as their colour (e.g. {wrong[0]}): "
                "take each row's value from the folder its image sits in")


@exercise("10.2")
def _tiny_run(answer, table=None):
    """``table``: the ``my_shop`` table the run must have been made on; its chance mAPs (the
    protocol's queries and candidates, seed 0) tie the answer to that data, so a hand-made dict
    that merely has the right shape does not pass."""
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
    if table is not None:
        from ..core.metrics import chance_map_per_attribute
        from ..data.table import make_protocol
        chance = chance_map_per_attribute(table.labels, make_protocol(table), ["neckline", "colour"],
                                          answer["config"].get("no_relevant", "zero"))
        if any(not isinstance(answer["chance_map"].get(a), float) or abs(answer["chance_map"][a] - v) > 1e-9
               for a, v in chance.items()):
            return "this run was not made on the my_shop table: Lab.from_table(table, ...) with the table read above"


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
    return choices_hint(answer, {1: "b", 2: "b", 4: "a"},
                    {1: "FashionAI labels one attribute per image: what would the other cells hold?",
                     2: "section 1 says where image paths start from",
                     4: "section 5: one switch, the same code"})

# --- notebook 11
@exercise("11.1")
def _glossary_chance(answer):
    from ..core.metrics import chance_map
    if not near(answer, chance_map([0, 2], [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]), 1e-6):
        return ("the fraction of relevant candidates is only the rule of thumb: use the exact expectation, "
                "metrics.chance_map(query_labels, candidate_labels)")


@exercise("11.2")
def _glossary_bwt(answer):
    if not (near(answer[0], 0.15, 1e-6) and near(answer[1], -0.1, 1e-6)):
        return ("forgetting: best earlier mAP minus final; BWT: final minus mAP at arrival; both averaged over "
                "the attributes that arrived before the last increment")


@exercise("11.quiz")
def _quiz_11(answer):
    return choices_hint(answer, {1: "c", 2: "a", 3: "b", 4: "c", 5: "a", 6: "b"},
                    {1: "which term is about learning new things, which about keeping old ones?",
                     2: "a doublet is a pair",
                     3: "the stored embeddings were made by another model",
                     4: "what does the teacher follow, and how slowly?",
                     5: "an upper bound sees everything at once",
                     6: "which mean counts every query once?"})
