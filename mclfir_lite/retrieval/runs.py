"""What the ``crossmodal`` and ``composed`` commands share around their experiment: the
settings from a preset and the command-line options (checked, with the option named in
the error), the output folder (locked for the run, its checkpoints removed with
``--fresh``, a results.json in it never replaced unawares), and the digest of the code that decides their numbers (a checkpoint made by
other code is not resumed)."""
from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path

import torch

from ..config import SEED_MAX
from ..files import lock_folder, module_path, results_maker, shown, source_digest
from ..training.checkpoint import CheckpointError, load


def preset_settings(presets: dict, args, flags: dict[str, str]):
    """A copy of ``presets["quick"]`` (``--quick``) or ``presets["default"]``, with every option
    of ``flags`` (``{argument: settings field}``) that was given; an option below 1, an image
    size below 16 (the renderer's minimum) or fewer training images than a batch is a
    ValueError naming the option."""
    s = dataclasses.replace(presets["quick" if args.quick else "default"])
    for flag, field in flags.items():
        v = getattr(args, flag)
        if v is not None:
            if v < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer, got {v}")
            setattr(s, field, v)
    if s.image_size < 16:
        raise ValueError(f"--image-size must be at least 16 (the renderer's minimum), got {s.image_size}")
    if s.n_train < s.batch:
        raise ValueError(f"--n-train must be at least the batch size {s.batch}, got {s.n_train}")
    from ..data.table import check_memory   # the images rendered at once, at least: refused before any work
    n = sum(v for k, v in dataclasses.asdict(s).items() if k.startswith("n_"))
    check_memory(n * 3 * s.image_size ** 2 * 2, f"rendering {n} SynthFashion images at {s.image_size} px",
                 "choose a smaller --image-size")
    return s


def check_seeds(seeds, option: str = "--seed") -> None:
    """Seeds in ``0..SEED_MAX`` (numpy's and torch's range), or a ValueError naming ``option``."""
    for seed in seeds:
        if not 0 <= seed <= SEED_MAX:
            raise ValueError(f"{option} must be in 0..{SEED_MAX}, got {seed}")


def check_out(out) -> Path:
    """``--out`` as a Path; an empty one (which would write into the working folder) or a file is a ValueError."""
    if not str(out).strip():
        raise ValueError("--out is empty: give an output folder")
    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {shown(Path(out))} is a file, not a folder: give an output folder")
    return Path(out)


def check_earlier_results(out: Path, command: str, options: dict, replace: bool) -> None:
    """Refuse to replace the results.json in ``out`` when this ``command`` did not write it (it is
    never replaced: another command's, whose checkpoints may share this one's names, or a file that
    is not one), or when it holds this command's results of other ``options`` (another set of
    strategies, seeds or settings), unless ``replace`` (``--fresh``, or ``--recompute-stale``: the
    folder is a cache). The same options run again replace it with the same experiment's results.
    Called through :func:`run_folder`'s ``check``: before any work, and before ``--fresh`` removes
    anything."""
    path = out / "results.json"
    if not path.exists():
        return
    unreadable, earlier = None, None
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        unreadable = f"it cannot be read as JSON: {type(err).__name__}"
    made_by = results_maker(earlier)
    if made_by != command:
        why = unreadable or (f"the {made_by} command wrote it" if made_by else "it is not a results.json of mclfir_lite's")
        raise ValueError(f"--out {shown(out)} already holds a results.json that the {command} command did not "
                         f"write ({why}); it is never replaced: use another --out, or move it away")
    before, options = earlier.get("options"), json.loads(json.dumps(options))   # as results.json holds them
    if before != options and not replace:
        raise ValueError(f"--out {shown(out)} holds the {command} results of other options ({_differences(before, options)}); "
                         "--fresh replaces them (and trains again), or use another --out")


def _differences(before, now: dict) -> str:
    """What differs between two option dicts, key by key (and one level into ``settings``)."""
    if not isinstance(before, dict):
        return "its options are not recorded"
    out = []
    for k in sorted(set(before) | set(now), key=lambda k: (k != "strategies" and k != "methods", k)):
        b, n = before.get(k), now.get(k)
        if isinstance(b, dict) and isinstance(n, dict):
            out += [f"{k}.{f}: {b.get(f)!r} then, {n.get(f)!r} now" for f in sorted(set(b) | set(n)) if b.get(f) != n.get(f)]
        elif b != n:
            out.append(f"{k}: {b!r} then, {n!r} now")
    return "; ".join(out)


def choose(given, allowed, option: str, what: str) -> list[str]:
    """The names ``given`` on the command line (all of ``allowed`` when none), in order; an
    unknown or repeated name is a ValueError naming it and ``option``."""
    chosen = list(given or allowed)
    unknown = [x for x in chosen if x not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; choose from {', '.join(allowed)}")
    if len(set(chosen)) < len(chosen):
        raise ValueError(f"{option} lists a {what} more than once: {chosen}")
    return chosen


@contextmanager
def run_folder(out: Path, what: str, quick: bool, fresh_checkpoints=(), check=None):
    """For the ``with`` block: ``out`` locked (:func:`mclfir_lite.files.lock_folder`), ``check()``
    called (what may refuse the folder: it runs before anything in it is removed), torch on one
    thread when ``quick``, and the checkpoints named in ``fresh_checkpoints`` (paths) removed
    (``--fresh``)."""
    with lock_folder(out, what):
        if check is not None:
            check()
        torch.set_num_threads(1 if quick else max(1, torch.get_num_threads()))
        for path in fresh_checkpoints:
            Path(path).unlink(missing_ok=True)
        yield out


def load_or_none(path: Path, fp: dict, recompute_stale: bool, log=print) -> dict | None:
    """The state of checkpoint ``path`` (made with fingerprint ``fp``), or None when there is none.
    A checkpoint made with another fingerprint (other settings or code), or one that cannot be read,
    raises :class:`~mclfir_lite.training.checkpoint.CheckpointError` naming it, unless
    ``recompute_stale`` (``--recompute-stale``: the output folder is a cache, as the notebooks' are):
    then the log says so and the run starts over; the old file stays until the first new
    checkpoint replaces it (atomically), so an interrupted recompute loses nothing."""
    if not path.exists():
        return None
    try:
        return load(path, fp)
    except CheckpointError:
        if not recompute_stale:
            raise
        log(f"checkpoint {shown(path)} was made with other settings or code, or cannot be read: "
            "made again (--recompute-stale)")
        return None


def add_cache_arguments(p) -> None:
    """``--fresh`` and ``--recompute-stale``, the two commands' ways past their checkpoints."""
    p.add_argument("--fresh", action="store_true", help="ignore and overwrite existing checkpoints")
    p.add_argument("--recompute-stale", action="store_true",
                   help="a checkpoint made with other settings or code, or one that cannot be read, is made "
                        "again instead of refused (for an output folder used as a cache, as the notebooks do)")


def code_digests(modules) -> dict[str, str]:
    """``{module: digest of its code}`` (:func:`mclfir_lite.files.source_digest`; docstrings and
    comments do not count) for the package modules a command's numbers depend on."""
    return {m: source_digest(module_path(m)) for m in modules}
