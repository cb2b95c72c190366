"""Continual cross-modal retrieval (seed 002): text -> image and image -> text, without re-indexing.

"Continual learning in cross-modal retrieval" (Wang, Herranz, van de Weijer, CVPRW 2021)
separates three things a deployed search engine does: **training** the towers, **indexing**
the gallery (embedding every item once, with the model of that time) and **querying** (the
query embedded with the model of *now*). When the model is updated, re-indexing a large
gallery is expensive, so the question is how well a new query model still ranks an old
index. This module runs that protocol on SynthFashion with a mini-CLIP
(:mod:`mclfir_lite.retrieval.texttower`):

* **Increments** bring new attributes *in the captions* (new vocabulary) and new images:
  increment ``k`` trains on fresh images whose captions mention only its attributes.
* After each increment the model is frozen as a checkpoint, and two indexes are built with
  it: the gallery images (image side) and the test captions (text side).
* **Compatibility matrix** ``C[i][j]``: text -> image mAP of the text tower after increment
  ``i`` (the query model) against the gallery indexed after increment ``j``, on every
  attribute seen up to ``i`` (what a user at time ``i`` may ask for). The diagonal is the
  usual "re-index every time"; ``C[T-1][0]`` is "never re-index".
* **Backward compatibility** (BCT, Shen et al., CVPR 2020) asks that a new query model on an
  old gallery be at least as good as the old model on it: ``C_old[i][j] >= C_old[j][j]`` for
  ``i > j``, both on the attributes known at ``j``
  (:func:`mclfir_lite.retrieval.compatibility.bct_criterion`). Strategy ``bct`` adds a BCT-style
  *influence loss*: the new text tower is also trained against the frozen old image tower,
  so that its queries keep working on the old gallery index. (With the bag-of-embeddings
  text tower the vectors of old words do not move, so text-side drift is small by
  construction and the image tower carries the drift: the criterion is therefore also
  checked image -> text, new image tower against the old caption index.)
* **Partial backfilling** (FastFill, Jaeckle et al., ICLR 2023): re-index a fraction of the
  gallery with the new model and keep the old embeddings for the rest; mAP against that
  fraction, in random order and in a policy order (:func:`mclfir_lite.retrieval.compatibility.backfill_curve`).

Strategies are small units with one extra loss each (:func:`extra_loss`): ``finetune``
(none), ``lwf`` (the old image tower's similarity structure on the new images, relational
distillation), ``mclfir`` (an EMA teacher's image embeddings, MCL-FIR's distillation) and
``bct`` (the influence loss). The command is ``python -m mclfir_lite crossmodal``
(:func:`add_arguments`, :func:`run`).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import captions as cap
from ..files import atomic_write, fingerprint, shown
from .runs import (add_cache_arguments, check_earlier_results, check_out, check_seeds, choose, code_digests,
                   load_or_none, preset_settings, run_folder)
from ..training.checkpoint import save
from . import compatibility as compat
from ..core.losses import embedding_distillation
from ..core.metrics import chance_map
from ..data.synth import render
from .texttower import MiniClip, build_text_tower, clip_loss

STRATEGIES = ("finetune", "lwf", "mclfir", "bct")
PLANS = {"quick": [["colour"], ["length"], ["sleeve_length"]],
         "default": [["colour", "pattern"], ["length", "silhouette"], ["sleeve_length", "neckline"]]}
HEADLINE = "mclfir"          # whose matrix is results.json's top-level ``compatibility``


@dataclasses.dataclass
class Settings:
    """Sizes and hyper-parameters of a run (``quick`` and ``default`` presets in :data:`PRESETS`)."""
    image_size: int = 32
    n_train: int = 800           # new training images per increment
    n_gallery: int = 300         # the gallery (test images), indexed after every increment
    steps: int = 150             # optimiser steps per increment
    batch: int = 64
    lr: float = 3e-3
    dim: int = 64
    width: int = 16
    temperature: float = 0.1
    ema_decay: float = 0.99      # mclfir's teacher
    distill_weight: float = 10.0  # mclfir: image embeddings vs the EMA teacher's
    lwf_weight: float = 1.0      # lwf: relational distillation
    bct_weight: float = 1.0      # bct: the influence loss


PRESETS = {"quick": Settings(), "default": Settings(image_size=48, n_train=2000, n_gallery=600, steps=400)}


# ---------------------------------------------------------------------------- data

def make_data(plan, s: Settings, seed: int) -> dict:
    """New training images per increment, one gallery, and each increment's training captions
    (three per image, drawn again per step). Image streams are seeded apart."""
    data = {"train": [], "captions": []}
    for k, attrs in enumerate(plan):
        images, labels = render(s.n_train, s.image_size, seed=1000 * seed + k + 1)
        rng = np.random.default_rng([seed, k, 11])
        pool = [[cap.caption(labels, r, attrs, rng) for _ in range(3)] for r in range(s.n_train)]
        data["train"].append((torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels))
        data["captions"].append(pool)
    images, labels = render(s.n_gallery, s.image_size, seed=1000 * seed + 999)
    data["gallery"] = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels)
    data["queries"] = {a: cap.value_captions(a, seed) for g in plan for a in g}
    return data


# ---------------------------------------------------------------------------- strategies

def extra_loss(strategy: str, s: Settings, model, teacher, images, texts, match, img, txt):
    """The strategy's term added to the CLIP loss at each step (0 for ``finetune``)."""
    if teacher is None or strategy == "finetune":
        return img.sum() * 0.0
    with torch.no_grad():
        old_img = teacher.image(images)
    if strategy == "mclfir":     # stay where the (EMA) teacher put each image: absolute positions
        return s.distill_weight * embedding_distillation(img, old_img)
    if strategy == "lwf":        # keep the old model's output *structure* on the new images
        t = s.temperature
        return s.lwf_weight * F.kl_div(F.log_softmax(img @ img.T / t, 1), F.softmax(old_img @ old_img.T / t, 1),
                                       reduction="batchmean")
    if strategy == "bct":        # influence loss: new queries must also rank the OLD gallery embeddings
        return s.bct_weight * clip_loss(old_img, txt, match, s.temperature)
    raise ValueError(f"unknown strategy {strategy!r}; choose from {list(STRATEGIES)}")


