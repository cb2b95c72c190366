"""baselines: the tuned-alike baselines against mclfir, on the strategies benchmark's seeds and orders.

The strategies benchmark holds the lesson's five strategies (``joint``, ``isolated``,
``finetune``, ``lwf``, ``mclfir``). This one runs the other baselines the issue asks to be
tuned alike: ``ewc`` (online EWC, lambda chosen on validation) and ``replay`` (a buffer of old
training rows at the preset's size, ``Config.replay_per_attribute``: more than the bytes of
MCL-FIR's teacher hold, which the tuning benchmark compares), each at its preset, over the same
seeds and three task orders (the hardest attribute is
measured again, from ``isolated`` runs on the lesson's order). ``mclfir`` is trained again
beside them, so that every paired difference compares runs of one machine: another CPU rounds
differently (``bench_threads`` measures how far), which would add its difference to every
pair. The tuning benchmark says how far each preset is from the best configuration it found.
``derpp`` (DER++: replay plus distillation of the stored embeddings) at its tuned weights.
``--strategies`` is not read here; ``STRATEGIES`` is.

Usage: ``python benchmarks/run_all.py --only baselines --threads 1``.
"""
from __future__ import annotations

import sys

import _common as C
import bench_strategies as S

STRATEGIES = ("mclfir", "ewc", "replay", "derpp")
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = STRATEGIES + ("isolated",)   # isolated: the hardest attribute


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, fresh: bool = False, **_) -> dict:
    """:func:`bench_strategies.run` with :data:`STRATEGIES` (no ``joint``, so no budget doubling)."""
    return S.run(quick=quick, seed=seed, device=device, processes=processes, fresh=fresh, strategies=STRATEGIES)


render, readme = S.render, S.readme


if __name__ == "__main__":
    C.main(sys.modules[__name__])
