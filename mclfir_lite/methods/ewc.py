"""``ewc``: Elastic Weight Consolidation (online), a Fisher-weighted penalty on moving.

At the end of each increment the diagonal Fisher ``F`` of the metric loss is estimated on
the shared encoder (normalised to mean 1, summed over increments) and the weights are
kept as anchors ``theta*``; every later step adds

    ewc_lambda * sum_k F_k (theta_k - theta*_k)^2
"""
from __future__ import annotations

import torch

from .base import Strategy


class EWC(Strategy):
    """A penalty on moving the encoder's weights that matter (by the Fisher) to old attributes.

    Config fields read: ``ewc_lambda`` (tuned on a validation split), ``ewc_batches`` (batches
    of the Fisher estimate), ``steps_per_attribute``, ``batch_size``."""

    name, rng_id = "ewc", 5

    def __init__(self, runner):
        super().__init__(runner)
        self.ewc = None

    def extra_loss(self, step, batch, old, rng):
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
            loss = run.metric_loss(attr, samplers[attr], c.batch_size, rng).loss  # counted: a cost too
            run.model.zero_grad(set_to_none=True)
            run.backward(loss, enc.parameters())   # under torchrun: the global batch's gradient
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
