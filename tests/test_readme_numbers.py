"""The README's measured numbers come from results files (issue 23): its findings are generated
between markers from the files that hold them, and no MeanAP-like number is typed in its prose."""
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import findings  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
MEASURE = re.compile(r"(?<![\w.^])[+−-]?0\.\d{2,}(?![\w^])")     # 0.xx and finer, not 0.999^400
MARK = re.compile(r"<!-- ([\w-]+):(start|end) -->")
ALLOWED = {   # constants of the method or of a rule, not measurements (the line must contain one of these)
    "0.999", "0.98", "0.9995", "0.01", "0.02", "0.03", "0.09",
}


def prose(text: str):
    """(line number, line) of the README outside generated sections and code blocks."""
    inside, fence = False, False
    for i, line in enumerate(text.split("\n"), 1):
        m = MARK.search(line)
        if m:
            inside = m.group(2) == "start"
            continue
        if line.startswith("```"):
            fence = not fence
            continue
        if not inside and not fence:
            yield i, line


def test_no_measured_number_is_typed_in_the_readmes_prose():
    typed = [f"README.md:{i}: {line.strip()}" for i, line in prose(README.read_text(encoding="utf-8"))
             if any(n.lstrip("+−-") not in ALLOWED for n in MEASURE.findall(line))]
    assert not typed, ("numbers typed by hand outside the generated sections (generate them between markers "
                       "from the results file that holds them, e.g. benchmarks/findings.py):\n" + "\n".join(typed))


def test_the_check_finds_a_typed_number(tmp_path):
    text = "intro\n<!-- x:start -->\nMeanAP 0.812\n<!-- x:end -->\njoint ends at 0.845 here\n"
    assert [line for _, line in prose(text) if MEASURE.findall(line)] == ["joint ends at 0.845 here"]
    assert MEASURE.findall("a 0.999 teacher keeps 0.999^400 of it") == ["0.999"]


def test_the_readmes_findings_are_what_the_files_say(tmp_path):
    """Every finding-* section is exactly what benchmarks/findings.py writes from the committed files."""
    copy = tmp_path / "README.md"
    shutil.copy(README, copy)
    written = findings.write(copy)
    assert sorted(written) == sorted(findings.SECTIONS), f"README lacks the markers of {set(findings.SECTIONS) - set(written)}"
    assert copy.read_text(encoding="utf-8") == README.read_text(encoding="utf-8"), (
        "README's findings differ from the files: python benchmarks/findings.py (or run_all.py --readme)")


def test_a_finding_follows_its_file(tmp_path, monkeypatch):
    """The numbers move when the file does: a finding is written from the data, not typed."""
    import json
    src = findings.RESULTS / "exploration_joint_budget.json"
    data = json.loads(src.read_text())
    row = next(r for r in data["end_point_traces"]["rows"] if r["single_increment"])
    step = next(t for t in row["trace"] if t["step"] == 1200)
    step["meanap"] = 0.123456
    (tmp_path / src.name).write_text(json.dumps(data))
    monkeypatch.setattr(findings, "RESULTS", tmp_path)
    assert "0.123 at 1,200 steps" in findings.retrain_budget()
