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
        assert isinstance(entry.get("preset"), dict), f"{name}: no preset recorded (it is not in the code digest)"


def test_the_strategies_result_holds_the_runs_notebook_07_reads():
    """Notebook 07 reads joint's and lwf's seed-0 runs from the strategies benchmark instead of
    training them (joint alone takes about six minutes). A change to the preset, the data or the
    code that the benchmark has not been re-run for would make 07 train them again, silently
    doubling its time: this fails first, in seconds (tests/test_remeasure.py checks the numbers)."""
    from mclfir_lite.lab.lab import Lab, benchmark_result, benchmark_runs
    bench = benchmark_result("strategies")          # refuses a stale result: refresh it
    lab = Lab.synthfashion(quick=False)             # notebook 07's lab
    handed = benchmark_runs(bench, lab, ["joint", "lwf"])
    assert sorted(handed) == ["joint", "lwf"], (
        "benchmarks/results/results.json's strategies result does not hold notebook 07's runs of joint and lwf: "
        "python benchmarks/run_all.py --only strategies --strategies joint,isolated,finetune,lwf,mclfir "
        "--joint-doubled-seeds 5 --joint-budgets 2 --threads 1")
    assert handed["joint"]["final_meanap"] == next(r["final_meanap"] for r in bench["per_seed"]["joint"] if r["seed"] == 0)
