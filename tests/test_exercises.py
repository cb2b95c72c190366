"""Self-checking exercises: every check call in the notebooks has a registered check; checks say
"correct" or give a hint (never the solution); a student copy's unanswered stubs say "not yet"."""
import builtins
import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from mclfir_lite import exercises
from mclfir_lite.data import FashionTable

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("make_student_copies", NOTEBOOKS / "make_student_copies.py")
msc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(msc)

CHECK_CALL = re.compile(r"""exercises\.check\(\s*["']([^"']+)["']""")
MINE = ["00", "01", "02", "03", "04", "10", "11"]          # notebooks whose exercises have checks


def _nb(prefix, student=False):
    folder = NOTEBOOKS / "student" if student else NOTEBOOKS
    return nbformat.read(next(folder.glob(f"{prefix}_*.ipynb")), as_version=4)


def _calls(nb):
    return [k for c in nb.cells if c.cell_type == "code" for k in CHECK_CALL.findall(c.source)]


def test_every_check_call_is_registered_and_every_check_is_called():
    called = set()
    for path in msc.numbered_notebooks(NOTEBOOKS):
        keys = _calls(nbformat.read(path, as_version=4))
        unknown = set(keys) - set(exercises.CHECKS)
        assert not unknown, f"{path.name} calls unregistered checks {sorted(unknown)}"
        called |= set(keys)
    never = sorted(k for k in exercises.CHECKS if k.split(".")[0] in MINE and k not in called)
    assert not never, f"registered but never called in a notebook: {never}"


@pytest.mark.parametrize("prefix", MINE)
def test_each_exercise_and_questionnaire_has_a_check(prefix):
    nb = _nb(prefix)
    keys = _calls(nb)
    assert f"{prefix}.quiz" in keys, f"notebook {prefix}: no questionnaire check"
    exercise_md = next(c.source for c in nb.cells if c.cell_type == "markdown" and "## Exercises" in c.source)
    n_exercises = len(re.findall(r"^\d+\. ", exercise_md.split("## Exercises")[1], re.M))
    numbers = {k.split(".")[1].rstrip("b") for k in keys if k != f"{prefix}.quiz"}
    assert numbers == {str(i) for i in range(1, n_exercises + 1)}, f"notebook {prefix}: checks {sorted(keys)}"
    assert any(c.cell_type == "markdown" and c.source.startswith("## Questionnaire") for c in nb.cells)


@pytest.mark.parametrize("prefix", MINE)
def test_student_copy_keeps_checks_and_says_not_yet(prefix, capsys):
    """Run the student copy's stubs and check calls: with the stubs unanswered, each check says
    "not yet" and nothing raises (names the check needs from earlier cells are placeholders)."""
    student = _nb(prefix, student=True)
    assert _calls(student) == _calls(_nb(prefix)), "the student copy lost check calls"

    class Placeholder:                      # stands for any earlier variable: every attribute / item is one too
        def __getattr__(self, name):
            return Placeholder()

        def __getitem__(self, key):
            return Placeholder()

        def __len__(self):
            return 0

        def __iter__(self):
            raise TypeError("a placeholder for an earlier variable reached a check: is an answer not stubbed?")

    class Scope(dict):                      # unknown names (the notebook's earlier variables) -> a placeholder
        def __missing__(self, name):
            return getattr(builtins, name) if hasattr(builtins, name) else Placeholder()

    scope = Scope(exercises=exercises)
    ran = 0
    for cell in student.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and ("exercise" in tags or CHECK_CALL.search(cell.source)):
            exec(cell.source, {"exercises": exercises}, scope)
            ran += len(CHECK_CALL.findall(cell.source))
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("exercise ")]
    assert ran == len(said) == len(_calls(student)), said
    assert all(": not yet" in line for line in said), said


def test_answer_lines_become_stubs():
    src = "# Solution\nx = 2\nmy_answer = f(x)  # answer\nquiz = {1: 'a'}  # answer: {1: ...}\n"
    assert msc.code_stub(src) == "# Your solution here\nmy_answer = ...  # your answer\nquiz = {1: ...}  # your answer\n"
    assert msc.code_stub("# Solution\nprint(1)\n") == msc.CODE_STUB


