"""The methods' explicit API (issue 24): one file per method, a registry, hooks that take a
Batch, a cost ledger with add(), a public way to swap the model, LwF as MCL-FIR with a
frozen teacher, and Config's defaults equal to the default preset."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mclfir_lite import methods
from mclfir_lite.config import CONFIG_KEYS, PRESETS, Config
from mclfir_lite.methods import STRATEGY_CLASSES, Costs, check_strategies

METHODS = Path(methods.__file__).resolve().parent


def test_every_method_is_in_its_own_file_and_registered():
    assert list(STRATEGY_CLASSES) == ["joint", "retrain", "finetune", "frozen", "isolated", "released", "lwf",
                                      "ewc", "replay", "mclfir", "derpp"]
    for name, cls in STRATEGY_CLASSES.items():
        assert cls.name == name
        assert Path(__import__(cls.__module__, fromlist=["x"]).__file__).name == f"{name}.py"
        assert "Config fields read" in (cls.__doc__ or ""), f"{cls.__name__} does not state its hyper-parameters"
    assert check_strategies(["mclfir"]) == ["mclfir"]
    with pytest.raises(ValueError, match="unknown strategy"):
        check_strategies(["nope"])


def test_lwf_is_mclfir_with_a_teacher_that_never_moves():
    lwf, mclfir = STRATEGY_CLASSES["lwf"], STRATEGY_CLASSES["mclfir"]
    assert issubclass(lwf, mclfir) and lwf.teacher_decay == 1.0
    assert lwf.rng_id != mclfir.rng_id     # each keeps its own random streams


def test_methods_use_no_private_runner_state():
    """No method writes the runner's attributes or reads a private one: it goes through the API."""
    for f in METHODS.glob("*.py"):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "run":
                assert not node.attr.startswith("_"), f"{f.name}: self.run.{node.attr}"
                assert not isinstance(node.ctx, ast.Store), f"{f.name}: assigns self.run.{node.attr}"
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "costs" and isinstance(node.ctx, ast.Store):
                pytest.fail(f"{f.name}: writes costs[...] instead of costs.add")


def test_cost_ledger():
    c = Costs()
    c.add("teacher_samples", 3)
    c.add("teacher_samples", 2)
    assert c["teacher_samples"] == 5 and c["optimizer_steps"] == 0
    with pytest.raises(KeyError, match="unknown cost"):
        c.add("typo", 1)
    assert Costs({"train_samples": 7})["train_samples"] == 7


def test_config_defaults_are_the_default_preset():
    cfg = Config()
    assert {k: getattr(cfg, k) for k in CONFIG_KEYS} == {k: PRESETS["default"][k] for k in CONFIG_KEYS}
    assert {f.name for f in dataclasses.fields(Config)} >= set(CONFIG_KEYS)


def test_joint_and_retrain_learn_at_joint_lr_and_the_others_at_lr():
    """joint and retrain (mixed batches of every seen attribute) have their own rate, tuned on
    validation data; every other method, and the optimiser a run really builds, use theirs."""
    from types import SimpleNamespace
    cfg = Config(lr=3e-4, joint_lr=7e-3)
    runner = SimpleNamespace(config=cfg)
    rates = {name: cls(runner).learning_rate() for name, cls in STRATEGY_CLASSES.items()}
    assert rates.pop("joint") == rates.pop("retrain") == 7e-3
    assert set(rates.values()) == {3e-4}, rates


def test_the_optimiser_of_a_joint_run_uses_joint_lr(tmp_path):
    import torch
    from mclfir_lite.lab.lab import Lab
    lab = Lab.synthfashion(quick=True, seed=0)
    lab.runs_dir = tmp_path
    seen = []
    real = torch.optim.AdamW

    def spy(params, lr, **kw):
        seen.append(lr)
        return real(params, lr=lr, **kw)

    for strategy in ("joint", "finetune"):
        runner = lab.runner(strategy, cache=False, progress=False, steps_per_attribute=1, joint_steps=1,
                            lr=3e-4, joint_lr=7e-3)
        torch.optim.AdamW, seen[:] = spy, []
        try:
            runner.run()
        finally:
            torch.optim.AdamW = real
        assert set(seen) == ({7e-3} if strategy == "joint" else {3e-4}), (strategy, seen)


@pytest.mark.parametrize("value", [0, -1e-3, float("nan"), True])
def test_a_joint_lr_that_is_not_a_positive_number_names_the_field(value):
    with pytest.raises(ValueError, match="config.joint_lr"):
        Config(joint_lr=value)
