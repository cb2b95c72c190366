"""Continual-learning methods: one file per method, each a small class behind the runner's
one generic loop (the hooks are in :mod:`~mclfir_lite.methods.base`).

============  =====================================================================
``joint``     the upper bound: at every increment the shared-encoder model trains on
              *all* attributes seen so far, every step a mixed batch (each
              attribute's loss summed, or balanced by ``joint_balance``), with a budget large enough to converge
              (``Config.joint_steps``); it keeps training the same model (the
              "cumulative" upper bound; ``joint_warm_start=False`` retrains from
              scratch, which then has no forgetting).
``retrain``   the cost reference: a fresh model per increment, mixed batches of every
              seen attribute (as ``joint``) with the continual methods' sample budget
              (the static method the paper compares costs with). Not an upper bound.
``finetune``  shared encoder + one head per attribute, new attributes only.
``frozen``    the encoder is trained in the first increment, then frozen.
``isolated``  one encoder copy per attribute (parameter isolation).
``released``  what the released MCL-FIR code runs: ``isolated`` + unmasked NT-Xent at
              tau 0.3 + 1e-4 x MSE to a teacher that is never updated.
``lwf``       Learning without Forgetting: MCL-FIR with a frozen teacher (the last model).
``ewc``       Elastic Weight Consolidation: a Fisher-weighted penalty on moving.
``replay``    a small buffer of earlier training rows is rehearsed.
``mclfir``    the described MCL-FIR: an EMA teacher that follows the student.
``derpp``     Dark Experience Replay++: replay whose buffer also keeps each row's
              embedding, pulled back to it (replay + distillation, no teacher network).
============  =====================================================================

:data:`STRATEGY_CLASSES` is the registry (name -> class); :func:`check_strategies` checks
names against it.
"""
from __future__ import annotations

from .base import Batch, Costs, Strategy
from .derpp import DERpp
from .ewc import EWC
from .finetune import Finetune
from .frozen import Frozen
from .isolated import Isolated
from .joint import Joint
from .lwf import LwF
from .mclfir import MCLFIR, EMATeacher
from .released import Released
from .replay import Replay
from .retrain import Retrain

STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Joint, Retrain, Finetune, Frozen, Isolated, Released, LwF, EWC, Replay, MCLFIR, DERpp)}
STRATEGIES = tuple(STRATEGY_CLASSES)

__all__ = ["Batch", "Costs", "Strategy", "EMATeacher", "STRATEGY_CLASSES", "STRATEGIES", "check_strategies",
           *(cls.__name__ for cls in STRATEGY_CLASSES.values())]


def check_strategies(names) -> list[str]:
    """``names`` as a list, when every one is a registered method (else ValueError naming them)."""
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy(ies) {unknown}; choose from {list(STRATEGIES)}")
    if not names:
        raise ValueError("no strategy given")
    return list(names)
