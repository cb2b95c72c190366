"""Files the package writes, and the digests that name what made them (the base layer).

Every layer writes files (a dataset cache, a feature cache, a checkpoint, a results
folder) and names them by what made them; the tools for that live here, below all of them:

* :func:`atomic_write` / :func:`atomic_write_file`: a temp file with a unique name, then
  ``os.replace``: a crash never leaves half a file. No write goes through a symbolic link:
  the temp file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (:func:`create_exclusive`)
  and a final path that is a symlink is refused (:func:`refuse_link`,
  :class:`UnsafeFileError`: replacing it would silently drop someone's link). On Windows
  there is no ``O_NOFOLLOW``: the same checks are made with ``os.path.islink`` just before
  opening, which leaves a race that is not covered there.
* :func:`lock_folder`: an advisory lock on an output folder (``fcntl.flock`` on
  ``<folder>/.lock``), so that a second run on the same folder stops at once and names the
  process that holds it.
* :func:`fingerprint`, :func:`tensor_digest`, :func:`source_digest`, :func:`code_digest`:
  one SHA-1 over the fields that decide a result; the code digest covers the modules in
  :data:`NUMERIC_MODULES`, so caches made by other numeric code are not reused.
* :func:`os_message`: one line for an ``OSError`` (what went wrong, and the path).
"""
from __future__ import annotations

import ast
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

from . import settings

# Modules whose code decides a run's numbers: a change to their code (not to comments or
# docstrings) changes the fingerprint, so caches made by older code are not reused.
NUMERIC_MODULES = ("training.runner", "training.evaluate", "training.batches", "config",
                   "data.table", "data.datasets", "data.realdata", "data.realutils", "data.synth",
                   "data.fashion_product_images", "data.fashionai", "data.darn", "data.deepfashion", "data.zappos50k",
                   "core.encoders", "core.heads", "core.losses", "core.metrics", "core.forgetting", "core.model",
                   "retrieval.features",
                   "methods.base", "methods.finetune", "methods.retrain", "methods.joint", "methods.frozen",
                   "methods.isolated", "methods.lwf", "methods.mclfir", "methods.released", "methods.ewc",
                   "methods.replay", "methods.derpp", "core.rankloops", "training.distributed",
                   "training.recipes", "data.imagedata")
# tests/test_code_digest.py requires every module of core/, data/, methods/ and training/ here,
# or on its short list of modules that do not decide numbers.
# Values in those modules that are data, not code: the presets (sizes, budgets, tuned values).
# Every value a preset gives a run is in that run's fingerprint (its Config fields, the digest
# of its images, its protocol and plan), and every benchmark result records the preset it was
# measured with (``benchmarks/run_all.py``; :func:`mclfir_lite.lab.lab.benchmark_result`
# refuses one measured with another preset: ``lab.lab.stale_reason``). So a preset change
# re-runs only the runs it changes, instead of making every committed result stale.
DATA_NOT_CODE = {"config": ("PRESETS", "PRETRAINED")}


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


def shown(path: str | Path) -> str:
    """``path`` as a message should show it: relative to the working folder when inside it, else
    with the home folder written ``~`` (a printed path then names no user's home)."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        pass
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except (ValueError, RuntimeError):   # outside home, or no home folder known
        return str(path)


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



# ---------------------------------------------------------------------------- digests

def write_between(path: str | Path, name: str, text: str) -> bool:
    """Replace the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in the
    file ``path`` (a README or docs page whose numbers are generated, never typed by hand);
    True when the file changed. A file without both markers, in that order, is a ValueError
    naming the file and the markers."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    s = path.read_text(encoding="utf-8")
    if start not in s or end not in s or s.index(start) > s.index(end):
        raise ValueError(f"{path}: no {start} ... {end} markers")
    a, b = s.index(start) + len(start), s.index(end)
    new = s[:a] + "\n" + text.strip("\n") + "\n" + s[b:]
    if new != s:
        path.write_text(new, encoding="utf-8")
    return new != s


