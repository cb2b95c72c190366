"""Encoder features computed once and kept on disk.

A frozen encoder gives the same features for an image every time it sees it, so there is
no need to run it at every training step: :func:`encode_dataset` runs it once over all
images, in batches, and caches the result under
``<cache>/features/<key>.pt``, where ``key`` is a SHA-1 of

* the encoder's description and class, and a digest of its weights (so a different
  checkpoint, or the EfficientNet fallback of a missing CLIP model, gets its own file);
* the image size and a digest of the image bytes (the dataset fingerprint);
* any ``key_parts`` the caller adds (e.g. :func:`mclfir_lite.data.datasets.fingerprint`).

The next call with the same key loads the file instead of encoding, after checking it
(a float32 tensor with a row per image and the encoder's channels, every value
finite); a damaged file is
recomputed and replaced, with one line on stderr naming it. With cached
features the continual runner trains only the heads (``ContinualRunner(...,
features=...)``), which on a CPU is one to two orders of magnitude faster than running a
pretrained encoder at every step; the price is that training-time augmentation (random
flips) no longer applies.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_write_file
from ..data.table import cache_notice
from ..settings import cache_dir


def weights_digest(module: nn.Module) -> str:
    """SHA-1 of a module's state (names, dtypes, shapes and values of every tensor)."""
    h = hashlib.sha1()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def images_digest(images: torch.Tensor) -> str:
    """SHA-1 of a uint8 image tensor's shape and bytes: the dataset fingerprint of the cache key."""
    h = hashlib.sha1(str(tuple(images.shape)).encode())
    h.update(np.ascontiguousarray(images.cpu().numpy()).tobytes())
    return h.hexdigest()


def feature_key(encoder: nn.Module, images: torch.Tensor, key_parts=()) -> str:
    """The cache key of ``encoder``'s features of ``images`` (see the module docstring)."""
    fields = {"encoder": getattr(encoder, "description", "") or type(encoder).__name__,
              "class": f"{type(encoder).__module__}.{type(encoder).__qualname__}",
              "input_size": getattr(encoder, "input_size", None),
              "weights": weights_digest(encoder), "image_size": list(images.shape[-2:]),
              "images": images_digest(images), "parts": [str(p) for p in key_parts]}
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def feature_path(key: str) -> Path:
    return cache_dir() / "features" / f"{key}.pt"


@torch.no_grad()
def encode_dataset(encoder: nn.Module, images_uint8: torch.Tensor, key_parts=(), *, batch_size: int = 128,
                   use_cache: bool = True, progress: bool = True) -> torch.Tensor:
    """``encoder``'s features of every image, float32 on the CPU: ``(N, C, h, w)`` for a
    feature-map encoder, ``(N, D)`` for a pooled tower. Computed once in batches (eval
    mode, no gradients, a tqdm bar), cached on disk and reused (see the module docstring).
    """
    if not isinstance(images_uint8, torch.Tensor) or images_uint8.dtype != torch.uint8 or images_uint8.ndim != 4 \
            or images_uint8.shape[1] != 3:
        shape = tuple(getattr(images_uint8, "shape", ()))
        raise ValueError(f"encode_dataset needs a uint8 tensor (N, 3, H, W), got "
                         f"{type(images_uint8).__name__} {getattr(images_uint8, 'dtype', '')} {shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    path = feature_path(feature_key(encoder, images_uint8, key_parts)) if use_cache else None
    params = list(encoder.parameters())
    device = params[0].device if params else torch.device("cpu")
    if path is not None and path.is_file():
        feats, why = _read_cached(path, encoder, images_uint8, device)
        if why is None:
            return feats
        cache_notice(path, why, "recomputing the features")
    from tqdm.auto import tqdm
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for s in tqdm(range(0, len(images_uint8), batch_size), desc="encoding images", disable=not progress,
                      leave=False):
            out.append(encoder(images_uint8[s:s + batch_size].to(device)).float().cpu())
    finally:
        encoder.train(was_training)
    feats = torch.cat(out) if out else torch.empty(0)
    if path is not None:
        atomic_write_file(path, lambda f: torch.save({"features": feats, "encoder": getattr(encoder, "description", ""),
                                                      "images": tuple(images_uint8.shape)}, f))
    return feats


def _read_cached(path: Path, encoder: nn.Module, images: torch.Tensor, device) -> tuple[torch.Tensor | None, str | None]:
    """The features cached at ``path`` and None, or None and why they cannot be used: an
    unreadable or foreign file, not a float32 tensor, another shape than ``encoder`` gives
    (``(N, C, h, w)`` or ``(N, C)``, with ``C`` its ``out_channels``; an encoder without
    ``out_channels`` encodes one image to know its shape), or values that are not finite."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: recompute rather than fail
        return None, f"cannot read it: {type(err).__name__}: {err}"
    feats = saved.get("features") if isinstance(saved, dict) else None
    if not isinstance(feats, torch.Tensor):
        return None, f"it holds {type(saved).__name__}, not a dict with a 'features' tensor"
    if feats.dtype != torch.float32:
        return None, f"its features are {feats.dtype}, expected torch.float32"
    n, channels = len(images), getattr(encoder, "out_channels", None)
    if channels is None and n:
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.no_grad():
                one = encoder(images[:1].to(device))
        finally:
            encoder.train(was_training)
        ok, expected = tuple(feats.shape) == (n, *one.shape[1:]), (n, *one.shape[1:])
    else:
        ok = feats.ndim in (2, 4) and len(feats) == n and (channels is None or feats.shape[1] == channels)
        expected = f"({n}, {channels}) or ({n}, {channels}, h, w)"
    if not ok:
        return None, f"its features have shape {tuple(feats.shape)}, expected {expected}"
    if not bool(torch.isfinite(feats).all()):
        return None, f"{int((~torch.isfinite(feats)).sum())} of its values are NaN or infinite"
    return feats, None


def pooled(features: torch.Tensor) -> torch.Tensor:
    """Global average pooling of ``(N, C, h, w)`` features (vectors pass through), then L2
    normalisation: the *generic* embedding of an image, blind to any attribute."""
    f = features.float()
    if f.ndim == 4:
        f = f.mean(dim=(2, 3))
    elif f.ndim != 2:
        raise ValueError(f"features must be (N, C, h, w) or (N, D), got shape {tuple(f.shape)}")
    return torch.nn.functional.normalize(f, dim=-1)
