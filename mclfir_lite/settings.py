"""Settings read from the environment, in one place.

* ``MCLFIR_CACHE``: the one directory for data and model caches
  (default ``~/.cache/mclfir_lite``). Set but empty (``MCLFIR_CACHE=``, as a shell leaves
  a variable it "unsets" by assignment) means the default, with a warning: an empty value
  never means the current folder. A value that names a file, or a folder that cannot be
  made, is an error that names the variable.
* ``MCLFIR_QUICK``: set to ``1`` to make notebooks and the demo run in seconds
  (smaller images, fewer samples, fewer steps). Used by the tests. On: ``1``, ``true``,
  ``yes``, ``on``; off: unset, empty, ``0``, ``false``, ``no``, ``off``. Any other value is
  off, with a warning that names the variable and these values.
"""
from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

__version__ = "0.1.0"   # the package's version (mclfir_lite.__version__ is this)
QUICK_ON = ("1", "true", "yes", "on")
QUICK_OFF = ("", "0", "false", "no", "off")
_warned: set = set()


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "mclfir_lite"


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def cache_dir() -> Path:
    """Return the cache directory, creating it if needed (see the module docstring)."""
    value = os.environ.get("MCLFIR_CACHE")
    if value is not None and not value.strip():
        path = default_cache_dir()
        _warn_once(f"MCLFIR_CACHE is set but empty: using the default cache folder {path} "
                   "(an empty value does not mean the current folder; unset it or give a folder)")
    else:
        path = Path(value).expanduser() if value is not None else default_cache_dir()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "MCLFIR_CACHE names a file, not a folder: point it at a "
                                 "folder (or unset it for the default)", str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:   # a parent that is a file, no permission, a read-only disk
        source = "MCLFIR_CACHE" if value else "the default cache folder (set MCLFIR_CACHE to move it)"
        raise type(err)(err.errno, f"{source}: cannot create the cache folder ({err.strerror or err})",
                        str(path)) from None
    return path


def quick_mode() -> bool:
    """True when ``MCLFIR_QUICK`` is set to a true value (1, true, yes, on). Another value
    than these and the false ones (unset, empty, 0, false, no, off) is off, with a warning."""
    value = os.environ.get("MCLFIR_QUICK", "").strip().lower()
    if value in QUICK_ON:
        return True
    if value not in QUICK_OFF:
        _warn_once(f"MCLFIR_QUICK={os.environ.get('MCLFIR_QUICK')!r} is not understood: quick mode stays off "
                   f"(on: {', '.join(QUICK_ON)}; off: unset, empty, {', '.join(QUICK_OFF[1:])})")
    return False


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere):
    two machines with other CPUs may round floating-point sums differently."""
    import platform
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
