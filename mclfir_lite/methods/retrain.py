"""``retrain``: the cost reference, a fresh model per increment trained on every attribute seen.

The static method the paper compares costs with: a fresh model at every increment, trained
on mixed batches of every attribute seen so far (as ``joint``, balanced the same way):
``retrain_steps`` mixed steps per fresh model, each with ``batch_size`` doublets of every seen
attribute. Its budget is the one at which a fresh model learns every attribute of the plan (the
preset's 1,200: ``benchmarks/results/exploration_joint_budget.json``, ``end_point_traces``); with the
continual methods' 400 it left ``pattern`` at chance, a broken cost reference. It has no
forgetting (each model is trained from scratch), but it is not an upper bound: ``joint`` keeps
training one model and gets ``joint_steps`` at every increment.

(Before issue 20 it rotated one attribute per step; with that schedule a fresh model left
``silhouette`` at chance on the three-increment lesson, so the cost ratio was computed
against a broken baseline.)
"""
from __future__ import annotations

from .joint import Joint


class Retrain(Joint):
    """A fresh model (new seed) per increment, mixed batches of all attributes seen so far.

    Config fields read: ``retrain_steps``, ``batch_size``, ``joint_lr`` (mixed batches learn at
    joint's rate), ``joint_balance``, ``balance_alpha``."""

    name, rng_id, from_scratch = "retrain", 0, True

    def steps(self, attrs):
        return self.run.config.retrain_steps
