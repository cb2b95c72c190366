"""Where the runner's batches come from, and what is different under ``torchrun``.

Everything data-parallel in a training step is here, so that the loop itself
(:meth:`mclfir_lite.training.runner.ContinualRunner.train_increment`) reads the same with
one process or many (:mod:`mclfir_lite.training.distributed` explains the arithmetic):

* :class:`BatchSource`: this rank's part of every global batch: the rows drawn from a
  :class:`~mclfir_lite.data.table.PairSampler` with the run's seeded stream, and their
  (randomly flipped) images, or the cached features that stand in for them;
* :class:`GatheredLoss`: the contrastive losses over the doublets of *every* rank
  (gathered), with the gradient scaled so that the mean over ranks is the single-process
  gradient of the global batch;
* :func:`optimizer_step` / :func:`backward`: backward, then the gradients averaged over
  the ranks (what DistributedDataParallel does), then the optimiser step;
* :func:`share_state`: every rank continues from rank 0's method state (a Fisher, a buffer).

Single-process, every one of them is the plain thing (no gather, no all-reduce).
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.losses import doublet_infonce, semi_hard_triplet_loss
from ..data.table import PairSampler
from . import distributed as dist


class BatchSource:
    """This rank's rows of each global batch, and their inputs on the run's device.

    ``images``: uint8 ``(N, 3, S, S)``; ``features``: cached encoder (or trunk) outputs, one
    row per image, used instead of the images (no flips then), or None."""

    def __init__(self, images: torch.Tensor, features: torch.Tensor | None, flip: bool, device):
        self.images, self.features, self.flip, self.device = images, features, flip, device

    @staticmethod
    def rng(seed_parts) -> np.random.Generator:
        """This rank's sampling stream (the single-process one without torchrun)."""
        return dist.rank_rng(seed_parts)

    @staticmethod
    def world_size() -> int:
        return dist.world_size()

    def inputs(self, rows: np.ndarray, rng: np.random.Generator, keep: np.ndarray | None = None) -> torch.Tensor:
        """The (flipped) training images of ``rows``; only those at positions ``keep`` when
        given (this rank's part of rows drawn for the whole global batch; the flips are drawn
        for all of them, as in one process)."""
        flip = rng.random(len(rows)) < 0.5 if self.flip and self.features is None else None
        if keep is not None:
            rows, flip = rows[keep], (None if flip is None else flip[keep])
        if self.features is not None:  # cached encoder outputs stand in for the images
            return self.features[torch.as_tensor(rows)].to(self.device)
        x = self.images[torch.as_tensor(rows)]
        if flip is not None:
            flip = torch.as_tensor(flip)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.to(self.device)

    def doublets(self, sampler: PairSampler, batch: int, rng):
        """``(anchors, x, b)``: this rank's ``b`` anchor rows and the inputs of its doublets
        (``b`` anchors, then ``b`` positives) of a global batch of ``batch`` doublets."""
        b, n = dist.shard(batch), dist.draw_size(batch)   # this rank's part; how many to draw
        a, p = sampler.doublets(n, rng)
        keep = dist.local_part(n, 2)
        x = self.inputs(np.concatenate([a, p]), rng, keep)
        return a[keep[:b]], x, b

    def triplets(self, sampler: PairSampler, batch: int, rng):
        """``(anchors, x, b)`` for ``batch`` triplets with sampled negatives (anchors,
        positives, negatives: ``3 b`` inputs)."""
        b, n = dist.shard(batch), dist.draw_size(batch)
        a, p, neg = sampler.triplets(n, rng)
        keep = dist.local_part(n, 3)
        x = self.inputs(np.concatenate([a, p, neg]), rng, keep)
        return a[keep[:b]], x, b

    def mixed(self, samplers: dict, attrs: list[str], batch: int, rng):
        """``(anchors per attribute, x, b)``: ``batch`` doublets of every attribute in ``attrs``,
        attribute after attribute (each ``b`` anchors then ``b`` positives)."""
        b, n = dist.shard(batch), dist.draw_size(batch)
        pairs = [samplers[a].doublets(n, rng) for a in attrs]
        rows = np.concatenate([np.concatenate(p) for p in pairs])
        x = self.inputs(rows, rng, dist.local_part(n, 2 * len(attrs)))
        mine = dist.local_part(n)
        return [anchor[mine] for anchor, _ in pairs], x, b


class GatheredLoss:
    """The in-batch losses over the doublets of every rank, as in one process.

    ``labels``: ``{attribute: int array}`` (the masked InfoNCE and semi-hard mining read them)."""

    def __init__(self, config, labels: dict):
        self.config, self.labels = config, labels

    def pairs(self, attr: str, za, zp, anchors) -> torch.Tensor:
        """InfoNCE (``loss="infonce"``, same-value items masked) or unmasked NT-Xent of the
        doublets (``za``, ``zp``), over the doublets of every rank."""
        c = self.config
        za, zp = dist.gather(za), dist.gather(zp)
        # labels on the embeddings' device: NCCL gathers CUDA tensors only
        y = dist.gather(torch.as_tensor(self.labels[attr][anchors], device=za.device)) if c.loss == "infonce" else None
        return dist.global_loss(doublet_infonce(za, zp, y, c.temperature))

    def semi_hard(self, attr: str, za, zp, anchors) -> torch.Tensor:
        """The triplet loss with semi-hard negatives mined in the whole global batch (ASEN)."""
        y = dist.gather(torch.as_tensor(self.labels[attr][anchors], device=za.device))
        return dist.global_loss(semi_hard_triplet_loss(dist.gather(za), dist.gather(zp), y, self.config.margin))


def backward(loss: torch.Tensor, params) -> None:
    """``loss.backward()``, then the gradients of ``params`` averaged over the ranks."""
    loss.backward()
    dist.sync_gradients(params)


def optimizer_step(opt: torch.optim.Optimizer, scaler, loss: torch.Tensor, params) -> None:
    """One optimiser step on ``loss``: zero the gradients, backward (scaled under fp16 mixed
    precision), average the gradients over the ranks, step, update the scaler."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    dist.sync_gradients(params)                  # under torchrun: average over the ranks
    scaler.step(opt)
    scaler.update()


def share_state(method) -> None:
    """Under torchrun: every rank continues from rank 0's method state (EWC's Fisher, a
    replay buffer). Single-process: nothing."""
    if dist.active():
        method.load_state(dist.broadcast(method.state()))
