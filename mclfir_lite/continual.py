"""The continual runner: attributes arrive in increments; train, evaluate, checkpoint.

One loop serves every strategy; a strategy only switches pieces of it on:

============  =====================================================================
``joint``     static upper bound: at every increment, a fresh model is trained on
              *all* attributes seen so far (the cost a static method pays).
``finetune``  shared encoder + one head per attribute, trained on the new
              attributes only; nothing protects the old ones.
``frozen``    the encoder is trained in the first increment, then frozen: later
              increments train new heads only (no forgetting, little plasticity).
``isolated``  one encoder copy per attribute, as the released MCL-FIR code does.
``lwf``       Learning without Forgetting: a frozen copy of the model from the end
              of the previous increment is the teacher.
``ewc``       Elastic Weight Consolidation: a quadratic penalty, weighted by the
              (diagonal) Fisher information, on moving the shared encoder.
``replay``    a small buffer of training rows per old attribute is rehearsed.
``mclfir``    multi-head + InfoNCE doublets + an EMA teacher: it starts as the model
              of the previous increment and follows the student at every step
              (decay ``ema_decay``); the student's old heads and encoder features
              are distilled towards it.
============  =====================================================================

After each increment every attribute seen so far is evaluated (mAP on its query and
candidate sets), and the state is checkpointed atomically, so a run can resume from
the last finished increment and give the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import metrics
from .data import AttributeSplit, PairSampler, check_attributes
from .ema import EMATeacher
from .encoders import build_encoder
from .losses import doublet_infonce, embedding_distillation, feature_distillation, triplet_loss
from .model import RetrievalModel, count_parameters

STRATEGIES = ("joint", "finetune", "frozen", "isolated", "lwf", "ewc", "replay", "mclfir")
LOSSES = ("infonce", "ntxent", "triplet")


@dataclass
class Config:
    """Everything that decides the numbers of a run (and so the checkpoint fingerprint)."""

    encoder: str = "smallcnn"
    encoder_width: int = 32
    encoder_trainable: bool = True
    embed_dim: int = 64
    head: str = "se"                # se (AttributeHead) | asen (AttentionHead, the paper recipe)
    steps_per_attribute: int = 300
    batch_size: int = 64
    lr: float = 5e-4               # 2e-3 collapses the pattern embedding from scratch
    weight_decay: float = 1e-4
    loss: str = "infonce"          # infonce (masked) | ntxent (released code, unmasked) | triplet
    temperature: float = 0.1
    margin: float = 0.2
    ema_decay: float = 0.999
    distill_weight: float = 1.0     # old heads' embeddings, student vs teacher (mclfir, lwf)
    feature_distill_weight: float = 1.0  # encoder features, student vs teacher (mclfir, lwf)
    ewc_lambda: float = 100.0
    ewc_batches: int = 10
    replay_per_attribute: int = 64
    flip: bool = True               # random horizontal flips while training
    seed: int = 0
    device: str = "cpu"             # "cuda" on a GPU; not part of the fingerprint (resume anywhere)

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose from {LOSSES}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but torch sees no CUDA GPU here; use device='cpu'")
        for name in ("steps_per_attribute", "batch_size", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be >= 1, got {getattr(self, name)}")


def check_strategies(names) -> list[str]:
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy(ies) {unknown}; choose from {list(STRATEGIES)}")
    if not names:
        raise ValueError("no strategy given")
    return list(names)


# ---------------------------------------------------------------------------- evaluation

@torch.no_grad()
def embed(model: RetrievalModel, images: torch.Tensor, rows: np.ndarray, attribute: str,
          batch_size: int = 512, features: dict | None = None) -> torch.Tensor:
    """Embeddings of ``images[rows]`` through ``attribute``'s head (eval mode, no grad).

    ``features`` may hold encoder outputs already computed for a shared encoder
    (``{"rows": rows, "feats": tensor}``), so that evaluating several attributes encodes
    each image once.
    """
    was_training = model.training
    model.eval()
    try:
        if features is not None and not model.isolated and np.array_equal(features["rows"], rows):
            return model.heads(features["feats"], attribute)
        enc, dev = model.encoder_for(attribute), _device(model)
        out = [model.heads(enc(images[torch.as_tensor(rows[s:s + batch_size])].to(dev)), attribute)
               for s in range(0, len(rows), batch_size)]
        return torch.cat(out) if out else torch.empty(0, model.heads.embed_dim)
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate(model: RetrievalModel, images: torch.Tensor, labels: dict[str, np.ndarray],
             protocol: dict[str, AttributeSplit], attributes: list[str],
             features: torch.Tensor | None = None) -> dict[str, float]:
    """mAP per attribute on its query and candidate rows. ``features``: the frozen
    encoder's outputs for every row (see :mod:`mclfir_lite.features`), used instead of
    running the encoder."""
    result = {}
    cache = None
    if not model.isolated or features is not None:
        rows = np.unique(np.concatenate([np.concatenate([protocol[a].query, protocol[a].candidate])
                                         for a in attributes]))
        was_training = model.training
        model.eval()
        dev = _device(model)
        feats = features[torch.as_tensor(rows)].to(dev) if features is not None else \
            torch.cat([model.encoder(images[torch.as_tensor(rows[s:s + 512])].to(dev)) for s in range(0, len(rows), 512)])
        model.train(was_training)
        cache = {"rows": rows, "feats": feats}
    for attr in attributes:
        split = protocol[attr]
        if cache is not None:
            pos = {r: i for i, r in enumerate(cache["rows"])}
            q = model.heads(cache["feats"][[pos[r] for r in split.query]], attr)
            c = model.heads(cache["feats"][[pos[r] for r in split.candidate]], attr)
        else:
            q = embed(model, images, split.query, attr)
            c = embed(model, images, split.candidate, attr)
        result[attr] = metrics.mean_average_precision(q, c, labels[attr][split.query],
                                                      labels[attr][split.candidate])
    return result


# ---------------------------------------------------------------------------- the runner

class ContinualRunner:
    """Runs one strategy over an increment plan (see the module docstring).

    ``images``: uint8 tensor ``(N, 3, S, S)``; ``labels``: ``{attribute: int array (N,)}``;
    ``protocol``: :func:`mclfir_lite.data.make_protocol`'s output.
    """

    def __init__(self, strategy: str, images: torch.Tensor, labels: dict[str, np.ndarray],
                 protocol: dict[str, AttributeSplit], increments: list[list[str]],
                 config: Config | None = None, checkpoint_dir: str | Path | None = None,
                 progress: bool = True, data_fingerprint: str = "", features: torch.Tensor | None = None):
        check_strategies([strategy])
        self.config = config or Config()
        self.config.validate()
        # Cached features of a frozen encoder (mclfir_lite.features.encode_dataset), one row per
        # image: where the loop would run the encoder on images it indexes these instead, so
        # only the heads train (and random flips do not apply). None: run the encoder.
        if features is not None and (self.config.encoder_trainable or len(features) != len(images)):
            raise ValueError("cached features need Config.encoder_trainable=False and one row per image "
                             f"(got {len(features)} rows for {len(images)} images)")
        self.features = features
        for i, group in enumerate(increments):
            if not group:
                raise ValueError(f"increment {i} is empty: every increment needs an attribute")
            check_attributes(group, list(protocol))
        self.strategy, self.images, self.labels = strategy, images, labels
        self.protocol, self.increments = protocol, [list(g) for g in increments]
        self.attributes = [a for g in self.increments for a in g]
        self.progress = progress
        self.checkpoint = Path(checkpoint_dir) / f"{strategy}.pt" if checkpoint_dir else None
        self.fingerprint = _fingerprint(self.config, strategy, self.increments, data_fingerprint)
        self.strategy_id = STRATEGIES.index(strategy)
        self._reset_state()

    # -- state ---------------------------------------------------------------
    def _reset_state(self):
        self.model = self._new_model(0)
        self.teacher: EMATeacher | None = None
        self.ewc: dict | None = None         # {"fisher": {name: t}, "anchor": {name: t}}
        self.buffer: dict[str, np.ndarray] = {}
        self.history: list[dict[str, float]] = []
        self.snapshots: list[dict] = []      # model state after each increment (for browsing)
        self.costs = {"train_samples": 0, "teacher_samples": 0, "optimizer_steps": 0, "train_seconds": 0.0}
        self.done = 0  # finished increments

    def _new_model(self, increment: int) -> RetrievalModel:
        c = self.config
        factory = lambda: build_encoder(c.encoder, trainable=c.encoder_trainable, width=c.encoder_width)
        seed = c.seed * 1000 + (increment if self.strategy == "joint" else 0)
        return RetrievalModel(factory, c.embed_dim, isolated=self.strategy == "isolated", seed=seed,
                              head=c.head).to(c.device)

    # -- checkpoints ---------------------------------------------------------
    def save(self) -> None:
        if self.checkpoint is None:
            return
        state = {"fingerprint": self.fingerprint, "done": self.done, "attributes": self.model.attributes,
                 "model": self.model.state_dict(),
                 "teacher": None if self.teacher is None else
                 {"attributes": self.teacher.model.attributes, "state": self.teacher.state_dict()},
                 "ewc": self.ewc, "buffer": self.buffer, "history": self.history, "costs": self.costs,
                 "snapshots": self.snapshots}
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)  # atomic: a crash never leaves half a checkpoint

    def load(self) -> bool:
        """Resume from the checkpoint if there is one; error if it was made with another setup."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return False
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        except Exception as err:
            raise RuntimeError(f"cannot read checkpoint {self.checkpoint}: {err}; delete it to start over") from err
        if state.get("fingerprint", {}).get("hash") != self.fingerprint["hash"]:
            old, new = state.get("fingerprint", {}).get("fields", {}), self.fingerprint["fields"]
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(f"checkpoint {self.checkpoint} was made with a different configuration "
                             f"(differs in: {', '.join(diff) or 'unknown'}); use another output "
                             "directory or delete the checkpoint")
        self.done = state["done"]
        self.model = self._new_model(self.done - 1)
        for a in state["attributes"]:
            self.model.add_attribute(a)
        self.model.load_state_dict(state["model"])
        if self.strategy == "frozen" and self.done >= 1:
            self.model.encoder.requires_grad_(False)
        if state["teacher"] is not None:
            self.teacher = EMATeacher(self.model, self.config.ema_decay)
            self.teacher.model.load_state_dict(state["teacher"]["state"])
        self.ewc, self.buffer = state["ewc"], state["buffer"]
        if self.ewc is not None:
            self.ewc = {k: {n: t.to(self.config.device) for n, t in d.items()} for k, d in self.ewc.items()}
        self.history, self.costs = state["history"], state["costs"]
        self.snapshots = state.get("snapshots", [])
        return True

    # -- one training step -----------------------------------------------------
    def _images(self, rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        if self.features is not None:  # cached encoder outputs stand in for the images
            return self.features[torch.as_tensor(rows)].to(self.config.device)
        x = self.images[torch.as_tensor(rows)]
        if self.config.flip:
            flip = torch.as_tensor(rng.random(len(rows)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.to(self.config.device)

    def _metric_loss(self, attr: str, sampler: PairSampler, batch: int, rng):
        """Loss of one batch of ``attr``; returns (loss, student features, images forwarded)."""
        c, lab = self.config, self.labels[attr]
        enc = self.model.encoder_for(attr) if self.features is None else (lambda f: f)  # cached: x is features
        if c.loss == "triplet":
            a, p, n = sampler.triplets(batch, rng)
            x = self._images(np.concatenate([a, p, n]), rng)
            feats = enc(x)
            za, zp, zn = self.model.heads(feats, attr).split(batch)
            return triplet_loss(za, zp, zn, c.margin), x, feats
        a, p = sampler.doublets(batch, rng)
        x = self._images(np.concatenate([a, p]), rng)
        feats = enc(x)
        za, zp = self.model.heads(feats, attr).split(batch)
        y = torch.as_tensor(lab[a]) if c.loss == "infonce" else None
        return doublet_infonce(za, zp, y, c.temperature), x, feats

    def _distill(self, x, feats, old_attrs):
        """Old heads' embeddings and encoder features of the student, pulled to the teacher's."""
        c, t = self.config, self.teacher.model
        with torch.no_grad():
            t_feats = t.encoder(x) if self.features is None else x  # a frozen encoder: the same features
        loss = c.feature_distill_weight * feature_distillation(feats, t_feats) if c.feature_distill_weight else 0.0
        for o in old_attrs:
            loss = loss + c.distill_weight / len(old_attrs) * embedding_distillation(
                self.model.heads(feats, o), t.heads(t_feats, o).detach())
        return loss

    def _ewc_penalty(self):
        total = 0.0
        for name, p in self.model.encoder.named_parameters():
            total = total + (self.ewc["fisher"][name] * (p - self.ewc["anchor"][name]).pow(2)).sum()
        return self.config.ewc_lambda * total

    # -- one increment -------------------------------------------------------
    def train_increment(self, i: int) -> None:
        c, s = self.config, self.strategy
        new = self.increments[i]
        seen = [a for g in self.increments[: i + 1] for a in g]
        old = [a for a in seen if a not in new]
        torch.manual_seed(c.seed * 7919 + self.strategy_id * 101 + i)
        rng = np.random.default_rng([c.seed, self.strategy_id, i])
        if s == "joint":
            self.model = self._new_model(i)
            for a in seen:
                self.model.add_attribute(a)
            train_attrs = seen
        else:
            for a in new:
                self.model.add_attribute(a)
            train_attrs = new
        if s == "frozen" and i >= 1:
            self.model.encoder.requires_grad_(False)
        if s in ("lwf", "mclfir") and old:
            # The teacher starts as the model that finished the last increment. LwF keeps it
            # frozen (an EMA with decay 1); MCL-FIR moves it towards the student at every step.
            self.teacher = EMATeacher(self.model, decay=1.0 if s == "lwf" else c.ema_decay)
        distill = s in ("lwf", "mclfir") and bool(old)
        samplers = {a: PairSampler(self.labels[a], self.protocol[a].train) for a in train_attrs}
        replay = {a: PairSampler(self.labels[a], rows) for a, rows in self.buffer.items()} if s == "replay" else {}
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        steps = c.steps_per_attribute * len(train_attrs)
        self.model.train()
        if not c.encoder_trainable:  # a frozen pretrained encoder keeps its BatchNorm statistics
            for enc in ([self.model.encoder] if self.model.encoder is not None else self.model.encoders.values()):
                enc.eval()
        start = time.perf_counter()
        from tqdm.auto import tqdm
        bar = tqdm(range(steps), desc=f"{s} increment {i + 1}/{len(self.increments)}",
                   disable=not self.progress, leave=False)
        for step in bar:
            attr = train_attrs[step % len(train_attrs)]
            loss, x, feats = self._metric_loss(attr, samplers[attr], c.batch_size, rng)
            self.costs["train_samples"] += len(x)
            if replay:
                r_attr = list(replay)[step % len(replay)]
                r_loss, rx, _ = self._metric_loss(r_attr, replay[r_attr], max(2, c.batch_size // 2), rng)
                loss = loss + r_loss
                self.costs["train_samples"] += len(rx)
            if distill:
                loss = loss + self._distill(x, feats, old)
                self.costs["teacher_samples"] += len(x)
            if s == "ewc" and self.ewc is not None:
                loss = loss + self._ewc_penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.costs["optimizer_steps"] += 1
            if s == "mclfir" and distill:
                self.teacher.update(self.model)
            if step % 25 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        if s == "ewc":
            self._update_fisher(train_attrs, samplers, rng)
        if s == "replay":
            for a in new:
                rows = self.protocol[a].train
                pick = rng.choice(len(rows), min(c.replay_per_attribute, len(rows)), replace=False)
                self.buffer[a] = np.sort(rows[pick])
        self.costs["train_seconds"] += time.perf_counter() - start

    def _update_fisher(self, attrs, samplers, rng):
        """Diagonal Fisher of the metric loss w.r.t. the shared encoder, normalised to mean 1,
        added to the Fisher of earlier increments (online EWC)."""
        enc = self.model.encoder
        fisher = {n: torch.zeros_like(p) for n, p in enc.named_parameters()}
        for k in range(self.config.ewc_batches):
            attr = attrs[k % len(attrs)]
            loss, _, _ = self._metric_loss(attr, samplers[attr], self.config.batch_size, rng)
            self.model.zero_grad(set_to_none=True)
            loss.backward()
            for n, p in enc.named_parameters():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2 / self.config.ewc_batches
        self.model.zero_grad(set_to_none=True)
        mean = torch.cat([f.flatten() for f in fisher.values()]).mean().clamp_min(1e-12)
        fisher = {n: f / mean for n, f in fisher.items()}
        if self.ewc is not None:
            fisher = {n: f + self.ewc["fisher"][n] for n, f in fisher.items()}
        self.ewc = {"fisher": fisher, "anchor": {n: p.detach().clone() for n, p in enc.named_parameters()}}

    # -- the whole plan --------------------------------------------------------
    def run(self, resume: bool = True, stop_after: int | None = None) -> dict:
        """Train every increment not yet done, evaluating and checkpointing after each.

        ``stop_after`` stops after that many finished increments (to show resuming).
        Returns :meth:`result`.
        """
        if resume:
            self.load()
        elif self.checkpoint is not None and self.checkpoint.exists():
            raise FileExistsError(f"checkpoint {self.checkpoint} exists; pass resume=True or delete it")
        while self.done < len(self.increments):
            if stop_after is not None and self.done >= stop_after:
                break
            i = self.done
            self.train_increment(i)
            seen = [a for g in self.increments[: i + 1] for a in g]
            self.history.append(evaluate(self.model, self.images, self.labels, self.protocol, seen,
                                         features=self.features))
            self.snapshots.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
            self.done = i + 1
            self.save()
        return self.result()

    def model_after(self, increment: int) -> RetrievalModel:
        """The model as it was after ``increment`` (0-based) finished."""
        if not 0 <= increment < len(self.snapshots):
            raise ValueError(f"increment {increment} not available: {len(self.snapshots)} finished")
        model = self._new_model(increment)
        for a in [a for g in self.increments[: increment + 1] for a in g]:
            model.add_attribute(a)
        model.load_state_dict(self.snapshots[increment])
        model.eval()
        return model

    def stored_parameters(self) -> int:
        """Parameters kept between increments: the model, a teacher, EWC's Fisher and anchors."""
        n = count_parameters(self.model)
        if self.teacher is not None:
            n += count_parameters(self.teacher.model)
        if self.ewc is not None:
            n += sum(t.numel() for d in self.ewc.values() for t in d.values())
        return n

    def result(self) -> dict:
        R = metrics.accuracy_matrix(self.history, self.attributes)
        final = {a: float(R[-1, j]) for j, a in enumerate(self.attributes)} if self.done == len(self.increments) else {}
        return {
            "strategy": self.strategy,
            "increments": self.increments,
            "attributes": self.attributes,
            "map_matrix": [[None if np.isnan(v) else float(v) for v in row] for row in R],
            "final_map": final,
            "mean_final_map": float(np.mean(list(final.values()))) if final else None,
            "forgetting": _none_if_nan(metrics.average_forgetting(R)),
            "bwt": _none_if_nan(metrics.backward_transfer(R)),
            "train_samples": int(self.costs["train_samples"]),
            "teacher_samples": int(self.costs["teacher_samples"]),
            "optimizer_steps": int(self.costs["optimizer_steps"]),
            "train_seconds": round(float(self.costs["train_seconds"]), 2),
            "params": {"trainable": count_parameters(self.model, trainable_only=True),
                       "stored": self.stored_parameters(),
                       "replay_rows": int(sum(len(v) for v in self.buffer.values()))},
            "finished_increments": self.done,
        }


def _none_if_nan(x: float):
    return None if x is None or np.isnan(x) else float(x)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _fingerprint(config: Config, strategy: str, increments, data: str) -> dict:
    fields = {**{k: repr(v) for k, v in dataclasses.asdict(config).items() if k != "device"},
              "strategy": strategy, "increments": repr(increments), "data": data}
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return {"hash": digest, "fields": fields}
