"""run_all writes one benchmark's entry into results.json by merging, under the folder's lock:
two benchmark runs started at different times keep each other's entries, and a lock that stays
busy never loses a result (it goes to a file of its own, and the message names it)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import run_all  # noqa: E402

from mclfir_lite.files import lock_folder  # noqa: E402

META = {"date": "d", "seed": 0, "quick": True, "device": "cpu", "command": "c",
        "machine": {"cpu_model": "x", "usable_cores": 2}}


def _entry(v):
    return {"date": "d", "code": "0" * 12, "status": "ok", "seconds": 1.0, "quick": True, "result": {"v": v}}


def test_a_second_run_keeps_the_entries_written_since_the_first_started(tmp_path):
    run_all._record(tmp_path, META, "map", _entry(1))          # run A finishes first ...
    run_all._record(tmp_path, META, "loop", _entry(2))         # ... run B, started earlier, finishes later
    report = json.loads((tmp_path / "results.json").read_text())
    assert {k: e["result"]["v"] for k, e in report["benchmarks"].items()} == {"map": 1, "loop": 2}
    assert "## map" in (tmp_path / "RESULTS.md").read_text()


def test_a_busy_folder_puts_the_result_aside_instead_of_losing_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_all.time, "sleep", lambda s: None)
    run_all._record(tmp_path, META, "map", _entry(1))
    with lock_folder(tmp_path, "other run"):
        written = run_all._record(tmp_path, META, "loop", _entry(2))
    assert written.name.startswith("results.loop.") and json.loads(written.read_text())["benchmarks"]["loop"]["result"] == {"v": 2}
    assert "stayed locked" in capsys.readouterr().err
    assert list(json.loads((tmp_path / "results.json").read_text())["benchmarks"]) == ["map"]
