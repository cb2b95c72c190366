"""A run's fingerprint leaves out the Config fields its strategy does not read
(``training.checkpoint.READ_ONLY_BY``), so a change to joint's budget re-runs joint alone; this
is safe only if those fields really do not move the strategy's numbers, which is checked here
by running every other strategy with all of them changed."""
import pytest

from mclfir_lite.methods import STRATEGIES
from mclfir_lite.training.checkpoint import READ_ONLY_BY, config_fields

# a value other than the quick preset's for each field of READ_ONLY_BY
OTHER = {"joint_steps": 3, "retrain_steps": 4, "joint_warm_start": False, "joint_lr": 1e-2, "joint_balance": "sum", "balance_alpha": 0.5,
         "ewc_lambda": 3.0, "ewc_batches": 2, "replay_per_attribute": 7, "derpp_alpha": 0.1, "derpp_beta": 0.3,
         "ema_decay": 0.9, "ema_every": 2, "ema_carry": True, "distill_weight": 0.3, "feature_distill_weight": 0.2}


@pytest.fixture(scope="module")
def lab():
    from mclfir_lite.lab.lab import Lab
    return Lab.synthfashion(quick=True, steps_per_attribute=2, joint_steps=2, increments="length;colour")


def test_every_field_left_out_has_another_value_here():
    assert set(OTHER) == set(READ_ONLY_BY)
    assert all(r in STRATEGIES for readers in READ_ONLY_BY.values() for r in readers)


def _numbers(lab, strategy, **overrides):
    r = lab.runner(strategy, cache=False, progress=False, **overrides)
    res = r.run(resume=False)
    return r.fingerprint, {k: res[k] for k in ("map_matrix", "final_map", "train_samples", "optimizer_steps")}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fields_a_strategy_does_not_read_leave_its_fingerprint_and_its_numbers_alone(lab, strategy):
    unread = {k: v for k, v in OTHER.items() if strategy not in READ_ONLY_BY[k]}
    read = {k: v for k, v in OTHER.items() if strategy in READ_ONLY_BY[k]}
    if unread:
        fp, numbers = _numbers(lab, strategy)
        fp2, numbers2 = _numbers(lab, strategy, **unread)
        assert fp == fp2, f"{strategy}: {sorted(unread)} must not be in its fingerprint"
        assert numbers == numbers2, f"{strategy} reads one of {sorted(unread)}: list it in READ_ONLY_BY"
    base = config_fields(lab.config, strategy)
    for k, v in read.items():          # a field it reads stays in its fingerprint
        changed = config_fields(lab.config.__class__(**{**lab.config.__dict__, k: v}), strategy)
        assert changed != base, f"{strategy} reads {k}: it must stay in the fingerprint"


def test_an_unknown_strategy_name_keeps_every_field(lab):
    assert set(READ_ONLY_BY) <= set(config_fields(lab.config, "someone_elses_method"))
