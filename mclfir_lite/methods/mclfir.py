"""``mclfir``: MCL-FIR, a student distilled towards an EMA teacher that follows it.

At each new increment the model that finished the last one becomes the **teacher**;
the student (the model being trained) learns the new attributes with InfoNCE on doublets
and is pulled towards the teacher on what it already knew. Its loss at every step:

    loss = InfoNCE(new attribute's doublets)                             (the runner's)
         + feature_distill_weight * MSE(f_student(x), f_teacher(x))       (encoder features)
         + distill_weight / |old| * sum_{o in old} || h_o(f_s) - h_o(f_t) ||^2  (old heads)

(:func:`~mclfir_lite.core.losses.feature_distillation`,
:func:`~mclfir_lite.core.losses.embedding_distillation`). After every ``ema_every``
optimiser steps the teacher moves a little towards the student:

    theta_teacher <- decay * theta_teacher + (1 - decay) * theta_student

so it is a slow, smoothed copy of the student: it remembers what the student knew a few
hundred steps ago (``1 / (1 - decay)`` steps is its memory). Distilling towards it resists
fast drift (forgetting) without freezing anything. ``decay = 1`` never moves: that is
Learning without Forgetting's frozen teacher (:mod:`~mclfir_lite.methods.lwf` is this
class with such a teacher). The released MCL-FIR code builds a teacher but never updates
it (:mod:`~mclfir_lite.methods.released`); here it really is updated.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..core.losses import embedding_distillation, feature_distillation
from .base import Strategy


class EMATeacher:
    """A frozen copy of the student that follows it as an exponential moving average."""

    def __init__(self, student: nn.Module, decay: float = 0.999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(student)
        self.model.requires_grad_(False)
        self.model.eval()

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """One EMA step; parameters the teacher lacks (new heads) are copied in whole."""
        t_params = dict(self.model.named_parameters())
        if any(n not in t_params for n, _ in student.named_parameters()):
            self.sync(student)
            t_params = dict(self.model.named_parameters())
        for name, p in student.named_parameters():
            if not p.requires_grad:  # a frozen parameter never moves: averaging it would only add rounding drift
                continue
            t_params[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        # BatchNorm running statistics are averaged like the weights they go with (copying the
        # student's would hand the teacher statistics of features it does not compute);
        # integer buffers (num_batches_tracked) are counters and are copied.
        t_buffers = dict(self.model.named_buffers())
        for name, b in student.named_buffers():
            if name not in t_buffers:
                continue
            if t_buffers[name].is_floating_point():
                t_buffers[name].mul_(self.decay).add_(b.detach(), alpha=1.0 - self.decay)
            else:
                t_buffers[name].copy_(b)

    @torch.no_grad()
    def sync(self, student: nn.Module) -> None:
        """Add to the teacher every head (and isolated encoder) the student has and it lacks, as copies."""
        heads_s, heads_t = student.heads.heads, self.model.heads.heads
        for attr, head in heads_s.items():
            if attr not in heads_t:
                heads_t[attr] = copy.deepcopy(head).requires_grad_(False)
        if getattr(student, "encoders", None) is not None:
            for attr, enc in student.encoders.items():
                if attr not in self.model.encoders:
                    self.model.encoders[attr] = copy.deepcopy(enc).requires_grad_(False)

    def state_dict(self):
        return self.model.state_dict()


class MCLFIR(Strategy):
    """MCL-FIR as the paper describes it: distillation towards an EMA teacher.

    Config fields read: ``ema_decay`` (the teacher's decay), ``ema_every`` (update it every
    this many steps; 1: every step), ``ema_carry`` (keep one teacher across increments), ``distill_weight`` (old heads' embeddings),
    ``feature_distill_weight`` (encoder features), ``steps_per_attribute``, ``batch_size``."""

    name, rng_id = "mclfir", 7

    @property
    def teacher_decay(self) -> float:
        return self.run.config.ema_decay

    def before_increment(self, i, new, old):
        """The model that finished the last increment becomes the teacher (none at the first);
        with ``ema_carry`` the teacher of the last increment carries on, lag and all."""
        if not (self.carries and getattr(self, "teacher", None) is not None):
            self.teacher = EMATeacher(self.run.model, self.teacher_decay) if old else None
        self.step_count = 0

    @property
    def carries(self) -> bool:     # LwF's teacher never moves: it is always the last model
        return self.run.config.ema_carry and self.teacher_decay < 1

    def state(self):          # a carried teacher is part of the run's state (resume)
        return {"teacher": self.teacher.state_dict()} if self.carries and self.teacher else {}

    def load_state(self, state):
        if state.get("teacher") is not None:
            self.teacher = EMATeacher(self.run.model, self.teacher_decay)
            self.teacher.model.load_state_dict(state["teacher"])

    def extra_loss(self, step, batch, old, rng):
        """Both distillation terms: encoder features, and every old head's embeddings."""
        if self.teacher is None:
            return None
        c, t = self.run.config, self.teacher.model
        with torch.no_grad():
            t_feats = self.run.teacher_features(t, batch.images)
        self.run.costs.add("teacher_samples", len(batch.images))
        loss = c.feature_distill_weight * feature_distillation(batch.features, t_feats) \
            if c.feature_distill_weight else 0.0
        for o in old:
            loss = loss + c.distill_weight / len(old) * embedding_distillation(
                self.run.model.heads(batch.features, o), t.heads(t_feats, o))
        return loss

    def after_step(self):
        """The teacher follows the student: one EMA step every ``ema_every`` optimiser steps."""
        self.step_count = getattr(self, "step_count", 0) + 1
        if self.teacher is not None and self.step_count % self.run.config.ema_every == 0:
            self.teacher.update(self.run.model)
