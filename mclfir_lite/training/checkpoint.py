"""Checkpoints that cannot run code, fingerprints that notice any change, locked output folders.

Three small tools that keep long runs and their caches honest:

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
* :func:`lock_folder`: an advisory lock on an output folder (``fcntl.flock`` on
  ``<folder>/.lock``), so that a second run on the same folder stops at once and names
  the process that holds it.

No write goes through a symbolic link: :func:`atomic_write` creates its temp file with
``O_CREAT | O_EXCL | O_NOFOLLOW`` (a name nobody can have planted a link at) and refuses
to replace a final path that is a symlink (:class:`UnsafeFileError`: replacing it would
not write through it, but would silently drop someone's link); the lock file is opened
with ``O_NOFOLLOW`` and must be a regular file. On Windows there is no ``O_NOFOLLOW``:
the same checks are made with ``os.path.islink`` just before opening, which leaves a
race (a link planted between the check and the open) that is not covered there.
"""
from __future__ import annotations

import ast
import dataclasses
import errno
import functools
import hashlib
import json
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

FORMAT = "mclfir_lite.training.checkpoint"
FORMAT_VERSION = 1
# Modules whose code decides a run's numbers: a change to their code (not to comments or
# docstrings) changes the fingerprint, so caches made by older code are not reused.
NUMERIC_MODULES = ("training.continual", "data.table", "data.datasets", "core.ema", "core.encoders",
                   "retrieval.features", "core.heads", "core.losses", "core.metrics", "core.model", "data.realdata",
                   "data.synth", "methods.strategies")
_NDARRAY = "__ndarray__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, foreign, unsafe, or made with
    another configuration. The message names the file."""


class FolderLockedError(RuntimeError):
    """Another process holds the lock on an output folder (the message names its PID)."""


class UnsafeFileError(ValueError):
    """A file the package would write is a symbolic link or not a regular file: nothing is
    written through it (the message names the path and what it points to)."""


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)   # 0 on Windows: see the module docstring
_BINARY = getattr(os, "O_BINARY", 0)


def refuse_link(path: str | Path, what: str = "") -> None:
    """Raise :class:`UnsafeFileError` when ``path`` is a symbolic link (dangling or not) or
    exists but is not a regular file. ``what``: the flag or role to name in the message."""
    path = Path(path)
    if path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise UnsafeFileError(f"{what + ': ' if what else ''}{path} is a symbolic link (to {target}); "
                              "nothing is written through a link: remove it, or use another output folder")
    if path.exists() and not path.is_file():
        raise UnsafeFileError(f"{what + ': ' if what else ''}{path} exists and is not a regular file; "
                              "remove it, or use another output folder")


def create_exclusive(path: str | Path, mode: int = 0o644) -> int:
    """Create ``path`` (which must not exist) without following a link; return an open
    write-only file descriptor. A planted file or link at that name is :class:`FileExistsError`."""
    path = Path(path)
    if not NOFOLLOW:
        refuse_link(path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | _BINARY, mode)


def no_space_message(err: BaseException) -> str | None:
    """"no space left on device ..." when ``err`` is a full disk (an OSError with ENOSPC or
    EDQUOT, or torch's ``inline_container.cc ... unexpected pos`` / ``file write failed``
    RuntimeError, which is what a short write looks like through torch.save), else None."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "no space left on device (or the disk quota is reached)"
    text = str(err)
    if isinstance(err, RuntimeError) and ("unexpected pos" in text or "file write failed" in text
                                          or "PytorchStreamWriter failed" in text):
        return ("no space left on device (or the disk quota is reached): the write stopped short "
                f"({text.strip().splitlines()[0][:120] if text.strip() else type(err).__name__})")
    return None


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


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path`` whose name is unique to this
    process and call (pid + random), then move it onto ``path`` in one step: a crash never
    leaves half a file, and two writers never share a temp file.

    The temp file is created first with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so ``write``
    opens a regular file this call made, never a link planted at its name. A ``path`` that
    is a symlink is refused (:class:`UnsafeFileError`) rather than replaced. A full disk is
    an ``OSError(ENOSPC)`` naming ``path`` ("no space left on device")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    made = False   # a file planted at the temp name is neither written nor removed
    try:
        os.close(create_exclusive(tmp))
        made = True
        write(tmp)
        refuse_link(path)   # planted while we wrote?
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        full = no_space_message(err)
        if full:
            raise OSError(errno.ENOSPC, full, str(path)) from None
        if isinstance(err, OSError) and not err.filename and err.errno:  # a bare write error: name the file
            raise type(err)(err.errno, err.strerror or str(err), str(path)) from None
        raise
    finally:
        if made:
            tmp.unlink(missing_ok=True)
    return path


