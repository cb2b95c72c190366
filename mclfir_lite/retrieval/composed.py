"""Composed retrieval (seed 004): a reference image + "make it red" -> the target garment.

FashionIQ (Wu et al., CVPR 2021) asks: given a reference image and a modification text,
find the target image. SDFN, the *Self-distilled Dynamic Fusion Network* (Wu et al., ICASSP
2024, arXiv 2405.15451), combines the two with several **fusion operations** and **routers**
that choose, query by query and modality by modality, how much of each operation to use; a
**self path distillation** loss makes the routing decisions consistent over training.

A synthetic FashionIQ
    The renderer draws a garment from its attributes, so a triplet is free: reference labels,
    one attribute changed ("with short sleeves"), and the target rendered as *another photo*
    (new pose, background, light) of the changed garment. Texts use training frames ("make it
    {value}") and, for testing, held-out frames. The gallery holds each test query's target and
    hard distractors: *siblings* (the reference garment with the attribute set to another value:
    the image alone cannot tell them from the target) and *near misses* (the requested value,
    but another attribute changed too: the text alone cannot). Relevant: the one target.
    Recall@K is FashionIQ's metric; chance is ``K / gallery size``.

Pieces
    * A frozen image encoder (``smallcnn``), pretrained once per seed to classify the six
      attributes on separate images (FashionIQ models also start from pretrained backbones);
      its pooled features are computed once, so every fusion trains in seconds.
    * The text tower of :mod:`mclfir_lite.retrieval.texttower` (a bag of word and bigram embeddings).
    * Static fusions (:data:`OPS`): ``sum`` (learned weighted sum), ``tirg`` (TIRG's gated
      residual, Vo et al. 2019), ``concat_mlp`` and ``film`` (the text scales and shifts the
      image feature). Each is a model of its own; each is tuned alike (the same learning-rate
      grid, chosen on a validation split).
    * ``dynamic``: all operations at once, mixed per query by weights from two routers, one
      reading the image and one the text (their logits add), and a self path distillation
      term: an EMA copy of the model is the teacher, and each query's routing weights are pulled
      to the teacher's (KL), i.e. towards its own earlier decisions (our reading of "refine the
      path decision with previous path information", not the paper's exact loss).
      ``dynamic_no_sd`` is the ablation without that term.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .captions import value_phrase
from ..files import atomic_write, fingerprint, shown
from .runs import (add_cache_arguments, check_earlier_results, check_out, check_seeds, choose, code_digests,
                   load_or_none, preset_settings, run_folder)
from ..training.checkpoint import save
from ..core.encoders import build_encoder
from ..data.synth import ATTRIBUTES, render, render_one
from .texttower import TextTower
from ..workers import map_processes

OPS = ("sum", "tirg", "concat_mlp", "film")
METHODS = (*OPS, "dynamic", "dynamic_no_sd")
TRAIN_FRAMES = ("make it {p}", "change it to {p}", "i want it {p}", "same but {p}")
TEST_FRAMES = ("could it be {p} instead", "swap to {p} please")
KS = (1, 10, 50)


@dataclasses.dataclass
class Settings:
    image_size: int = 32
    n_pretrain: int = 2000      # images for the encoder's attribute pretraining
    pretrain_steps: int = 300
    n_train: int = 1500         # training triplets
    n_val: int = 150
    n_test: int = 200
    siblings: int = 12          # gallery distractors per test query: same garment, another value
    near_misses: int = 6        # ... requested value, one more attribute changed
    steps: int = 400
    batch: int = 64
    lrs: tuple = (1e-3, 3e-3)   # the tuning grid, the same for every method
    dim: int = 64
    temperature: float = 0.1
    ema_decay: float = 0.99
    sd_weight: float = 1.0      # self path distillation


PRESETS = {"quick": Settings(), "default": Settings(image_size=48, n_pretrain=4000, pretrain_steps=600,
                                                    n_train=4000, n_val=300, n_test=500, steps=1000)}


# ---------------------------------------------------------------------------- the triplets

def _labels(rng) -> dict[str, int]:
    return {a: int(rng.integers(len(v))) for a, v in ATTRIBUTES.items()}


def _other(rng, attr: str, not_values) -> int:
    return int(rng.choice([v for v in range(len(ATTRIBUTES[attr])) if v not in not_values]))


def make_split(n: int, s: Settings, seed: int, part: int, frames, distractors: bool) -> dict:
    """``n`` triplets: reference image, text, target image (another photo of the changed garment),
    and per triplet hard negatives (:func:`module docstring <mclfir_lite.retrieval.composed>`). Every image
    has its own nuisances. Returns images (uint8 NCHW) and, per triplet, the row of its reference,
    target, and the text."""
    imgs, ref, tgt, texts, negs = [], [], [], [], []
    photo = lambda lab, i, j: imgs.append(render_one(lab, s.image_size, np.random.default_rng([seed, part, i, j])))
    attrs = list(ATTRIBUTES)
    for i in range(n):
        rng = np.random.default_rng([seed, part, i])
        lab = _labels(rng)
        a = attrs[int(rng.integers(len(attrs)))]
        new = _other(rng, a, [lab[a]])
        texts.append(frames[int(rng.integers(len(frames)))].format(p=value_phrase(a, new, rng)))
        ref.append(len(imgs)); photo(lab, i, 0)
        tgt.append(len(imgs)); photo({**lab, a: new}, i, 1)
        n_sib, n_near = (s.siblings, s.near_misses) if distractors else (1, 0)
        for j in range(n_sib):                 # same garment, the attribute at another value
            negs.append(len(imgs)); photo({**lab, a: _other(rng, a, [lab[a], new])}, i, 2 + j)
        for j in range(n_near):                # the asked value, but one more attribute changed
            b = attrs[int(rng.choice([k for k in range(len(attrs)) if attrs[k] != a]))]
            negs.append(len(imgs)); photo({**lab, a: new, b: _other(rng, b, [lab[b]])}, i, 100 + j)
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return {"images": images, "ref": np.array(ref), "target": np.array(tgt), "texts": texts,
            "negatives": np.array(negs), "per_query_negatives": n_sib + n_near}


def pretrain_encoder(s: Settings, seed: int):
    """``smallcnn`` trained to classify the six attributes (one linear head each), then frozen."""
    images, labels = render(s.n_pretrain, s.image_size, seed=1000 * seed + 500)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    torch.manual_seed(seed)
    enc = build_encoder("smallcnn", width=16)
    heads = nn.ModuleDict({a: nn.Linear(enc.out_channels, len(v)) for a, v in ATTRIBUTES.items()})
    opt = torch.optim.Adam([*enc.parameters(), *heads.parameters()], lr=3e-3)
    rng = np.random.default_rng([seed, 501])
    for _ in range(s.pretrain_steps):
        rows = torch.from_numpy(rng.choice(len(x), 64, replace=False))
        f = enc(x[rows]).mean((2, 3))
        loss = sum(F.cross_entropy(heads[a](f), torch.from_numpy(labels[a])[rows]) for a in ATTRIBUTES)
        opt.zero_grad(); loss.backward(); opt.step()
    return enc.eval().requires_grad_(False)


@torch.no_grad()
def features(enc, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([enc(images[i:i + 512]).mean((2, 3)) for i in range(0, len(images), 512)])


# ---------------------------------------------------------------------------- the fusions

def _mlp(i: int, o: int, h: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


class Op(nn.Module):
    """One fusion operation ``(r, t) -> q`` on the reference and text vectors (all ``d``-d)."""

    def __init__(self, kind: str, d: int):
        super().__init__()
        self.kind = kind
        if kind == "sum":
            self.w = nn.Parameter(torch.tensor([1.0, 1.0]))
        elif kind == "tirg":
            self.gate, self.res = _mlp(2 * d, d), _mlp(2 * d, d)
            self.w = nn.Parameter(torch.tensor([1.0, 0.1]))
        elif kind == "concat_mlp":
            self.net = _mlp(2 * d, d)
        elif kind == "film":
            self.scale, self.shift = nn.Linear(d, d), nn.Linear(d, d)
        else:
            raise ValueError(f"unknown fusion {kind!r}; choose from {list(OPS)}")

    def forward(self, r, t):
        if self.kind == "sum":
            return self.w[0] * r + self.w[1] * t
        rt = torch.cat([r, t], -1)
        if self.kind == "tirg":     # keep what the text does not touch, add what it asks for
            return self.w[0] * torch.sigmoid(self.gate(rt)) * r + self.w[1] * self.res(rt)
        if self.kind == "concat_mlp":
            return self.net(rt)
        return r * (1 + self.scale(t)) + self.shift(t)


class Composer(nn.Module):
    """Reference features + text -> query embedding; target features -> gallery embedding.
    ``ops``: one name (a static fusion) or several (dynamic routing over them)."""

    def __init__(self, ops, feat_dim: int, d: int, tokenizer):
        super().__init__()
        self.ref, self.tgt = nn.Linear(feat_dim, d), nn.Linear(feat_dim, d)
        self.text = TextTower(d, tokenizer=tokenizer)
        self.ops = nn.ModuleList(Op(k, d) for k in ops)
        if len(ops) > 1:            # routers per modality: their logits add
            self.route_img, self.route_txt = _mlp(d, len(ops), 32), _mlp(d, len(ops), 32)

    def routing(self, r, t):
        if len(self.ops) == 1:
            return torch.ones(len(r), 1)
        return F.softmax(self.route_img(r) + self.route_txt(t), -1)

    def forward(self, ref_feats, texts):
        r, t = self.ref(ref_feats), self.text(texts) * 4.0   # (the bag is unit length; scale to the features')
        w = self.routing(r, t)
        q = sum(w[:, k:k + 1] * op(r, t) for k, op in enumerate(self.ops))
        return F.normalize(q, dim=-1), w

    def embed_targets(self, feats):
        return F.normalize(self.tgt(feats), dim=-1)


def train(method: str, split, feats, s: Settings, lr: float, seed: int, tokenizer) -> Composer:
    """InfoNCE: each query against the batch's targets and their sibling negatives."""
    torch.manual_seed(seed)
    ops = list(OPS) if method.startswith("dynamic") else [method]
    model = Composer(ops, feats.shape[1], s.dim, tokenizer)
    teacher = copy.deepcopy(model).requires_grad_(False) if method == "dynamic" else None
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 31])
    n = len(split["ref"])
    for _ in range(s.steps):
        rows = rng.choice(n, s.batch, replace=False)
        q, w = model(feats[split["ref"][rows]], [split["texts"][r] for r in rows])
        cands = model.embed_targets(feats[np.concatenate([split["target"][rows], split["negatives"][rows]])])
        loss = F.cross_entropy(q @ cands.T / s.temperature, torch.arange(s.batch))
        if teacher is not None:                 # self path distillation: routing vs the EMA teacher's
            with torch.no_grad():
                _, w_t = teacher(feats[split["ref"][rows]], [split["texts"][r] for r in rows])
            loss = loss + s.sd_weight * F.kl_div(w.clamp_min(1e-8).log(), w_t, reduction="batchmean")
        opt.zero_grad(); loss.backward(); opt.step()
        if teacher is not None:
            with torch.no_grad():
                for pt, ps in zip(teacher.parameters(), model.parameters()):
                    pt.mul_(s.ema_decay).add_(ps, alpha=1 - s.ema_decay)
    return model.eval()


