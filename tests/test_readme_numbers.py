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
ALLOWED = {   # constants of the method or of a rule, not measurements: each only in the context that makes it one
    "0.999": r"teacher|per-step|decay", "0.98": r"per-epoch", "0.01": r"allows|at 0\.01|margin|resolution",
    "0.03": r"within 0\.03 of one process", "0.09": r"within 0\.09 MeanAP",
}


def allowed(number: str, line: str) -> bool:
    return number in ALLOWED and re.search(ALLOWED[number], line) is not None


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
             if any(not allowed(n.lstrip("+−-"), line) for n in MEASURE.findall(line))]
    assert not typed, ("numbers typed by hand outside the generated sections (generate them between markers "
                       "from the results file that holds them, e.g. benchmarks/findings.py):\n" + "\n".join(typed))


def test_the_readmes_remeasure_tolerance_is_the_one_the_code_uses():
    from mclfir_lite.lab.claims import REMEASURE_MEANAP
    assert f"within {REMEASURE_MEANAP:g} MeanAP" in README.read_text(encoding="utf-8")


def test_a_constant_out_of_its_context_is_a_typed_number():
    assert allowed("0.01", "the 0.01 the control allows") and not allowed("0.01", "MeanAP moved by 0.01")
    assert not allowed("0.09", "joint ended 0.09 above")


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


def _patched(tmp_path, monkeypatch, change):
    import json
    data = json.loads((findings.RESULTS / "exploration_joint_budget.json").read_text())
    change(data)
    (tmp_path / "exploration_joint_budget.json").write_text(json.dumps(data))
    for name in ("results.json", "learnable_exploration.json", "learnable_balance.json"):
        shutil.copy(findings.RESULTS / name, tmp_path / name)
    monkeypatch.setattr(findings, "RESULTS", tmp_path)


def test_a_finding_follows_its_file(tmp_path, monkeypatch):
    """The numbers and the verdict move when the file does: a finding is written from the data, not typed."""
    from mclfir_lite.config import preset
    budget = preset(False)["retrain_steps"]
    assert "every attribute is learnt at that budget" in findings.retrain_budget()

    def change(data):
        row = next(r for r in data["end_point_traces"]["rows"] if r["single_increment"])
        at = next(t for t in row["trace"] if t["step"] == budget)
        at["map"]["pattern"] = row["chance_map"]["pattern"] + 0.1234      # pattern no longer learnt at the budget
    _patched(tmp_path, monkeypatch, change)
    text = findings.retrain_budget()
    assert f"At {budget:,} steps every attribute is at least +0.12 above chance" in text
    assert "not every attribute is learnt at that budget" in text


def json_rows(folder):
    import json
    data = json.loads((folder / "exploration_joint_budget.json").read_text())
    return [r for r in data["end_point_traces"]["rows"] if r["single_increment"]]


def test_a_verdict_follows_its_file(tmp_path, monkeypatch):
    """The verdict's words, not only its numbers, come from the data: a doubling that moves nothing is 'shown converged'."""
    assert "800 is not shown converged" in findings.joint_budget()
    def change(data):
        d = data["test_protocol_doubling_800_1600"]["doubling_800_to_1600"]
        d["meanap"]["mean"] = 0.001
        for v in d["per_attribute"].values():
            v["mean"] = 0.001
    _patched(tmp_path, monkeypatch, change)
    assert "800 is shown converged" in findings.joint_budget()


def test_the_readmes_benchmark_sections_are_what_the_results_say(tmp_path):
    """Every generated benchmark section (tables and their 'what it shows' lines) is exactly what
    run_all.py --readme writes from the committed results.json: a hand edit between markers fails."""
    import json
    import run_all
    copy = tmp_path / "README.md"
    shutil.copy(README, copy)
    report = json.loads((findings.RESULTS / "results.json").read_text())
    assert run_all.readme_sections(report, copy)
    assert copy.read_text(encoding="utf-8") == README.read_text(encoding="utf-8"), (
        "README's generated sections differ from results.json: python benchmarks/run_all.py --readme")


def test_the_replay_finding_says_which_prediction_held(tmp_path, monkeypatch):
    """The verdict on the replay hypothesis is read off the exploration's rows: give the large
    buffer a rehearsal loss near chance and its premise holds; put the eased run's last attribute
    at chance on every seed and weighting down no longer helps."""
    import json
    data = json.loads((findings.RESULTS / "exploration_replay_plasticity.json").read_text())
    labels = list(dict.fromkeys(r["label"] for r in data["rows"]))
    now = findings.replay_plasticity()
    assert "The premise (a large buffer stays unfit) fails" in now and "by 0.25 lets it" in now   # what the committed runs say

    shutil.copy(findings.RESULTS / "results.json", tmp_path / "results.json")
    monkeypatch.setattr(findings, "RESULTS", tmp_path)

    def write(rows):
        (tmp_path / "exploration_replay_plasticity.json").write_text(json.dumps({**data, "rows": rows}))
        return findings.replay_plasticity()

    rows = json.loads(json.dumps(data["rows"]))
    for r in rows:
        if r["label"] == labels[1]:
            r["last_increment_loss"]["rehearsal"]["last_50"] = 4.0
    text = write(rows)
    assert "The premise (a large buffer stays unfit) holds" in text and "on 0 of" in text
    assert "does not stall the last attribute by staying unfit" not in text
    rows = json.loads(json.dumps(data["rows"]))        # the premise fails again, as committed; now prediction 2 fails
    for r in rows:
        if r["label"] == labels[2]:
            r["learnt_map"] = dict(r["chance_map"])
    text = write(rows)
    assert "The premise (a large buffer stays unfit) fails" in text
    assert "by 0.25 does not let it" in text and "does not stall" not in text


def test_the_replay_findings_second_test_follows_the_encoders_movement(tmp_path, monkeypatch):
    """The reading's test is printed only with its measurements, and its verdict follows them."""
    import json
    data = json.loads((findings.RESULTS / "exploration_replay_plasticity.json").read_text())
    labels = list(dict.fromkeys(r["label"] for r in data["rows"]))
    shutil.copy(findings.RESULTS / "results.json", tmp_path / "results.json")
    monkeypatch.setattr(findings, "RESULTS", tmp_path)
    rows = json.loads(json.dumps(data["rows"]))
    for r in rows:
        r["encoder_moved_last_increment"] = {labels[0]: 0.2, labels[1]: 0.1, labels[2]: 0.3}[r["label"]]
    data = {**data, "reading": data.get("reading") or "the encoder is held.", "rows": rows}
    (tmp_path / "exploration_replay_plasticity.json").write_text(json.dumps(data))
    text = findings.replay_plasticity()
    assert "A second test" in text and "two predictions hold on every seed" in text and "not tested here" not in text
    rows[0 if rows[0]["label"] == labels[1] else 1]["encoder_moved_last_increment"] = 0.9   # 512 rows moves most on one seed
    (tmp_path / "exploration_replay_plasticity.json").write_text(json.dumps({**data, "rows": rows}))
    text = findings.replay_plasticity()
    assert "the reading is not shown on every seed" in text and "the first fails on seed" in text
