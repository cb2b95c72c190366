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

from mclfir_lite.lab import exercises, exercises_00_04
from mclfir_lite.data.table import FashionTable

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("make_student_copies", NOTEBOOKS / "make_student_copies.py")
msc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(msc)

CHECK_CALL = re.compile(r"""exercises\.check\(\s*["']([^"']+)["']""")
MINE = ["00", "01", "02", "03", "04", "05", "06", "07", "10", "11"]          # notebooks whose exercises have checks


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
def test_student_copy_keeps_checks_and_says_not_yet(prefix, capsys, monkeypatch):
    """Run the student copy's stubs and check calls: with the stubs unanswered, each check says
    "not yet" and nothing raises (names the check needs from earlier cells are placeholders), as
    a learner runs it (not strict: in strict mode an unanswered exercise is an error)."""
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "0")
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
    quizzes = [key for key in exercises.CHECKS if key.endswith(".quiz")]
    assert len(quizzes) >= 12
    letter = re.compile(r"""["'(\[][a-dA-D]["')\]]""")   # "b", 'b', (b), [b]
    for key in quizzes:
        check = exercises.CHECKS[key]
        # every question answered with each letter in turn: every wrong answer's hint is produced
        hints = [check({q: c for q in range(1, 16)}) for c in "abcd"] + [check({}), check("b")]
        assert hints[-2] and hints[-1], key
        for hint in filter(None, hints):
            assert not letter.search(hint.split("e.g.")[0]), f"{key} hint gives a letter away: {hint}"
        assert any(h and "question" in h and "not answered" not in h for h in hints[:4]), key
        q, example = re.search(r'e\.g\. \{(\d+): "([a-d])"\}', hints[-1]).groups()   # the format example
        assert f"question {q}:" in (check({int(q): example}) or ""), f"{key}: the example's letter is right"


def test_numeric_checks():
    from mclfir_lite.core.metrics import chance_map
    assert exercises.CHECKS["11.1"](chance_map([0, 2], [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])) is None
    assert "exact" in exercises.CHECKS["11.1"](0.3)            # the fraction is only the rule of thumb
    assert exercises.CHECKS["11.2"]((0.15, -0.1)) is None and exercises.CHECKS["11.2"]((0.25, -0.2))
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


def test_old_encoder_check_compares_with_the_matrix_row_and_the_swapped_model(monkeypatch):
    import mclfir_lite.training.evaluate as ev
    res = {"attributes": ["x", "y"], "map_matrix": [[0.9, None], [0.3, 0.8]]}
    encoders = []
    model = lambda t: SimpleNamespace(encoder=SimpleNamespace(state_dict=lambda: {"t": t},
                                                              load_state_dict=encoders.append))
    run = SimpleNamespace(model_after=model)
    lab = SimpleNamespace(images=None, table=SimpleNamespace(labels=None), protocol=None)
    monkeypatch.setattr(ev, "evaluate", lambda m, images, labels, protocol, attrs: {a: 0.1 for a in attrs})
    check = exercises.CHECKS["04.1"]
    assert check({"x": 0.9, "y": 0.1}, res, 0, run, lab) is None
    assert encoders[-1] == {"t": 0}                      # the encoder of increment 1 went into the final model
    assert "do not come back" in check({"x": 0.3, "y": 0.8}, res, 0, run, lab)
    assert "missing" in check({"x": 0.9}, res, 0, run, lab)                  # a copy of row t0: no later attribute
    assert "learnt later" in check({"x": 0.9, "y": 0.8}, res, 0, run, lab)   # the final mAP: nothing swapped


def test_table_checks():
    t = FashionTable(images=[f"{'br'[i % 2]}/{i}.png" for i in range(8)], labels={"colour": [0, 1] * 4},
                     values={"colour": ["b", "r"]}, split=["test", "train", "train", "train"] * 2)
    assert exercises.CHECKS["10.1"](t) is None
    other = FashionTable(images=[f"{'br'[i % 2]}/{i}.png" for i in range(8)], labels={"colour": [1, 0] * 4},
                         values={"colour": ["b", "r"]}, split=["test", "train", "train", "train"] * 2)
    assert "folder" in exercises.CHECKS["10.1"](other)      # a colour column that is not the folders' names
    assert "FashionTable" in exercises.CHECKS["10.1"]({"colour": 1})
    assert exercises.CHECKS["10.3"]("no data") is None and "500" in exercises.CHECKS["10.3"](t, True)
    assert "prepare it" in exercises.CHECKS["10.3"]("no data", True)       # the data is here: no excuse
    assert "not available" in exercises.CHECKS["10.3"](t, False)
    assert exercises.CHECKS["10.2"](_tiny_result()) is None