def train_increment(model, teacher, strategy, k, data, plan, s: Settings, seed: int) -> float:
    """One increment of training; returns wall seconds. Deterministic given (seed, k)."""
    images, labels = data["train"][k]
    pool = data["captions"][k]
    model.text.extend(t for row in pool for t, _ in row)
    rng = np.random.default_rng([seed, k, 23])
    torch.manual_seed(1000 * seed + k)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=s.lr)
    t0 = time.perf_counter()
    model.train()
    for _ in range(s.steps):
        rows = rng.choice(len(images), size=s.batch, replace=False)
        picked = [pool[r][int(rng.integers(3))] for r in rows]
        texts, said = [t for t, _ in picked], [m for _, m in picked]
        match = torch.from_numpy(cap.matches(labels, rows, said))
        batch = images[torch.from_numpy(rows)]
        img, txt = model(batch, texts)
        loss = clip_loss(img, txt, match, s.temperature)
        loss = loss + extra_loss(strategy, s, model, teacher, batch, texts, match, img, txt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if strategy == "mclfir" and teacher is not None:     # the EMA teacher follows slowly
            with torch.no_grad():
                for pt, ps in zip(teacher.parameters(), model.parameters()):
                    pt.mul_(s.ema_decay).add_(ps.detach(), alpha=1 - s.ema_decay)
    model.eval()
    return time.perf_counter() - t0


def build_indexes(model, data) -> dict:
    """The two indexes built with the model of this increment: gallery images, test captions."""
    model.eval()
    return {"gallery": model.embed_images(data["gallery"][0]),
            "texts": {a: model.embed_texts(q[0]) for a, q in data["queries"].items()}}


# ---------------------------------------------------------------------------- the run

CODE_MODULES = ("retrieval.captions", "retrieval.texttower", "retrieval.crossmodal", "retrieval.compatibility",
                "data.synth", "core.encoders", "core.losses", "core.metrics")


def code_digest() -> str:
    """Digest of the code that decides this command's numbers (docstrings and comments excluded)."""
    return fingerprint(code_digests(CODE_MODULES))["hash"][:12]


def run_strategy(strategy: str, data, plan, s: Settings, seed: int, text_tower: str, ckpt: Path,
                 fields: dict, log=print, recompute_stale: bool = False) -> tuple[list, MiniClip, dict]:
    """Train ``strategy`` increment by increment, building both indexes after each, with a
    checkpoint after each increment (resumed when present and made with the same fingerprint).
    Returns ``(indexes, final model, {"train_seconds", "text_tower"})``."""
    path = ckpt / f"{strategy}.pt"
    fp = fingerprint({**fields, "strategy": strategy})
    torch.manual_seed(seed)                               # the same initial model for every strategy
    tower, tower_info = build_text_tower(text_tower, s.dim)
    model = MiniClip(tower, s.dim, s.width)
    teacher, state = None, {"done": 0, "indexes": [], "seconds": []}
    resumed = load_or_none(path, fp, recompute_stale, log)
    if resumed is not None:
        state = resumed
        model.load_state_dict(state["model"])
        if hasattr(model.text, "tokenizer"):
            model.text.tokenizer = cap.Tokenizer(state["words"][1:])
        log(f"{strategy:>9}: resumed after increment {state['done']} of {len(plan)}")
    for k in range(state["done"], len(plan)):
        if k > 0 and strategy != "finetune":
            teacher = copy.deepcopy(model).eval().requires_grad_(False)   # the model of the last increment
        sec = train_increment(model, teacher, strategy, k, data, plan, s, seed)
        idx = build_indexes(model, data)
        state = {"done": k + 1, "indexes": state["indexes"] + [idx], "seconds": state["seconds"] + [sec],
                 "model": model.state_dict(), "words": getattr(getattr(model.text, "tokenizer", None), "words", [])}
        save(path, state, fp)
        diag = compat.text_to_image(idx["texts"], idx["gallery"], data, compat.seen(plan, k))
        log(f"{strategy:>9}: increment {k + 1}/{len(plan)} {plan[k]} trained in {sec:.0f}s; text->image mAP "
            + ", ".join(f"{a} {v:.3f}" for a, v in diag.items()))
    return state["indexes"], model, {"train_seconds": float(sum(state["seconds"])), "text_tower": tower_info}


def run(args) -> dict:
    """``python -m mclfir_lite crossmodal``: check the options, lock ``--out``, run every
    strategy (resuming), and write ``results.json``."""
    s, strategies = check_args(args)
    out = Path(args.out)   # checked by check_args
    fresh = [out / "checkpoints" / f"{st}.pt" for st in strategies] if args.fresh else []
    check = lambda: check_earlier_results(out, "crossmodal", _options(args, s, strategies),
                                          args.fresh or args.recompute_stale)
    with run_folder(out, "crossmodal run", args.quick, fresh, check):
        return _run(args, s, strategies, out)


def _options(args, s: Settings, strategies) -> dict:
    """What decides a crossmodal results.json: a second run with other options does not replace it unawares."""
    return {"seed": args.seed, "quick": bool(args.quick), "strategies": list(strategies),
            "text_tower": args.text_tower, "settings": dataclasses.asdict(s)}


def _run(args, s: Settings, strategies, out: Path) -> dict:
    t0 = time.perf_counter()
    plan = PLANS["quick" if args.quick else "default"]
    ckpt = out / "checkpoints"
    data = make_data(plan, s, args.seed)
    for a, (_, values) in data["queries"].items():      # a value no gallery image has: its AP is 0 whatever the model
        missing = sorted(set(np.asarray(values).tolist()) - set(data["gallery"][1][a].tolist()))
        if missing:
            raise ValueError(f"--n-gallery {s.n_gallery} is too small: no gallery image has {len(missing)} of the "
                             f"values of {a!r} that the queries ask for; give a larger --n-gallery")
    fields = {"settings": dataclasses.asdict(s), "seed": args.seed, "plan": plan, "text_tower": args.text_tower,
              "code": code_digest()}
    g_labels = data["gallery"][1]
    chance = {a: chance_map(data["queries"][a][1], g_labels[a]) for a in compat.seen(plan, len(plan) - 1)}
    per_row = [float(np.mean([chance[a] for a in compat.seen(plan, i)])) for i in range(len(plan))]
    report = {"command": "python -m mclfir_lite " + " ".join(getattr(args, "argv", []) or []),
              "made_by": "crossmodal", "options": _options(args, s, strategies),
              "seed": args.seed, "quick": bool(args.quick), "plan": plan, "settings": dataclasses.asdict(s),
              "code": fields["code"], "image_tower": "smallcnn (width %d) + linear, trained here" % s.width,
              "chance": max(per_row), "chance_per_row": per_row, "chance_per_attribute": chance,
              "chance_note": "text->image mAP of a random ranking; row i of a matrix averages the attributes seen "
                             "up to increment i, and `chance` is the largest row's (the strictest bar)",
              "map_convention": "mean over attributes of each attribute's mAP (queries: held-out-template "
                                "captions naming one value; relevant: gallery images with that value)",
              "compatibility_strategy": HEADLINE if HEADLINE in strategies else strategies[0], "strategies": {}}
    for st in strategies:
        indexes, model, info = run_strategy(st, data, plan, s, args.seed, args.text_tower, ckpt, fields,
                                            recompute_stale=args.recompute_stale)
        report.setdefault("text_tower", info["text_tower"])
        C = compat.compatibility(indexes, data, plan, "text_to_image")
        C_i2t = compat.compatibility(indexes, data, plan, "image_to_text")
        T = len(plan)
        report["strategies"][st] = {
            "compatibility": C, "compatibility_image_to_text": C_i2t,
            "final": {"text_to_image": {"reindexed": C[T - 1][T - 1], "old_index": C[T - 1][0]},
                      "image_to_text": {"reindexed": C_i2t[T - 1][T - 1], "old_index": C_i2t[T - 1][0]}},
            "per_attribute_final": compat.text_to_image(indexes[-1]["texts"], indexes[-1]["gallery"], data,
                                                        compat.seen(plan, T - 1)),
            "recall": compat.recalls(indexes[-1], data, compat.seen(plan, T - 1)),
            "bct_criterion": compat.bct_criterion(indexes, data, plan),
            "bct_criterion_image_to_text": compat.bct_criterion(indexes, data, plan, "image_to_text"),
            "backfilling": compat.backfill_curve(indexes, data, plan, args.seed),
            "held_out_words": compat.held_out_words(model, data, plan, args.seed),
            "train_seconds": info["train_seconds"]}
    report["compatibility"] = report["strategies"][report["compatibility_strategy"]]["compatibility"]
    report["seconds"] = time.perf_counter() - t0
    path = out / "results.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(report, indent=1)))
    print(summary(report))
    print(f"wrote {shown(path)}")
    return report


def summary(report: dict) -> str:
    """A few lines: per strategy, the diagonal, re-indexed vs old index, and chance."""
    lines = [f"chance (text->image mAP, strictest row) {report['chance']:.3f}; text tower: "
             f"{report['text_tower']['used']}"]
    for st, r in report["strategies"].items():
        diag = [r["compatibility"][i][i] for i in range(len(r["compatibility"]))]
        f = r["final"]["text_to_image"]
        lines.append(f"{st:>9}: diagonal {' '.join(f'{d:.3f}' for d in diag)}  final re-indexed {f['reindexed']:.3f}"
                     f"  old index {f['old_index']:.3f}  BCT criterion (worst margin) t->i "
                     f"{min(p['margin'] for p in r['bct_criterion']['pairs']):+.3f} i->t "
                     f"{min(p['margin'] for p in r['bct_criterion_image_to_text']['pairs']):+.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the command line

def add_arguments(p):
    """The ``crossmodal`` subcommand's options (``cli.build_parser`` adds the subparser)."""
    p.add_argument("--quick", action="store_true", help="small and fast (about a minute on a laptop CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/crossmodal", help="output folder (default: runs/crossmodal)")
    p.add_argument("--strategies", nargs="+", default=None, metavar="NAME",
                   help=f"any of {', '.join(STRATEGIES)} (default: all)")
    p.add_argument("--text-tower", default="bow", help="bow (trained here, default) or clip (open_clip's, "
                   "when its weights are on disk; otherwise bow, and results.json says so)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per increment")
    p.add_argument("--n-train", type=int, default=None, help="new training images per increment")
    p.add_argument("--n-gallery", type=int, default=None, help="gallery images")
    p.add_argument("--image-size", type=int, default=None)
    add_cache_arguments(p)
    return p


def check_args(args) -> tuple[Settings, list[str]]:
    """Refuse bad options before any work, with a ValueError naming the option."""
    from ..settings import quick_mode
    args.quick = bool(args.quick or quick_mode())
    check_seeds([args.seed])
    check_out(args.out)
    strategies = choose(args.strategies, STRATEGIES, "--strategies", "strategy")
    if args.text_tower not in ("bow", "clip"):
        raise ValueError(f"unknown --text-tower {args.text_tower!r}; choose bow or clip")
    s = preset_settings(PRESETS, args, {f: f for f in ("steps", "n_train", "n_gallery", "image_size")})
    return s, strategies
