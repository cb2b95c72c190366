"""benchmarks/migrate_digest.py carries a result over a change of the digest's definition only
where this checkout's digest under the old definition is the one the result recorded (the proof
that the same code and preset made it), and leaves every other result stale."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import migrate_digest as M  # noqa: E402
from mclfir_lite.files import code_digest  # noqa: E402
from mclfir_lite.lab.lab import preset_fields, stale_reason  # noqa: E402


def test_the_old_definition_hashes_the_presets_and_the_new_one_does_not():
    assert M.legacy_code_digest() != code_digest()


def test_only_provable_results_are_carried_over(tmp_path):
    from mclfir_lite.lab.lab import Lab
    legacy = M.legacy_code_digest()
    with M.legacy_digest():
        old_fp = Lab.synthfashion(quick=True).run_fingerprint("joint")
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"benchmarks": {
        "strategies": {"status": "ok", "code": legacy, "quick": True,
                       "result": {"first_seed_runs": {"joint": {"fingerprint": old_fp}, "lwf": {"fingerprint": "f" * 40}}}},
        "other": {"status": "ok", "code": "0" * 12, "quick": False, "result": {}}}}))
    lines = M.migrate_file(path, legacy)
    data = json.loads(path.read_text())["benchmarks"]
    s, o = data["strategies"], data["other"]
    assert s["code"] == code_digest() and s[M.MIGRATED_FROM] == legacy and s["preset"] == preset_fields(True)
    assert stale_reason(s) is None and stale_reason(o) is not None
    assert o == {"status": "ok", "code": "0" * 12, "quick": False, "result": {}}          # untouched
    runs = s["result"]["first_seed_runs"]
    assert runs["joint"]["fingerprint"] == Lab.synthfashion(quick=True).run_fingerprint("joint") != old_fp
    assert runs["lwf"]["fingerprint"] == "f" * 40                                       # not provable: kept
    assert any("seed-0 run of joint" in x for x in lines) and not any("lwf" in x for x in lines)
    assert M.migrate_file(path, legacy) == []                                            # carried over once


def test_learnable_entries_and_one_result_files(tmp_path):
    legacy = M.legacy_code_digest()
    learn, one, other = tmp_path / "learnable.json", tmp_path / "one.json", tmp_path / "other.json"
    learn.write_text(json.dumps({"entries": {"a": {"code": legacy}, "b": {"code": "1" * 12}}}))
    one.write_text(json.dumps({"code": legacy, "rows": [1]}))
    other.write_text(text := json.dumps({"code": "2" * 12}))
    before = learn.read_text()
    assert len(M.migrate_file(learn, legacy, write=False)) == 1 and learn.read_text() == before   # a report only
    assert len(M.migrate_file(learn, legacy)) == 1 and len(M.migrate_file(one, legacy)) == 1
    entries = json.loads(learn.read_text())["entries"]
    assert entries["a"]["code"] == code_digest() and entries["b"] == {"code": "1" * 12}
    assert json.loads(one.read_text())["preset"] == preset_fields(False)
    assert M.migrate_file(other, legacy) == [] and other.read_text() == text               # nothing written
