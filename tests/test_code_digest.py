"""The code digest covers every module that decides a run's numbers.

``files.NUMERIC_MODULES`` feeds :func:`files.code_digest` (the digest every committed benchmark
result and every run's cache key carries). A module outside it would let a cache or a result
made by older code be reused: this test names it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mclfir_lite import files
from mclfir_lite.training.checkpoint import run_fingerprint
from mclfir_lite.config import Config

PACKAGE = Path(files.__file__).resolve().parent


# Modules of these folders that do not decide a run's numbers (storage, registries, shims).
NOT_NUMERIC = {"training.checkpoint"}


def test_every_module_that_decides_numbers_is_in_the_digest():
    modules = {f"{folder}.{p.stem}" for folder in ("core", "data", "methods", "training")
               for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__"}
    covered = set(files.NUMERIC_MODULES) | NOT_NUMERIC
    assert not modules - covered, f"modules outside the code digest: {sorted(modules - covered)}"
    missing = [m for m in files.NUMERIC_MODULES if not files.module_path(m).is_file()]
    assert not missing, f"listed modules that do not exist: {missing}"


def _fingerprint(strategy):
    import numpy as np
    import torch
    from mclfir_lite.data.table import AttributeSplit
    labels = {"colour": np.array([0, 1, 0, 1])}
    protocol = {"colour": AttributeSplit(np.array([0, 1]), np.array([2]), np.array([3]))}
    return run_fingerprint(Config(), strategy, [["colour"]], torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels, protocol)


def _edited(tmp_path, monkeypatch, name):
    """module_path(name) now points at a copy of that module with one more line of code."""
    edited = tmp_path / f"{name}.py"
    edited.write_text(files.module_path(name).read_text() + "\nEXTRA = 1\n")
    real = files.module_path
    monkeypatch.setattr(files, "module_path", lambda n: edited if n == name else real(n))


@pytest.mark.parametrize("name", ["methods.derpp", "core.rankloops", "data.imagedata"])
def test_an_edit_to_a_numeric_module_changes_the_digest_and_every_runs_key(tmp_path, monkeypatch, name):
    """Also the modules that were once missing (DER++, the AP loops, the lazy image path)."""
    files.code_digest.cache_clear()
    digest, before = files.code_digest(), {s: _fingerprint(s)["hash"] for s in ("mclfir", "derpp")}
    _edited(tmp_path, monkeypatch, name)
    files.code_digest.cache_clear()
    try:
        assert files.code_digest() != digest, f"an edit to {name} must change the code digest"
        assert all(_fingerprint(s)["hash"] != h for s, h in before.items()), f"an edit to {name} must change run keys"
    finally:
        files.code_digest.cache_clear()
