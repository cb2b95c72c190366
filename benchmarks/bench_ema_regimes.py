"""ema_regimes: where, if anywhere, does an EMA teacher differ from LwF's frozen snapshot?

``ema_teacher`` compares them on two increments at the lesson's settings and finds no
difference. This benchmark searches the regimes where the paper's EMA could matter, each
against ``lwf`` (a teacher that never moves) with everything else equal, over seeds:

* **five increments, teacher carried** (``ema_carry``): one teacher across the whole plan,
  so its lag spans increments (SynthFashion style v2, where all six attributes are
  learnable, plan ``synth6x5``);
* **per step vs per epoch**: ``ema_every`` = 1 (decay 0.999) against once per epoch of
  the increment's rows (decay 0.98);
* **a high learning rate** (4x): a student that moves fast, the case an EMA smooths;
* **short increments** (a quarter of the steps): a teacher that has little time to move.

Per regime: paired differences mclfir - lwf (same seed) on MeanAP, stability, plasticity
and forgetting, with a 95% bootstrap CI and a verdict at 0.01
(:func:`mclfir_lite.lab.report.paired_difference`), and the overall answer, which may be
"nowhere here".
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

SEEDS = {"default": [0, 1, 2, 3, 4], "quick": [0, 1]}
PLAN = {"default": "synth6x5", "quick": "synth3"}


def regimes(steps_per_epoch: int, base: dict) -> dict[str, tuple[dict, dict]]:
    """name -> (mclfir overrides, overrides shared by both methods)."""
    return {"five increments, teacher carried": ({"ema_carry": True}, {}),
            "per step (0.999)": ({"ema_decay": 0.999, "ema_every": 1}, {}),
            "per epoch (0.98)": ({"ema_decay": 0.98, "ema_every": steps_per_epoch}, {}),
            "high learning rate (4x)": ({}, {"lr": 4 * base["lr"]}),
            "short increments (1/4 of the steps)": ({}, {"steps_per_attribute": max(1, base["steps_per_attribute"] // 4)})}


# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = ("mclfir", "lwf")


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, **_) -> dict:
    from mclfir_lite.lab.report import paired_measures
    overrides, note = C.train_overrides(device)
    mode = "quick" if quick else "default"
    lab_kw = {"increments": PLAN[mode], "style": "v2"}
    lab = C.synth_lab(quick, seed, **lab_kw)
    n_train = int(np.mean([len(lab.protocol[a].train) for a in lab.attributes]))
    per_epoch = max(1, n_train // lab.config.batch_size)
    base = {"lr": lab.config.lr, "steps_per_attribute": lab.config.steps_per_attribute}
    seeds = [seed + k for k in SEEDS[mode]]
    jobs, keys = [], []
    for name, (mine, shared) in regimes(per_epoch, base).items():
        for strategy, cfg in (("mclfir", {**shared, **mine}), ("lwf", shared)):
            for s in seeds:
                jobs.append((s, strategy, {**overrides, **cfg}, lab_kw))
                keys.append((name, strategy))
    results = C.run_many(jobs, quick, processes=processes)
    by = {}
    for k, r in zip(keys, results):
        by.setdefault(k, []).append(r)
    out = {"seeds": seeds, "plan": lab.increments, "steps_per_epoch": per_epoch, "base": base, "regimes": {},
           "per_run": {},     # each run's numbers, so that a seed can be re-measured (tests/test_remeasure.py)
           "runs": C.run_costs(results)}
    for name in regimes(per_epoch, base):
        m, l = by[(name, "mclfir")], by[(name, "lwf")]
        out["regimes"][name] = paired_measures(m, l)
        out["per_run"][name] = {s: [{"seed": r["config"]["seed"], "final_meanap": r["final_meanap"],
                                     "forgetting": r["forgetting"]} for r in rs] for s, rs in (("mclfir", m), ("lwf", l))}
    decided = [(n, k, d["verdict"]) for n, row in out["regimes"].items() for k, d in row.items()
               if d["verdict"] in ("above", "below")]
    out["answer"] = ("nowhere here: in every regime the EMA teacher and the frozen snapshot are within 0.01 or "
                     "undecided" if not decided else
                     "; ".join(f"{n}: mclfir {v} lwf on {k}" for n, k, v in decided))
    if note:
        out["device_note"] = note
    return out


def render(r: dict) -> str:
    rows = [[n, k, f"{d['mean']:+.3f}", f"[{d['lo']:+.3f}, {d['hi']:+.3f}]", d["verdict"]]
            for n, row in r["regimes"].items() for k, d in row.items()]
    cost = r.get("runs") or {}
    return "\n".join([f"mclfir - lwf, paired over seeds {r['seeds']}, plan {r['plan']}:", "",
                      C.table(["regime", "measure", "mean", "95% CI", "verdict at 0.01"], rows), "",
                      f"Answer: {r['answer']}."]
                     + ([f"Cost: {cost['total']} training runs, {cost['train_seconds'] / 60:.0f} min of one-core training "
                         "in all (one torch thread each, two at a time)."] if cost.get("total") else []))



def shows(r: dict) -> str:
    """What the README says the search shows, from the result alone: per regime, the verdict on
    MeanAP (mclfir - lwf, paired over seeds, resolution 0.01), and for an undecided one whether
    its interval still excludes 0 (a difference smaller than the resolution, or not known to be)."""
    m = {n: row["meanap"] for n, row in r["regimes"].items()}
    above = [n for n, d in m.items() if d["verdict"] == "above"]
    out = ["What it shows (generated from this result): "
           + (f"the EMA teacher ends above the snapshot on MeanAP in {', '.join(above)}." if above else
              "in no regime does the EMA teacher end above the snapshot on MeanAP.")]
    for n, d in m.items():
        if d["verdict"] == "above":
            continue
        side = ("interval below 0" if d["hi"] < 0 else "interval above 0" if d["lo"] > 0 else "interval across 0")
        line = f"*{n}*: {d['verdict']}, {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}], {side}"
        if d["verdict"] == "below" and "stability" in r["regimes"][n]:
            line += f" ({r['regimes'][n]['stability']['mean']:+.2f} on the old attributes)"
        out.append(line)
    return out[0] + " " + "; ".join(out[1:]) + "."


def readme(r: dict) -> str:
    """The README's section: the table (:func:`render`) and what it shows (:func:`shows`)."""
    return render(r) + "\n\n" + shows(r)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