def _said(capsys):
    return capsys.readouterr().out


def test_check_says_correct_or_hint(capsys):
    def full_ap(rel, k):                               # wrong: ignores the cut-off
        rel, hits, total = list(rel), 0, 0.0
        for rank, r in enumerate(rel, start=1):
            if r:
                hits += 1
                total += hits / rank
        return total / hits if hits else 0.0

    def ap_at_k(rel, k):
        return full_ap(list(rel)[:k], k)

    assert exercises.check("01.1", ap_at_k) and "correct" in _said(capsys)
    assert not exercises.check("01.1", full_ap)
    assert "Hint" in _said(capsys)
    assert not exercises.check("01.1", "not a function")      # a wrong type is a hint, not a crash
    assert "could not be checked" in _said(capsys)


def test_multiple_choice_hints_never_give_the_letter(capsys):
    assert exercises.check("04.quiz", {1: "b", 2: "a", 3: "c", 5: "(B)"})
    assert not exercises.check("04.quiz", {1: "b", 2: ..., 3: "a", 5: "b"})
    out = _said(capsys)
    assert "question 2 not answered yet" in out and "question 3:" in out and "question 1" not in out
    for key, check in exercises.CHECKS.items():
        if key.endswith(".quiz"):
            hint = check({})
            assert hint and not re.search(r'"[a-d]"', hint), f"{key} hint gives a letter away: {hint}"


def test_numeric_checks():
    from mclfir_lite.metrics import chance_map
    assert exercises.CHECKS["11.1"](chance_map([0, 2], [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])) is None
    assert "exact" in exercises.CHECKS["11.1"](0.3)            # the fraction is only the rule of thumb
    assert exercises.CHECKS["11.2"]((0.15, -0.1)) is None and exercises.CHECKS["11.2"]((0.25, -0.2))
    assert exercises.CHECKS["03.2"](0.26, 4) is None and exercises.CHECKS["03.2"](0.5, 4)
    assert exercises.CHECKS["03.3"]({"untrained": 0.1, "trained": 0.8}) is None
    assert exercises.CHECKS["03.3"]({"untrained": 0.8, "trained": 0.1})
    R = np.array([[0.6, np.nan], [0.7, 0.9]])
    assert exercises.CHECKS["01.3"](R) is None and exercises.CHECKS["01.3"]([[0.8, np.nan], [0.6, 0.9]])
    assert exercises.CHECKS["01.3b"](True) is None and exercises.CHECKS["01.3b"](False)


def test_chance_level_check_uses_the_protocol():
    labels = {"a": np.array([0, 0, 1, 1, 1, 0])}
    protocol = {"a": SimpleNamespace(query=np.array([0, 2]), candidate=np.array([1, 3, 4, 5]))}
    lab = SimpleNamespace(table=SimpleNamespace(labels=labels), protocol=protocol)
    # query 0 (value 0): 2 of 4 candidates; query 2 (value 1): 2 of 4 -> 0.5
    assert exercises.CHECKS["00.2"]({"a": 0.5}, lab) is None
    assert "average over the queries" in exercises.CHECKS["00.2"]({"a": 0.25}, lab)


def test_old_encoder_check_compares_with_the_matrix_row():
    res = {"attributes": ["x", "y"], "map_matrix": [[0.9, None], [0.3, 0.8]]}
    assert exercises.CHECKS["04.1"]({"x": 0.9, "y": 0.1}, res, 0) is None
    assert "do not come back" in exercises.CHECKS["04.1"]({"x": 0.3, "y": 0.8}, res, 0)


def test_table_checks():
    t = FashionTable(images=[f"{i}.png" for i in range(8)], labels={"colour": [0, 1] * 4}, values={"colour": ["b", "r"]},
                     split=["test", "train", "train", "train"] * 2)
    assert exercises.CHECKS["10.1"](t) is None
    assert "FashionTable" in exercises.CHECKS["10.1"]({"colour": 1})
    assert exercises.CHECKS["10.3"]("no data") is None and "500" in exercises.CHECKS["10.3"](t)
    assert exercises.CHECKS["10.2"]({"attributes": ["neckline", "colour"], "map_matrix": [[0.5, None], [0.4, 0.6]]}) is None
