"""benchmarks/migrate_digest.py carries a result over a change of the digest's definition only
where this checkout's digest under the old definition is the one the result recorded (the proof
that the same code and preset made it), and leaves every other result stale."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import migrate_digest as M  # noqa: E402
C_RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
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


# ---------------------------------------------------------------------------- scopes (2026-12-07)

def _scoped(scope, **extra):
    from mclfir_lite.training.checkpoint import scoped_code_digest
    return {"status": "ok", "code": "a" * 12, "quick": False, "preset": preset_fields(False),
            "code_scope": scope, "scoped_code": scoped_code_digest(scope), "result": {}, **extra}


def test_a_result_whose_scope_is_unchanged_is_carried_over_and_no_other(tmp_path):
    """Made with other code ("aaaa..."), but the code and settings of its strategies are this
    checkout's: it gets this digest and keeps the one it was measured with."""
    now = preset_fields(False)
    entries = {"same": _scoped(["lwf", "mclfir"]),
               "otherscope": {**_scoped(["lwf", "mclfir"]), "scoped_code": "b" * 12},
               "unread": _scoped(["mclfir"], preset={**now, "ewc_lambda": now["ewc_lambda"] * 2}),   # mclfir reads no ewc
               "read": _scoped(["ewc"], preset={**now, "ewc_lambda": now["ewc_lambda"] * 2}),
               "shared": _scoped(["mclfir"], preset={**now, "n_images": 1}),
               "overlay_unread": _scoped(["mclfir"], preset={**now, "pretrained": {**now["pretrained"], "joint_steps": 1}}),
               "overlay_read": _scoped(["mclfir"], preset={**now, "pretrained": {**now["pretrained"], "image_size": 1}}),
               "noscope": {"status": "ok", "code": "a" * 12, "quick": False, "preset": now, "result": {}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"benchmarks": entries}))
    M.migrate_file(path, M.legacy_code_digest())
    out = json.loads(path.read_text())["benchmarks"]
    for name in ("same", "unread", "overlay_unread"):
        assert out[name]["code"] == code_digest() and out[name][M.CARRIED_FROM] == "a" * 12, name
        assert out[name]["preset"] == now and stale_reason(out[name]) is None, name
    again = {**out["same"], "code": "c" * 12}                   # a second change outside its scope
    assert M.carry_entry(again) and again[M.CARRIED_FROM] == "a" * 12    # it keeps the digest it was measured with
    for name in ("otherscope", "read", "shared", "noscope", "overlay_read"):
        assert out[name] == entries[name], name                    # untouched: stale
        assert stale_reason(out[name]) is not None, name


def test_a_scoped_digest_follows_its_strategies_config_defaults_and_only_theirs(monkeypatch):
    """A Config default a strategy reads is in its scope's digest (a result does not list every
    Config value, only its preset); one only another strategy reads is not."""
    import dataclasses
    from mclfir_lite import config
    from mclfir_lite.training import checkpoint
    scopes = (("derpp",), ("lwf", "mclfir"), ())
    before = {s: checkpoint.scoped_code_digest(s) for s in scopes}
    assert len(set(before.values())) == 3
    Other = dataclasses.make_dataclass("Config", [("derpp_alpha", float, 9.0)], bases=(config.Config,))
    monkeypatch.setattr(config, "Config", Other)
    after = {s: checkpoint.scoped_code_digest(s) for s in scopes}
    assert after[("derpp",)] != before[("derpp",)]
    assert after[("lwf", "mclfir")] == before[("lwf", "mclfir")] and after[()] == before[()]


def test_the_ledger_moves_to_strategy_digests_only_where_provable(tmp_path):
    import _common as C
    from mclfir_lite.files import fingerprint, strategy_code_digest
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    ctx = {"device": "cpu", "torch": "x", "torch_threads": 1, "cpu_model": "y"}
    ours = fingerprint({"strategy": "mclfir", "seed": "0", "code": code_digest()})
    foreign = fingerprint({"strategy": "mclfir", "seed": "1", "code": "f" * 12})
    for fp in (ours, foreign):
        C.ledger_path(fp, ledger, ctx).write_text(json.dumps({"fingerprint": fp, "context": ctx, "result": {"x": 1}}))
    assert len(M.migrate_ledger(ledger, write=False)) == 1 and len(list(ledger.glob("*.json"))) == 2
    assert len(M.migrate_ledger(ledger)) == 1
    moved = fingerprint({"strategy": "mclfir", "seed": "0", "code": strategy_code_digest("mclfir")})
    entry = json.loads(C.ledger_path(moved, ledger, ctx).read_text())
    assert entry["fingerprint"] == moved and entry["result"] == {"x": 1} and entry["context"] == ctx
    assert not C.ledger_path(ours, ledger, ctx).exists() and C.ledger_path(foreign, ledger, ctx).exists()
    assert M.migrate_ledger(ledger) == []
    assert C.ledger_prune(ledger) == [C.ledger_path(foreign, ledger, ctx).name]     # the foreign one goes
    assert C.ledger_path(moved, ledger, ctx).exists()


