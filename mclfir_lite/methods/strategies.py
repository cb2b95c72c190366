"""Continual-learning strategies, each a small unit behind the runner's one generic loop.

A strategy answers four questions (the hooks of :class:`Strategy`, as in mammoth's
one-file-per-method and Avalanche's plugins):

* ``before_increment``: what to set up when new attributes arrive (a teacher, a frozen
  encoder, a fresh model);
* ``extra_loss``: what to add to the metric loss at every step (distillation, a penalty,
  rehearsal);
* ``after_step``: what to do after every optimiser step (move an EMA teacher);
* ``after_increment``: what to keep for later (a Fisher matrix, a replay buffer).

Everything else (sampling doublets, the optimiser, evaluation, checkpoints, the cost
ledger) is the runner's (:class:`mclfir_lite.training.continual.ContinualRunner`), the same for
all. A strategy reaches the runner's state through ``self.run`` (its ``model``, ``config``,
``costs``, ``labels``, ``protocol``).

============  =====================================================================
``joint``     the upper bound: at every increment the shared-encoder model trains on
              *all* attributes seen so far, every step a mixed batch (each
              attribute's loss summed), with a budget large enough to converge
              (``Config.joint_steps``); it keeps training the same model (the
              "cumulative" upper bound; ``joint_warm_start=False`` retrains from
              scratch, which then has no forgetting).
``retrain``   the cost reference: the same fresh model per increment, but with the
              continual strategies' budget per attribute, one attribute per step
              (the static method the paper compares costs with). Not an upper bound.
``finetune``  shared encoder + one head per attribute, new attributes only.
``frozen``    the encoder is trained in the first increment, then frozen.
``isolated``  one encoder copy per attribute (parameter isolation).
``released``  what the released MCL-FIR code runs: ``isolated`` + unmasked NT-Xent at
              tau 0.3 + 1e-4 x MSE to a teacher that is never updated.
``lwf``       Learning without Forgetting: a frozen snapshot of the last model teaches.
``ewc``       Elastic Weight Consolidation: a Fisher-weighted penalty on moving.
``replay``    a small buffer of earlier training rows is rehearsed.
``mclfir``    the described MCL-FIR: an EMA teacher that follows the student.
============  =====================================================================
"""
from __future__ import annotations

import numpy as np
import torch

from ..training import distributed as dist
from ..data.table import PairSampler
from ..core.ema import EMATeacher
from ..core.losses import embedding_distillation, feature_distillation


class Strategy:
    """Plain fine-tuning; the base every strategy overrides a few hooks of."""

    name = "finetune"
    rng_id = 1                 # part of every random seed of a run (fixed per strategy)
    from_scratch = False       # retrained from scratch at every increment: no forgetting, no BWT
    isolated = False           # one encoder per attribute
    config_overrides: dict = {}

    def __init__(self, runner):
        self.run = runner

    # which attributes to train at this increment, and with how many optimiser steps
    def train_attributes(self, new: list[str], seen: list[str]) -> list[str]:
        return new

    def steps(self, attrs: list[str]) -> int:
        return self.run.config.steps_per_attribute * len(attrs)

    def skips(self, i: int) -> bool:
        """Whether increment ``i`` is skipped (neither trained nor evaluated)."""
        return False

    def before_increment(self, i: int, new: list[str], old: list[str]) -> None:
        pass

    def metric_loss(self, step: int, attrs: list[str], samplers: dict, rng):
        """The step's metric loss: one attribute per step, in rotation."""
        attr = attrs[step % len(attrs)]
        return self.run.metric_loss(attr, samplers[attr], self.run.config.batch_size, rng)

    def extra_loss(self, step: int, x, feats, old: list[str], rng):
        return None

    def after_step(self) -> None:
        pass

    def after_increment(self, i: int, new: list[str], attrs: list[str], samplers: dict, rng) -> None:
        pass

    # what survives between increments (checkpointed; counted as stored parameters)
    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def stored_parameters(self) -> int:
        return 0

    def peak_extra_parameters(self) -> int:
        """A teacher that lives only while training: counted in ``peak_training``, not stored."""
        from ..core.model import count_parameters
        return count_parameters(self.teacher.model) if getattr(self, "teacher", None) else 0