def atomic_write_file(path: str | Path, write) -> Path:
    """:func:`atomic_write`, but ``write(f)`` gets the temp file already open (binary, from the
    descriptor made without following links), so the file is never reopened by name."""
    def into(tmp: Path):
        fd = os.open(tmp, os.O_WRONLY | NOFOLLOW | _BINARY)
        with os.fdopen(fd, "wb") as f:
            write(f)
    return atomic_write(path, into)


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

def fingerprint(fields: dict) -> dict:
    """``{"hash": sha1, "fields": {name: str}}`` over ``fields`` (values turned into strings)."""
    fields = {str(k): v if isinstance(v, str) else repr(v) for k, v in fields.items()}
    return {"hash": hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest(), "fields": fields}


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


def tensor_digest(t: torch.Tensor | np.ndarray) -> str:
    """SHA-1 (16 hex digits) of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))
    h = hashlib.sha1(f"{a.dtype}|{a.shape}".encode())
    if a.dtype == object:
        h.update("\x00".join(map(str, a.ravel())).encode())
    else:
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return h.hexdigest()[:16]


def source_digest(path: str | Path) -> str:
    """SHA-1 of a Python file's syntax tree without docstrings: comments, docstrings and
    formatting do not change it, code does."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha1(ast.dump(tree).encode()).hexdigest()


def module_path(name: str) -> Path:
    """The file of the package module ``name``, dotted from the package (``"core.losses"``)."""
    return Path(__file__).resolve().parent.parent.joinpath(*name.split(".")).with_suffix(".py")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Digest (12 hex digits) of :func:`source_digest` of every module in :data:`NUMERIC_MODULES`."""
    h = hashlib.sha1()
    for name in NUMERIC_MODULES:
        if module_path(name).is_file():
            h.update(f"{name}:{source_digest(module_path(name))}".encode())
    return h.hexdigest()[:12]


def code_fields() -> dict:
    """``version`` (the package's) and ``code`` (:func:`code_digest`)."""
    from .. import __version__
    return {"version": __version__, "code": code_digest()}


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


def run_fingerprint(config, strategy: str, increments, images: torch.Tensor, labels: dict, protocol: dict,
                    extra: dict | None = None) -> dict:
    """The fingerprint of a continual run: every :class:`~mclfir_lite.training.continual.Config` field
    except ``device`` (a run may resume on another device), the strategy and plan,
    :func:`data_fields`, :func:`code_fields`, and ``extra`` (e.g. the dataset's name and the
    protocol caps, so that a mismatch names them)."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    fields = {k: v for k, v in cfg.items() if k != "device"}
    fields.update(strategy=strategy, increments=[list(g) for g in increments])
    fields.update(data_fields(images, labels, protocol))
    fields.update(code_fields())
    fields.update(extra or {})
    return fingerprint(fields)


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


# ---------------------------------------------------------------------------- folder lock

@contextmanager
def lock_folder(folder: str | Path, what: str = "run"):
    """Hold an exclusive, non-blocking advisory lock on ``folder`` (file ``<folder>/.lock``)
    for the ``with`` block. When another process holds it, raise :class:`FolderLockedError`
    at once, naming its PID. The lock goes with the process, so a killed run leaves no
    stale lock behind. The lock file is opened with ``O_NOFOLLOW``: a ``.lock`` that is a
    symbolic link, or not a regular file, is :class:`UnsafeFileError` and nothing is written
    through it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    refuse_link(path)   # (Windows: the only check; POSIX: O_NOFOLLOW below as well)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _BINARY, 0o644)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK) or path.is_symlink():  # a link planted since the check
            refuse_link(path)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        refuse_link(path)
        raise UnsafeFileError(f"{path} is not a regular file; remove it, or use another output folder")
    f = os.fdopen(fd, "r+")
    try:
        if not _try_lock(f):
            try:
                f.seek(0)
                holder = f.read().strip() or "unknown"
            except OSError:  # Windows: the locked byte cannot be read
                holder = "unknown"
            raise FolderLockedError(f"{folder} is in use by another {what} (pid {holder}); wait for it to "
                                    "finish or use another --out")
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield path
    finally:
        f.close()  # closing the file releases the lock


def _try_lock(f) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte with msvcrt instead
        try:
            import msvcrt
        except ImportError:  # neither: no locking on this platform
            return True
        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False
