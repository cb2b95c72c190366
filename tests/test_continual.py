"""The continual runner: strategies run, checkpoint/resume gives identical numbers,
bad input is named, and the same seed gives the same numbers."""
import json

import numpy as np
import pytest
import torch

from mclfir_lite.methods import STRATEGIES
from mclfir_lite.training.runner import ContinualRunner
from mclfir_lite.config import Config
from mclfir_lite.data.table import load_images, make_protocol, parse_increments
from mclfir_lite.data.datasets import fingerprint, synthfashion_table

PLAN = [["sleeve_length"], ["colour"]]


@pytest.fixture(scope="module")
def tiny():
    table = synthfashion_table(n=400, size=32, seed=3)
    protocol = make_protocol(table, seed=3, max_queries=40, max_candidates=120)
    return table, load_images(table, 32), protocol


def make(tiny, strategy, tmp=None, **cfg):
    table, images, protocol = tiny
    config = Config(steps_per_attribute=cfg.pop("steps", 4), batch_size=16, encoder_width=8, embed_dim=16,
                    ewc_batches=2, replay_per_attribute=16, joint_steps=cfg.pop("joint_steps", 5),
                    retrain_steps=cfg.pop("retrain_steps", 3),
                    **cfg)
    return ContinualRunner(strategy, images, table.labels, protocol, PLAN, config, checkpoint_dir=tmp,
                           progress=False, data_fingerprint=fingerprint(table))


def run_counting(runner, **kw):
    """``runner.run(**kw)`` and the increments it trained: a resumed run must train only those its
    checkpoint does not hold (a runner that ignores its checkpoint trains them all, and, seeded,
    gets the same numbers, so equal numbers alone cannot tell a resume from a restart)."""
    trained, train = [], runner.train_increment

    def counted(i):
        trained.append(i)
        return train(i)
    runner.train_increment = counted
    return runner.run(**kw), trained


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_and_reports(tiny, strategy):
    res = make(tiny, strategy).run()
    assert res["attributes"] == ["sleeve_length", "colour"]
    R = res["map_matrix"]
    assert R[0][1] is None and all(0 <= v <= 1 for v in (R[0][0], R[1][0], R[1][1]))
    assert res["final_map"].keys() == {"sleeve_length", "colour"}
    if strategy == "retrain":   # retrained from scratch: two different models, no forgetting
        assert res["forgetting"] is None and res["bwt"] is None and "from scratch" in res["forgetting_note"]
    else:
        assert res["forgetting"] == pytest.approx(R[0][0] - R[1][0])
        assert res["bwt"] == pytest.approx(R[1][0] - R[0][0])
    steps = {"joint": 5 + 5, "retrain": 3 + 3}.get(strategy, 4 + 4)   # retrain: its own 3 mixed steps per fresh model
    assert res["optimizer_steps"] == steps
    if strategy == "retrain":   # mixed batches of every seen attribute: 16 doublets (32 images) each
        assert res["train_samples"] == 3 * 32 * (1 + 2)
    assert res["train_samples"] >= res["optimizer_steps"] * 32
    assert set(res["chance_map"]) == {"sleeve_length", "colour"}
    assert all(0 < v < 1 for v in res["chance_map"].values())
    assert set(res["at_chance"]) <= {"sleeve_length", "colour"}
    nq = {a: len(tiny[2][a].query) for a in res["attributes"]}
    assert res["final_meanap"] == pytest.approx(
        sum(res["final_map"][a] * nq[a] for a in nq) / sum(nq.values()))
    json.dumps(res)  # serialisable


def test_costs_and_parameters_reflect_the_strategy(tiny):
    iso = make(tiny, "isolated").run()
    fin = make(tiny, "finetune").run()
    mcl = make(tiny, "mclfir").run()
    ewc = make(tiny, "ewc").run()
    assert iso["params"]["stored"] > 1.8 * fin["params"]["stored"]        # one encoder copy per attribute
    # the EMA teacher is rebuilt at every increment: not stored, but it is there while training
    assert mcl["params"]["stored"] == fin["params"]["stored"]
    assert mcl["params"]["peak_training"] == 2 * fin["params"]["stored"]
    rel = make(tiny, "released").run()   # its never-updated copy of every backbone counts too
    assert rel["params"]["peak_training"] == 2 * rel["params"]["stored"] == 2 * iso["params"]["stored"]
    assert mcl["teacher_samples"] == 4 * 32 and fin["teacher_samples"] == 0  # distillation in increment 2 only
    # EWC's Fisher passes (ewc_batches per increment) are training cost too
    assert ewc["train_samples"] == fin["train_samples"] + 2 * 2 * 32
    frozen = make(tiny, "frozen")
    frozen.run()
    assert not any(p.requires_grad for p in frozen.model.encoder.parameters())


def test_joint_trains_every_seen_attribute_at_every_step(tiny):
    r = make(tiny, "joint", joint_steps=3)
    r.run()
    # increment 2: 3 mixed steps, each with 16 doublets of *both* attributes (one encoder pass)
    assert r.costs["train_samples"] == 3 * 32 + 3 * 2 * 32
    assert r.model.attributes == ["sleeve_length", "colour"]
    # warm start (cumulative): the model after increment 2 continued from increment 1's
    name = "encoder.body.0.weight"
    first = dict(r.model_after(0).named_parameters())[name]
    fresh = dict(make(tiny, "joint", joint_steps=3).model.named_parameters())[name]
    assert not torch.equal(first, fresh)
    scratch = make(tiny, "joint", joint_steps=3, joint_warm_start=False)
    res = scratch.run()
    assert res["forgetting"] is None and "from scratch" in res["forgetting_note"]