def test_every_committed_result_records_its_scope():
    """So that a later change to one method can carry the others over (tests/test_results_provenance.py
    checks the digests themselves)."""
    from mclfir_lite.training.checkpoint import scoped_code_digest
    data = json.loads((C_RESULTS / "results.json").read_text())["benchmarks"]
    for name, entry in data.items():
        if name == "throughput":
            continue   # it runs the notebooks: every strategy, no scope
        assert isinstance(entry.get("code_scope"), list), f"{name}: no code_scope"
        if entry["code"] == code_digest():
            assert entry["scoped_code"] == scoped_code_digest(entry["code_scope"], bool(entry.get("quick")),
                                                              entry.get("code_sources", [])), name
            assert entry.get("code_sources"), f"{name}: no benchmark sources recorded"


def test_a_scoped_digest_follows_how_the_package_builds_the_config(monkeypatch):
    """The Config a preset gives (config.preset_config, Config's own checks) is hashed as built, not
    as declared: a change there that moves joint's rate changes joint's scope and no other."""
    from mclfir_lite import config
    from mclfir_lite.training import checkpoint
    before = {s: checkpoint.scoped_code_digest(s) for s in (("joint",), ("mclfir",))}
    real = config.preset_config
    monkeypatch.setattr(config, "preset_config", lambda p: {**real(p), "joint_lr": 2 * real(p)["joint_lr"]})
    assert checkpoint.scoped_code_digest(("joint",)) != before[("joint",)]
    assert checkpoint.scoped_code_digest(("mclfir",)) == before[("mclfir",)]


def test_a_scoped_digest_follows_the_result_code_and_the_benchmarks_own(tmp_path, monkeypatch):
    """The statistics that turn runs into a result (lab.report) and the benchmark's own file are
    in a result's scoped digest; neither is in a run's key."""
    import _common as C
    import bench_baselines
    from mclfir_lite import files
    from mclfir_lite.training import checkpoint
    sources = C.bench_sources(bench_baselines)
    assert sources == ["benchmarks/_common.py", "benchmarks/bench_baselines.py", "benchmarks/bench_strategies.py",
                       "benchmarks/bench_tuning.py"]
    before = checkpoint.scoped_code_digest(["mclfir"], False, sources)
    key = files.strategy_code_digest("mclfir")
    assert checkpoint.scoped_code_digest(["mclfir"], False, sources[:2]) != before      # bench_strategies counts
    edited = tmp_path / "report.py"
    edited.write_text(files.module_path("lab.report").read_text() + "\nEXTRA = 1\n")
    real = files.module_path
    monkeypatch.setattr(files, "module_path", lambda n: edited if n == "lab.report" else real(n))
    files.strategy_code_digest.cache_clear()
    try:
        assert checkpoint.scoped_code_digest(["mclfir"], False, sources) != before
        assert files.strategy_code_digest("mclfir") == key            # a run's key: unchanged
    finally:
        files.strategy_code_digest.cache_clear()


def test_recorded_benchmark_sources_are_never_rewritten():
    """The code digest does not cover benchmarks/, so a result of this checkout's code whose
    benchmark files changed since is not re-scoped (it would hide the change from carry_entry)."""
    import bench_map
    entry = {"code": code_digest(), "quick": False, "code_scope": [], "code_sources": ["benchmarks/bench_map.py"],
             "scoped_code": "0" * 12}
    assert not M.add_scope(entry, ([], bench_map)) and entry["scoped_code"] == "0" * 12
    old = {"code": code_digest(), "quick": False, "code_scope": [], "scoped_code": "0" * 12}   # the older definition
    assert M.add_scope(old, ([], bench_map)) and old["code_sources"] and old["scoped_code"] != "0" * 12


def test_a_benchmark_that_drives_the_command_line_counts_it_among_its_sources():
    """bench_real's runs are ``python -m mclfir_lite demo`` itself: cli/main.py builds their table,
    protocol sizes, preset and overrides, and no code digest covers it. So it is one of the
    result's sources, in real.json and in results.json, and a change to it changes the scoped digest."""
    import importlib
    import _common as C
    import bench_real
    from mclfir_lite.training.checkpoint import scoped_code_digest
    cli = "mclfir_lite/cli/main.py"
    for path in sorted(Path(C.__file__).parent.glob("bench_*.py")):
        if "mclfir_lite.cli" in path.read_text():
            module = importlib.import_module(path.stem)
            assert cli in getattr(module, "DRIVES", ()), f"{path.name} drives the command line: list {cli} in DRIVES"
            assert cli in module.scope_fields(["mclfir"], False)["code_sources"], path.name
    fields = bench_real.scope_fields(["mclfir"], False)
    without = [s for s in fields["code_sources"] if s != cli]
    assert fields["scoped_code"] != scoped_code_digest(["mclfir"], False, without)
    for entry in (json.loads((C_RESULTS / "real.json").read_text()),
                  json.loads((C_RESULTS / "results.json").read_text())["benchmarks"]["real"]):
        assert cli in entry["code_sources"], "the real-photo result was measured without cli/main.py in its sources"
