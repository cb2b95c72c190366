"""Settings read from the environment, in one place.

* ``MCLFIR_CACHE``: the one directory for data and model caches
  (default ``~/.cache/mclfir_lite``).
* ``MCLFIR_QUICK``: set to ``1`` to make notebooks and the demo run in seconds
  (smaller images, fewer samples, fewer steps). Used by the tests.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return the cache directory, creating it if needed."""
    path = Path(os.environ.get("MCLFIR_CACHE", Path.home() / ".cache" / "mclfir_lite")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def quick_mode() -> bool:
    """True when ``MCLFIR_QUICK`` is set to a true value (1, true, yes, on)."""
    return os.environ.get("MCLFIR_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
