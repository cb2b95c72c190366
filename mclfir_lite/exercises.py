"""Self-checking exercises: each exercise of a notebook has a check function here.

A student copy keeps the call, e.g. ``exercises.check("04.1", answer)``. The check says
"correct", or gives a hint without printing the solution; an unanswered stub (``None`` or
``...``) gets "not yet", never an error, so a student copy runs top to bottom.

Checks are registered with :func:`exercise`; each returns ``None`` when the answer is
right, or a hint (a string) when it is not.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["exercise", "check", "CHECKS"]

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
    True only when correct. ``context`` is whatever the check needs from the notebook."""
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
        print(f"exercise {key}: not yet. Hint: {hint}")
        return False
    print(f"exercise {key}: correct")
    return True


# Checks, one section per notebook (keep each notebook's checks in its own section).

# --- notebook 00

# --- notebook 01

# --- notebook 02

# --- notebook 03

# --- notebook 04

# --- notebook 05

@exercise("05.1")
def _check_05_1(answer, encoder_params, head_params):
    if int(answer) != 8 * (encoder_params + head_params):
        return "isolated keeps one encoder *and* one head per attribute"


@exercise("05.2")
def _check_05_2(answer, results):
    attrs = list(results["isolated"]["final_map"])
    if answer not in attrs:
        return f"answer with one of the plan's attributes: {attrs}"
    best = max(attrs, key=lambda a: results["isolated"]["final_map"][a] - results["frozen"]["final_map"][a])
    if answer != best:
        return "take the difference isolated - frozen of the final mAP, attribute by attribute"


@exercise("05.3")
def _check_05_3(answer, map_a, map_b):
    import numpy as np
    if abs(float(answer) - 0.5 * float(np.abs(np.asarray(map_a) - np.asarray(map_b)).sum())) > 1e-3:
        return "half the sum of the absolute differences between the two averaged maps"


@exercise("05.4")
def _check_05_4(answer, soft, results):
    options = ("like frozen", "between", "like finetune")
    if answer not in options:
        return f"answer one of {options}"
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


@exercise("06.3")
def _check_06_3(answer, old_with_feature_only, old_with_embedding_only):
    if answer not in ("embedding", "feature"):
        return 'answer "embedding" or "feature"'
    right = "embedding" if old_with_embedding_only >= old_with_feature_only else "feature"
    if answer != right:
        return "compare the old attribute's final mAP in the two runs"

@exercise("06.4")
def _check_06_4(answer, kept):
    if answer not in kept:
        return f"answer one of {sorted(kept)}"
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

def _close(answer, expected, tol: float) -> bool:
    return abs(float(answer) - float(expected)) <= tol


@exercise("08.1")
def _staleness_by_hand(answer, index, model, images):
    expected = index.staleness(model, images)
    if not 0.0 <= float(answer) <= 2.0:
        return "staleness is a cosine distance, 1 - mean cosine, so it lies between 0 and 2"
    if not _close(answer, expected, 1e-4):
        return ("embed the gallery with both models (the index's model and the final one), take the "
                "row-wise dot products (cosines of unit vectors), average them, and subtract from 1")
    return None


@exercise("08.2")
def _reindex_cost(answer, increments, gallery_sizes):
    from .index import reindex_cost
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
def _partial_reindex(answer, model_then, model_now, images, labels, query_rows, gallery_rows, attribute, half):
    import torch
    from . import metrics
    from .continual import embed
    mixed = torch.where(half[:, None], embed(model_now, images, gallery_rows, attribute),
                        embed(model_then, images, gallery_rows, attribute))
    expected = metrics.mean_average_precision(embed(model_now, images, query_rows, attribute), mixed,
                                              labels[query_rows], labels[gallery_rows])
    if not _close(answer, expected, 1e-4):
        return ("queries from the final model; gallery vectors from the final model where half is True and "
                "from the model after the attribute's increment elsewhere (torch.where on half[:, None])")
    return None

# --- notebook 09

@exercise("09.1")
def _teach_a_word(answer):
    if not isinstance(answer, dict):
        return "store parse(...).change, a dict {attribute: value}"
    if answer == {}:
        return "the parser found nothing to change: did you add the word to words['values']['red'] and retrain on it?"
    if answer != {"colour": "red"}:
        return (f"the parser read {answer}; the new word must be in the training phrases (phrase_dataset with "
                "your copy of the words), and the model retrained from scratch")
    return None


@exercise("09.2")
def _heads_at_chance(answer, final_map, chance, attributes):
    from .metrics import AT_CHANCE_MARGIN
    expected = sorted(a for a in attributes if final_map[a] < chance[a] + AT_CHANCE_MARGIN)
    if list(answer) != sorted(answer):
        return "sort the list"
    if list(answer) != expected:
        return ("compare each attribute's final mAP with its own chance mAP (not with a fixed number such as "
                "1/number of values): at chance means less than metrics.AT_CHANCE_MARGIN above it")
    return None


@exercise("09.3")
def _text_only_search(answer, prototypes, gallery_emb, targets, gallery_values):
    import numpy as np
    import torch
    from . import metrics
    text_map, text_chance = (float(x) for x in answer)
    expected = metrics.mean_average_precision(prototypes[torch.as_tensor(targets)], gallery_emb, targets,
                                              gallery_values)
    exp_chance = metrics.chance_map(targets, gallery_values)
    if _close(text_chance, float(np.mean([(gallery_values == t).mean() for t in targets])), 1e-6):
        return ("that is the mean share of relevant gallery items, close to chance but not the expected AP of a "
                "random ranking: use metrics.chance_map(query labels, gallery labels)")
    if not _close(text_chance, exp_chance, 1e-6):
        return "chance: metrics.chance_map with the requested values as query labels and the gallery's values"
    if not _close(text_map, expected, 1e-4):
        return ("the query embeddings are the prototypes of the requested values, one per query; the query "
                "labels are the targets and the gallery labels the gallery's values of the changed attribute")
    return None

# --- notebook 10
