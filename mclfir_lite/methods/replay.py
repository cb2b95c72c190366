"""``replay``: rehearsal, a small buffer of earlier training rows is trained on again.

``replay_per_attribute`` training rows of every old attribute are kept; each step adds
the metric loss of a half batch of one old attribute's doublets drawn from them.
"""
from __future__ import annotations

import numpy as np

from ..data.table import PairSampler
from .base import Strategy


class Replay(Strategy):
    """Rehearsal of a per-attribute buffer of training rows.

    Config fields read: ``replay_per_attribute``, ``batch_size`` (half of it is rehearsed),
    ``steps_per_attribute``."""

    name, rng_id = "replay", 6

    def __init__(self, runner):
        super().__init__(runner)
        self.buffer: dict[str, np.ndarray] = {}

    def before_increment(self, i, new, old):
        self.samplers = {a: PairSampler(self.run.labels[a], rows) for a, rows in self.buffer.items()}

    def rehearsed(self) -> int:
        """Rehearsed doublets per step, in the global batch (under torchrun each rank draws
        its share of them from its own stream, like the rest of the batch)."""
        half, w = max(2, self.run.config.batch_size // 2), self.run.world_size
        if half % w:
            raise ValueError(f"replay rehearses batch_size // 2 = {half} doublets per step, which do not split "
                             f"evenly over {w} processes; use a batch_size that is a multiple of {2 * w}")
        return half

    def extra_loss(self, step, batch, old, rng):
        if not self.samplers:
            return None
        attr = list(self.samplers)[step % len(self.samplers)]
        return self.run.metric_loss(attr, self.samplers[attr], self.rehearsed(), rng).loss

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
