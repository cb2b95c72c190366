"""``frozen``: the encoder learns in the first increment, then only new heads learn.

No forgetting of what the encoder computes (it never moves again), at the price of
plasticity: later attributes must make do with the first increment's features.
"""
from __future__ import annotations

from .base import Strategy


class Frozen(Strategy):
    """The shared encoder is frozen (no gradients, BatchNorm statistics fixed) from increment 2 on.

    Config fields read: ``steps_per_attribute``, ``batch_size``."""

    name, rng_id = "frozen", 2

    def before_increment(self, i, new, old):
        if i >= 1:
            self.run.freeze_encoder()

    def load_state(self, state):
        if self.run.done >= 1:
            self.run.freeze_encoder()
