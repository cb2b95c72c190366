"""Carry committed results over a change of the code digest's *definition*, where that is provable.

``mclfir_lite.files.code_digest`` once hashed ``config.py`` whole, the presets' values
(``PRESETS``, ``PRETRAINED``) included; it now leaves them out (``files.DATA_NOT_CODE``) and
every result records the preset it was measured with instead. A result made before that
change carries the old digest. It is carried over only when the old digest of *this
checkout* equals the one it recorded: the old digest is a hash of the numeric modules' code
and the presets' values, so equality proves that the result was made by exactly this code
with exactly this preset, and the new digest and the preset can be written beside it. A
result of any other code is left as it is (stale: re-measure it).

The strategies benchmark also stores the fingerprints of its seed-0 runs (notebook 07 reads
those runs instead of training them). A run's fingerprint changed twice at the same time: the
new digest, and the Config fields a strategy does not read left out
(``training.checkpoint.READ_ONLY_BY``). Each is recomputed only when the old fingerprint of the
same lab (old digest, every field) matches the stored one.

Since 2026-12-07 a run's fingerprint records the digest of the code *its strategy* runs
(``files.strategy_code_digest``) instead of every numeric module's, and a result records the
strategies its runs belong to (``code_scope``) and ``scoped_code``
(``training.checkpoint.scoped_code_digest``: the shared and result-making code, their code, the
Config they get from the preset, and the benchmark's own files, ``code_sources``).
Two more carry-overs follow from that, each with its proof:

* **scope** (once): a result, ledger entry or stored seed-0 fingerprint that records this
  checkout's code digest was made by exactly this code; its scope, or its run's new
  fingerprint, is computed from this checkout and written beside it.
* **carry** (after any later change): a result whose ``scoped_code`` equals this checkout's for
  its scope, and whose preset differs at most in fields none of its strategies reads
  (``checkpoint.unread_fields``), was made by the code and settings its numbers depend on; it
  gets this checkout's code digest and preset, and records the digest it was measured with
  (``code_carried_from``). A change to ``retrain`` so leaves the strategies benchmark of the
  five lesson strategies fresh, and makes stale what holds ``retrain`` runs.

    python benchmarks/migrate_digest.py            # report what would change
    python benchmarks/migrate_digest.py --write    # and write it

Nothing is written when nothing can be proved; each file is written whole (atomically).
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import _common as C

MIGRATED_FROM = "code_migrated_from"    # the old digest a carried-over result recorded
CARRIED_FROM = "code_carried_from"      # the digest a result of an unchanged scope was measured with (kept over
                                        # later carry-overs: the first one's)


def legacy_code_digest() -> str:
    """This checkout's digest under the old definition: every numeric module hashed whole."""
    from mclfir_lite.files import modules_digest
    return modules_digest({})


@contextmanager
def legacy_digest():
    """Inside the block, ``files.code_digest()`` is the old one, and so is every run fingerprint
    made with it: the old digest, and every Config field in every run's fingerprint (before
    ``training.checkpoint.READ_ONLY_BY`` left out the fields a strategy does not read)."""
    from mclfir_lite import files
    from mclfir_lite.training import checkpoint
    real, fields = files.code_digest, dict(checkpoint.READ_ONLY_BY)
    files.code_digest = legacy_code_digest
    checkpoint.READ_ONLY_BY.clear()
    try:
        with whole_code_fingerprints():
            yield
    finally:
        files.code_digest = real
        checkpoint.READ_ONLY_BY.update(fields)


@contextmanager
def whole_code_fingerprints():
    """Inside the block, a run's fingerprint records ``files.code_digest()`` (every numeric
    module), as it did before it recorded the code of its strategy alone."""
    from mclfir_lite import files
    from mclfir_lite.training import checkpoint
    real = checkpoint.code_fields
    checkpoint.code_fields = lambda strategy=None: {"version": files.settings.__version__, "code": files.code_digest()}
    try:
        yield
    finally:
        checkpoint.code_fields = real


def migrate_entry(entry: dict, legacy: str, quick: bool = False) -> bool:
    """Carry one result (a dict with ``code``) over when its digest is ``legacy``; True if it was."""
    from mclfir_lite.files import code_digest
    from mclfir_lite.lab.lab import preset_fields
    if not isinstance(entry, dict) or entry.get("code") != legacy or legacy == code_digest():
        return False
    entry[MIGRATED_FROM] = legacy
    entry["code"] = code_digest()
    entry.setdefault("preset", preset_fields(bool(entry.get("quick", quick))))
    return True