@torch.no_grad()
def evaluate(model: Composer, split, feats) -> dict:
    """Recall@K over the split's gallery (every target and distractor), and the mean routing."""
    gallery = np.concatenate([split["target"], split["negatives"]])
    q, w = model(feats[split["ref"]], split["texts"])
    scores = q @ model.embed_targets(feats[gallery]).T
    target_score = scores[torch.arange(len(q)), torch.arange(len(q))]   # the targets come first
    rank = (scores > target_score[:, None]).sum(1)     # ties counted in the query's favour: none here
    out = {f"recall_at_{k}": float((rank < k).float().mean()) for k in KS}
    out["mean_routing"] = [float(x) for x in w.mean(0)]
    return out


# ---------------------------------------------------------------------------- the run

CODE_MODULES = ("retrieval.composed", "retrieval.captions", "retrieval.texttower", "data.synth", "core.encoders")


def run_seed(seed: int, s: Settings, methods, ckpt: Path, log=print, recompute_stale: bool = False) -> dict:
    """Every method on one seed: tune its learning rate on validation, report test Recall@K.
    A checkpoint after the encoder and after each method; finished methods are not redone."""
    from .captions import Tokenizer
    fp = fingerprint({"settings": dataclasses.asdict(s), "seed": seed,
                      "code": code_digests(CODE_MODULES)})
    path = ckpt / f"seed{seed}.pt"
    state = load_or_none(path, fp, recompute_stale, log) or {"methods": {}}
    t0 = time.perf_counter()
    enc = build_encoder("smallcnn", width=16).eval().requires_grad_(False)
    if "encoder" in state:
        enc.load_state_dict(state["encoder"])
    else:
        enc = pretrain_encoder(s, seed)
        state["encoder"] = enc.state_dict()
        save(path, state, fp)
    splits = {"train": make_split(s.n_train, s, seed, 1, TRAIN_FRAMES, False),
              "val": make_split(s.n_val, s, seed, 2, TRAIN_FRAMES, True),
              "test": make_split(s.n_test, s, seed, 3, TEST_FRAMES, True)}
    feats = {k: features(enc, v["images"]) for k, v in splits.items()}
    tok = Tokenizer()
    tok.extend(splits["train"]["texts"])
    log(f"seed {seed}: encoder and {sum(len(v['images']) for v in splits.values())} images ready "
        f"in {time.perf_counter() - t0:.0f}s")
    for m in methods:
        if m in state["methods"]:
            continue
        t1 = time.perf_counter()
        tried = {}
        for lr in s.lrs:
            model = train(m, splits["train"], feats["train"], s, lr, seed, tok)
            tried[lr] = (evaluate(model, splits["val"], feats["val"])["recall_at_10"], model)
        best = max(tried, key=lambda lr: tried[lr][0])     # first of equals: the grid's order
        res = evaluate(tried[best][1], splits["test"], feats["test"])
        state["methods"][m] = {**res, "lr": best, "val_recall_at_10": {str(k): v[0] for k, v in tried.items()},
                               "seconds": time.perf_counter() - t1}
        save(path, state, fp)
        log(f"seed {seed}: {m:>13}  R@10 {res['recall_at_10']:.3f}  R@50 {res['recall_at_50']:.3f}  "
            f"(lr {best}, {time.perf_counter() - t1:.0f}s)")
    n_gallery = len(splits["test"]["target"]) + len(splits["test"]["negatives"])
    return {"methods": state["methods"], "gallery_size": n_gallery,
            "chance": {f"recall_at_{k}": min(1.0, k / n_gallery) for k in KS}}


