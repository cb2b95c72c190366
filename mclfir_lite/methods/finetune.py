"""``finetune``: plain fine-tuning, the lower bound of forgetting.

A shared encoder and one head per attribute; each increment trains the new attributes
only, with nothing to protect the old ones. Every hook is the base's
(:class:`~mclfir_lite.methods.base.Strategy`).
"""
from __future__ import annotations

from .base import Strategy


class Finetune(Strategy):
    """Shared encoder + one head per attribute, new attributes only.

    Config fields read: ``steps_per_attribute``, ``batch_size``."""

    name, rng_id = "finetune", 1
