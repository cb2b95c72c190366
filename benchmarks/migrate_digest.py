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
        yield
    finally:
        files.code_digest = real
        checkpoint.READ_ONLY_BY.update(fields)


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


def migrate_first_seed_runs(result: dict, quick: bool) -> list[str]:
    """Recompute the stored fingerprints of the strategies benchmark's seed-0 runs (those a
    notebook's lab would make); returns the strategies whose fingerprint was carried over."""
    from mclfir_lite.lab.lab import Lab
    runs = result.get("first_seed_runs") or {}
    if not runs:
        return []
    lab = Lab.synthfashion(quick=quick)
    done = []
    for strategy, run in runs.items():
        with legacy_digest():
            old = lab.run_fingerprint(strategy)
        if run.get("fingerprint") == old:
            run["fingerprint"] = lab.run_fingerprint(strategy)
            done.append(strategy)
    return done


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
    if "entries" in data:                          # learnable*.json: {"entries": {key: entry}}
        for key, entry in data["entries"].items():
            if migrate_entry(entry, legacy):
                changes.append(f"{path.name}: {key}")
    if migrate_entry(data, legacy):                # one-result files: the code at the top
        changes.append(f"{path.name}: (whole file)")
    if changes and write:
        from mclfir_lite.files import atomic_write_file
        text = json.dumps(data, indent=1, default=str) + "\n"     # the key order as read
        atomic_write_file(path, lambda f: f.write(text.encode()))
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
    for path in paths:
        for line in migrate_file(path, legacy, write=a.write):
            print("carried over:" if a.write else "can be carried over:", line)
            total += 1
    print(f"{total} {'carried over' if a.write else 'can be carried over (--write)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
