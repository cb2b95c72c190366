"""Checkpoints that cannot run code, and run fingerprints that notice any change.

Two small tools that keep long runs and their caches honest:

* :func:`save` / :func:`load`: nested plain data (dict, list, tuple, str, int, float,
  bool, None), torch tensors and numpy arrays, written atomically (a temp file with a
  unique name, then ``os.replace``) and read back with ``torch.load(weights_only=True)``,
  which refuses to unpickle anything else. Numpy arrays are stored as tensors (or lists,
  for object arrays) with a marker and come back as numpy arrays. A file that is not such
  a checkpoint (a pickle with code in it, a bare list, a foreign or damaged file) is a
  :class:`CheckpointError` naming the file; it is never executed.
* :func:`fingerprint`: one SHA-1 over every field that decides a run's numbers, kept
  with the fields themselves so that a mismatch can name what differs
  (:func:`differing_fields`). :func:`run_fingerprint` builds the fields of a continual run:
  dataset content (labels, split rows, a digest of the image bytes), image size, the
  evaluation protocol, plan, config, strategy, package version and a digest of the code
  that computes the numbers.
* the safe writes, the folder lock and the digests underneath live in
  :mod:`mclfir_lite.files` (the base layer: data and retrieval caches use them too).
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write_file, code_fields, fingerprint, tensor_digest

FORMAT = "mclfir_lite.checkpoint"   # the format's name (kept from the flat layout: older checkpoints stay readable)
FORMAT_VERSION = 1
_NDARRAY = "__ndarray__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, foreign, unsafe, or made with
    another configuration. The message names the file."""


# ---------------------------------------------------------------------------- save / load

def _to_safe(obj, where: str = "checkpoint"):
    """``obj`` with numpy arrays and scalars turned into what ``weights_only`` loading accepts."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object or obj.dtype.kind in "USV":  # strings, objects: a flat list
            return {_NDARRAY: obj.ravel().tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj)).clone(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; only str and int keys can be saved")
        return {k: _to_safe(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be saved safely; "
                    "use plain data, tensors or numpy arrays")


def _from_safe(obj):
    if isinstance(obj, dict):
        if _NDARRAY in obj:
            data, dtype = obj[_NDARRAY], np.dtype(obj["dtype"])
            if isinstance(data, torch.Tensor):
                return data.numpy().astype(dtype, copy=False)
            arr = np.empty(len(data), dtype=dtype)
            arr[:] = data
            return arr.reshape(obj["shape"])
        return {k: _from_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_safe(v) for v in obj)
    return obj


def save(path: str | Path, state: dict, fingerprint: dict | None = None) -> Path:
    """Write ``state`` (plain data, tensors, numpy arrays; see the module docstring) and the
    run's ``fingerprint`` to ``path`` atomically."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "fingerprint": fingerprint,
               "state": _to_safe(state)}
    return atomic_write_file(path, lambda f: torch.save(payload, f))


def load(path: str | Path, fingerprint: dict | None = None) -> dict:
    """Read a checkpoint written by :func:`save`, without unpickling anything but tensors
    and plain data. With ``fingerprint``, a checkpoint made with another one raises
    :class:`CheckpointError` naming the fields that differ. Returns the state."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # UnpicklingError (unsafe content), RuntimeError (not a torch file), EOFError, ...
        raise CheckpointError(f"checkpoint {path} cannot be read safely: {_why_unreadable(err)}; it was not "
                              "loaded. Delete it (or use --fresh) to start over") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = type(payload).__name__ if not isinstance(payload, dict) else f"a dict with keys {sorted(payload)[:6]}"
        raise CheckpointError(f"checkpoint {path} is not a mclfir_lite checkpoint (it holds {what}); "
                              "delete it (or use --fresh) to start over")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('format_version')}, "
                              f"this code reads {FORMAT_VERSION}; delete it (or use --fresh) to start over")
    if fingerprint is not None:
        check_fingerprint(path, payload.get("fingerprint"), fingerprint)
    return _from_safe(payload["state"])


def _why_unreadable(err: Exception) -> str:
    """The gist of torch.load's error (its own text suggests weights_only=False: not here)."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n")[0]
        detail = detail.split(" was not an allowed")[0].strip()
        if "global" in detail.lower():
            return f"it holds objects other than tensors and plain data ({detail}), which could run code"
        return f"it is damaged or not a checkpoint ({detail})"
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f"it is damaged or not a checkpoint ({type(err).__name__}{': ' + first if first else ''})"


