"""``released``: what the released MCL-FIR code runs.

One backbone per attribute (``isolated``), unmasked NT-Xent at temperature 0.3, and
1e-4 x MSE between the new backbone's features and a copy of it taken at the start of the
increment that is never updated (an :class:`~mclfir_lite.methods.mclfir.EMATeacher` with
decay 1).
"""
from __future__ import annotations

import torch

from ..core.losses import feature_distillation
from .isolated import Isolated
from .mclfir import EMATeacher


class Released(Isolated):
    """The released code's recipe (its config overrides: ``loss="ntxent"``, ``temperature=0.3``,
    ``feature_distill_weight=1e-4``).

    Config fields read: ``feature_distill_weight``, ``encoder`` (for :meth:`note`),
    ``steps_per_attribute``, ``batch_size``."""

    name, rng_id = "released", 9
    config_overrides = {"loss": "ntxent", "temperature": 0.3, "feature_distill_weight": 1e-4}

    def before_increment(self, i, new, old):
        self.teacher = EMATeacher(self.run.model, decay=1.0)

    def note(self) -> str:
        """How faithful this run is to the released code, whose teacher is the ImageNet backbone."""
        if self.run.config.encoder == "smallcnn":
            return ("proxy: the teacher is a copy of a randomly initialised smallcnn; the released code's teacher "
                    "is the ImageNet-pretrained backbone (run it with --encoder efficientnet_lite0 for that)")
        return f"teacher: the pretrained {self.run.config.encoder} weights, never updated, one copy per attribute"

    def extra_loss(self, step, batch, old, rng):
        attr = batch.attributes[0]     # one attribute per step: its own backbone
        with torch.no_grad():
            t_feats = self.run.teacher_features(self.teacher.model, batch.images, attr)
        self.run.costs.add("teacher_samples", len(batch.images))
        return self.run.config.feature_distill_weight * feature_distillation(batch.features, t_feats)