def fingerprint(fields: dict) -> dict:
    """``{"hash": sha1, "fields": {name: str}}`` over ``fields`` (values turned into strings)."""
    fields = {str(k): v if isinstance(v, str) else repr(v) for k, v in fields.items()}
    return {"hash": hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest(), "fields": fields}


def tensor_digest(t: torch.Tensor | np.ndarray) -> str:
    """SHA-1 (16 hex digits) of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))
    h = hashlib.sha1(f"{a.dtype}|{a.shape}".encode())
    if a.dtype == object:
        h.update("\x00".join(map(str, a.ravel())).encode())
    else:
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return h.hexdigest()[:16]


def source_digest(path: str | Path, leave_out: tuple[str, ...] = ()) -> str:
    """SHA-1 of a Python file's syntax tree without docstrings: comments, docstrings and
    formatting do not change it, code does; nor does the Python that reads it (see
    :func:`_dump`). ``leave_out``: names whose top-level assignments do not count (the
    presets' values, :data:`DATA_NOT_CODE`)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if not _assigns(n, leave_out)]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha1(_dump(tree).encode()).hexdigest()


def _assigns(node, names: tuple[str, ...]) -> bool:
    """Whether ``node`` is a top-level assignment to one of ``names`` (and to nothing else)."""
    if not names or not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return all(isinstance(t, ast.Name) and t.id in names for t in targets)


def _dump(node) -> str:
    """The text Python 3.11's ``ast.dump(node)`` gives, on any Python from 3.10 on.
    ``ast.dump`` itself changes with the version (3.12 adds ``type_params=[]`` to every
    function and class, 3.13 leaves out empty fields), which would make the same code a
    different digest, and every committed result stale, on a newer Python.
    ``tests/test_code_digest.py`` checks a file that uses most of the grammar."""
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            if name == "type_params" and not value:
                continue    # new in 3.12 (PEP 695); empty is the tree 3.11 reads
            if value is None and getattr(type(node), name, ...) is None:
                continue    # an optional field left out, as 3.11 leaves it out
            if isinstance(node, ast.JoinedStr) and name == "values":
                value = [v for v in value if not (isinstance(v, ast.Constant) and v.value == "")]
                # 3.12.1 puts an empty string after a nested format spec (f"{a:>{b}}"); 3.11 does not
            fields.append(f"{name}={_dump(value)}")
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(_dump(x) for x in node)}]"
    return repr(node)


def module_path(name: str) -> Path:
    """The file of the package module ``name``, dotted from the package (``"core.losses"``)."""
    return Path(__file__).resolve().parent.joinpath(*name.split(".")).with_suffix(".py")


def modules_digest(leave_out: dict[str, tuple[str, ...]]) -> str:
    """Digest (12 hex digits) of :func:`source_digest` of every module in :data:`NUMERIC_MODULES`,
    each without the top-level assignments ``leave_out`` names for it."""
    return modules_code_digest([m for m in NUMERIC_MODULES if module_path(m).is_file()], leave_out)


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """:func:`modules_digest` with the presets' values left out (:data:`DATA_NOT_CODE`; results
    record them instead: :func:`mclfir_lite.lab.lab.preset_fields`)."""
    return modules_digest(DATA_NOT_CODE)


# ---------------------------------------------------------------------------- code a strategy runs
# A run of one strategy executes the shared numeric code and its own method module (with the
# method modules that module imports: retrain's Joint, lwf's MCLFIR), never another strategy's.
# So a run's key carries the digest of exactly that code (:func:`strategy_code_digest`): a change
# to one method re-runs that method and nothing else, as a change to one strategy's Config field
# does (``training.checkpoint.READ_ONLY_BY``). ``config`` is not in it: every Config value a run
# reads is in the run's fingerprint itself (``checkpoint.config_fields``).
METHODS = "methods."


def _method_imports(name: str) -> set[str]:
    """The sibling method modules ``methods.<name>`` imports, anywhere in the file and in any
    spelling: ``from .joint import Joint``, ``from . import joint``, ``from mclfir_lite.methods.joint
    import Joint``, ``from mclfir_lite.methods import joint``, ``import mclfir_lite.methods.joint``."""
    tree = ast.parse(module_path(name).read_text(encoding="utf-8"))
    package = __name__.rsplit(".", 1)[0] + "."            # "mclfir_lite."
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = METHODS + node.module if node.module else METHODS[:-1]
            elif node.level == 0 and node.module and node.module.startswith(package):
                base = node.module[len(package):]
            else:
                continue
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name[len(package):] for a in node.names if a.name.startswith(package)}
    return {m for m in found if m in NUMERIC_MODULES and m.startswith(METHODS)}