# ---------------------------------------------------------------------------- fingerprints

def differing_fields(old: dict | None, new: dict) -> list[str]:
    """Names of the fields in which two fingerprints differ (all of them when ``old`` has none)."""
    a, b = (old or {}).get("fields", {}) or {}, new.get("fields", {})
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def difference_text(old: dict | None, new: dict) -> str:
    """``"differs in: a, b; a: old -> new; b: ..."`` for two fingerprints."""
    diff = differing_fields(old, new)
    a = (old or {}).get("fields", {}) or {}
    shown = "; ".join(f"{k}: {' -> '.join(_shown_pair(a.get(k), new['fields'].get(k)))}" for k in diff[:6])
    return f"differs in: {', '.join(diff) or 'unknown'}; {shown}"


def check_fingerprint(path, old: dict | None, new: dict) -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the differing fields unless the hashes match."""
    if (old or {}).get("hash") == new["hash"]:
        return
    raise CheckpointError(f"checkpoint {path} was made with a different configuration ({difference_text(old, new)}); "
                          "use another output directory, or --fresh to start over")


def _shown_pair(a, b, n: int = 40) -> tuple[str, str]:
    """Both values, cut to ``n`` characters around where they first differ (not to a common prefix)."""
    a, b = ("(none)" if v is None else str(v) for v in (a, b))
    if len(a) <= n and len(b) <= n:
        return a, b
    start = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, start - 10)
    cut = lambda s: ("..." if start else "") + s[start:start + n] + ("..." if len(s) > start + n else "")
    return cut(a), cut(b)


def protocol_digest(protocol: dict) -> str:
    """Digest of every attribute's train, query and candidate rows."""
    h = hashlib.sha1()
    for attr in sorted(protocol):
        s = protocol[attr]
        h.update(attr.encode())
        for part in (s.train, s.query, s.candidate):
            h.update(tensor_digest(np.asarray(part, dtype=np.int64)).encode())
    return h.hexdigest()[:16]


def data_fields(images: torch.Tensor, labels: dict, protocol: dict) -> dict:
    """The fields that pin a run's data: image size, a digest of the image bytes, of the
    labels of the protocol's attributes, and of the protocol's rows (so its caps, query
    fraction and seed)."""
    return {**_shape_fields(images.shape), "images": tensor_digest(images), "labels": _labels_digest(labels, protocol),
            "protocol": protocol_digest(protocol)}


def _shape_fields(shape) -> dict:
    shape = tuple(shape)
    return {"image_size": "x".join(map(str, shape[-2:])), "n_images": shape[0]}


def _labels_digest(labels: dict, protocol: dict) -> str:
    lab = hashlib.sha1()
    for a in sorted(protocol):
        lab.update(a.encode() + tensor_digest(np.asarray(labels[a])).encode())
    return lab.hexdigest()[:16]


# Config fields that only these strategies read (each strategy's docstring lists what it reads):
# a run of another built-in strategy leaves them out of its fingerprint, so that a change to,
# say, joint's budget or replay's buffer re-runs that strategy and nothing else.
# tests/test_run_fingerprint.py checks, for every other strategy, that changing all of them
# leaves its numbers exactly as they were. Listing a strategy that does not read a field is
# safe (the field stays in its fingerprint); leaving out one that does is what the test catches.
_TEACHER = ("mclfir", "lwf", "released")
READ_ONLY_BY = {"joint_steps": ("joint",), "joint_warm_start": ("joint",), "retrain_steps": ("retrain",),
                "joint_lr": ("joint", "retrain"), "joint_balance": ("joint", "retrain"),
                "balance_alpha": ("joint", "retrain"),
                "ewc_lambda": ("ewc",), "ewc_batches": ("ewc",),
                "replay_per_attribute": ("replay", "derpp"), "derpp_alpha": ("derpp",), "derpp_beta": ("derpp",),
                "ema_decay": _TEACHER, "ema_every": _TEACHER, "ema_carry": _TEACHER,
                "distill_weight": _TEACHER, "feature_distill_weight": _TEACHER}


