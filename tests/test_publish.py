"""A benchmark that publishes files besides results.json (bench_real: real.json and
docs/results_real.md) publishes the same files whichever entry point ran it: its own
``python benchmarks/bench_real.py`` or ``run_all.py --only real``."""
import json
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common as C  # noqa: E402
import bench_real  # noqa: E402
import run_all  # noqa: E402

COMMITTED = C.RESULTS_DIR / "real.json"


def test_run_all_calls_a_benchmarks_publish_hook_and_records_what_it_wrote(tmp_path, monkeypatch):
    calls = []

    def publish(result, out_dir, quick):
        calls.append((result, Path(out_dir), quick))
        path = Path(out_dir) / "extra.json"
        path.write_text(json.dumps(result))
        return [path]

    fake = types.SimpleNamespace(run=lambda **kw: {"v": 7}, publish=publish)
    monkeypatch.setattr(run_all.importlib, "import_module", lambda name: fake)
    monkeypatch.setattr(run_all.C, "warm_up", lambda: None)
    assert run_all.main(["--only", "map", "--quick", "--out", str(tmp_path), "--no-ledger"]) == 0
    assert calls == [({"v": 7}, tmp_path, True)]
    entry = json.loads((tmp_path / "results.json").read_text())["benchmarks"]["map"]
    assert entry["status"] == "ok" and entry["published"] == ["extra.json"]
    assert json.loads((tmp_path / "extra.json").read_text()) == {"v": 7}


def test_bench_real_publishes_real_json_where_it_is_told_and_its_page_only_from_the_committed_folder(tmp_path, monkeypatch):
    if not COMMITTED.is_file():
        raise AssertionError(f"{COMMITTED} is committed with the repository; it is missing")
    result = json.loads(COMMITTED.read_text())
    pages = []
    monkeypatch.setattr(bench_real, "write_doc", lambda res, path=bench_real.DOC: pages.append(res) or path)
    written = bench_real.publish(result, tmp_path, quick=False)
    assert written == [tmp_path / "real.json"] and pages == []        # a folder of its own: no page
    assert json.loads((tmp_path / "real.json").read_text()) == result
    monkeypatch.setattr(C, "RESULTS_DIR", tmp_path)                   # as if tmp_path were the committed folder
    written = bench_real.publish(result, tmp_path, quick=False)
    assert written == [tmp_path / "real.json", bench_real.DOC] and pages == [result]
    pages.clear()
    assert bench_real.publish(result, tmp_path, quick=True) == [tmp_path / "real.json"] and pages == []


def test_the_committed_page_is_what_write_doc_makes_of_the_committed_result(tmp_path):
    """docs/results_real.md is never edited by hand: it is write_doc of real.json."""
    result = json.loads(COMMITTED.read_text())
    page = bench_real.write_doc(result, tmp_path / "page.md")
    assert page.read_text(encoding="utf-8") == bench_real.DOC.read_text(encoding="utf-8")
