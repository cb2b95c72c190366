"""``joint``: the upper bound, all the data seen so far at every step.

At every increment the model keeps training (Avalanche's "cumulative" upper bound) on
mixed batches of *every* seen attribute, with nothing to protect: the old attributes'
data is there. ``Config.joint_warm_start=False`` retrains from scratch instead, which
then has no forgetting.

Summing the attributes' losses (``joint_balance="sum"``) can fail the upper bound: when an
attribute arrives late, the attributes already learnt dominate the shared encoder and the
new one can stay at chance (SynthFashion's ``pattern`` after five shape attributes).
``joint_balance="ratio"`` weighs each attribute by how far its loss still is from where it
started, GradNorm's "inverse training rate" without its gradient-norm term:

    w_a = n * r_a / sum_b r_b,   r_a = (L_a / L_a at its first step) ** balance_alpha

(detached, so only the size of each attribute's gradient changes, never its direction): an
attribute that has not come down is weighted up, one that is learnt is weighted down.
"""
from __future__ import annotations

from .base import Strategy


class Joint(Strategy):
    """Mixed batches of every seen attribute, ``joint_steps`` steps per increment.

    Config fields read: ``joint_steps`` (the budget: its convergence is measured
    by the strategies benchmark, ``--joint-budgets``), ``joint_lr`` (its own learning rate,
    tuned on validation data as every method's: benchmarks/bench_tuning.py), ``joint_warm_start``,
    ``joint_balance``, ``balance_alpha``, ``batch_size``."""

    name, rng_id = "joint", 8

    def __init__(self, runner):
        super().__init__(runner)
        self.first_loss: dict[str, float] = {}    # joint_balance="ratio": each attribute's first loss

    @property
    def from_scratch(self):
        return not self.run.config.joint_warm_start

    def before_increment(self, i, new, old):
        if self.from_scratch:
            self.restart(i, old + new)
            self.first_loss = {}                   # a fresh model: every attribute starts again

    def train_attributes(self, new, seen):
        return seen

    def steps(self, attrs):
        return self.run.config.joint_steps

    def learning_rate(self):
        return self.run.config.joint_lr

    def batch(self, step, attrs, samplers, rng):
        """A mixed batch: ``batch_size`` doublets of *every* seen attribute, one encoder pass,
        each attribute's loss through its own head, summed or balanced (``joint_balance``)."""
        batch = self.run.mixed_metric_loss(attrs, samplers, self.run.config.batch_size, rng)
        if self.run.config.joint_balance == "ratio":
            batch.loss = sum(w * batch.parts[a] for a, w in self.weights(batch.parts).items())
        return batch

    def weights(self, parts: dict) -> dict[str, float]:
        """The "ratio" weights of a mixed batch's losses (see the module's docstring)."""
        alpha = self.run.config.balance_alpha
        now = {a: float(v.detach()) for a, v in parts.items()}
        for a, v in now.items():
            self.first_loss.setdefault(a, v)
        r = {a: (v / max(self.first_loss[a], 1e-8)) ** alpha for a, v in now.items()}
        total = max(sum(r.values()), 1e-12)
        return {a: len(r) * x / total for a, x in r.items()}

    def state(self):
        return {"first_loss": dict(self.first_loss)} if self.first_loss else {}

    def load_state(self, state):
        self.first_loss = {str(a): float(v) for a, v in state.get("first_loss", {}).items()}