def migrate_first_seed_runs(result: dict, quick: bool, old_definition=None) -> list[str]:
    """Recompute the stored fingerprints of the strategies benchmark's seed-0 runs (those a
    notebook's lab would make) where ``old_definition`` (a context manager; default
    :func:`legacy_digest`) makes the stored one for this checkout's lab; returns the strategies
    whose fingerprint was carried over."""
    from mclfir_lite.lab.lab import Lab
    runs = result.get("first_seed_runs") or {}
    if not runs:
        return []
    lab, done = Lab.synthfashion(quick=quick), []
    for strategy, run in runs.items():
        with (old_definition or legacy_digest)():
            old = lab.run_fingerprint(strategy)
        if run.get("fingerprint") == old:
            run["fingerprint"] = lab.run_fingerprint(strategy)
            done.append(strategy)
    return done


def entry_scope(name: str | None, entry: dict):
    """``(scope, module)`` of a stored result: its benchmark's (``CODE_SCOPE`` of ``bench_<name>``;
    a learnable entry's strategy, with bench_learnable), or ``(None, None)``."""
    import importlib
    try:
        module = importlib.import_module("bench_learnable" if name is None else f"bench_{name}")
    except ImportError:
        return None, None
    if name is None:
        return ([str(entry["strategy"])], module) if isinstance(entry.get("strategy"), str) else (None, None)
    try:
        return C.code_scope(module, entry.get("result", entry)), module
    except (KeyError, TypeError):
        return None, None


def add_scope(entry: dict, scope_and_module, quick: bool = False) -> bool:
    """Write ``code_scope``, ``code_sources`` and ``scoped_code`` beside a result of this checkout's
    code (the proof: it records this checkout's digest) that has none, or has them from the older
    definition without ``code_sources``; True if they were written. Recorded sources are never
    rewritten: the code digest does not cover the benchmark's files, so it proves nothing about them."""
    from mclfir_lite.files import code_digest
    scope, module = scope_and_module
    if scope is None or not isinstance(entry, dict) or entry.get("code") != code_digest() or "code_sources" in entry:
        return False
    fields = getattr(module, "scope_fields", C.scope_fields)(scope, bool(entry.get("quick", quick)), module)
    if all(entry.get(k) == v for k, v in fields.items()):
        return False
    entry.update(fields)
    return True


def preset_changes(then: dict, now: dict) -> set[str]:
    """The preset fields that differ, looking inside nested overlays (``"pretrained"``): a field
    an overlay sets counts under its own name."""
    changed = set()
    for k in set(now) | set(then):
        a, b = then.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            changed |= {f for f in set(a) | set(b) if a.get(f) != b.get(f)}
        elif a != b:
            changed.add(k)
    return changed


def carry_entry(entry: dict, quick: bool = False) -> bool:
    """Carry a result of an unchanged scope over to this checkout's code digest (see the module's
    docstring); True if it was."""
    from mclfir_lite.files import code_digest
    from mclfir_lite.lab.lab import preset_fields
    from mclfir_lite.training.checkpoint import scoped_code_digest, unread_fields
    if not isinstance(entry, dict) or entry.get("code") == code_digest() or not entry.get("code"):
        return False
    scope, sources = entry.get("code_scope"), entry.get("code_sources", [])
    if not isinstance(scope, list) or not isinstance(sources, list) \
            or entry.get("scoped_code") != scoped_code_digest(scope, bool(entry.get("quick", quick)), sources):
        return False
    now, then = preset_fields(bool(entry.get("quick", quick))), entry.get("preset")
    if not isinstance(then, dict):
        return False
    if preset_changes(then, now) - unread_fields(scope):
        return False
    entry.setdefault(CARRIED_FROM, entry["code"])   # carried again: it keeps the digest it was measured with
    entry["code"], entry["preset"] = code_digest(), now
    return True


def provenance(e: dict) -> str:
    """How a result came to carry this checkout's digest when another one measured it: the digests
    it recorded before (``migrate_digest.py``'s carry-overs), or ""."""
    notes = []
    if e.get(MIGRATED_FROM):
        notes.append(f"recorded as {e[MIGRATED_FROM]} before the presets left the digest")
    if e.get(CARRIED_FROM):
        scope = ", ".join(e.get("code_scope") or []) or "shared code only"
        notes.append(f"measured with code {e[CARRIED_FROM]}, whose code and settings for its strategies ({scope}) "
                     "are this checkout's")
    return f" ({'; '.join(notes)}; carried over by `benchmarks/migrate_digest.py`)" if notes else ""


