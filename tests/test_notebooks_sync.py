"""The notebooks' shape: student copies current, goals, exercises, solutions, no machine paths, small files."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("make_student_copies", NOTEBOOKS / "make_student_copies.py")
msc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(msc)

NUMBERED = msc.numbered_notebooks(NOTEBOOKS)
ABSOLUTE = re.compile(r"(?<![\w.~-])/(work|root|home)/")
MAX_BYTES = 1_500_000


def test_there_are_numbered_notebooks():
    assert NUMBERED, "no numbered notebooks found"


def test_student_copies_are_current():
    assert msc.stale(NOTEBOOKS) == [], "run: python notebooks/make_student_copies.py"


def _nb(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _text(src):
    return "".join(src) if isinstance(src, list) else src


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.name)
def test_notebook_shape(path):
    nb = _nb(path)
    markdown = [_text(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert any(re.search(r"learning goals", m, re.I) for m in markdown), f"{path.name}: no 'Learning goals'"
    assert any(re.search(r"^#+\s*Exercises", m, re.M | re.I) for m in markdown), f"{path.name}: no Exercises section"
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions, f"{path.name}: no cell tagged 'solution'"
    for c in solutions:
        if c["cell_type"] == "code":
            first = _text(c["source"]).lstrip().splitlines()[0]
            assert first.startswith("# Solution"), f"{path.name}: a solution cell starts with {first!r}"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.name)
def test_no_absolute_paths_and_small(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size / 1e6:.2f} MB"
    for i, cell in enumerate(_nb(path)["cells"]):
        texts = [_text(cell["source"])]
        for out in cell.get("outputs", []):
            texts.append(_text(out.get("text", "")))
            for mime, data in out.get("data", {}).items():
                if mime.startswith("text/"):
                    texts.append(_text(data))
            texts.extend(out.get("traceback", []))
        for t in texts:
            m = ABSOLUTE.search(t)
            assert m is None, f"{path.name}, cell {i}: absolute path {t[max(0, m.start() - 20):m.end() + 30]!r}"


def test_the_lab_path_in_the_readme_and_the_notebook_headers_agree():
    """notebooks/lab_path.py is the one source of the 3-hour lab path: every notebook's header
    carries its line, and the README's table is the one it renders."""
    import importlib.util
    import json
    import re
    from pathlib import Path
    here = Path(__file__).resolve().parent.parent / "notebooks"
    spec = importlib.util.spec_from_file_location("lab_path", here / "lab_path.py")
    lab_path = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab_path)
    for prefix, path in lab_path.notebooks().items():
        first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
        assert lab_path.header_line(prefix) in first, f"{path.name}: run python notebooks/lab_path.py"
    readme = lab_path.README.read_text(encoding="utf-8")
    block = re.search(re.escape(lab_path.START) + "\n(.*?)\n" + re.escape(lab_path.END), readme, re.S).group(1)
    assert block == lab_path.table()
    assert sum(m for p, _, m in lab_path.LAB_PATH.values() if p == "core") <= 180


def _lab_path():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("lab_path", Path(__file__).resolve().parent.parent / "notebooks" / "lab_path.py")
    lab_path = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab_path)
    return lab_path


def test_no_working_time_of_the_lab_path_is_under_what_its_notebook_asks():
    """Each row's estimate is at least the time its prose takes at a mean reading rate plus its
    exercises' minutes, measured from the notebook: content that grows fails here."""
    lab_path = _lab_path()
    for prefix, (part, what, minutes) in lab_path.LAB_PATH.items():
        need = lab_path.load(prefix)
        assert need["words"] > 300, f"{prefix}: {what!r} names almost no prose: is the section range right?"
        assert minutes >= need["least_minutes"], (
            f"{prefix} ({what}): {minutes} min of work estimated, but its {need['words']:,} words and "
            f"{need['exercises']} exercise(s) take at least {need['least_minutes']} min: raise the estimate or shorten the path")


def test_the_lab_paths_measure_of_a_notebook_counts_what_the_row_names():
    lab_path = _lab_path()
    cells = [{"cell_type": "markdown", "source": [t]} for t in
             ("# Title\nintro words", "## 1. One\na b c", "end of one\n## 2. Two\nd e",
              "## Summary\nf\n## Exercises\ng h i j", "## Questionnaire\nk")]
    cells.insert(2, {"cell_type": "code", "source": ["x = 1  # code is not prose"]})
    words = lambda what: sum(len(line.split()) for line in lab_path.span(cells, what))  # noqa: E731
    assert words("sections 1–1") == 4 + 6 + 3               # a heading inside a cell starts its section there
    assert words("sections 1–2") == 4 + 6 + 3 + 5 + 3       # the summary goes with the last section
    assert words("all") == 4 + 6 + 3 + 5 + 3                # never the exercises, quiz or references
    assert lab_path.exercises("all; exercises 04.1–04.3") == 3 and lab_path.exercises("exercise 03.1") == 1
    assert lab_path.exercises("all") == 0


def test_the_instructor_pages_expected_numbers_are_the_committed_notebooks_claims():
    """docs/instructor.md lists every claim line the committed notebooks printed, with its
    numbers (notebooks/expected_numbers.py): a notebook re-executed without refreshing the page
    fails here, and so does a page whose table lost a claim."""
    import importlib.util
    from pathlib import Path
    here = Path(__file__).resolve().parent.parent / "notebooks"
    spec = importlib.util.spec_from_file_location("expected_numbers", here / "expected_numbers.py")
    en = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(en)
    page = en.PAGE.read_text(encoding="utf-8")
    block = page.split(en.START, 1)[1].split(en.END, 1)[0].strip("\n")
    assert block == en.section(), "run python notebooks/expected_numbers.py"
    counted = sum(len(en.claim_lines(p)) for p in here.glob("[0-9][0-9]_*.ipynb"))
    assert counted >= 50 and block.count("\n| ") - block.count("|---|---|") == counted   # + one header per table


def test_expected_numbers_reads_a_claim_line_and_its_numbers(tmp_path):
    import importlib.util
    import json
    from pathlib import Path
    here = Path(__file__).resolve().parent.parent / "notebooks"
    spec = importlib.util.spec_from_file_location("expected_numbers", here / "expected_numbers.py")
    en = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(en)
    nb = {"cells": [{"cell_type": "code", "source": [], "outputs": [
        {"output_type": "stream", "name": "stdout",
         "text": ["x = 1\n", "✓ a beats b (margin 0.1)  [0.9 vs 0.7; gap +0.200, needs > 0.100]\n", "✓ plain\n"]}]}]}
    path = tmp_path / "04_x.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    assert en.claim_lines(path) == [("a beats b (margin 0.1)", "0.9 vs 0.7; gap +0.200, needs > 0.100"),
                                    ("plain", "")]


def test_expected_numbers_marks_a_claim_written_after_the_run(tmp_path):
    import importlib.util
    import json
    from pathlib import Path
    from mclfir_lite.lab.claims import AFTER
    here = Path(__file__).resolve().parent.parent / "notebooks"
    spec = importlib.util.spec_from_file_location("expected_numbers", here / "expected_numbers.py")
    en = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(en)
    assert en._row(AFTER + "joint is short of converged", "0.84 -> 0.87") == \
        "| joint is short of converged | after the run (a guard) | 0.84 -> 0.87 |"
    assert en._row("joint is an upper bound", "") == "| joint is an upper bound | before the run | (the sentence itself) |"