# --- strict mode: a reference solution that fails its check fails the run ------------------------

def test_strict_mode_raises_for_a_wrong_answer_and_for_a_stub(monkeypatch, capsys):
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "1")
    with pytest.raises(exercises.ExerciseError, match="01.3b.*fails its check"):
        exercises.check("01.3b", False)
    with pytest.raises(exercises.ExerciseError, match="01.3b.*no answer"):
        exercises.check("01.3b", ...)                            # a solution that lost its answer fails too
    assert exercises.check("01.3b", True)
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "0")
    assert not exercises.check("01.3b", ...)                     # a learner's stub says "not yet"
    assert "not yet answered" in capsys.readouterr().out


@pytest.mark.parametrize("env, expected", [
    ({}, False), ({"CI": "true"}, True), ({"CI": "false"}, False),
    ({"PYTEST_CURRENT_TEST": "notebooks/04_catastrophic_forgetting.ipynb:: (call)"}, True),
    ({"PYTEST_CURRENT_TEST": "tests/test_exercises.py::test_x (call)"}, False),
    ({"MCLFIR_STRICT_EXERCISES": "1"}, True), ({"CI": "true", "MCLFIR_STRICT_EXERCISES": "0"}, False),
])
def test_strict_mode_detection(monkeypatch, env, expected):
    for name in ("CI", "PYTEST_CURRENT_TEST", "MCLFIR_STRICT_EXERCISES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exercises.strict() is expected


# --- trivial answers are rejected ---------------------------------------------------------------

TRIVIAL = [None, ..., 0, 1, 0.0, 0.25, 0.5, 1.0, -1, "", "no data", "a", [], {}, (), (0, 0), True, False,
           "finetune", ["finetune"], ["finetune", "retrain"], {"colour": 0.5, "pattern": 0.5},
           {"untrained": 0, "trained": 1}, np.zeros((2, 2)), np.full((2, 2), np.nan)]
# answers that are right by construction for a check (a multiple choice, a yes/no)
# (03.1: the limit of the loss is the number 0; 10.3: "no data" is right where the subset is absent,
#  the default of its context; test_table_checks covers the machine that has it)
RIGHT_BY_CONSTRUCTION = {"01.3b": [True], "03.1": [0, 0.0], "10.3": ["no data"]}


class Anything:
    """A stand-in context: any attribute, item or call gives another one; iterating it raises, so a
    check cannot compare an answer with an empty expectation made from it."""
    def __getattr__(self, name):
        return Anything()

    def __getitem__(self, key):
        return Anything()

    def __call__(self, *a, **k):
        return Anything()

    def __iter__(self):
        raise TypeError("a stand-in context cannot be iterated")


def _n_context(check):
    import inspect
    params = list(inspect.signature(check).parameters.values())[1:]
    return sum(p.default is inspect.Parameter.empty for p in params)


# Checks whose context only a training run of the notebook's own can make: they meet the trivial
# answers with the stand-in context (test_every_check_rejects_trivial_answers) and their own tests.
TRAINS_IN_ITS_CONTEXT = {"00.2", "02.1", "03.3", "04.1", "04.3", "05.4", "06.3", "06.4"}


@pytest.fixture(scope="module")
def contexts():
    """A real context for every check with one that is cheap to make: a small SynthFashion lab, an
    untrained model, a two-increment run of a few steps, hand-made results. With these the trivial
    answers reach the comparison with a right answer, which a stand-in context cannot show (the
    check raises on it, and any answer is then "not correct")."""
    from types import SimpleNamespace

    import torch
    from mclfir_lite.config import Config
    from mclfir_lite.core.encoders import SmallCNN
    from mclfir_lite.core.model import RetrievalModel
    from mclfir_lite.data.datasets import synthfashion_table
    from mclfir_lite.data.table import load_images, make_protocol
    from mclfir_lite.retrieval.composed import Op
    from mclfir_lite.retrieval.index import GalleryIndex
    from mclfir_lite.training.runner import ContinualRunner
    table = synthfashion_table(n=300, size=32, seed=5)
    protocol = make_protocol(table, seed=5, max_queries=40, max_candidates=100)
    images = load_images(table, 32, use_cache=False)
    lab = SimpleNamespace(table=table, images=images, protocol=protocol)
    model = RetrievalModel(lambda: SmallCNN(width=8), embed_dim=16, seed=0)
    for a in ("length", "colour"):
        model.add_attribute(a)
    run = ContinualRunner("finetune", images, table.labels, protocol, [["length"], ["colour"]],
                          Config(steps_per_attribute=3, batch_size=16, encoder_width=8, embed_dim=16), progress=False)
    result = run.run()
    other = RetrievalModel(lambda: SmallCNN(width=8), embed_dim=16, seed=1)
    other.add_attribute("length")
    index = GalleryIndex.build(model, images, protocol["length"].candidate, "length")
    g = torch.nn.functional.normalize(torch.randn(30, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    texts = {a: torch.nn.functional.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(k)), dim=1)
             for k, a in enumerate(("length", "colour"))}
    data = {"gallery": (None, {"length": np.arange(30) % 4, "colour": np.arange(30) % 3}),
            "queries": {"length": (None, np.arange(4)), "colour": (None, np.arange(4) % 3)}}
    film = Op("film", 16)
    torch.manual_seed(0)
    r, t = torch.randn(5, 16), torch.randn(5, 16)
    q_emb, c_emb = torch.randn(6, 8), torch.randn(20, 8)
    results = {s: {"final_map": {"length": fm, "colour": fc}, "chance_map": {"length": 0.3, "colour": 0.2},
                   "train_samples": 1000, "teacher_samples": ts, "optimizer_steps": 10}
               for s, fm, fc, ts in (("isolated", 0.9, 0.8, 0), ("frozen", 0.7, 0.22, 0), ("finetune", 0.32, 0.9, 0),
                                     ("lwf", 0.8, 0.7, 600))}
    per_seed = {str(s): {"dynamic": {"recall_at_10": 0.5 + 0.1 * s}, "dynamic_no_sd": {"recall_at_10": 0.45 + 0.05 * s}}
                for s in (0, 1, 2)}
    return {"00.3": [list(table.attributes)],
            "01.2": [q_emb, c_emb, np.arange(6) % 3, np.arange(20) % 3],
            "02.2": [model, lab], "03.2": [lab, 16],
            "04.2": [run, lab, result, ["length"]],
            "05.2": [results], "05.3": [lab, model],
            "06.1": [0.999], "06.2": [0.995, 150],
            "07.1": [results], "07.2": [400], "07.3": [results],
            "08.1": [index, other, images],
            "08.2": [[["length"], ["colour"], ["pattern"]], {"length": 100, "colour": 200, "pattern": 50}],
            "08.3": [[{"texts": texts, "gallery": g}, {"texts": texts, "gallery": g.flip(0)}], data,
                     [["length"], ["colour"]], 1, 0],
            "08.4": [["finetune", "lwf", "mclfir", "bct"]],
            "09.1": [1000], "09.2": [film, r, t], "09.3": [{"per_seed": per_seed}, [0, 1, 2]]}


def test_every_check_with_a_context_has_a_real_one_or_trains(contexts):
    need = {k for k, c in exercises.CHECKS.items() if _n_context(c)}
    assert need - set(contexts) - TRAINS_IN_ITS_CONTEXT == set(), "give the new check a context in contexts()"


@pytest.mark.parametrize("key", sorted(exercises.CHECKS))
def test_every_check_rejects_trivial_answers(key, capsys, contexts):
    """None, constants, empty containers, stock dicts: never "correct", checked against a real context
    where one is cheap to make (and then at least one trivial answer must reach the comparison: a
    check that raised on every answer would reject them all without comparing anything), else
    against a stand-in (an answer that can only be checked against the notebook's numbers is not
    correct either)."""
    check = exercises.CHECKS[key]
    context = contexts.get(key) or [Anything() for _ in range(_n_context(check))]
    right = RIGHT_BY_CONSTRUCTION.get(key, [])
    passed = [a for a in TRIVIAL if not any(a is r for r in right) and exercises.check(key, a, *context)]
    assert not passed, f"exercise {key} accepts trivial answers {passed!r}"
    if key in contexts:
        compared = []
        for a in TRIVIAL:
            try:
                if check(a, *context):
                    compared.append(a)
            except Exception:   # a wrong type: exercises.check says "could not be checked"
                pass
        assert compared, f"exercise {key}: no trivial answer reached a hint (does the check run on its context?)"


def test_02_1_wants_the_128px_numbers(monkeypatch):
    monkeypatch.setattr(exercises_00_04, "_effnet_128_reference", lambda lab: {"colour": 0.41, "pattern": 0.37})
    check = exercises.CHECKS["02.1"]
    assert check({"colour": 0.4105, "pattern": 0.3695}, None) is None
    for wrong in ({"colour": 0.5, "pattern": 0.5}, {"colour": 1.0, "pattern": 1.0}, {"colour": 0.37, "pattern": 0.41}):
        assert "input_size=128" in check(wrong, None)


def _silhouette_lab(n=400, values=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = {"silhouette": rng.integers(0, values, n)}
    return SimpleNamespace(table=SimpleNamespace(labels=labels, values={"silhouette": [f"v{i}" for i in range(values)]}),
                           protocol={"silhouette": SimpleNamespace(train=np.arange(n))})


def test_03_2_wants_the_count_of_the_seeded_batch():
    lab = _silhouette_lab()
    right = exercises_00_04._silhouette_false_fraction(lab, 32)
    assert exercises.CHECKS["03.2"](right, lab, 32) is None
    assert right != 0.25
    assert "prediction" in exercises.CHECKS["03.2"](0.25, lab, 32)           # 1 / values is not the count
    assert exercises.CHECKS["03.2"](right + 0.01, lab, 32)


def test_03_3_wants_the_measured_fractions(monkeypatch):
    # what notebook 03 measures: no untrained triplet has zero loss, nearly every trained one does
    monkeypatch.setattr(exercises_00_04, "_zero_loss_fractions", lambda *a, **k: {"untrained": 0.0, "trained": 250 / 256})
    check = exercises.CHECKS["03.3"]
    assert check({"untrained": 0.0, "trained": 250 / 256}, None, None, "length", None) is None
    for wrong in ({"untrained": 0, "trained": 1}, {"untrained": 0.98, "trained": 0.0}, {"trained": 0.98},
                  {"untrained": 0.0, "trained": 0.98}):
        assert check(wrong, None, None, "length", None)


def test_04_3_wants_every_value_and_its_mean_aps(monkeypatch):
    import mclfir_lite.lab.views as views
    values = ["short", "long", "mid"]

    def fake_view(lab, runners, strategy, attribute, increment, q, k=8, cache=None):
        return {"query_value": values[q % 2], "ap": (0.8 if increment == 0 else 0.3) + 0.01 * (q % 2)}

    monkeypatch.setattr(views, "neighbour_view", fake_view)
    lab = SimpleNamespace(table=SimpleNamespace(values={"length": values}))
    check = exercises.CHECKS["04.3"]
    right = {"short": (0.8, 0.3), "long": (0.81, 0.31)}
    assert check(right, lab, {}, "length", 0, 2) is None
    for wrong in ({"short": (0, 0)}, {"short": (0.8, 0.3)}, {"short": (0.3, 0.8), "long": (0.31, 0.81)}, {"tall": (0.5, 0.5)}):
        assert check(wrong, lab, {}, "length", 0, 2), wrong


def _tiny_result():
    return {"strategy": "finetune", "attributes": ["neckline", "colour"], "map_matrix": [[0.5, None], [0.4, 0.6]],
            "final_map": {"neckline": 0.4, "colour": 0.6}, "chance_map": {"neckline": 0.2, "colour": 0.15},
            "optimizer_steps": 10, "config": {"steps_per_attribute": 5}}


def test_10_2_wants_a_finished_run_of_the_plan():
    check = exercises.CHECKS["10.2"]
    assert check(_tiny_result()) is None
    shuffled = _tiny_result() | {"map_matrix": [[0.4, 0.6], [0.5, None]]}
    for wrong in ({"attributes": ["neckline", "colour"], "map_matrix": [[0.5, None], [0.4, 0.6]]}, shuffled,
                  _tiny_result() | {"strategy": "mclfir"}, _tiny_result() | {"optimizer_steps": 3},
                  _tiny_result() | {"final_map": {"neckline": 0.9, "colour": 0.9}},
                  _tiny_result() | {"map_matrix": [[float("nan"), None], [0.4, 0.6]]}):
        assert check(wrong), wrong


def test_10_2_with_the_table_refuses_a_hand_made_result_and_takes_a_real_run(tmp_path):
    """With the table as context the check ties the answer to that data: the fabricated result
    above (the right shape) is refused, a real tiny run on the table is accepted."""
    from mclfir_lite.config import Config
    from mclfir_lite.data.datasets import load_dataset
    from mclfir_lite.lab.lab import Lab
    table = load_dataset("synthfashion", n=240, size=16, seed=3, increments=[["neckline"], ["colour"]])
    check = exercises.CHECKS["10.2"]
    assert "my_shop" in check(_tiny_result(), table)
    lab = Lab.from_table(table, [["neckline"], ["colour"]], Config(steps_per_attribute=2, batch_size=8, encoder_width=8),
                         quick=True, image_size=16)
    lab.runs_dir = tmp_path
    assert check(lab.run("finetune", cache=False, progress=False).result(), table) is None


def test_07_3_wants_exactly_the_strategies_at_chance():
    chance = {"length": 0.2, "colour": 0.15}

    def result(length, colour, flagged):   # flagged: the run's own "at_chance" list, which the check must not trust
        return {"final_map": {"length": length, "colour": colour}, "chance_map": chance, "at_chance": flagged}

    results = {"finetune": result(0.22, 0.9, ["length"]), "retrain": result(0.9, 0.17, ["colour"]),
               "mclfir": result(0.9, 0.9, [])}
    check = exercises.CHECKS["07.3"]
    assert check(["retrain", "finetune"], results) is None
    assert check(("finetune", "retrain"), results) is None
    for wrong in ([], ["finetune"], ["mclfir"], list(results), "finetune", None, 0):
        assert check(wrong, results), wrong
    # the numbers decide, not the flags: mclfir's colour at chance + 0.04 is "at chance" even if unflagged
    results["mclfir"] = result(0.9, 0.19, [])
    assert check(["finetune", "retrain", "mclfir"], results) is None
    assert check(["finetune", "retrain"], results)


@pytest.mark.parametrize("unanswered", [None, ..., "", "  "])
def test_strict_mode_refuses_an_unanswered_reference_solution(unanswered, monkeypatch):
    """A solution notebook whose answer became None or ... must fail under nbmake / CI, not pass
    as "not yet"; a learner's run (not strict) still says "not yet"."""
    key = sorted(exercises.CHECKS)[0]
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "1")
    with pytest.raises(exercises.ExerciseError, match="no answer"):
        exercises.check(key, unanswered)
    monkeypatch.setenv("MCLFIR_STRICT_EXERCISES", "0")
    assert exercises.check(key, unanswered) is False


def test_05_4_wants_the_soft_runs_forgetting_and_where_it_lands():
    soft = {"forgetting": 0.30}
    lab = SimpleNamespace(run=lambda strategy, **kw: SimpleNamespace(result=lambda: soft))
    results = {"frozen": {"forgetting": 0.0}, "finetune": {"forgetting": 0.67}}
    check = exercises.CHECKS["05.4"]
    assert check({"forgetting": 0.30, "where": "between"}, lab, results) is None
    assert "soft run's own" in check({"forgetting": 0.05, "where": "between"}, lab, results)   # a guess is not the run
    assert "compare" in check({"forgetting": 0.30, "where": "like finetune"}, lab, results)
    assert "dict" in check("between", lab, results)                  # the category alone is no longer an answer
    soft["forgetting"] = 0.66
    assert check({"forgetting": 0.66, "where": "like finetune"}, lab, results) is None


def test_01_2_wants_the_negated_mean_ap_it_computed():
    rng = np.random.default_rng(0)
    q, c = rng.integers(-3, 4, size=(6, 4)).astype(np.float32), rng.integers(-3, 4, size=(12, 4)).astype(np.float32)
    ql, cl = rng.integers(0, 3, size=6), rng.integers(0, 3, size=12)
    def ap(rel):                                   # the notebook's recipe: a stable sort, ties by candidate index
        hits = np.cumsum(rel)
        return float((hits / np.arange(1, len(rel) + 1))[rel].mean()) if rel.any() else 0.0
    negated = float(np.mean([ap(cl[np.argsort(-(-(c @ qq)), kind="stable")] == l) for qq, l in zip(q, ql)]))
    check = exercises.CHECKS["01.2"]
    assert check((True, False, negated), q, c, ql, cl) is None
    assert "three things" in check((True, False), q, c, ql, cl)               # the two booleans alone: typed, not computed
    assert "compare" in check((True, True, negated), q, c, ql, cl)
    assert "mean AP under negation" in check((True, False, negated + 0.01), q, c, ql, cl)
    assert "one number" in check((True, False, [negated] * 6), q, c, ql, cl)       # the per-query APs, not their mean
    assert check((True, False, float("nan")), q, c, ql, cl)                       # NaN is never within a tolerance


def test_a_nan_answer_is_never_close_enough():
    assert exercises.CHECKS["06.2"](float("nan"), 0.995, 400)
    lab = SimpleNamespace(run=lambda strategy, **kw: SimpleNamespace(result=lambda: {"forgetting": 0.3}))
    results = {"frozen": {"forgetting": 0.0}, "finetune": {"forgetting": 0.67}}
    assert exercises.CHECKS["05.4"]({"forgetting": float("nan"), "where": "between"}, lab, results)
    assert "keys" in exercises.CHECKS["05.4"]({"forgetting": 0.3, "where": "between", "note": 1}, lab, results)
