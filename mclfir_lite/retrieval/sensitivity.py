"""Counterfactual sensitivity: *why* a head forgets or transfers.

SynthFashion can draw the same garment twice with exactly one thing changed: one attribute
(everything else, pose and background included, fixed), or the nuisances (pose,
background, light, noise; every attribute fixed). For each head we measure how far its
embedding moves under each change:

    S[h, f] = mean over garments of  1 - cos(e_h(x), e_h(x with factor f changed))

A head that does its job moves a lot when *its own* attribute changes (the diagonal) and
little for the others and for the nuisances. Forgetting shows up as a diagonal that fades
over increments while the encoder is re-purposed; interference shows up as a head that
starts to follow another attribute. No public benchmark of MCL-FIR has this picture: real
photos cannot be redrawn with one attribute changed.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.synth import ATTRIBUTES, render_one

NUISANCE = "nuisance"
FACTORS = (*ATTRIBUTES, NUISANCE)


def counterfactual_images(n: int, size: int, seed: int = 0, style: str = "v1") -> dict[str, torch.Tensor]:
    """``n`` garments and, per factor of :data:`FACTORS`, the same garments with that factor
    changed: ``{"base": uint8 (n, 3, size, size), factor: the same shape}``. An attribute is
    changed to another of its values (drawn uniformly among the others); ``"nuisance"``
    redraws pose, background, light and noise with every attribute kept. Seeded."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    out = {k: np.empty((n, size, size, 3), dtype=np.uint8) for k in ("base", *FACTORS)}
    for k in range(n):
        pick = np.random.default_rng([seed, 8111, k])
        labels = {a: int(pick.integers(len(v))) for a, v in ATTRIBUTES.items()}
        same = lambda: np.random.default_rng([seed, 8112, k])     # the same nuisances every call
        out["base"][k] = render_one(labels, size, same(), style=style)
        for a, values in ATTRIBUTES.items():
            other = (labels[a] + 1 + int(pick.integers(len(values) - 1))) % len(values)
            out[a][k] = render_one({**labels, a: other}, size, same(), style=style)
        out[NUISANCE][k] = render_one(labels, size, np.random.default_rng([seed, 8113, k]), style=style)
    return {k: torch.from_numpy(v).permute(0, 3, 1, 2).contiguous() for k, v in out.items()}


@torch.no_grad()
def sensitivity(model, images: dict[str, torch.Tensor], heads=None, batch_size: int = 256) -> dict[str, dict[str, float]]:
    """``{head: {factor: mean 1 - cos}}`` for the model's heads (or ``heads``), eval mode."""
    from ..training.evaluate import embed
    heads = list(model.attributes if heads is None else heads)
    rows = np.arange(len(images["base"]))
    out = {}
    for h in heads:
        base = torch.nn.functional.normalize(embed(model, images["base"], rows, h, batch_size), dim=1)
        out[h] = {}
        for f in FACTORS:
            moved = torch.nn.functional.normalize(embed(model, images[f], rows, h, batch_size), dim=1)
            out[h][f] = float((1 - (base * moved).sum(1)).mean())
    return out


def selectivity(matrix: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per head: its own attribute's movement over the largest movement caused by any other
    factor (attribute or nuisance). Above 1: the head follows its attribute more than
    anything else; near or below 1: it is at the mercy of other factors."""
    return {h: row[h] / max(max(v for f, v in row.items() if f != h), 1e-12) for h, row in matrix.items()}


def over_increments(runner, images: dict[str, torch.Tensor]) -> list[dict[str, dict[str, float]]]:
    """The matrix after each increment of a finished run, for the heads it had then."""
    return [sensitivity(runner.model_after(i), images) for i in range(len(runner.increments))]