class Retrain(Strategy):
    name, rng_id, from_scratch = "retrain", 0, True

    def before_increment(self, i, new, old):
        self.run.model = self.run.new_model(i)
        for a in old + new:
            self.run.model.add_attribute(a)

    def train_attributes(self, new, seen):
        return seen


class Joint(Strategy):
    """The upper bound: all the data seen so far, every step. At every increment the model
    keeps training (Avalanche's "cumulative" upper bound) on mixed batches of *every* seen
    attribute, ``Config.joint_steps`` steps, with nothing to protect: the old attributes'
    data is there. ``Config.joint_warm_start=False`` retrains from scratch instead."""

    name, rng_id = "joint", 8

    @property
    def from_scratch(self):
        return not self.run.config.joint_warm_start

    def before_increment(self, i, new, old):
        if self.from_scratch:
            Retrain.before_increment(self, i, new, old)

    def train_attributes(self, new, seen):
        return seen

    def steps(self, attrs):
        return self.run.config.joint_steps

    def metric_loss(self, step, attrs, samplers, rng):
        """A mixed batch: ``batch_size`` doublets of *every* seen attribute, one encoder pass,
        each attribute's loss through its own head, summed."""
        return self.run.mixed_metric_loss(attrs, samplers, self.run.config.batch_size, rng)


class Frozen(Strategy):
    name, rng_id = "frozen", 2

    def before_increment(self, i, new, old):
        if i >= 1:
            self.run.freeze_encoder()

    def load_state(self, state):
        if self.run.done >= 1:
            self.run.freeze_encoder()


class Isolated(Strategy):
    name, rng_id, isolated = "isolated", 3, True


class Distillation(Strategy):
    """Learning without Forgetting: the model that finished the last increment is a frozen
    teacher; the student's old heads and encoder features are pulled towards it."""

    name, rng_id = "lwf", 4
    teacher_decay = 1.0        # an EMA that never moves

    def before_increment(self, i, new, old):
        self.teacher = EMATeacher(self.run.model, self.teacher_decay) if old else None

    def extra_loss(self, step, x, feats, old, rng):
        if self.teacher is None:
            return None
        c, t = self.run.config, self.teacher.model
        with torch.no_grad():
            t_feats = self.run.teacher_features(t, x)
        self.run.costs["teacher_samples"] += len(x)
        loss = c.feature_distill_weight * feature_distillation(feats, t_feats) if c.feature_distill_weight else 0.0
        for o in old:
            loss = loss + c.distill_weight / len(old) * embedding_distillation(
                self.run.model.heads(feats, o), t.heads(t_feats, o))
        return loss


class MCLFIR(Distillation):
    """MCL-FIR as the paper describes it: the teacher starts as the last increment's model
    and is an exponential moving average of the student, updated every ``ema_every`` steps
    with ``ema_decay`` (``ema_every=1``: every step)."""

    name, rng_id = "mclfir", 7

    @property
    def teacher_decay(self):
        return self.run.config.ema_decay

    def after_step(self):
        self._steps = getattr(self, "_steps", 0) + 1
        if self.teacher is not None and self._steps % self.run.config.ema_every == 0:
            self.teacher.update(self.run.model)

    def before_increment(self, i, new, old):
        super().before_increment(i, new, old)
        self._steps = 0


class Released(Isolated):
    """The released MCL-FIR code: one backbone per attribute, unmasked NT-Xent at tau 0.3,
    and 1e-4 x MSE between the new backbone's features and a copy of it taken at the start
    of the increment that is never updated."""

    name, rng_id = "released", 9
    config_overrides = {"loss": "ntxent", "temperature": 0.3, "feature_distill_weight": 1e-4}

    def before_increment(self, i, new, old):
        self.teacher = EMATeacher(self.run.model, decay=1.0)

    def note(self) -> str:
        """How faithful this run is to the released code, whose teacher is the ImageNet backbone."""
        if self.run.config.encoder == "smallcnn":
            return ("proxy: the teacher is a copy of a randomly initialised smallcnn; the released code's teacher "
                    "is the ImageNet-pretrained backbone (run it with --encoder efficientnet_lite0 for that)")
        return f"teacher: the pretrained {self.run.config.encoder} weights, never updated, one copy per attribute"

    def extra_loss(self, step, x, feats, old, rng):
        attr = self.run.current_attribute
        with torch.no_grad():
            t_feats = self.run.teacher_features(self.teacher.model, x, attr)
        self.run.costs["teacher_samples"] += len(x)
        return self.run.config.feature_distill_weight * feature_distillation(feats, t_feats)


