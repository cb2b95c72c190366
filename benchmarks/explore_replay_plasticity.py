"""Why a large replay buffer leaves the last attribute at chance (an exploration, issue 20).

The baselines benchmark found that ``replay`` with 512 rows per attribute ties ``mclfir`` on
MeanAP but leaves ``pattern``, the last increment of the lesson's order, at chance on every seed,
while 128 rows learn some of it. The hypothesis, written before this ran:

    a small buffer is memorised within the first steps of an increment, so its rehearsal loss
    falls and stops pulling on the shared encoder; a buffer of 512 rows is not, so its loss stays
    high all increment long and the encoder keeps serving the old attributes, as ``joint`` did
    with its losses summed (before it balanced them by training rate). If so, the rehearsal loss
    during the last increment is higher with 512 rows than with 128, and weighting the rehearsal
    term down lets 512 rows learn ``pattern`` again.

A second test, written after the first five seeds refuted the premise and before the runs that
measure it: the reading those seeds left,

    learning the new attribute needs the shared encoder to move away from where it serves the
    old attributes, and the full-weight rehearsal term holds it; a bigger buffer, fit as well,
    holds more of it. If so, over the last increment the encoder moves less with 512 rows than
    with 128, and more with the rehearsal term weighted x0.25 than at full weight.

(the encoder's movement: the norm of the change of its parameters over the last increment,
relative to their norm at its start).

Every run is the baselines benchmark's own run (same lab, seed, order and settings: its final
MeanAP is checked against the committed one), with the per-step losses recorded by wrapping the
strategy's methods in this process (no package change; so the runs bypass the cache). The last
row weights the rehearsal term (a knob ``replay`` does not have: patched here, for the test only).

    python benchmarks/explore_replay_plasticity.py [--seeds 0 1 2] [--out FILE]

Rows of other seeds already in ``--out``, made by this code digest and preset on this CPU model,
are kept, so seeds can be added a run at a time.

Writes ``benchmarks/results/exploration_replay_plasticity.json`` with the code digest, the CPU and
the date; ``findings.py`` writes the README's lines from it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

import _common as C

OUT = C.RESULTS_DIR / "exploration_replay_plasticity.json"
# (label, rows per attribute, weight of the rehearsal term)
ARMS = (("128 rows", 128, 1.0), ("512 rows", 512, 1.0), ("512 rows, rehearsal x0.25", 512, 0.25))


def _encoder_vector(model):
    import torch
    return torch.cat([p.detach().flatten().clone() for p in model.encoder.parameters()])


def _instrument(weight: float, last: int) -> dict:
    """Wrap ``Replay``'s batch and extra loss to record each step's losses (and scale the
    rehearsal term by ``weight``); returns the record, filled as the run trains."""
    from mclfir_lite.methods.replay import Replay
    log = {"increment": [], "new": [], "rehearsal": []}
    state = {"i": -1}
    before, batch, extra = Replay.before_increment, Replay.batch, Replay.extra_loss

    def before_increment(self, i, new, old):
        state["i"] = i
        if i == last:
            log["encoder_at_last_start"] = _encoder_vector(self.run.model)
        return before(self, i, new, old)

    def batch_(self, step, attrs, samplers, rng):
        b = batch(self, step, attrs, samplers, rng)
        log["increment"].append(state["i"])
        log["new"].append(float(b.loss.detach()))
        log["rehearsal"].append(None)
        return b

    def extra_loss(self, step, b, old, rng):
        loss = extra(self, step, b, old, rng)
        if loss is None:
            return None
        log["rehearsal"][-1] = float(loss.detach())
        return loss * weight if weight != 1.0 else loss

    own = {k: k in vars(Replay) for k in ("before_increment", "batch", "extra_loss")}   # inherited ones are removed again
    Replay.before_increment, Replay.batch, Replay.extra_loss = before_increment, batch_, extra_loss

    def restore():
        for k, v in (("before_increment", before), ("batch", batch), ("extra_loss", extra)):
            setattr(Replay, k, v) if own[k] else delattr(Replay, k)
    log["_restore"] = restore
    return log


def _phase(values, increment, which) -> dict:
    """Mean of a loss over the first and the last 50 steps of one increment."""
    v = [x for x, i in zip(values, increment) if i == which and x is not None]
    return {"first_50": float(np.mean(v[:50])), "last_50": float(np.mean(v[-50:])), "steps": len(v)}


def run_arm(seed: int, rows: int, weight: float) -> dict:
    lab = C.synth_lab(False, seed)
    overrides, _ = C.train_overrides("cpu")
    last = len(lab.increments) - 1
    log = _instrument(weight, last)
    t0 = time.perf_counter()
    try:
        runner = lab.run("replay", cache=False, progress=False, replay_per_attribute=rows, **overrides)
        res = runner.result()
    finally:
        log.pop("_restore")()
    start = log["encoder_at_last_start"]
    moved = float((_encoder_vector(runner.model) - start).norm() / start.norm())
    attrs, R = res["attributes"], res["map_matrix"]
    learnt = {a: next(row[j] for row in R if row[j] is not None) for j, a in enumerate(attrs)}
    from mclfir_lite.core.metrics import chance_map_per_attribute
    chance = chance_map_per_attribute(lab.table.labels, lab.protocol, lab.attributes)
    return {"seed": seed, "rows": rows, "weight": weight, "final_meanap": res["final_meanap"],
            "final_map": res["final_map"], "learnt_map": learnt, "chance_map": {a: float(chance[a]) for a in attrs},
            "last_attributes": list(lab.increments[-1]),
            "encoder_moved_last_increment": moved,
            "last_increment_loss": {"new": _phase(log["new"], log["increment"], last),
                                    "rehearsal": _phase(log["rehearsal"], log["increment"], last)},
            "seconds": round(time.perf_counter() - t0, 1)}


def committed(seed: int, rows: int) -> float | None:
    """The baselines benchmark's final MeanAP for this run (lesson order), if it holds it."""
    from bench_baselines import _rows
    base = json.loads((C.RESULTS_DIR / "results.json").read_text())["benchmarks"]["baselines"]["result"]
    name = next((n for n, size in _rows(base.get("replay_sizes", {"preset": None, "sizes": {}})).items() if size == rows), None)
    for row in base["by_order"]["lesson"]["per_seed"].get(name, []):
        if row["seed"] == seed:
            return row["final_meanap"]
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    C.set_threads(1)
    from mclfir_lite.files import atomic_write, code_digest
    from mclfir_lite.lab.lab import preset_fields
    from mclfir_lite.settings import cpu_model
    rows = []
    if a.out.is_file():   # rows of other seeds made by this very code and preset are kept (add seeds one run at a time)
        before = json.loads(a.out.read_text())
        if before.get("code") == code_digest() and before.get("preset") == preset_fields(False) \
                and before.get("cpu_model") == cpu_model():          # one CPU rounds one way: no mixed files
            rows = [r for r in before["rows"] if r["seed"] not in a.seeds and r.get("label") in [x[0] for x in ARMS]]
    for seed in a.seeds:
        for label, n, w in ARMS:
            r = run_arm(seed, n, w)
            r["label"] = label
            if w == 1.0:
                r["committed_final_meanap"] = committed(seed, n)
            rows.append(r)
            print(f"seed {seed} {label}: MeanAP {r['final_meanap']:.4f} (committed {r.get('committed_final_meanap')}), "
                  + ", ".join(f"{x} learnt {r['learnt_map'][x]:.3f} (chance {r['chance_map'][x]:.3f})"
                              for x in r["last_attributes"])
                  + f"; encoder moved {r['encoder_moved_last_increment']:.4f} over the last increment"
                  + f"; last increment: rehearsal loss {r['last_increment_loss']['rehearsal']}, "
                    f"new loss {r['last_increment_loss']['new']}; {r['seconds']} s", flush=True)
    out = {"what": __doc__.split("\n\n")[0], "hypothesis": __doc__.split("\n\n")[2].strip(),
           "reading": __doc__.split("\n\n")[4].strip(),
           "code": code_digest(), "preset": preset_fields(False), "date": dt.date.today().isoformat(),
           "cpu_model": cpu_model(), "torch_threads": 1, "order": "lesson",
           "rows": sorted(rows, key=lambda r: (r["seed"], [x[0] for x in ARMS].index(r["label"])))}
    text = json.dumps(out, indent=1) + "\n"
    atomic_write(a.out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
