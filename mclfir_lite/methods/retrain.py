"""``retrain``: the cost reference, a fresh model per increment trained on every attribute seen.

The static method the paper compares costs with: the same fresh model at every increment,
with the continual methods' budget per attribute, one attribute per step. It has no
forgetting (each model is trained from scratch), but it is not an upper bound.
"""
from __future__ import annotations

from .base import Strategy


class Retrain(Strategy):
    """A fresh model (new seed) per increment, trained on all attributes seen so far.

    Config fields read: ``steps_per_attribute``, ``batch_size``."""

    name, rng_id, from_scratch = "retrain", 0, True

    def before_increment(self, i, new, old):
        self.restart(i, old + new)

    def train_attributes(self, new, seen):
        return seen
