"""The questionnaires of notebooks 05 (multi-head), 06 (EMA teacher) and 07 (baselines and cost):
the right letters pass, an empty, trivial or partly wrong answer gets a hint naming the question,
never the letter."""
import re

import pytest

from mclfir_lite.lab import exercises

RIGHT = {"05.quiz": {1: "b", 3: "c", 4: "b", 5: "a"},
         "06.quiz": {1: "b", 2: "a", 4: "a", 5: "c"},
         "07.quiz": {2: "c", 3: "c", 5: "a", 6: "b"}}


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "0")


@pytest.mark.parametrize("key", sorted(RIGHT))
def test_quiz_accepts_the_right_letters(key, capsys):
    assert exercises.check(key, RIGHT[key])
    assert f"exercise {key}: correct" in capsys.readouterr().out
    spelt = {q: f"({v.upper()})" for q, v in RIGHT[key].items()}     # "(B)" reads as "b"
    assert exercises.check(key, spelt)


@pytest.mark.parametrize("key", sorted(RIGHT))
def test_quiz_rejects_trivial_answers(key, capsys):
    for trivial in ({}, ..., None, "", "b", [], {q: "a" for q in RIGHT[key]}, {q: "" for q in RIGHT[key]},
                    {q: ... for q in RIGHT[key]}):
        assert not exercises.check(key, trivial), trivial
    out = capsys.readouterr().out
    assert "correct" not in out


@pytest.mark.parametrize("key", sorted(RIGHT))
def test_quiz_names_each_wrong_or_missing_question(key, capsys):
    right = RIGHT[key]
    for q, letter in right.items():                      # one wrong letter: only that question is named
        for other in sorted({"a", "b", "c"} - {letter}):
            assert not exercises.check(key, {**right, q: other}), (q, other)
            out = capsys.readouterr().out
            assert f"question {q}:" in out and not any(f"question {p}" in out for p in right if p != q), out
        assert not exercises.check(key, {p: v for p, v in right.items() if p != q})
        assert f"question {q} not answered yet" in capsys.readouterr().out


@pytest.mark.parametrize("key", sorted(RIGHT))
def test_quiz_hints_never_give_a_letter(key):
    check = exercises.CHECKS[key]
    for answer in ({}, {q: "a" for q in RIGHT[key]}, {q: "d" for q in RIGHT[key]}):
        hint = check(answer)
        assert hint and not re.search(r"""["'(][a-d]["')]""", hint), hint
