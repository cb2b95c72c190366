"""The exercise checks of notebooks 08 (compatibility cell, protected side) and 09 (chance Recall@K,
FiLM by hand, paired differences): the right answer passes, the tempting wrong ones get their hint."""
import numpy as np
import pytest
import torch

from mclfir_lite.retrieval import compatibility as compat
from mclfir_lite.retrieval import composed as cp
from mclfir_lite.lab import exercises


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "0")


def _crossmodal_bits():
    """Two increments, attributes a then b; random unit embeddings for two indexes."""
    g = torch.Generator().manual_seed(0)
    unit = lambda *s: torch.nn.functional.normalize(torch.randn(*s, generator=g), dim=-1)
    labels = {"a": np.array([0, 1, 0, 1, 2, 2]), "b": np.array([1, 1, 0, 0, 1, 0])}
    data = {"gallery": (None, labels), "queries": {"a": (["x"] * 3, np.array([0, 1, 2])), "b": (["y"] * 2, np.array([0, 1]))}}
    indexes = [{"gallery": unit(6, 4), "texts": {"a": unit(3, 4), "b": unit(2, 4)}} for _ in range(2)]
    return indexes, data, [["a"], ["b"]]


def test_08_3_compatibility_cell(capsys):
    indexes, data, plan = _crossmodal_bits()
    right = float(np.mean(list(compat.text_to_image(indexes[1]["texts"], indexes[0]["gallery"], data, ["a", "b"]).values())))
    assert exercises.check("08.3", right, indexes, data, plan, 1, 0)
    only_a = compat.text_to_image(indexes[1]["texts"], indexes[0]["gallery"], data, ["a"])["a"]
    if not np.isclose(only_a, right):
        assert not exercises.check("08.3", only_a, indexes, data, plan, 1, 0)
        assert "every attribute seen up to" in capsys.readouterr().out
    assert not exercises.check("08.3", right + 0.05, indexes, data, plan, 1, 0)


def test_08_4_protected_side(capsys):
    names = ["finetune", "lwf", "mclfir", "bct"]
    assert exercises.check("08.4", {"finetune": "none", "lwf": "image", "mclfir": "image", "bct": "text"}, names)
    assert not exercises.check("08.4", {"finetune": "none", "lwf": "image", "mclfir": "image", "bct": "image"}, names)
    assert "['bct']" in capsys.readouterr().out
    assert not exercises.check("08.4", {n: "image" for n in names}, names)
    assert exercises.check("08.quiz", {1: "b", 2: "b", 3: "b", 4: "a"})


def test_09_checks(capsys):
    assert exercises.check("09.1", {10: 10 / 3800, 50: 50 / 3800}, 3800)
    assert not exercises.check("09.1", {10: 1 / 3800, 50: 1 / 3800}, 3800)
    assert "first" in capsys.readouterr().out
    torch.manual_seed(0)
    op, r, t = cp.Op("film", 8), torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        assert exercises.check("09.2", r * (1 + op.scale(t)) + op.shift(t), op, r, t)
        assert not exercises.check("09.2", r * op.scale(t) + op.shift(t), op, r, t)
    assert "1 + scale" in capsys.readouterr().out
    report = {"per_seed": {"0": {"dynamic": {"recall_at_10": 0.3}, "dynamic_no_sd": {"recall_at_10": 0.25}},
                           "1": {"dynamic": {"recall_at_10": 0.2}, "dynamic_no_sd": {"recall_at_10": 0.3}}}}
    assert exercises.check("09.3", [0.05, -0.1], report, [0, 1])
    assert not exercises.check("09.3", [-0.05, 0.1], report, [0, 1])
    assert "not the other way" in capsys.readouterr().out
    assert exercises.check("09.quiz", {1: "a", 2: "b", 3: "a", 4: "b"})
