"""ema_teacher: does an EMA teacher do better than LwF's frozen snapshot? Measured over seeds.

``mclfir`` (the student distilled towards a teacher that starts as the last increment's
model) with the teacher updated

* at every step, decay 0.99, 0.999 (the default) and 0.9999;
* once per epoch of the new increment's training rows (``ema_every`` = steps per epoch),
  decay 0.98 (the same time constant as 0.999 per step), as one could read the paper;

against ``lwf`` (the same distillation, a teacher that never moves: decay 1). Each on the
first two increments of the lesson's plan (the old attribute, then the new one: the teacher
acts in the second), at the default increment length and at 4x that length, over seeds
0, 1, 2. Reported per variant: MeanAP, the first increment's attribute (old) and the last
one (new), forgetting, mean ± std; and whether the best EMA variant beats the snapshot by
more than the seeds' spread (otherwise: "no difference here").
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

LENGTHS = {"default": [1, 4], "quick": [1]}
SEEDS = {"default": [0, 1, 2], "quick": [0, 1]}


def variants(steps_per_epoch: int) -> dict[str, tuple[str, dict]]:
    return {"lwf (frozen snapshot)": ("lwf", {}),
            "EMA 0.99 / step": ("mclfir", {"ema_decay": 0.99}),
            "EMA 0.999 / step": ("mclfir", {"ema_decay": 0.999}),
            "EMA 0.9999 / step": ("mclfir", {"ema_decay": 0.9999}),
            "EMA 0.98 / epoch": ("mclfir", {"ema_decay": 0.98, "ema_every": steps_per_epoch})}


# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = ("mclfir", "lwf")


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, fresh: bool = False, **_) -> dict:
    from mclfir_lite.lab.report import over_seeds
    overrides, note = C.train_overrides(device)
    from mclfir_lite.config import preset
    plan = [list(g) for g in C.synth_lab(quick, seed).increments[:2]]
    lab = C.synth_lab(quick, seed, increments=plan)
    first, last = lab.increments[0], lab.increments[-1]
    n_train = int(np.mean([len(lab.protocol[a].train) for a in lab.attributes]))
    per_epoch = max(1, n_train // lab.config.batch_size)
    seeds = [seed + k for k in SEEDS["quick" if quick else "default"]]
    base = lab.config.steps_per_attribute
    jobs, keys = [], []
    for mult in LENGTHS["quick" if quick else "default"]:
        for name, (strategy, cfg) in variants(per_epoch).items():
            for s in seeds:
                jobs.append((s, strategy, {**overrides, **cfg, "steps_per_attribute": base * mult}, {"increments": plan}))
                keys.append((mult, name))
    results = C.run_many(jobs, quick, processes=processes, fresh=fresh)
    table = {}
    for (mult, name), r in zip(keys, results):
        table.setdefault(mult, {}).setdefault(name, []).append(r)
    out = {"seeds": seeds, "steps_per_epoch": per_epoch, "old": first, "new": last, "plan": plan, "lengths": {}}
    for mult, runs in table.items():
        summ = over_seeds(runs)
        rows = {}
        for name, x in summ.items():
            fm = x["final_map"]
            rows[name] = {"meanap": x["final_meanap"], "forgetting": x["forgetting"],
                          "old": _agg([r["final_map"] for r in runs[name]], first),
                          "new": _agg([r["final_map"] for r in runs[name]], last),
                          "steps_per_attribute": base * mult}
        snap = rows["lwf (frozen snapshot)"]["meanap"]
        best = max((n for n in rows if n.startswith("EMA")), key=lambda n: rows[n]["meanap"]["mean"])
        gap = rows[best]["meanap"]["mean"] - snap["mean"]
        spread = max(rows[best]["meanap"]["std"], snap["std"])
        verdict = (f"{best} beats the frozen snapshot by {gap:+.3f} (spread {spread:.3f})" if gap > spread
                   else f"no difference here: the best EMA ({best}) is {gap:+.3f} from the snapshot, within "
                        f"the seeds' spread {spread:.3f}" if abs(gap) <= spread
                   else f"the frozen snapshot beats every EMA ({best} {gap:+.3f}, spread {spread:.3f})")
        out["lengths"][str(mult)] = {"rows": rows, "best_ema": best, "gap": gap, "spread": spread,
                                     "ema_better": bool(gap > spread), "verdict": verdict}
    if note:
        out["device_note"] = note
    return out


def _agg(finals: list[dict], attrs: list[str]) -> dict:
    v = [float(np.mean([f[a] for a in attrs])) for f in finals]
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v), "values": v}


def _c(x, signed=False):
    return "n/a" if x is None else format(x["mean"], "+.3f" if signed else ".3f") + f" ± {x['std']:.3f}"


def render(r: dict) -> str:
    out = [f"Teacher variants on the plan {r.get('plan')}, seeds {r['seeds']}; old = {r['old']}, new = {r['new']}; "
           f"one epoch = {r['steps_per_epoch']} steps.", ""]
    for mult, x in r["lengths"].items():
        rows = [[name, _c(v["meanap"]), _c(v["old"]), _c(v["new"]), _c(v["forgetting"], True)]
                for name, v in x["rows"].items()]
        steps = next(iter(x["rows"].values()))["steps_per_attribute"]
        out += [f"**{mult}x the default increment length ({steps} steps per attribute)**", "",
                C.table(["teacher", "MeanAP", "old attr", "new attr", "forgetting"], rows), "",
                f"Verdict: {x['verdict']}.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
