"""A run's configuration, and the presets of the lesson: one source of truth.

* :class:`Config`: every field that decides the numbers of a continual run (and so its
  checkpoint fingerprint), checked when it is made.
* :data:`PRESETS`: the sizes of the lesson ("quick" for tests and a first look, "default"
  for the lesson at full size); :data:`PRETRAINED`: overlays for a pretrained encoder.
  The ``Config`` fields a preset sets (:data:`CONFIG_KEYS`) default to the "default"
  preset's values, so ``Config()`` and the default preset never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .core import metrics
from .settings import quick_mode

# Sizes of the lesson. "quick" is for tests and a first look; "default" is the lesson at full size.
PRESETS = {
    # The lesson at full size: five increments over all six attributes (plan synth6x5: sleeve length
    # and neckline, then length, silhouette, colour, pattern), each increment bringing its own 1200
    # of the 6000 images, rendered with style "v2" (the calibration in which every attribute is learnable at 48 px:
    # benchmarks/bench_learnable.py); a smallcnn of width 16. joint (the upper bound: all data seen so
    # far, mixed batches) balances its per-attribute losses by their training rate ("ratio", alpha 2:
    # with a plain sum the last attribute, pattern, stays at chance; benchmarks/results/
    # learnable_balance.json). ewc_lambda and joint_lr (joint's own learning rate: 4e-3, against the
    # continual methods' 5e-4): chosen on a validation split (benchmarks/bench_tuning.py).
    "default": {"n_images": 6000, "image_size": 48, "encoder_width": 16, "steps_per_attribute": 400,
                "joint_steps": 400, "retrain_steps": 1200, "joint_lr": 4e-3, "ewc_lambda": 10.0, "joint_balance": "ratio", "balance_alpha": 2.0,
                "increments": "synth6x5", "style": "v2", "max_queries": 500, "max_candidates": 2000},
    # tests, and a first look: seconds per strategy
    "quick": {"n_images": 2400, "image_size": 32, "encoder_width": 16, "steps_per_attribute": 90,
              "joint_steps": 90, "retrain_steps": 270, "joint_lr": 4e-3, "ewc_lambda": 10.0, "joint_balance": "ratio", "balance_alpha": 2.0,
              "increments": "synth3", "style": "v1", "max_queries": 300, "max_candidates": 1000},
}
# Overlays for a pretrained encoder that trains its last stage(s) on cached trunk features
# (--encoder efficientnet_lite0): ImageNet features want larger images than a smallcnn (64 px: the
# last stage sees a 2x2 map; 96 px costs 2.2x per step for little gain on 60x80 product photos), and
# start close to a good solution, so fewer steps (see docs/results_real.md for what they reach).
# joint_lr: a pretrained trunk is trained at the continual methods' rate (joint's own rate was
# tuned for a smallcnn trained from scratch).
PRETRAINED = {
    "default": {"image_size": 64, "steps_per_attribute": 150, "joint_steps": 150, "retrain_steps": 150, "joint_lr": 5e-4},
    "quick": {"image_size": 64, "steps_per_attribute": 40, "joint_steps": 40, "retrain_steps": 40, "joint_lr": 5e-4},
}


def preset(quick: bool | None = None) -> dict:
    """The preset of the current mode (``quick=None`` reads ``MCLFIR_QUICK``)."""
    return dict(PRESETS["quick" if (quick_mode() if quick is None else quick) else "default"])


CONFIG_KEYS = ("encoder_width", "steps_per_attribute", "joint_steps", "retrain_steps", "joint_lr", "ewc_lambda", "joint_balance", "balance_alpha")
DEFAULT = PRESETS["default"]   # what Config's fields in CONFIG_KEYS default to


def preset_config(p: dict) -> dict:
    """The :class:`Config` fields a preset sets (steps, the joint budget, tuned values)."""
    return {k: p[k] for k in CONFIG_KEYS if k in p}


LOSSES = ("infonce", "ntxent", "triplet")
JOINT_BALANCES = ("sum", "ratio")
SEED_MAX = 2**32 - 1   # numpy's and torch's seeds are 32 and 64 bit; the runner multiplies them


@dataclass
class Config:
    """Everything that decides the numbers of a run (and so the checkpoint fingerprint).

    The fields a preset sets (:data:`CONFIG_KEYS`) default to the ``"default"`` preset's
    values: ``Config()`` is the lesson at full size. Which strategy reads which field is
    written in each strategy's docstring (:mod:`mclfir_lite.methods`)."""

    encoder: str = "smallcnn"
    encoder_width: int = DEFAULT["encoder_width"]
    encoder_trainable: bool = True
    trainable_blocks: int | None = None  # pretrained encoders: train the last N stages on cached trunk
                                    # features (0: frozen features, heads only); None: the whole encoder
    embed_dim: int = 64
    head: str = "se"                # se (AttributeHead) | asen (AttentionHead, the paper recipe)
    amp: bool = False               # mixed precision on CUDA (bf16, or fp16 with loss scaling); CPU: off
    steps_per_attribute: int = DEFAULT["steps_per_attribute"]
    joint_steps: int = DEFAULT["joint_steps"]  # joint: mixed steps per increment, each with batch_size doublets
                                    # of every seen attribute (whether it is converged is measured
                                    # by the strategies benchmark: notebook 07)
    retrain_steps: int = DEFAULT["retrain_steps"]  # retrain: mixed steps per fresh model (one per increment);
                                    # the budget at which one fresh model learns every attribute of the
                                    # plan (benchmarks/results/exploration_joint_budget.json: every attribute at
                                    # least +0.47 above chance at 1200 on both validation seeds)
    joint_lr: float = DEFAULT["joint_lr"]  # joint and retrain (mixed batches of every seen attribute): their own
                                    # learning rate, tuned on validation data (benchmarks/bench_tuning.py)
    joint_warm_start: bool = True   # joint: keep training one model (cumulative); False: from scratch
    joint_balance: str = DEFAULT["joint_balance"]  # joint: how a mixed batch's per-attribute losses combine (JOINT_BALANCES):
                                    # "sum" (each weight 1) | "ratio": weight (L_a / L_a at its first step)
                                    # ** balance_alpha, detached, mean 1 (GradNorm's inverse training rate)
    balance_alpha: float = DEFAULT["balance_alpha"]  # joint_balance="ratio": how strongly a lagging attribute is weighted up
    batch_size: int = 64
    lr: float = 5e-4               # the continual methods' (one attribute per step; joint has joint_lr)
    weight_decay: float = 1e-4
    loss: str = "infonce"          # infonce (masked) | ntxent (released code, unmasked) | triplet
    temperature: float = 0.1
    margin: float = 0.2             # triplet: margin on cosine similarity (ASEN's range)
    triplet_mining: str = "semihard"  # semihard (in-batch, as ASEN) | random (sampled negatives)
    ema_decay: float = 0.999
    ema_every: int = 1              # mclfir: update the EMA teacher every this many steps
    ema_carry: bool = False         # mclfir: one teacher carried across increments (False: a new
                                    # teacher, the last increment's model, at every increment)
    distill_weight: float = 1.0     # old heads' embeddings, student vs teacher (mclfir, lwf)
    feature_distill_weight: float = 1.0  # encoder features, student vs teacher (mclfir, lwf)
    ewc_lambda: float = DEFAULT["ewc_lambda"]  # tuned on a validation split (benchmarks/bench_tuning.py)
    ewc_batches: int = 10
    replay_per_attribute: int = 128  # searched on validation data (benchmarks/bench_tuning.py); not its best there
                                    # (512, the grid's edge): bench_baselines.py runs replay at 512 and at the
                                    # teacher's bytes too, paired with mclfir
    derpp_alpha: float = 2.0        # derpp: pull buffered rows' embeddings to those stored with them
    derpp_beta: float = 4.0         # derpp: InfoNCE on buffered doublets (replay); both at the tuning's best on
                                    # validation (bench_tuning.py, 2026-12-07: 2/4 0.719, 2/2 0.717, 0.5/2 0.684)
    flip: bool = True               # random horizontal flips while training
    seed: int = 0
    no_relevant: str = "zero"       # evaluation: a query with no relevant candidate has AP 0 (or "skip")
    device: str = "cpu"             # "cuda" on a GPU; not part of the fingerprint (resume anywhere)

    def __post_init__(self):
        self.validate(device=False)   # a wrong value fails here, before any training

    def validate(self, device: bool = True) -> None:
        """Check every field (type and range), raising ValueError naming the field; with
        ``device``, also that the device is there (checked when a runner is made, so that a
        Config for a GPU can be written on a laptop)."""
        for name in ("encoder_trainable", "amp", "joint_warm_start", "flip", "ema_carry"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"config.{name} must be True or False, got {getattr(self, name)!r}")
        for name, lo in (("encoder_width", 1), ("embed_dim", 1), ("steps_per_attribute", 1), ("joint_steps", 1), ("retrain_steps", 1),
                         ("batch_size", 1), ("ema_every", 1), ("ewc_batches", 1), ("replay_per_attribute", 1),
                         ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"config.{name} must be an integer, got {v!r}")
            if v < lo:
                raise ValueError(f"config.{name} must be >= {lo}, got {v}")
        if self.seed > SEED_MAX:
            raise ValueError(f"config.seed must be in 0..{SEED_MAX} (2**32 - 1), got {self.seed}")
        for name, lo, strict, hi in (("lr", 0, True, None), ("joint_lr", 0, True, None), ("temperature", 0, True, None),
                                     ("weight_decay", 0, False, None), ("margin", 0, False, None),
                                     ("ema_decay", 0, False, 1), ("distill_weight", 0, False, None),
                                     ("feature_distill_weight", 0, False, None), ("ewc_lambda", 0, False, None),
                                     ("balance_alpha", 0, False, None), ("derpp_alpha", 0, False, None),
                                     ("derpp_beta", 0, False, None)):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(v) or (v <= lo if strict else v < lo) or (hi is not None and v > hi):
                rng = f"in [{lo}, {hi}]" if hi is not None else f"{'>' if strict else '>='} {lo}"
                raise ValueError(f"config.{name} must be a finite number {rng}, got {v!r}")
        if not isinstance(self.encoder, str) or not self.encoder:
            raise ValueError(f"config.encoder must name an encoder, got {self.encoder!r}")
        if self.trainable_blocks is not None:
            from .core.encoders import check_trainable_blocks
            if isinstance(self.trainable_blocks, bool) or not isinstance(self.trainable_blocks, (int, np.integer)):
                raise ValueError(f"config.trainable_blocks must be None or an integer, got {self.trainable_blocks!r}")
            check_trainable_blocks(self.encoder, self.trainable_blocks)
        if self.head not in ("se", "asen"):
            raise ValueError(f"unknown head {self.head!r}; choose se or asen")
        if self.triplet_mining not in ("semihard", "random"):
            raise ValueError(f"unknown triplet_mining {self.triplet_mining!r}; choose semihard or random")
        if self.no_relevant not in metrics.NO_RELEVANT:
            raise ValueError(f"unknown no_relevant {self.no_relevant!r}; choose from {metrics.NO_RELEVANT}")
        if self.joint_balance not in JOINT_BALANCES:
            raise ValueError(f"unknown joint_balance {self.joint_balance!r}; choose from {JOINT_BALANCES}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose from {LOSSES}")
        if device and str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but torch sees no CUDA GPU here; use device='cpu'")
