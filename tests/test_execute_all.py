"""execute_all's timing: the marker line of a notebook and the README's table are rewritten."""
import importlib.util
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
spec = importlib.util.spec_from_file_location("execute_all", NOTEBOOKS / "execute_all.py")
ea = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ea)


def test_time_line_and_stamp():
    line = ea.time_line(83.4, 2, "2026-12-02", quick=False)
    assert line == "<!-- time -->*Run time: about 85 s on 2 cores (measured 2026-12-02).*"
    assert ea.time_line(83.4, 2, "2026-12-02", False, "Some CPU") == \
        "<!-- time -->*Run time: about 85 s on 2 cores of an Some CPU (measured 2026-12-02).*"
    assert "in quick mode" in ea.time_line(7.2, 2, "2026-12-02", quick=True) and "about 7 s" in ea.time_line(7.2, 2, "d", True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 04\n\n<!-- time -->*Run time: not measured yet.*\n\ntext")]
    assert ea.stamp_time(nb, line)
    assert nb.cells[0].source == f"# 04\n\n{line}\n\ntext"
    assert ea.stamp_time(nb, ea.time_line(10, 2, "2026-12-03", False))     # the marker stays: it can be rewritten
    assert "measured 2026-12-03" in nb.cells[0].source and "2026-12-02" not in nb.cells[0].source
    assert not ea.stamp_time(nbformat.v4.new_notebook(), line)


def test_readme_table_between_markers_keeps_other_rows(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- notebook-times:start -->\nold text\n"
                      "| 01_metrics.ipynb | 10 s | 2 | default | 2026-11-30 |\n<!-- notebook-times:end -->\nafter\n")
    assert ea.update_readme_times({"04_forgetting.ipynb": {"seconds": 61, "cores": 2, "quick": False,
                                                           "day": "2026-12-02"}}, readme)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- notebook-times:start -->\n| notebook |") and text.endswith("<!-- notebook-times:end -->\nafter\n")
    assert "| 01_metrics.ipynb | 10 s | 2 | not recorded | default | 2026-11-30 |" in text   # an old row: no CPU
    assert "| 04_forgetting.ipynb | 60 s | 2 | not recorded | default | 2026-12-02 |" in text
    assert "| total | 70 s |" in text and "old text" not in text
    assert text.index("01_metrics") < text.index("04_forgetting")
    ea.update_readme_times({"04_forgetting.ipynb": {"seconds": 61, "cores": 2, "quick": False, "day": "2026-12-07",
                                                    "cpu": "Some CPU"}}, readme)
    text = readme.read_text()
    assert "| 04_forgetting.ipynb | 60 s | 2 | Some CPU | default | 2026-12-07 |" in text
    assert "| total | 70 s (rows from 2 CPUs: not one run's time) |" in text    # rows of two machines do not add up
    ea.update_readme_times({"01_metrics.ipynb": {"seconds": 10, "cores": 2, "quick": False, "day": "2026-12-07",
                                                 "cpu": "Some CPU"}}, readme)
    assert "| total | 70 s |" in readme.read_text()
    assert "Budget (15 minutes in all, 3 per notebook, default size): **met** on this CPU." in readme.read_text()


def test_a_run_on_another_cpu_keeps_the_earlier_cpus_total(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- notebook-times:start -->\n<!-- notebook-times:end -->\n")
    run = lambda cpu, s04, day: ea.update_readme_times(
        {"04_a.ipynb": {"seconds": s04, "cores": 2, "quick": False, "day": day, "cpu": cpu},
         "05_b.ipynb": {"seconds": 150, "cores": 2, "quick": False, "day": day, "cpu": cpu}}, readme)
    run("Xeon", 190, "2026-12-07")
    assert ea.EARLIER not in readme.read_text()
    run("EPYC", 120, "2026-12-08")              # every row replaced on another CPU: Xeon's run is kept as a line
    text = readme.read_text()
    assert "**met** on this CPU" in text
    assert "Earlier, on another CPU: Xeon (2026-12-07): 340 s in all, the budget **not met** (over 3 minutes: 04_a.ipynb 190 s)." in text
    run("EPYC", 110, "2026-12-09")              # the same CPU again: the Xeon line stays, once
    assert readme.read_text().count("Earlier, on another CPU: Xeon") == 1
    run("Xeon", 100, "2026-12-10")              # back on the Xeon: its own line goes, EPYC's comes
    text = readme.read_text()
    assert "Earlier, on another CPU: EPYC (2026-12-09): 260 s in all, the budget **met**." in text
    assert "Earlier, on another CPU: Xeon" not in text
    ea.update_readme_times({"04_a.ipynb": {"seconds": 50, "cores": 2, "quick": False, "day": "2026-12-11", "cpu": "Other"}},
                           readme)
    text = readme.read_text()                   # a partial run on a third CPU: rows mix; the Xeon's full run is kept
    assert "not checked" in text and "Earlier, on another CPU: EPYC" in text
    assert "Earlier, on another CPU: Xeon (2026-12-10): 250 s in all, the budget **met**." in text
    assert "\n\nEarlier, on another CPU: EPYC" in text and "\n\nEarlier, on another CPU: Xeon" in text   # paragraphs


def test_a_notebook_retimed_first_on_the_new_cpu_does_not_lose_the_old_run(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- notebook-times:start -->\n<!-- notebook-times:end -->\n")
    row = lambda name, s, cpu, quick=False: {name: {"seconds": s, "cores": 2, "quick": quick, "day": "2026-12-07", "cpu": cpu}}
    ea.update_readme_times({**row("04_a.ipynb", 190, "Intel (R) Xeon"), **row("05_b.ipynb", 150, "Intel (R) Xeon")}, readme)
    ea.update_readme_times(row("04_a.ipynb", 100, "EPYC"), readme)          # one notebook re-timed on the new CPU
    ea.update_readme_times(row("05_b.ipynb", 90, "EPYC"), readme)           # then the other: the table is the EPYC's
    text = readme.read_text()
    assert "**met** on this CPU" in text
    assert text.count("Earlier, on another CPU: Intel (R) Xeon (2026-12-07): 340 s in all") == 1   # a CPU name with " ("
    ea.update_readme_times(row("04_a.ipynb", 5, "EPYC", quick=True), readme)   # a quick row: not a run of the series
    assert "Earlier, on another CPU: EPYC" not in readme.read_text() and "Intel (R) Xeon (2026-12-07)" in readme.read_text()


def test_rows_that_record_no_cpu_make_no_earlier_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- notebook-times:start -->\n| 01_m.ipynb | 10 s | 2 | default | 2026-11-30 |\n"
                      "<!-- notebook-times:end -->\n")
    ea.update_readme_times({"01_m.ipynb": {"seconds": 9, "cores": 2, "quick": False, "day": "d", "cpu": "EPYC"}}, readme)
    assert ea.EARLIER not in readme.read_text()


def test_budget_line_names_what_is_over():
    row = lambda name, s, cpu="X", mode="default": ea.parse_row(ea.table_row(name, s, 2, cpu, mode == "quick", "2026-12-07"))
    rows = {"04_a": row("04_a.ipynb", 190), "05_b": row("05_b.ipynb", 800)}
    line = ea.budget_line(rows)
    assert "**not met**" in line and "990 s in all" in line and "04_a.ipynb 190 s" in line and "05_b.ipynb 800 s" in line
    assert "**met**" in ea.budget_line({"04_a": row("04_a.ipynb", 180)})       # 3 minutes is within the budget
    assert "not checked" in ea.budget_line({"04_a": row("04_a.ipynb", 10), "05_b": row("05_b.ipynb", 10, cpu="Y")})
    assert "not checked" in ea.budget_line({"04_a": row("04_a.ipynb", 10, mode="quick")})


def test_a_row_is_parsed_as_it_was_written():
    line = ea.table_row("04_a.ipynb", 191, 2, "Some CPU", False, "2026-12-07")
    assert ea.parse_row(line) == ea.Row("04_a.ipynb", 190, 2, "Some CPU", False, "2026-12-07")
    assert ea.parse_row("| 01_m.ipynb | 10 s | 2 | quick | 2026-11-30 |") == \
        ea.Row("01_m.ipynb", 10, 2, ea.NOT_RECORDED, True, "2026-11-30")   # a row from before the CPU column
    assert ea.parse_row("| total | 70 s | | | | |") is None and ea.parse_row(ea.TABLE_HEADER[0]) is None


def test_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    assert not ea.update_readme_times({"x.ipynb": {"seconds": 1, "cores": 2, "quick": True, "day": "d"}}, readme)
    assert readme.read_text() == "no table here\n"


def test_my_notebooks_carry_the_time_marker():
    for prefix in ("00", "01", "02", "03", "04", "10", "11"):
        nb = nbformat.read(next(NOTEBOOKS.glob(f"{prefix}_*.ipynb")), as_version=4)
        assert ea.TIME_MARKER in nb.cells[0].source, prefix


def test_keep_times_leaves_the_time_line_and_the_readme_alone(tmp_path, monkeypatch):
    path = tmp_path / "00_tiny.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# tiny\n\n{ea.TIME_MARKER}*Run time: about 99 s*"),
                                         nbformat.v4.new_code_cell("x = 1 + 1\nx")])
    nbformat.write(nb, path)
    readme = tmp_path / "README.md"
    readme.write_text(f"{ea.TABLE_START}\nold table\n{ea.TABLE_END}\n")
    monkeypatch.setattr(ea, "numbered_notebooks", lambda: [path])
    monkeypatch.setattr(ea, "README", readme)
    monkeypatch.setattr(ea, "HERE", tmp_path)
    assert ea.main(["--keep-times"]) == 0
    out = nbformat.read(path, as_version=4)
    assert out.cells[1].outputs[0]["data"]["text/plain"] == "2"          # executed
    assert "about 99 s" in out.cells[0].source and "old table" in readme.read_text()
    assert ea.main(["--bogus"]) == 2