# Package code that turns runs into a benchmark result (paired statistics, the lab that builds the
# protocol and the runs, the sensitivity matrix, the strategy registry): part of a result's scoped
# digest (``training.checkpoint.scoped_code_digest``), not of a run's key.
RESULT_MODULES = ("lab.report", "lab.lab", "retrieval.sensitivity", "methods.__init__")


def _method_modules() -> list[str]:
    return [m for m in NUMERIC_MODULES if m.startswith(METHODS) and m != METHODS + "base"]


def shared_modules() -> tuple[str, ...]:
    """The modules of :data:`NUMERIC_MODULES` every run executes: all but ``config`` and the
    method modules (``methods.base`` is shared)."""
    methods = _method_modules()
    return tuple(m for m in NUMERIC_MODULES if m != "config" and m not in methods)


def strategy_modules(strategy: str) -> tuple[str, ...]:
    """The modules of :data:`NUMERIC_MODULES` a run of ``strategy`` executes: the shared ones
    (:func:`shared_modules`), its own method module and, transitively, the method modules it
    imports. A strategy without a module of its own in ``methods/`` (one registered from outside
    the package) gets every method module."""
    methods = _method_modules()
    own = METHODS + str(strategy)
    if own not in methods:
        return shared_modules() + tuple(methods)
    seen, todo = set(), [own]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += sorted(_method_imports(m) - seen)
    return shared_modules() + tuple(m for m in methods if m in seen)


def modules_code_digest(names, leave_out: dict[str, tuple[str, ...]] = DATA_NOT_CODE) -> str:
    """Digest (12 hex digits) of :func:`source_digest` of the modules ``names``, each without the
    top-level assignments ``leave_out`` names for it (default: the presets' values, :data:`DATA_NOT_CODE`)."""
    h = hashlib.sha1()
    for name in names:
        h.update(f"{name}:{source_digest(module_path(name), leave_out.get(name, ()))}".encode())
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=64)
def strategy_code_digest(strategy: str) -> str:
    """:func:`modules_code_digest` of the modules :func:`strategy_modules` names: what a run's
    fingerprint records as ``code``."""
    return modules_code_digest(strategy_modules(strategy))


def code_fields(strategy: str | None = None) -> dict:
    """``version`` (the package's) and ``code``: what a run's fingerprint (``strategy`` given:
    :func:`strategy_code_digest`) and every benchmark result (:func:`code_digest`) record of the
    code that made them."""
    return {"version": settings.__version__,
            "code": code_digest() if strategy is None else strategy_code_digest(str(strategy))}


# ---------------------------------------------------------------------------- results.json's maker

RESULTS_FORMAT = "mclfir_lite.results"   # the demo's results.json


def results_maker(report) -> str | None:
    """Which of this package's commands wrote a results.json ``report`` (parsed): its ``made_by``,
    or, for one written before that was recorded, what its keys say (``"demo"``, ``"crossmodal"``
    or ``"composed"``); None for anything else. The three refuse to replace one another's."""
    if not isinstance(report, dict):
        return None
    if isinstance(report.get("made_by"), str):
        return report["made_by"]
    if "compatibility_strategy" in report:
        return "crossmodal"
    if "static_operations" in report:
        return "composed"
    if report.get("format") == RESULTS_FORMAT or (
            isinstance(report.get("strategies"), dict) and str(report.get("command", "")).startswith("python -m mclfir_lite")):
        return "demo"
    return None


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


def os_message(err: OSError) -> str:
    """One line for an OSError: what went wrong and the path (no traceback)."""
    if err.strerror and err.filename:
        return f"{err.strerror}: {err.filename}" + (f" -> {err.filename2}" if err.filename2 else "")
    return str(err)
