"""Named training recipes: every hyper-parameter of a published set-up in one dict.

``RECIPES["paper"]`` is what the released MCL-FIR code runs (read as evidence in
docs: ASEN-V2's backbone and heads, MCL-FIR's losses and budget):

* ResNet-50 cut after ``layer3`` (ImageNet weights when torchvision has them cached
  locally), 224 px, ASEN-V2-style attribute-aware spatial + channel attention heads, 128-d;
* Adam, learning rate 1e-4, batch 16 doublets;
* 20k doublets per attribute per epoch, 10 epochs: ``10 * 20000 / 16 = 12500`` optimiser
  steps per attribute (about 32% of ASEN's 50 x 100k budget);
* NT-Xent over (anchor, positive) pairs, temperature 0.3, other same-value items left in
  as negatives (``loss="ntxent"``);
* 1e-4 x MSE between the student's and a never-updated teacher's backbone features, and
  one backbone per attribute (the ``released`` strategy);
* automatic mixed precision on CUDA (bf16 where the GPU supports it, else fp16).

:func:`recipe_config` turns a recipe into a :class:`~mclfir_lite.config.Config`, with
overrides (tests run it at 32-64 px and a handful of steps).
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch

RECIPES: dict[str, dict] = {
    "paper": {
        "encoder": "resnet50_layer3",
        "head": "asen",
        "embed_dim": 128,
        "image_size": 224,
        "batch_size": 16,
        "optimizer": "adam",           # AdamW with weight_decay 0 is Adam
        "lr": 1e-4,
        "joint_lr": 1e-4,              # one learning rate for every strategy, as the released code
        "weight_decay": 0.0,
        "doublets_per_attribute_per_epoch": 20_000,
        "epochs": 10,
        "loss": "ntxent",
        "temperature": 0.3,
        "feature_distill_weight": 1e-4,
        "distill_weight": 0.0,         # the released code distils backbone features only
        "ema_decay": 1.0,              # its teacher is never updated
        "strategy": "released",        # one backbone per attribute
        "amp": True,                   # bf16 (or fp16) autocast on CUDA; ignored on the CPU
    },
}


def steps_per_attribute(recipe: dict) -> int:
    """Optimiser steps per attribute: epochs x doublets per epoch / batch size."""
    return recipe["epochs"] * recipe["doublets_per_attribute_per_epoch"] // recipe["batch_size"]


def get_recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {list(RECIPES)}")
    return dict(RECIPES[name])


def recipe_config(name: str, **overrides):
    """A :class:`~mclfir_lite.config.Config` with the recipe's values, then ``overrides``
    (any Config field). Recipe keys that are not Config fields of this version
    (``image_size``, ``strategy``, ``optimizer``, ...) are read by the caller."""
    from ..config import Config
    recipe = get_recipe(name)
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown Config field(s) {unknown} in overrides of recipe {name!r}")
    values = {k: v for k, v in recipe.items() if k in fields}
    values["steps_per_attribute"] = steps_per_attribute(recipe)
    values.update(overrides)
    return Config(**values)



def mixed_precision(device: str, enabled: bool):
    """``(autocast, scaler)`` for a training step on ``device``: ``with autocast(): loss = ...``
    then ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()``.

    On a CUDA device with ``enabled``: bf16 autocast where the GPU supports it (no loss
    scaling needed), else fp16 with a GradScaler. Otherwise (the CPU, or not enabled) both
    do nothing and the step is the plain float32 one.
    """
    cuda = enabled and str(device).startswith("cuda") and torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if cuda else contextlib.nullcontext
    return autocast, torch.amp.GradScaler("cuda", enabled=cuda and not bf16)
