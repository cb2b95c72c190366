"""Break the remaining claims of notebook 08 (cross-modal indexes): sections 7 and 8.

As in tests/test_notebook_claims.py: each claim cell, found by a marker string in its source,
runs on a stub report shaped like the one ``crossmodal.run`` writes, with numbers like the
measured ones; its claims must pass (one ✓ each), and a change of the numbers that makes a
sentence false must raise ClaimError naming that sentence. Nothing is trained.

  cell "every diagonal cell of every strategy": each strategy's diagonal above its row's chance
  cell "keeping each old attribute's own gallery": text -> image recovers, image -> text does not
  cell "keeping the first index for everything": finetune and bct keep, lwf and mclfir re-index
  cell "partial backfilling": the policy order does not beat a random order by more than 0.02
"""
import matplotlib
import numpy as np
import pytest

from mclfir_lite.core import metrics
from mclfir_lite.lab.claims import ClaimError, claim, claim_greater

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from test_notebook_claims import _code_cell  # noqa: E402  (tests/ is on sys.path under pytest)

NAMES = ["finetune", "lwf", "mclfir", "bct"]
KEY = {"text_to_image": "compatibility", "image_to_text": "compatibility_image_to_text"}
T = 3


def _exec(marker, **scope):
    try:
        exec(_code_cell("08", marker), {"np": np, "plt": plt, "metrics": metrics, "claim": claim,
                                        "claim_greater": claim_greater, "names": NAMES, "key": KEY, "T": T,
                                        **scope})
    finally:
        plt.close("all")


# --- section 7: the diagonal of every compatibility matrix -----------------------------------

CHANCE = {"text_to_image": np.array([0.13, 0.16, 0.18]), "image_to_text": np.array([0.14, 0.17, 0.19])}
DIAG = {"finetune": [1.0, 0.56, 0.37], "lwf": [1.0, 0.96, 0.66], "mclfir": [1.0, 0.83, 0.65], "bct": [1.0, 0.55, 0.37]}


def _run_diagonal(diag):
    report = {"strategies": {st: {k: np.diag(d).tolist() for k in KEY.values()} for st, d in diag.items()}}
    _exec("every diagonal cell of every strategy", report=report, chance_x=CHANCE)


def test_08_diagonal_claims_hold_as_measured(capsys):
    _run_diagonal(DIAG)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("st", NAMES)
def test_08_diagonal_claim_fails_when_one_cell_is_near_chance(st):
    d = list(DIAG[st])
    d[2] = CHANCE["text_to_image"][2] + 0.05        # the last increment barely learnt
    with pytest.raises(ClaimError, match="every diagonal cell"):
        _run_diagonal({**DIAG, st: d})


# --- section 7: keep each old attribute's own index ------------------------------------------

SIDE = {("finetune", "text_to_image"): (0.975, 0.252, 0.975), ("finetune", "image_to_text"): (0.967, 0.417, 0.417),
        ("lwf", "text_to_image"): (0.959, 0.757, 0.959), ("lwf", "image_to_text"): (0.958, 0.776, 0.777),
        ("mclfir", "text_to_image"): (0.834, 0.810, 0.830), ("mclfir", "image_to_text"): (0.882, 0.862, 0.865),
        ("bct", "text_to_image"): (0.980, 0.254, 0.979), ("bct", "image_to_text"): (0.972, 0.427, 0.427)}


def _run_side(side_numbers):
    side = {k: {"at": at, "re": re, "kept": kept, "loss": at - re, "back": kept - re}
            for k, (at, re, kept) in side_numbers.items()}
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    data = {"queries": {a: (None, labels) for a in ("colour", "length")}}
    _exec("keeping each old attribute's own gallery", side=side, data=data,
          g_labels={a: labels for a in ("colour", "length")}, old_x=["colour", "length"])


def test_08_own_gallery_claims_hold_as_measured(capsys):
    _run_side(SIDE)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("change, sentence", [
    ({("finetune", "text_to_image"): (0.975, 0.252, 0.55)}, "gives back at least 90% of the loss"),
    ({("finetune", "image_to_text"): (0.967, 0.417, 0.60)}, "gives back less than a tenth of the loss"),
    ({("finetune", "image_to_text"): (0.967, 0.417, 0.20)}, "gives back less than a tenth of the loss"),
], ids=["text-side-lost", "caption-index-recovers", "caption-index-worse"])
def test_08_own_gallery_claims_fail_when_the_numbers_change(change, sentence):
    with pytest.raises(ClaimError, match=sentence):
        _run_side({**SIDE, **change})


# --- section 7: the first index kept for everything ------------------------------------------

FINAL = {"finetune": (0.366, 0.475), "lwf": (0.661, 0.475), "mclfir": (0.648, 0.474), "bct": (0.374, 0.482)}


def _run_final(final):
    report = {"strategies": {st: {"final": {"text_to_image": {"reindexed": r, "old_index": o}}}
                             for st, (r, o) in final.items()}}
    _exec("keeping the first index for everything", report=report)


def test_08_first_index_claims_hold_as_measured(capsys):
    _run_final(FINAL)
    assert capsys.readouterr().out.count("✓") == 4


@pytest.mark.parametrize("st, numbers, sentence", [
    ("finetune", (0.45, 0.475), "finetune: keeping the first index"),
    ("bct", (0.50, 0.482), "bct: keeping the first index"),
    ("lwf", (0.50, 0.475), "lwf: re-indexing beats"),
    ("mclfir", (0.40, 0.474), "mclfir: re-indexing beats"),
])
def test_08_first_index_claims_fail_when_the_numbers_change(st, numbers, sentence):
    with pytest.raises(ClaimError, match=sentence):
        _run_final({**FINAL, st: numbers})


# --- section 8: partial backfilling -----------------------------------------------------------

AUC = {"finetune": (0.50, 0.488), "lwf": (0.66, 0.669), "mclfir": (0.65, 0.65), "bct": (0.50, 0.486)}


def _run_backfill(auc):
    fr = [0.0, 0.5, 1.0]
    report = {"chance_per_row": [0.13, 0.16, 0.18],
              "strategies": {st: {"backfilling": {"fractions": fr, "random": [r - 0.1, r, r + 0.1],
                                                  "policy": [p - 0.1, p, p + 0.1], "auc_random": r, "auc_policy": p}}
                             for st, (r, p) in auc.items()}}
    _exec("partial backfilling", report=report)


def test_08_backfilling_claim_holds_as_measured(capsys):
    _run_backfill(AUC)
    assert capsys.readouterr().out.count("✓") == 1


@pytest.mark.parametrize("st", NAMES)
def test_08_backfilling_claim_fails_when_the_policy_wins(st):
    r, _ = AUC[st]
    with pytest.raises(ClaimError, match="does not beat a random order"):
        _run_backfill({**AUC, st: (r, r + 0.03)})
