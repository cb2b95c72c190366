"""The benchmarks' run ledger (benchmarks/_common.py): a finished run's result, kept under its
fingerprint, is reused only by a run that would compute exactly it; --fresh retrains; an entry
of other code, another run or unreadable bytes is never used; pruning keeps only this code's."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common as C  # noqa: E402


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(C.LEDGER_ENV, str(tmp_path / "ledger"))
    return tmp_path / "ledger"


def _run(**kw):
    lab = C.synth_lab(True, 0, steps_per_attribute=3, joint_steps=3)
    return lab, C.run_strategy(lab, "finetune", **kw)


def test_a_finished_run_is_reused_from_the_ledger_without_its_checkpoint(ledger):
    lab, (first, _, cached) = _run()
    assert not cached and first["final_meanap"] is not None
    [entry] = list(ledger.glob("*.json"))
    assert entry.name.startswith(first["fingerprint"] + ".")
    runner = lab.runner("finetune", cache=True, progress=False)
    runner.checkpoint.unlink()                          # the run cache is gone (a new machine)
    _, (again, wall, cached) = _run()
    assert cached and wall == 0.0 and again == first
    lab2 = C.synth_lab(True, 0, steps_per_attribute=3, joint_steps=4)   # a field finetune does not read
    other, wall, cached = C.run_strategy(lab2, "finetune")
    assert cached and other["final_map"] == first["final_map"] and other["config"]["joint_steps"] == 4
    _, (fresh, wall, cached) = _run(fresh=True)         # --fresh trains it now
    assert not cached and wall > 0 and fresh["final_meanap"] == pytest.approx(first["final_meanap"])


def test_a_foreign_or_unreadable_entry_is_never_used(ledger, capsys):
    _, (first, _, _) = _run()
    [entry] = list(ledger.glob("*.json"))
    stored = json.loads(entry.read_text())
    stored["fingerprint"]["fields"]["seed"] = "1"       # another run's fields under this name
    stored["result"]["final_meanap"] = 2.0
    entry.write_text(json.dumps(stored))
    assert C.ledger_read({"hash": entry.name.split(".")[0], "fields": {}}, ledger) is None
    lab = C.synth_lab(True, 0, steps_per_attribute=3, joint_steps=3)
    lab.runner("finetune", cache=True, progress=False).checkpoint.unlink()
    _, (again, _, cached) = _run()
    assert not cached and again["final_meanap"] == pytest.approx(first["final_meanap"])
    entry.write_bytes(b"\x00 not json")
    lab.runner("finetune", cache=True, progress=False).checkpoint.unlink()
    _, (again, _, cached) = _run()
    assert not cached and "unreadable" in capsys.readouterr().out
    assert json.loads(entry.read_text())["result"]["final_meanap"] == pytest.approx(first["final_meanap"])


def test_an_entry_made_on_another_kind_of_machine_is_not_served_nor_replaced(ledger):
    lab, (first, _, _) = _run()
    [entry] = list(ledger.glob("*.json"))
    stored = json.loads(entry.read_text())
    assert stored["context"] == C.ledger_context()
    fp = lab.runner("finetune", cache=True, progress=False).fingerprint
    other = {**stored["context"], "torch_threads": stored["context"]["torch_threads"] + 1}   # other numbers
    theirs = C.ledger_path(fp, ledger, other)
    theirs.write_text(json.dumps({**stored, "context": other, "result": {**stored["result"], "final_meanap": 2.0}}))
    entry.unlink()
    lab.runner("finetune", cache=True, progress=False).checkpoint.unlink()
    _, (again, _, cached) = _run()
    assert not cached and again["final_meanap"] == pytest.approx(first["final_meanap"])
    assert json.loads(theirs.read_text())["result"]["final_meanap"] == 2.0        # kept for its machine
    assert entry.is_file() and json.loads(entry.read_text())["context"] == C.ledger_context()


@pytest.mark.parametrize("damage", [{"fingerprint": None}, "no result", [1, 2], {"result": [1]}])
def test_a_damaged_entry_is_a_warning_and_a_training_run(ledger, capsys, damage):
    lab, (first, _, _) = _run()
    [entry] = list(ledger.glob("*.json"))
    stored = json.loads(entry.read_text())
    if damage == "no result":
        del stored["result"]
    elif isinstance(damage, dict):
        stored.update(damage)
    else:
        stored = damage
    entry.write_text(json.dumps(stored))
    lab.runner("finetune", cache=True, progress=False).checkpoint.unlink()
    _, (again, _, cached) = _run()
    assert not cached and again["final_meanap"] == pytest.approx(first["final_meanap"])
    assert "ledger entry" in capsys.readouterr().out


def test_pruning_keeps_only_this_codes_entries(ledger):
    _run()
    [mine] = list(ledger.glob("*.json"))
    other = json.loads(mine.read_text())
    other["fingerprint"]["fields"]["code"] = "0" * 12
    (ledger / "other.json").write_text(json.dumps(other))
    (ledger / "broken.json").write_text("{")
    assert sorted(C.ledger_prune(ledger)) == ["broken.json", "other.json"]
    assert [p.name for p in ledger.glob("*.json")] == [mine.name]


def test_without_a_ledger_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(C.LEDGER_ENV, raising=False)
    _run()
    assert not list(tmp_path.rglob("ledger"))
