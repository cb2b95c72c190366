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


def _fingerprint_inputs():
    import numpy as np
    import torch
    from mclfir_lite.data.table import AttributeSplit
    labels = {"colour": np.array([0, 1, 0, 1])}
    protocol = {"colour": AttributeSplit(np.array([0, 1]), np.array([2]), np.array([3]))}
    return torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels, protocol


def _fingerprint(strategy):
    return run_fingerprint(Config(), strategy, [["colour"]], *_fingerprint_inputs())


def _edited(tmp_path, monkeypatch, name):
    """module_path(name) now points at a copy of that module with one more line of code."""
    edited = tmp_path / f"{name}.py"
    edited.write_text(files.module_path(name).read_text() + "\nEXTRA = 1\n")
    real = files.module_path
    monkeypatch.setattr(files, "module_path", lambda n: edited if n == name else real(n))


@pytest.mark.parametrize("name", ["methods.derpp", "core.rankloops", "data.imagedata"])
def test_an_edit_to_a_numeric_module_changes_the_digest(tmp_path, monkeypatch, name):
    """Also the modules that were once missing (DER++, the AP loops, the lazy image path)."""
    files.code_digest.cache_clear()
    digest = files.code_digest()
    _edited(tmp_path, monkeypatch, name)
    files.code_digest.cache_clear()
    try:
        assert files.code_digest() != digest, f"an edit to {name} must change the code digest"
    finally:
        files.code_digest.cache_clear()


@pytest.mark.parametrize("name, changed, unchanged", [
    ("core.rankloops", ("mclfir", "derpp", "joint"), ()),                 # shared: every run
    ("data.imagedata", ("mclfir", "finetune"), ()),
    ("methods.base", ("mclfir", "finetune"), ()),
    ("methods.derpp", ("derpp",), ("replay", "mclfir")),                  # a method: its own runs only
    ("methods.replay", ("replay", "derpp"), ("mclfir", "ewc")),           # ... and those of the methods built on it
    ("methods.joint", ("joint", "retrain"), ("mclfir", "finetune")),
    ("methods.mclfir", ("mclfir", "lwf", "released"), ("finetune", "joint")),
    ("methods.isolated", ("isolated", "released"), ("mclfir",)),
])
def test_an_edit_changes_the_keys_of_exactly_the_runs_that_execute_it(tmp_path, monkeypatch, name, changed, unchanged):
    """A run's key carries the code its strategy runs (files.strategy_code_digest): an edit to a
    shared module re-runs everything, an edit to one method re-runs that method (and those that
    import it) and leaves every other run's key, and so its cached and ledger results, alone."""
    files.strategy_code_digest.cache_clear()
    before = {s: _fingerprint(s)["hash"] for s in changed + unchanged}
    _edited(tmp_path, monkeypatch, name)
    files.strategy_code_digest.cache_clear()
    try:
        after = {s: _fingerprint(s)["hash"] for s in changed + unchanged}
        assert all(after[s] != before[s] for s in changed), f"an edit to {name} must change the keys of {changed}"
        assert all(after[s] == before[s] for s in unchanged), f"an edit to {name} must leave {unchanged} alone"
    finally:
        files.strategy_code_digest.cache_clear()


def test_a_strategy_from_outside_the_package_runs_every_method_module():
    every = {m for m in files.NUMERIC_MODULES if m.startswith("methods.")}
    assert every <= set(files.strategy_modules("my_own_method"))
    assert set(files.strategy_modules("retrain")) >= {"methods.retrain", "methods.joint", "methods.base"}
    assert "methods.mclfir" not in files.strategy_modules("retrain") and "config" not in files.strategy_modules("retrain")


@pytest.mark.parametrize("line", ["from .joint import Joint", "from . import joint",
                                  "from mclfir_lite.methods.joint import Joint", "from mclfir_lite.methods import joint",
                                  "import mclfir_lite.methods.joint", "def f():\n    from .joint import Joint"])
def test_a_method_that_imports_another_runs_its_code_however_the_import_is_spelt(tmp_path, monkeypatch, line):
    """A method built on another (retrain on joint) executes that one's code too: its runs' keys must
    follow both, whichever way the import is written (relative, absolute, inside a function)."""
    real = files.module_path
    mine = tmp_path / "retrain.py"
    mine.write_text(f"from .base import Strategy\n{line}\n")
    monkeypatch.setattr(files, "module_path", lambda name: mine if name == "methods.retrain" else real(name))
    assert files._method_imports("methods.retrain") == {"methods.base", "methods.joint"}
    mine.write_text("from .base import Strategy\nimport numpy as np\nfrom ..core import losses\n")
    assert files._method_imports("methods.retrain") == {"methods.base"}


def test_config_values_reach_a_runs_key_through_its_fields_not_its_code(tmp_path, monkeypatch):
    """config.py is not in a run's code digest: every Config value a run reads is one of its
    fingerprint's fields (a changed default changes the key through them)."""
    files.strategy_code_digest.cache_clear()
    before = _fingerprint("mclfir")["hash"]
    _edited(tmp_path, monkeypatch, "config")
    files.strategy_code_digest.cache_clear()
    try:
        assert _fingerprint("mclfir")["hash"] == before
    finally:
        files.strategy_code_digest.cache_clear()
    assert run_fingerprint(Config(lr=1e-3), "mclfir", [["colour"]], *_fingerprint_inputs())["hash"] != before


