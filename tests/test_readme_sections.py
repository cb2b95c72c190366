"""run_all.py --readme: a README section between markers quotes a benchmark only when it was
measured with this code; otherwise it says why not (never a stale number)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_strategies  # noqa: E402
import run_all  # noqa: E402
from mclfir_lite.files import code_digest  # noqa: E402
from mclfir_lite.lab.lab import preset_fields  # noqa: E402


def write(tmp_path, body="old numbers 0.123"):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n<!-- strategies:start -->\n{body}\n<!-- strategies:end -->\noutro\n")
    return readme


def entry(code, preset=None, **extra):
    return {"status": "ok", "code": code, "preset": preset or preset_fields(False), **extra,
            "date": "2026-12-05", "seconds": 600.0,
            "machine": {"usable_cores": 2, "torch_threads": 1}, "result": {"x": 1}}


def test_a_fresh_result_is_quoted(tmp_path, monkeypatch):
    readme = write(tmp_path)
    monkeypatch.setattr(bench_strategies, "readme", lambda r: f"TABLE {r['x']}")
    assert run_all.readme_sections({"benchmarks": {"strategies": entry(code_digest())}}, readme) == ["strategies"]
    s = readme.read_text()
    assert "TABLE 1" in s and code_digest() in s and "0.123" not in s
    assert s.startswith("intro\n<!-- strategies:start -->\n") and s.endswith("<!-- strategies:end -->\noutro\n")


@pytest.mark.parametrize("report, says", [({"benchmarks": {"strategies": entry("0" * 12)}}, "Not quoted"),
                                          ({"benchmarks": {"strategies": entry(None)}}, "(not recorded)"),
                                          ({"benchmarks": {"strategies": entry(code_digest(), preset={
                                              **preset_fields(False), "joint_steps": 1})}}, "joint_steps: 1 then"),
                                          ({"benchmarks": {}}, "Not measured")])
def test_a_stale_or_missing_result_is_not_quoted(tmp_path, monkeypatch, report, says):
    readme = write(tmp_path)
    monkeypatch.setattr(bench_strategies, "readme", lambda r: "TABLE")
    run_all.readme_sections(report, readme)
    s = readme.read_text()
    assert says in s and "TABLE" not in s and "0.123" not in s


def test_a_carried_over_result_says_so(tmp_path, monkeypatch):
    readme = write(tmp_path)
    monkeypatch.setattr(bench_strategies, "readme", lambda r: "TABLE")
    run_all.readme_sections({"benchmarks": {"strategies": entry(code_digest(), code_migrated_from="a" * 12)}}, readme)
    s = readme.read_text()
    assert "TABLE" in s and "recorded as aaaaaaaaaaaa" in s and "migrate_digest.py" in s


def test_a_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("nothing generated here\n")
    assert run_all.readme_sections({"benchmarks": {}}, readme) == []
    assert readme.read_text() == "nothing generated here\n"


def test_three_different_orders_even_when_the_hardest_attribute_already_comes_first():
    plan = [["a", "b"], ["c"], ["d"], ["e"]]
    for hardest in ("a", "c", "e"):
        specs = [bench_strategies._spec(p) for p in bench_strategies.orders(plan, hardest).values()]
        assert len(specs) == 3 and len(set(specs)) == 3
        assert any(p.startswith(hardest) or p.split(";")[0].split(",").count(hardest) for p in specs)


def test_a_result_carried_over_a_change_outside_its_scope_says_which_code_measured_it(tmp_path, monkeypatch):
    readme = write(tmp_path)
    monkeypatch.setattr(bench_strategies, "readme", lambda r: "TABLE")
    run_all.readme_sections({"benchmarks": {"strategies": entry(code_digest(), code_carried_from="b" * 12,
                                                                code_scope=["lwf", "mclfir"])}}, readme)
    s = readme.read_text()
    assert "TABLE" in s and "measured with code bbbbbbbbbbbb" in s and "(lwf, mclfir)" in s and "migrate_digest.py" in s