def _seed_job(job: tuple) -> tuple[dict, list[str]]:
    """:func:`run_seed` in a worker: its result, and its log lines to print in the seeds' order."""
    seed, s, methods, ckpt, recompute_stale = job
    lines = []
    return run_seed(seed, s, methods, ckpt, log=lines.append, recompute_stale=recompute_stale), lines


def _ci(values) -> dict:
    """Mean and a 95% t-interval half-width over seeds (None with one seed)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return {"mean": float(v.mean()), "ci95": None, "n": len(v)}
    from scipy import stats
    return {"mean": float(v.mean()), "ci95": float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / len(v) ** 0.5),
            "n": len(v)}


def run(args) -> dict:
    """``python -m mclfir_lite composed``: check the options, lock ``--out``, run, write results.json."""
    s, methods, seeds = check_args(args)
    out = Path(args.out)   # checked by check_args
    fresh = [out / "checkpoints" / f"seed{seed}.pt" for seed in seeds] if args.fresh else []
    options = {"seeds": seeds, "quick": bool(args.quick), "methods": list(methods), "settings": dataclasses.asdict(s)}
    check = lambda: check_earlier_results(out, "composed", options, args.fresh or args.recompute_stale)
    with run_folder(out, "composed run", args.quick, fresh, check):
        t0 = time.perf_counter()
        if len(seeds) > 1:
            print(f"{len(seeds)} seeds, up to one worker process per core (one torch thread each); "
                  "each seed's lines come when it is done")
        done = map_processes(_seed_job, [(seed, s, methods, out / "checkpoints", args.recompute_stale)
                                         for seed in seeds])
        per_seed = {}
        for seed, (result, lines) in zip(seeds, done):
            print("\n".join(lines))
            per_seed[seed] = result
        report = {"command": "python -m mclfir_lite " + " ".join(getattr(args, "argv", []) or []),
                  "made_by": "composed", "options": options, "seeds": seeds, "quick": bool(args.quick), "settings": dataclasses.asdict(s),
                  "text_tower": "bag of word and bigram embeddings, trained here",
                  "image_encoder": "smallcnn (width 16) pretrained here to classify the six attributes, frozen",
                  "static_operations": [m for m in methods if m in OPS],
                  "gallery_size": per_seed[seeds[0]]["gallery_size"],
                  "relevance": "one target per query; gallery: each test query's target, siblings and near misses"}
        for k in KS:
            key = f"recall_at_{k}"
            report[key] = {m: _ci([per_seed[x]["methods"][m][key] for x in seeds])["mean"] for m in methods}
            report[f"chance_{key}"] = float(np.mean([per_seed[x]["chance"][key] for x in seeds]))
            report[f"{key}_ci"] = {m: _ci([per_seed[x]["methods"][m][key] for x in seeds]) for m in methods}
        statics = [m for m in methods if m in OPS]
        if "dynamic" in methods and statics:
            best = max(statics, key=lambda m: report["recall_at_10"][m])
            diff = [per_seed[x]["methods"]["dynamic"]["recall_at_10"] - per_seed[x]["methods"][best]["recall_at_10"]
                    for x in seeds]
            report["dynamic_minus_best_static"] = {"best_static": best, "recall_at_10": _ci(diff)}
        report["per_seed"] = {str(x): per_seed[x]["methods"] for x in seeds}
        report["seconds"] = time.perf_counter() - t0
        atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(report, indent=1)))
    print(f"chance R@10 {report['chance_recall_at_10']:.4f} (gallery {report['gallery_size']})")
    for m in methods:
        c = report["recall_at_10_ci"][m]
        print(f"{m:>13}: R@10 {c['mean']:.3f}" + (f" ± {c['ci95']:.3f}" if c["ci95"] is not None else "")
              + f"  R@50 {report['recall_at_50'][m]:.3f}")
    print(f"wrote {shown(out / 'results.json')}")
    return report


def add_arguments(p):
    """The ``composed`` subcommand's options (``cli.build_parser`` adds the subparser)."""
    p.add_argument("--quick", action="store_true", help="small and fast (about a minute on a laptop CPU)")
    p.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="several seeds: means and 95%% intervals")
    p.add_argument("--out", default="runs/composed", help="output folder (default: runs/composed)")
    p.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                   help=f"any of {', '.join(METHODS)} (default: all)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per fusion model")
    p.add_argument("--n-train", type=int, default=None, help="training triplets")
    p.add_argument("--n-test", type=int, default=None, help="test queries")
    p.add_argument("--image-size", type=int, default=None)
    add_cache_arguments(p)
    return p


def check_args(args) -> tuple[Settings, list[str], list[int]]:
    """Refuse bad options before any work, with a ValueError naming the option."""
    from ..settings import quick_mode
    args.quick = bool(args.quick or quick_mode())
    if args.seeds and args.seed is not None:
        raise ValueError("give --seed or --seeds, not both (--seed would be ignored)")
    seeds = list(args.seeds) if args.seeds else [0 if args.seed is None else args.seed]
    check_seeds(seeds, "--seeds" if args.seeds else "--seed")
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"--seeds must be distinct, got {seeds}")
    check_out(args.out)
    methods = choose(args.methods, METHODS, "--methods", "method")
    s = preset_settings(PRESETS, args, {f: f for f in ("steps", "n_train", "n_test", "image_size")})
    per_query = 1 + s.siblings + s.near_misses          # a test query's target and its distractors
    if s.n_test * per_query <= max(KS):
        raise ValueError(f"--n-test {s.n_test} makes a gallery of {s.n_test * per_query} images, not more than the "
                         f"{max(KS)} of Recall@{max(KS)}: any ranking would score 1; give --n-test "
                         f"{max(KS) // per_query + 1} or more")
    return s, methods, seeds
