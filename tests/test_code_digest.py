"""The code digest covers every module that decides a run's numbers.

``files.NUMERIC_MODULES`` feeds :func:`files.code_digest` (the digest every committed benchmark
result carries); ``files.PENDING_NUMERIC_MODULES`` are modules found missing from it after the
committed results were measured, which key their own strategy's run caches until the next full
re-measurement moves them in. A method module in neither would let a cache made by older code
be reused: this test names it.
"""
from __future__ import annotations

from pathlib import Path

from mclfir_lite import files
from mclfir_lite.training.checkpoint import run_fingerprint
from mclfir_lite.config import Config

PACKAGE = Path(files.__file__).resolve().parent


# Modules of these folders that do not decide a run's numbers (storage, registries, shims).
NOT_NUMERIC = {"training.checkpoint"}


def test_every_module_that_decides_numbers_is_in_the_digest_or_keys_the_caches():
    modules = {f"{folder}.{p.stem}" for folder in ("core", "data", "methods", "training")
               for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__"}
    covered = set(files.NUMERIC_MODULES) | set(files.PENDING_NUMERIC_MODULES) | NOT_NUMERIC
    assert not modules - covered, f"modules outside the code digest and the cache keys: {sorted(modules - covered)}"
    assert not set(files.NUMERIC_MODULES) & set(files.PENDING_NUMERIC_MODULES)
    missing = [m for m in set(files.NUMERIC_MODULES) | set(files.PENDING_NUMERIC_MODULES) if not files.module_path(m).is_file()]
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


def test_a_pending_method_module_keys_its_strategys_runs_and_no_other(tmp_path, monkeypatch):
    before, other = _fingerprint("derpp")["hash"], _fingerprint("replay")["hash"]
    _edited(tmp_path, monkeypatch, "methods.derpp")
    assert _fingerprint("derpp")["hash"] != before, "an edit to derpp.py must change its runs' cache key"
    assert _fingerprint("replay")["hash"] == other


def test_a_pending_shared_module_keys_every_run(tmp_path, monkeypatch):
    before = {s: _fingerprint(s)["hash"] for s in ("mclfir", "derpp")}
    _edited(tmp_path, monkeypatch, "core.rankloops")
    assert all(_fingerprint(s)["hash"] != h for s, h in before.items())


def test_the_pending_modules_leave_the_results_digest_alone(tmp_path, monkeypatch):
    files.code_digest.cache_clear()
    digest = files.code_digest()
    _edited(tmp_path, monkeypatch, "core.rankloops")
    files.code_digest.cache_clear()
    try:
        assert files.code_digest() == digest
    finally:
        files.code_digest.cache_clear()