def config_fields(config, strategy: str) -> dict:
    """The :class:`~mclfir_lite.config.Config` fields that decide a run of ``strategy``: every
    field but ``device`` (a run may resume on another device), and but the fields of
    :data:`READ_ONLY_BY` that a built-in ``strategy`` does not read."""
    from ..methods import STRATEGIES
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    unread = {k for k, readers in READ_ONLY_BY.items() if strategy in STRATEGIES and strategy not in readers}
    return {k: v for k, v in cfg.items() if k != "device" and k not in unread}


def run_fingerprint(config, strategy: str, increments, images: torch.Tensor, labels: dict, protocol: dict,
                    extra: dict | None = None) -> dict:
    """The fingerprint of a continual run: the :class:`~mclfir_lite.config.Config` fields that
    decide it (:func:`config_fields`), the strategy and plan, :func:`data_fields`,
    :func:`code_fields`, and ``extra`` (e.g. the dataset's name and the protocol caps, so that
    a mismatch names them)."""
    fields = config_fields(config, strategy)
    fields.update(strategy=strategy, increments=[list(g) for g in increments])
    fields.update(data_fields(images, labels, protocol))
    fields.update(code_fields(strategy))   # the code this strategy runs (files.strategy_code_digest)
    fields.update(extra or {})
    return fingerprint(fields)


def scoped_code_digest(strategies, quick: bool = False, sources=()) -> str:
    """Digest (12 hex digits) of what decides a benchmark result made of runs of ``strategies``:
    the shared numeric code and the package code that turns runs into a result
    (:data:`files.RESULT_MODULES`: the statistics, the lab, the sensitivity matrix, the registry),
    the code each strategy runs (:func:`files.strategy_code_digest`), the
    :class:`~mclfir_lite.config.Config` each strategy's runs get from the preset of that size,
    as the package builds it (``config.preset_config``, then ``Config``'s own checks), and the
    benchmark's own ``sources`` (paths from the checkout's root). A result records it with its
    strategies (``code_scope``), so that a later change to another strategy's code or fields
    provably leaves it as it was (``benchmarks/migrate_digest.py`` carries it over)."""
    import json
    from ..config import Config, preset, preset_config
    from ..files import RESULT_MODULES, modules_code_digest, shared_modules, source_digest, strategy_code_digest
    cfg, h = Config(**preset_config(preset(bool(quick)))), hashlib.sha1()
    common = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in READ_ONLY_BY and k != "device"}
    h.update(f"shared:{modules_code_digest(shared_modules() + RESULT_MODULES)}:"
             f"{json.dumps(common, sort_keys=True, default=repr)}".encode())
    for s in sorted({str(s) for s in strategies}):
        h.update(f"{s}:{strategy_code_digest(s)}:{json.dumps(config_fields(cfg, s), sort_keys=True, default=repr)}".encode())
    root = Path(__file__).resolve().parents[2]
    for src in sorted(sources):
        h.update(f"{src}:{source_digest(root / src)}".encode())
    return h.hexdigest()[:12]


def unread_fields(strategies) -> set[str]:
    """The :data:`READ_ONLY_BY` fields that no run of ``strategies`` reads (a preset may change
    them without changing such a result); none when a strategy is not a built-in one."""
    scope = {str(s) for s in strategies}
    from ..methods import STRATEGIES
    if not scope <= set(STRATEGIES):   # a strategy from outside the package: it may read anything
        return set()
    return {k for k, readers in READ_ONLY_BY.items() if not scope & set(readers)}


def run_identity(config, increments, image_shape, labels: dict, protocol: dict, extra: dict | None = None) -> dict:
    """The fingerprint of a demo run as a whole (kept in its results.json, so that a second
    command on the same output folder adds its strategies only to the same run): the fields
    of :func:`run_fingerprint` but the strategy and the digest of the image bytes (the
    dataset's own fingerprint, in ``extra``, stands for them, so no image is read)."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    fields = {k: v for k, v in cfg.items() if k != "device"}
    fields.update(increments=[list(g) for g in increments], **_shape_fields(image_shape),
                  labels=_labels_digest(labels, protocol), protocol=protocol_digest(protocol))
    fields.update(code_fields())
    fields.update(extra or {})
    return fingerprint(fields)

