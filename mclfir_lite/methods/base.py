"""The hook API every continual-learning method fills in (one file per method beside this one).

One generic loop (:class:`mclfir_lite.training.runner.ContinualRunner`) trains every method;
a method only answers a few questions, as in mammoth's one-file-per-method and Avalanche's
plugins. Its hooks, in the order the loop calls them at increment ``i``:

* ``train_attributes(new, seen)`` and ``steps(attrs)``: what to train, for how long;
* ``learning_rate()``: the optimiser's rate (``config.lr``; ``joint`` and ``retrain`` have
  their own, ``config.joint_lr``);
* ``before_increment(i, new, old)``: what to set up when new attributes arrive (a teacher,
  a frozen encoder, a fresh model);
* ``batch(step, attrs, samplers, rng) -> Batch``: the step's metric-learning batch (one
  attribute in rotation, or a mixed batch);
* ``extra_loss(step, batch, old, rng)``: what to add to the metric loss (distillation, a
  penalty, rehearsal), or None;
* ``after_step()``: after every optimiser step (move an EMA teacher);
* ``after_increment(i, new, attrs, samplers, rng)``: what to keep for later (a Fisher
  matrix, a replay buffer);
* ``state()`` / ``load_state(state)``: what survives between increments (checkpointed).

A method reaches the run only through this public API of the runner (``self.run``):

* read: ``config``, ``model``, ``labels``, ``protocol``, ``done`` (finished increments),
  ``world_size`` (processes under torchrun; 1 without);
* ``metric_loss(attr, sampler, batch, rng)`` / ``mixed_metric_loss(attrs, samplers, batch,
  rng)``: a :class:`Batch` (its images are counted as ``train_samples``);
* ``teacher_features(teacher, x, attr=None)``: a teacher's encoder features of a batch;
* ``encoder_of(model, attr)``: what turns the loop's inputs into ``model``'s features;
* ``source.inputs(rows, rng)``: the (randomly flipped) inputs of table rows, on the device;
* ``costs.add(name, n)``: the cost ledger (:class:`Costs`);
* ``new_model(i)``, ``replace_model(model)``, ``freeze_encoder()``: change the model;
* ``backward(loss, params)``: the gradient of the global batch (averaged over ranks).

Everything else (sampling doublets, the optimiser at the method's ``learning_rate()``,
evaluation, checkpoints) is the runner's, the same for all methods.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """One metric-learning batch, as the runner built it (this rank's part under torchrun)."""

    loss: torch.Tensor        # its metric loss (InfoNCE / NT-Xent / triplet)
    images: torch.Tensor      # the inputs forwarded (cached features when the run has them)
    features: torch.Tensor    # the student's encoder features of ``images``
    attributes: list[str]     # the attribute(s) whose heads it trained
    rows: np.ndarray          # the anchors' rows of the table
    parts: dict | None = None  # a mixed batch: each attribute's own loss (``loss`` is their sum)


class Costs(dict):
    """The cost ledger: ``train_samples`` (images forwarded *and* back-propagated, Fisher
    passes included), ``teacher_samples`` (images forwarded through a teacher),
    ``optimizer_steps`` and ``train_seconds``. A dict, so it is checkpointed as one."""

    NAMES = ("train_samples", "teacher_samples", "optimizer_steps", "train_seconds")

    def __init__(self, values: dict | None = None):
        super().__init__({"train_samples": 0, "teacher_samples": 0, "optimizer_steps": 0, "train_seconds": 0.0})
        self.update(values or {})

    def add(self, name: str, n) -> None:
        """Add ``n`` to the counter ``name`` (one of :data:`NAMES`)."""
        if name not in self.NAMES:
            raise KeyError(f"unknown cost {name!r}; the ledger counts {self.NAMES}")
        self[name] += n


class Strategy:
    """The base of every method: each hook does nothing extra (which is plain fine-tuning,
    :class:`~mclfir_lite.methods.finetune.Finetune`); a method overrides a few of them.

    Config fields read here: ``steps_per_attribute``, ``batch_size``, ``lr``."""

    name = ""
    rng_id = 0                 # part of every random seed of a run (fixed per method)
    from_scratch = False       # retrained from scratch at every increment: no forgetting, no BWT
    isolated = False           # one encoder per attribute
    config_overrides: dict = {}

    def __init__(self, runner):
        self.run = runner

    # which attributes to train at this increment, and with how many optimiser steps
    def train_attributes(self, new: list[str], seen: list[str]) -> list[str]:
        return new

    def steps(self, attrs: list[str]) -> int:
        return self.run.config.steps_per_attribute * len(attrs)

    def learning_rate(self) -> float:
        """The optimiser's learning rate at every increment."""
        return self.run.config.lr

    def before_increment(self, i: int, new: list[str], old: list[str]) -> None:
        pass

    def batch(self, step: int, attrs: list[str], samplers: dict, rng) -> Batch:
        """The step's metric-learning batch: one attribute per step, in rotation."""
        attr = attrs[step % len(attrs)]
        return self.run.metric_loss(attr, samplers[attr], self.run.config.batch_size, rng)

    def extra_loss(self, step: int, batch: Batch, old: list[str], rng) -> torch.Tensor | None:
        return None

    def after_step(self) -> None:
        pass

    def after_increment(self, i: int, new: list[str], attrs: list[str], samplers: dict, rng) -> None:
        pass

    # what survives between increments (checkpointed; counted as stored parameters)
    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def stored_parameters(self) -> int:
        return 0

    def peak_extra_parameters(self) -> int:
        """A teacher that lives only while training: counted in ``peak_training``, not stored."""
        from ..core.model import count_parameters
        return count_parameters(self.teacher.model) if getattr(self, "teacher", None) else 0

    # a helper for the methods that start an increment from a fresh model
    def restart(self, i: int, attributes: list[str]) -> None:
        """Start increment ``i`` from a fresh model (its own seed) with a head for each of ``attributes``."""
        model = self.run.new_model(i)
        for a in attributes:
            model.add_attribute(a)
        self.run.replace_model(model)
