"""``derpp``: Dark Experience Replay++ (Buzzega et al., 2020), replay plus distillation.

Replay keeps a few training rows of each old attribute and trains on them again. DER++
also keeps, for each stored row, the embedding its attribute's head gave it when it was
stored (the "dark knowledge": where the row sat in that head's space, not only its
label). Each step then adds, for one old attribute in rotation,

    derpp_alpha * mean || h_a(f(x_buf)) - z_stored ||^2      (pull the head back: distillation)
  + derpp_beta  * InfoNCE(doublets of buffered rows)          (rehearse the labels: replay)

It is the baseline that combines what replay and LwF / MCL-FIR each do, with a memory
that costs images and embeddings instead of a teacher network. The buffer's size is
``replay_per_attribute`` rows per attribute (benchmarks/bench_tuning.py includes the size
whose bytes equal MCL-FIR's teacher).
"""
from __future__ import annotations

import torch

from ..core.losses import embedding_distillation
from .replay import Replay


class DERpp(Replay):
    """Replay whose buffer also holds each row's embedding at storage time.

    Config fields read: ``replay_per_attribute``, ``derpp_alpha`` (the embedding pull),
    ``derpp_beta`` (the rehearsed InfoNCE), ``batch_size`` (a half batch of buffered rows
    for each term), ``steps_per_attribute``."""

    name, rng_id = "derpp", 10

    def __init__(self, runner):
        super().__init__(runner)
        self.stored: dict[str, torch.Tensor] = {}     # attribute -> embeddings of its buffered rows

    def extra_loss(self, step, batch, old, rng):
        if not self.samplers:
            return None
        c = self.run.config
        attr = list(self.samplers)[step % len(self.samplers)]
        rows = self.buffer[attr]
        pick = rng.choice(len(rows), self.rehearsed(), replace=True)
        feats = self.run.encoder_of(self.run.model, attr)(self.run.source.inputs(rows[pick], rng))
        self.run.costs.add("train_samples", len(pick))
        pull = embedding_distillation(self.run.model.heads(feats, attr), self.stored[attr][torch.as_tensor(pick)].to(feats.device))
        loss = c.derpp_alpha * pull
        if c.derpp_beta:
            loss = loss + c.derpp_beta * self.run.metric_loss(attr, self.samplers[attr], self.rehearsed(), rng).loss
        return loss

    @torch.no_grad()
    def after_increment(self, i, new, attrs, samplers, rng):
        """Store rows of the new attributes (as replay) and their embeddings now."""
        super().after_increment(i, new, attrs, samplers, rng)
        model, was = self.run.model, self.run.model.training
        model.eval()
        try:
            for a in new:
                x = self.run.source.inputs(self.buffer[a], rng)      # flipped as in training, seeded
                self.stored[a] = model.heads(self.run.encoder_of(model, a)(x), a).detach()
                self.run.costs.add("teacher_samples", len(x))     # a forward pass without a gradient
        finally:
            model.train(was)

    def state(self):
        return {"buffer": self.buffer, "stored": self.stored}

    def load_state(self, state):
        super().load_state(state)
        self.stored = {a: z.to(self.run.config.device) for a, z in (state.get("stored") or {}).items()}

    def stored_parameters(self) -> int:
        return int(sum(z.numel() for z in self.stored.values()))
