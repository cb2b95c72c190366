"""Every committed benchmark result says which code measured it (issue 23): results.json holds
only entries with a code digest, and each of them can be checked against this checkout."""
import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "results.json"


def test_every_committed_result_records_its_code_digest():
    report = json.loads(RESULTS.read_text())
    assert report["benchmarks"], "results.json holds no benchmark"
    for name, entry in report["benchmarks"].items():
        assert re.fullmatch(r"[0-9a-f]{12}", str(entry.get("code"))), f"{name}: no code digest ({entry.get('code')!r})"
        assert entry.get("status") == "ok" and entry.get("date"), name