class EWC(Strategy):
    """Elastic Weight Consolidation (online): ``lambda * sum_k F_k (theta_k - theta*_k)^2``
    on the shared encoder, with ``F`` the diagonal Fisher of the metric loss at the end of
    each increment (normalised to mean 1, summed over increments)."""

    name, rng_id = "ewc", 5

    def __init__(self, runner):
        super().__init__(runner)
        self.ewc = None

    def extra_loss(self, step, x, feats, old, rng):
        if self.ewc is None:
            return None
        total = 0.0
        for name, p in self.run.model.encoder.named_parameters():
            total = total + (self.ewc["fisher"][name] * (p - self.ewc["anchor"][name]).pow(2)).sum()
        return self.run.config.ewc_lambda * total

    def after_increment(self, i, new, attrs, samplers, rng):
        run, c = self.run, self.run.config
        enc = run.model.encoder
        fisher = {n: torch.zeros_like(p) for n, p in enc.named_parameters()}
        for k in range(c.ewc_batches):
            attr = attrs[k % len(attrs)]
            loss, _, _ = run.metric_loss(attr, samplers[attr], c.batch_size, rng)  # counted: a cost too
            run.model.zero_grad(set_to_none=True)
            loss.backward()
            dist.sync_gradients(enc.parameters())   # under torchrun: the global batch's gradient
            for n, p in enc.named_parameters():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2 / c.ewc_batches
        run.model.zero_grad(set_to_none=True)
        mean = torch.cat([f.flatten() for f in fisher.values()]).mean().clamp_min(1e-12)
        fisher = {n: f / mean for n, f in fisher.items()}
        if self.ewc is not None:
            fisher = {n: f + self.ewc["fisher"][n] for n, f in fisher.items()}
        self.ewc = {"fisher": fisher, "anchor": {n: p.detach().clone() for n, p in enc.named_parameters()}}

    def state(self):
        return {"ewc": self.ewc}

    def load_state(self, state):
        self.ewc = state.get("ewc")
        if self.ewc is not None:
            dev = self.run.config.device
            self.ewc = {k: {n: t.to(dev) for n, t in d.items()} for k, d in self.ewc.items()}

    def stored_parameters(self):
        return 0 if self.ewc is None else sum(t.numel() for d in self.ewc.values() for t in d.values())


class Replay(Strategy):
    """Rehearsal: ``replay_per_attribute`` training rows of every old attribute are kept,
    and each step adds a half batch of one old attribute's doublets from them."""

    name, rng_id = "replay", 6

    def __init__(self, runner):
        super().__init__(runner)
        self.buffer: dict[str, np.ndarray] = {}

    def before_increment(self, i, new, old):
        self.samplers = {a: PairSampler(self.run.labels[a], rows) for a, rows in self.buffer.items()}

    def rehearsed(self) -> int:
        """Rehearsed doublets per step, in the global batch (under torchrun each rank draws
        its share of them from its own stream, like the rest of the batch)."""
        half, w = max(2, self.run.config.batch_size // 2), dist.world_size()
        if half % w:
            raise ValueError(f"replay rehearses batch_size // 2 = {half} doublets per step, which do not split "
                             f"evenly over {w} processes; use a batch_size that is a multiple of {2 * w}")
        return half

    def extra_loss(self, step, x, feats, old, rng):
        if not self.samplers:
            return None
        attr = list(self.samplers)[step % len(self.samplers)]
        loss, _, _ = self.run.metric_loss(attr, self.samplers[attr], self.rehearsed(), rng)
        return loss

    def after_increment(self, i, new, attrs, samplers, rng):
        for a in new:
            rows = self.run.protocol[a].train
            pick = rng.choice(len(rows), min(self.run.config.replay_per_attribute, len(rows)), replace=False)
            self.buffer[a] = np.sort(rows[pick])

    def state(self):
        return {"buffer": self.buffer}

    def load_state(self, state):
        self.buffer = state.get("buffer") or {}

    def replay_rows(self) -> int:
        return int(sum(len(v) for v in self.buffer.values()))


STRATEGY_CLASSES = {cls.name: cls for cls in
                    (Joint, Retrain, Strategy, Frozen, Isolated, Released, Distillation, EWC, Replay, MCLFIR)}
