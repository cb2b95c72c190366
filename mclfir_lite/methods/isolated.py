"""``isolated``: parameter isolation, one encoder copy per attribute.

Nothing is shared, so nothing is forgotten; the price is one encoder per attribute
(stored parameters grow with every attribute).
"""
from __future__ import annotations

from .base import Strategy


class Isolated(Strategy):
    """One encoder (and head) per attribute.

    Config fields read: ``steps_per_attribute``, ``batch_size``."""

    name, rng_id, isolated = "isolated", 3, True
