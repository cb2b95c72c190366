"""joint's loss balancing (issue 20): "ratio" weighs an attribute whose loss has not come down
up, and a learnt one down; "sum" is the plain sum; both resume bit for bit."""
import pytest
import torch

from mclfir_lite.methods.joint import Joint
from test_continual import make, run_counting, tiny  # noqa: F401


class _Run:
    def __init__(self, alpha=1.0):
        self.config = type("C", (), {"balance_alpha": alpha, "joint_balance": "ratio"})()


def test_a_lagging_attribute_is_weighted_up_and_a_learnt_one_down():
    j = Joint(_Run())
    first = j.weights({"length": torch.tensor(4.0), "pattern": torch.tensor(4.0)})
    assert first == pytest.approx({"length": 1.0, "pattern": 1.0})
    w = j.weights({"length": torch.tensor(1.0), "pattern": torch.tensor(4.0)})   # length learnt, pattern not
    assert w["pattern"] > 1 > w["length"] and sum(w.values()) == pytest.approx(2.0)
    late = j.weights({"length": torch.tensor(1.0), "pattern": torch.tensor(4.0), "colour": torch.tensor(3.0)})
    assert late["colour"] == pytest.approx(max(late.values()))   # a new attribute starts at ratio 1
    stronger = Joint(_Run(alpha=2.0))
    stronger.first_loss = dict(j.first_loss)
    w2 = stronger.weights({"length": torch.tensor(1.0), "pattern": torch.tensor(4.0)})
    assert w2["pattern"] > w["pattern"]


def test_ratio_changes_joint_and_resumes_bit_for_bit(tiny, tmp_path):  # noqa: F811
    summed = make(tiny, "joint", joint_balance="sum").run()
    full = make(tiny, "joint", tmp_path / "full", joint_balance="ratio").run()
    assert full["map_matrix"] != summed["map_matrix"]
    make(tiny, "joint", tmp_path / "part", joint_balance="ratio").run(stop_after=1)
    resumed, trained = run_counting(make(tiny, "joint", tmp_path / "part", joint_balance="ratio"))
    assert trained == [1]   # resumed, not restarted: the ratio's first losses came from the checkpoint
    assert resumed["map_matrix"] == full["map_matrix"]


def test_the_default_preset_balances_joint_by_ratio():
    """The lesson's upper bound: with a plain sum, the last attribute of the default plan stays at
    chance (benchmarks/results/learnable_balance.json); Config() is the default preset."""
    from mclfir_lite.config import PRESETS, Config
    assert PRESETS["default"]["joint_balance"] == Config().joint_balance == "ratio"
    assert PRESETS["default"]["balance_alpha"] == Config().balance_alpha == 2.0


@pytest.mark.parametrize("cfg, match", [({"joint_balance": "equal"}, "joint_balance"),
                                        ({"balance_alpha": -1.0}, "balance_alpha")])
def test_bad_balance_settings_are_refused(cfg, match):
    from mclfir_lite.config import Config
    with pytest.raises(ValueError, match=match):
        Config(**cfg)


def test_a_carried_ema_teacher_changes_mclfir_resumes_and_leaves_lwf_alone(tiny, tmp_path):  # noqa: F811
    """ema_carry (issue 20 item 7): one teacher across increments. Needs three increments to matter."""
    import test_continual as tc
    plan = tc.PLAN
    tc.PLAN = [["sleeve_length"], ["colour"], ["length"]]
    try:
        fresh = make(tiny, "mclfir", ema_decay=0.9).run()
        full = make(tiny, "mclfir", tmp_path / "full", ema_decay=0.9, ema_carry=True).run()
        assert full["map_matrix"] != fresh["map_matrix"]
        make(tiny, "mclfir", tmp_path / "part", ema_decay=0.9, ema_carry=True).run(stop_after=2)
        resumed, trained = run_counting(make(tiny, "mclfir", tmp_path / "part", ema_decay=0.9, ema_carry=True))
        assert trained == [2]   # resumed, not restarted: the carried teacher came from the checkpoint
        assert resumed["map_matrix"] == full["map_matrix"]
        assert make(tiny, "lwf", ema_carry=True).run()["map_matrix"] == make(tiny, "lwf").run()["map_matrix"]
    finally:
        tc.PLAN = plan
