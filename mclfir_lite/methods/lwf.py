"""``lwf``: Learning without Forgetting, MCL-FIR with a teacher that never moves.

The model that finished the last increment is a frozen teacher; the student's old heads
and encoder features are pulled towards it, with the same two distillation terms as
MCL-FIR (:mod:`~mclfir_lite.methods.mclfir`). An EMA with ``decay = 1`` never moves, so
LwF *is* MCL-FIR with ``decay = 1``: the only difference is that the teacher is not
updated after the steps.
"""
from __future__ import annotations

from .mclfir import MCLFIR


class LwF(MCLFIR):
    """MCL-FIR with a frozen teacher (decay 1, never updated).

    Config fields read: ``distill_weight``, ``feature_distill_weight``,
    ``steps_per_attribute``, ``batch_size`` (not ``ema_decay`` nor ``ema_every``)."""

    name, rng_id = "lwf", 4
    teacher_decay = 1.0        # an EMA that never moves

    def after_step(self):
        pass                   # the teacher stays the last increment's model