def migrate_ledger(ledger: Path, write: bool = True) -> list[str]:
    """Give every ledger entry made with this checkout's whole-code digest its strategy's code
    digest (and so its new name); a line per entry."""
    from mclfir_lite.files import atomic_write_file, code_digest, fingerprint, strategy_code_digest
    changes = []
    for path in sorted(ledger.glob("*.json")):
        try:
            entry = json.loads(path.read_text())
            fields = dict(entry["fingerprint"]["fields"])
            strategy = str(fields["strategy"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if fields.get("code") != code_digest() or fingerprint(fields) != entry["fingerprint"] \
                or not isinstance(entry.get("context"), dict):
            continue   # other code, a fingerprint that does not hash to itself, no context: not provable
        fields["code"] = strategy_code_digest(strategy)
        entry["fingerprint"] = fingerprint(fields)
        new = C.ledger_path(entry["fingerprint"], ledger, entry["context"])
        changes.append(f"ledger: {path.name} -> {new.name}")
        if write:
            text = json.dumps(entry, indent=1, default=str) + "\n"
            atomic_write_file(new, lambda f: f.write(text.encode()))
            if new != path:
                path.unlink()
    return changes


def migrate_file(path: Path, legacy: str, write: bool = True) -> list[str]:
    """Carry over what can be proved in one results file; returns a line per change (written
    only with ``write``)."""
    data = json.loads(path.read_text())
    changes = []
    if "benchmarks" in data:                       # results.json: {"benchmarks": {name: entry}}
        for name, entry in data["benchmarks"].items():
            if migrate_entry(entry, legacy):
                changes.append(f"{path.name}: {name}")
                if name == "strategies":
                    for s in migrate_first_seed_runs(entry["result"], bool(entry.get("quick"))):
                        changes.append(f"{path.name}: strategies, seed-0 run of {s} (fingerprint)")
            if add_scope(entry, entry_scope(name, entry)):
                changes.append(f"{path.name}: {name}, scope {', '.join(entry['code_scope']) or '(shared code)'}")
                if name == "strategies":
                    for s in migrate_first_seed_runs(entry["result"], bool(entry.get("quick")), whole_code_fingerprints):
                        changes.append(f"{path.name}: strategies, seed-0 run of {s} (fingerprint: its strategy's code)")
            if carry_entry(entry):
                changes.append(f"{path.name}: {name} carried over (its scope's code and settings are unchanged)")
    if "entries" in data:                          # learnable*.json: {"entries": {key: entry}}
        for key, entry in data["entries"].items():
            if migrate_entry(entry, legacy):
                changes.append(f"{path.name}: {key}")
            if add_scope(entry, entry_scope(None, entry), quick=False):
                changes.append(f"{path.name}: {key}, scope {entry['strategy']}")
            if carry_entry(entry):
                changes.append(f"{path.name}: {key} carried over (its strategy's code and settings are unchanged)")
    if migrate_entry(data, legacy):                # one-result files: the code at the top
        changes.append(f"{path.name}: (whole file)")
    if path.name == "real.json" and add_scope(data, entry_scope("real", data)):
        changes.append(f"{path.name}: scope {', '.join(data['code_scope'])}")
    if carry_entry(data):
        changes.append(f"{path.name}: (whole file) carried over (its scope's code and settings are unchanged)")
    if changes and write:
        from mclfir_lite.files import atomic_write_file
        text = json.dumps(data, indent=1, default=str) + "\n"     # the key order as read
        atomic_write_file(path, lambda f: f.write(text.encode()))
        if path.name == "real.json" and path.resolve().parent == C.RESULTS_DIR.resolve():
            import bench_real
            bench_real.write_doc(data)                              # its page says what it records
    return changes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the carried-over results (default: report only)")
    ap.add_argument("files", nargs="*", help="results files (default: every benchmarks/results/*.json)")
    a = ap.parse_args(argv)
    from mclfir_lite.files import code_digest
    legacy = legacy_code_digest()
    print(f"this checkout: code digest {code_digest()} (old definition: {legacy})")
    paths = [Path(f) for f in a.files] or sorted(C.RESULTS_DIR.glob("*.json"))
    total = 0
    if not a.files and (C.RESULTS_DIR / "ledger").is_dir():
        for line in migrate_ledger(C.RESULTS_DIR / "ledger", write=a.write):
            print("carried over:" if a.write else "can be carried over:", line)
            total += 1
    for path in paths:
        for line in migrate_file(path, legacy, write=a.write):
            print("carried over:" if a.write else "can be carried over:", line)
            total += 1
    print(f"{total} {'carried over' if a.write else 'can be carried over (--write)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
