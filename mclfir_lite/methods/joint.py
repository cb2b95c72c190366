"""``joint``: the upper bound, all the data seen so far at every step.

At every increment the model keeps training (Avalanche's "cumulative" upper bound) on
mixed batches of *every* seen attribute, with nothing to protect: the old attributes'
data is there. ``Config.joint_warm_start=False`` retrains from scratch instead, which
then has no forgetting.
"""
from __future__ import annotations

from .base import Strategy


class Joint(Strategy):
    """Mixed batches of every seen attribute, ``joint_steps`` steps per increment.

    Config fields read: ``joint_steps`` (a budget measured to converge), ``joint_warm_start``,
    ``batch_size``."""

    name, rng_id = "joint", 8

    @property
    def from_scratch(self):
        return not self.run.config.joint_warm_start

    def before_increment(self, i, new, old):
        if self.from_scratch:
            self.restart(i, old + new)

    def train_attributes(self, new, seen):
        return seen

    def steps(self, attrs):
        return self.run.config.joint_steps

    def batch(self, step, attrs, samplers, rng):
        """A mixed batch: ``batch_size`` doublets of *every* seen attribute, one encoder pass,
        each attribute's loss through its own head, summed."""
        return self.run.mixed_metric_loss(attrs, samplers, self.run.config.batch_size, rng)
