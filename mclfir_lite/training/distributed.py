"""Data-parallel training under ``torchrun``, and a no-op without it.

``torchrun --standalone --nproc_per_node=N -m mclfir_lite demo ...`` starts N copies of
the same command; torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous variables. :func:`init` reads them and joins the process group (gloo on the
CPU, NCCL on CUDA, one GPU per local rank). Without them every function here does
nothing, so single-process code pays nothing and reads the same.

How the runner uses it (docs/distributed.md has the commands):

* every rank builds the same model from the same seed;
* each rank samples its own shard of doublets from its own seeded stream
  (:func:`rank_rng`), ``batch / world_size`` of them (:func:`shard`): the global batch
  equals the single-process batch (``MCLFIR_DDP_STREAMS=shared``, a check: every rank
  draws the single-process global batch and keeps its part, :func:`local_part`);
* the contrastive loss sees the negatives of every rank: the embeddings are gathered
  (:func:`gather`) and the loss's gradient scaled (:func:`global_loss`), so that the
  averaged gradient is the single-process gradient of the global batch;
* after ``backward`` the gradients are averaged over the ranks (:func:`sync_gradients`,
  the all-reduce DistributedDataParallel does, flattened into one buffer per dtype), so
  every rank takes the same optimiser step and the models, and an EMA teacher that
  follows them, stay identical;
* EWC's Fisher squares the all-reduced gradient of each global batch (the single-process
  estimate); what a strategy keeps between increments (EWC's Fisher, a replay buffer) is
  then taken from rank 0 (:func:`broadcast`), so every rank continues from the same state;
* evaluation and checkpoints run on rank 0 while the others wait (:func:`on_main`).
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True when this process was started by torchrun (or another launcher that sets the
    standard environment variables) with more than one process."""
    return all(v in os.environ for v in ("RANK", "WORLD_SIZE")) and int(os.environ["WORLD_SIZE"]) > 1


def active() -> bool:
    """True once the process group is up (after :func:`init` under torchrun)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init(device: str = "cpu") -> str:
    """Join the process group when launched by torchrun; return the device for this rank.

    gloo on the CPU; NCCL on CUDA, each process on GPU ``LOCAL_RANK`` (``device="cuda"``
    becomes ``cuda:<LOCAL_RANK>``). Without torchrun: nothing happens, ``device`` is
    returned as it is.
    """
    cuda = str(device).startswith("cuda")
    if active():
        return f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if cuda else device
    if not launched():
        return device
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {missing} are not set; start the "
                           "command with torchrun (see docs/distributed.md)")
    if cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda under torchrun, but torch sees no CUDA GPU here")
        local = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    if active():
        dist.barrier()
        dist.destroy_process_group()


def shard(batch: int) -> int:
    """This rank's part of a global batch of ``batch`` samples (``batch // world_size``).

    The global batch must split evenly, so that it equals the single-process batch; an
    uneven split is an error that names both numbers."""
    w = world_size()
    if batch % w:
        raise ValueError(f"batch size {batch} does not split evenly over {w} processes; "
                         f"use a multiple of {w} (the global batch must equal the single-process one)")
    return batch // w


STREAMS_VAR = "MCLFIR_DDP_STREAMS"


def shared_streams() -> bool:
    """True under torchrun with ``MCLFIR_DDP_STREAMS=shared``: every rank draws the whole
    global batch from the single-process stream and keeps its own part of it, so the run
    reproduces the single-process run up to floating-point rounding. A check of the
    distributed arithmetic (tests/test_distributed.py), not the way to train: every rank
    draws every sample's indices. The default (``rank``) is one stream per rank."""
    mode = os.environ.get(STREAMS_VAR, "rank")
    if mode not in ("rank", "shared"):
        raise ValueError(f"{STREAMS_VAR}={mode!r}; choose 'rank' (the default) or 'shared'")
    return active() and mode == "shared"


def rank_rng(seed_parts) -> np.random.Generator:
    """This rank's sampling stream: ``default_rng([*seed_parts])`` single-process (the
    same stream as before), ``default_rng([*seed_parts, rank])`` under torchrun (the
    single-process stream again with :func:`shared_streams`)."""
    parts = list(seed_parts)
    return np.random.default_rng(parts + [rank()] if active() and not shared_streams() else parts)


def draw_size(batch: int) -> int:
    """How many samples to draw from the stream for a global batch of ``batch``: this
    rank's :func:`shard`, or the whole batch with :func:`shared_streams`."""
    b = shard(batch)
    return batch if shared_streams() else b


def local_part(n: int, blocks: int = 1) -> np.ndarray:
    """Positions of this rank's samples in ``blocks`` consecutive blocks of ``n`` drawn
    samples (anchors, then positives, ...): everything when each rank drew its own shard,
    the rank's contiguous slice of every block with :func:`shared_streams`."""
    if not shared_streams():
        return np.arange(n * blocks)
    b, r = n // world_size(), rank()
    return np.concatenate([np.arange(k * n + r * b, k * n + (r + 1) * b) for k in range(blocks)])


def gather(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every rank, concatenated along dim 0 in rank order (equal shapes). Only
    this rank's part carries a gradient; the others are constants here (their gradient is
    computed on their own rank). Single-process: ``x``."""
    if not active():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank()] = x
    return torch.cat(parts)


def global_loss(loss: torch.Tensor) -> torch.Tensor:
    """A loss computed on :func:`gather`-ed embeddings, with its gradient scaled by the
    world size and its value unchanged. Each rank's gradient then holds ``W`` times its
    own samples' share of the global loss's gradient, and :func:`sync_gradients`' mean over
    the ranks is exactly the single-process gradient of the global batch."""
    w = world_size()
    return loss if w == 1 else loss + (w - 1) * (loss - loss.detach())


def sync_gradients(params) -> None:
    """Average the gradients of ``params`` over the ranks: one all-reduce per dtype on a
    flattened buffer (what DistributedDataParallel does after ``backward``). A parameter
    without a gradient on some rank counts as a zero gradient there."""
    if not active():
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict = {}
    for p in params:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    w = world_size()
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= w
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over the ranks (a new tensor; ``x`` itself single-process)."""
    if not active():
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / world_size()


def broadcast(obj, src: int = 0):
    """Rank ``src``'s ``obj`` (any picklable object, tensors included) on every rank."""
    if not active():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def on_main(fn: Callable, *args, **kwargs):
    """Run ``fn`` on rank 0 only, then give its result to every rank (the others wait)."""
    result = fn(*args, **kwargs) if is_main() else None
    return broadcast(result)


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. fills a disk cache), then the others do."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()