def test_mclfir_teacher_is_really_updated(tiny):
    r = make(tiny, "mclfir", ema_decay=0.5)
    r.run()
    s = dict(r.model.named_parameters())
    t = dict(r.strat.teacher.model.named_parameters())
    # the teacher starts as the model that finished increment 1 (model_after(0)); one that moves
    # with decay 0.5 has left it and sits closer to the student than it (a teacher frozen at that
    # snapshot, LwF's, would sit exactly on it)
    name = "encoder.body.0.weight"
    snap = dict(r.model_after(0).named_parameters())[name]
    assert not torch.equal(t[name], snap)
    assert (t[name] - s[name]).abs().mean() < 0.5 * (snap - s[name]).abs().mean()


def test_ema_every_updates_the_teacher_once_per_chunk(tiny):
    name = "encoder.body.0.weight"
    never = make(tiny, "mclfir", ema_decay=0.5, ema_every=100)   # more than the 4 steps: never updated
    never.run()
    assert torch.equal(dict(never.strat.teacher.model.named_parameters())[name],
                       dict(never.model_after(0).named_parameters())[name])   # LwF's frozen snapshot
    every2 = make(tiny, "mclfir", ema_decay=0.5, ema_every=2)
    every2.run()
    assert not torch.equal(dict(every2.strat.teacher.model.named_parameters())[name],
                           dict(every2.model_after(0).named_parameters())[name])


def test_released_preset_is_isolated_ntxent_with_a_fixed_teacher(tiny):
    r = make(tiny, "released")
    res = r.run()
    assert r.config.loss == "ntxent" and r.config.temperature == 0.3 and r.config.feature_distill_weight == 1e-4
    assert r.model.isolated and res["teacher_samples"] == 8 * 32
    assert res["params"]["stored"] == make(tiny, "isolated").run()["params"]["stored"]


def test_same_seed_same_numbers_and_other_seed_differs(tiny):
    a = make(tiny, "mclfir", seed=1).run()
    b = make(tiny, "mclfir", seed=1).run()
    c = make(tiny, "mclfir", seed=2).run()
    assert a["map_matrix"] == b["map_matrix"]
    assert a["map_matrix"] != c["map_matrix"]


@pytest.mark.parametrize("strategy", ["mclfir", "ewc", "replay", "isolated", "frozen"])
def test_resume_gives_identical_final_numbers(tiny, tmp_path, strategy):
    full = make(tiny, strategy, tmp_path / "full").run()
    part = make(tiny, strategy, tmp_path / "part")
    partial = part.run(stop_after=1)
    assert partial["finished_increments"] == 1 and partial["final_map"] == {}
    resumed, trained = run_counting(make(tiny, strategy, tmp_path / "part"))   # a new process would do the same
    assert trained == [1], f"a resumed run trained increments {trained}; only the second was left"
    assert resumed["map_matrix"] == full["map_matrix"]
    assert resumed["train_samples"] == full["train_samples"]


def test_snapshots_give_the_model_after_each_increment(tiny):
    r = make(tiny, "finetune")
    r.run()
    m0 = r.model_after(0)
    assert m0.attributes == ["sleeve_length"]
    assert not torch.equal(m0.encoder.body[0].weight, r.model.encoder.body[0].weight)
    with pytest.raises(ValueError, match="not available"):
        r.model_after(5)


def test_resume_from_other_configuration_is_refused(tiny, tmp_path):
    make(tiny, "finetune", tmp_path).run(stop_after=1)
    with pytest.raises(ValueError, match="different configuration.*lr"):
        make(tiny, "finetune", tmp_path, lr=0.1).run()
    with pytest.raises(FileExistsError):
        make(tiny, "finetune", tmp_path).run(resume=False)


def test_bad_input_is_named(tiny):
    table, images, protocol = tiny
    with pytest.raises(ValueError, match="unknown strategy.*'magic'"):
        ContinualRunner("magic", images, table.labels, protocol, PLAN)
    with pytest.raises(ValueError, match="increment 1 is empty"):
        ContinualRunner("finetune", images, table.labels, protocol, [["colour"], []])
    with pytest.raises(ValueError, match=r"unknown attribute\(s\) \['sleeves'\]"):
        ContinualRunner("finetune", images, table.labels, protocol, [["sleeves"]])
    with pytest.raises(ValueError, match="unknown loss"):
        ContinualRunner("finetune", images, table.labels, protocol, PLAN, Config(loss="hinge"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tiny):
    table, images, protocol = tiny
    with pytest.raises(ValueError, match="no CUDA GPU"):
        ContinualRunner("finetune", images, table.labels, protocol, PLAN, Config(device="cuda"))


def test_device_is_not_part_of_the_fingerprint(tiny, tmp_path):
    a = make(tiny, "finetune", tmp_path)
    b = make(tiny, "finetune", tmp_path, device="cpu:0")
    assert a.fingerprint["hash"] == b.fingerprint["hash"]
