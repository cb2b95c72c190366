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


def test_every_method_module_decides_the_digest_or_its_own_cache_key():
    methods = {f"methods.{p.stem}" for p in (PACKAGE / "methods").glob("*.py") if p.stem != "__init__"}
    covered = set(files.NUMERIC_MODULES) | set(files.PENDING_NUMERIC_MODULES)
    assert not methods - covered, f"method modules outside the code digest: {sorted(methods - covered)}"
    assert not set(files.NUMERIC_MODULES) & set(files.PENDING_NUMERIC_MODULES)
    missing = [m for m in covered if not files.module_path(m).is_file()]
    assert not missing, f"listed modules that do not exist: {missing}"


def _fingerprint(strategy):
    import numpy as np
    import torch
    from mclfir_lite.data.table import AttributeSplit
    labels = {"colour": np.array([0, 1, 0, 1])}
    protocol = {"colour": AttributeSplit(np.array([0, 1]), np.array([2]), np.array([3]))}
    return run_fingerprint(Config(), strategy, [["colour"]], torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels, protocol)


def test_a_pending_module_keys_its_strategys_runs_and_no_other(tmp_path, monkeypatch):
    assert "strategy_code" in files.code_fields("derpp")
    assert "strategy_code" not in files.code_fields("mclfir") and "strategy_code" not in files.code_fields()
    before, other = _fingerprint("derpp")["hash"], _fingerprint("replay")["hash"]
    edited = tmp_path / "derpp.py"
    edited.write_text(files.module_path("methods.derpp").read_text() + "\nEXTRA = 1\n")
    real = files.module_path
    monkeypatch.setattr(files, "module_path", lambda name: edited if name == "methods.derpp" else real(name))
    assert _fingerprint("derpp")["hash"] != before, "an edit to derpp.py must change its runs' cache key"
    assert _fingerprint("replay")["hash"] == other