# Most of the grammar, in one file: its digest was taken with Python 3.11's ast.dump. The
# newest-versions run in CI reads it with 3.12 or 3.13, whose ast.dump differs.
GRAMMAR = '''"""Module docstring."""
import os as o
from . import x


@decorator(arg=None)
async def f(a, /, b: int = 1, *args, c=None, **kw) -> "str":
    """Docstring."""
    async with g() as h:
        yield f"{a!r:>{b}} {c}"
    return [i async for i in h if i] or None


class C(Base, metaclass=M):
    x: int = 0
    def m(self):
        try:
            raise ValueError("v") from None
        except (TypeError, ValueError) as e:
            pass
        finally:
            del self.y
        match self.x:
            case [1, *rest] if rest: return lambda q=None: q
            case {"k": v, **kw}: return ...
            case None: return -1.5j
'''
GRAMMAR_DIGEST_PY311 = "71adc6c8734b61ead4b5541a436f119e7d7e334a"


def test_the_digest_is_the_same_on_every_python(tmp_path):
    """A newer Python must not make the committed results stale (CI once failed on 3.12 so)."""
    import ast
    import sys
    path = tmp_path / "grammar.py"
    path.write_text(GRAMMAR)
    assert files.source_digest(path) == GRAMMAR_DIGEST_PY311, f"Python {sys.version.split()[0]} reads it otherwise"
    if sys.version_info < (3, 12):      # where ast.dump is the reference itself
        assert files._dump(ast.parse(GRAMMAR)) == ast.dump(ast.parse(GRAMMAR))
    edited = tmp_path / "edited.py"
    edited.write_text(GRAMMAR.replace("-1.5j", "-2.5j"))
    assert files.source_digest(edited) != GRAMMAR_DIGEST_PY311


# ---------------------------------------------------------------------------- presets are data

def test_a_presets_values_are_data_not_code(tmp_path, monkeypatch):
    """Changing a value in PRESETS or PRETRAINED leaves the digest alone (results record the
    preset instead, and ``stale_reason`` compares it); changing the code beside them does not."""
    text = files.module_path("config").read_text()
    assert '"joint_steps": 400,' in text and '"image_size": 64, "steps_per_attribute": 150' in text
    edited = tmp_path / "config.py"
    edited.write_text(text)
    real = files.module_path
    monkeypatch.setattr(files, "module_path", lambda n: edited if n == "config" else real(n))
    files.code_digest.cache_clear()
    try:
        digest = files.code_digest()
        for changed in (text.replace('"joint_steps": 400,', '"joint_steps": 800,'),
                        text.replace('"image_size": 64, "steps_per_attribute": 150', '"image_size": 96, "steps_per_attribute": 150')):
            assert changed != text
            edited.write_text(changed)
            files.code_digest.cache_clear()
            assert files.code_digest() == digest, "a preset's value must not change the code digest"
        edited.write_text(text.replace("SEED_MAX = 2**32 - 1", "SEED_MAX = 2**31 - 1"))
        files.code_digest.cache_clear()
        assert files.code_digest() != digest, "code beside the presets must still change the code digest"
    finally:
        files.code_digest.cache_clear()


# one other value per preset key (quick preset): each must reach a run's fingerprint
OTHER_VALUE = {"n_images": 2000, "image_size": 40, "encoder_width": 8, "steps_per_attribute": 50, "joint_steps": 60, "retrain_steps": 70,
               "joint_lr": 1e-3, "ewc_lambda": 3.0, "joint_balance": "sum", "balance_alpha": 1.0,
               "increments": "synth3-quick", "style": "v2", "max_queries": 200, "max_candidates": 800}


def test_every_preset_value_reaches_a_runs_fingerprint(monkeypatch):
    """Why the presets may leave the code digest: whatever a preset sets reaches the fingerprint
    of every run that reads it (a Config field, the images' digest, the protocol or the plan),
    so a cached run made with another preset is never reused. A strategy that does not read a
    field leaves it out (``READ_ONLY_BY``; tests/test_run_fingerprint.py shows it does not read it)."""
    from mclfir_lite import config
    from mclfir_lite.lab.lab import Lab
    from mclfir_lite.training.checkpoint import READ_ONLY_BY
    quick = dict(config.PRESETS["quick"])
    assert set(OTHER_VALUE) == set(quick), "a new preset key: give it another value here"
    strategies = ("mclfir", "joint", "retrain", "ewc")
    base = {s: Lab.synthfashion(quick=True).run_fingerprint(s) for s in strategies}
    for key, value in OTHER_VALUE.items():
        assert value != quick[key], key
        monkeypatch.setitem(config.PRESETS, "quick", {**quick, key: value})
        lab = Lab.synthfashion(quick=True)
        for s in strategies:
            if s in READ_ONLY_BY.get(key, (s,)):
                assert lab.run_fingerprint(s) != base[s], f"preset key {key!r} is not in a {s} run's fingerprint"
            else:
                assert lab.run_fingerprint(s) == base[s], f"{s} does not read {key!r}: not in its fingerprint"
    monkeypatch.setitem(config.PRESETS, "quick", quick)
    assert {s: Lab.synthfashion(quick=True).run_fingerprint(s) for s in strategies} == base
