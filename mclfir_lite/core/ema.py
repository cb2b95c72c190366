"""The exponential-moving-average (EMA) teacher.

After every optimiser step the teacher moves a little towards the student:

    theta_teacher <- decay * theta_teacher + (1 - decay) * theta_student

so it is a slow, smoothed copy of the student: it remembers what the student knew a
few hundred steps ago (``1 / (1 - decay)`` steps is its memory). Distilling the student
towards it resists fast drift (forgetting) without freezing anything.

In the continual runner the teacher is created from the model that finished the
previous increment (so at first it *is* the old model) and then updated at every step
of the new increment. ``decay = 1`` never moves: that is Learning without Forgetting's
frozen teacher. ``decay < 1`` lets the teacher absorb what the student learns slowly,
which trades a little stability for plasticity.

(The released MCL-FIR code builds such a teacher but never updates it; here it is
really updated, at every step. Heads added to the student are copied into the
teacher the first time it sees them.)
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMATeacher:
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
        missing = [n for n, _ in student.named_parameters() if n not in t_params]
        if missing:
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
        """Add to the teacher every head the student has and it lacks (as copies)."""
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
