"""strategies: every strategy on the lesson's default plan, over several seeds, with its controls.

SynthFashion at the default preset (four increments, each bringing its own images), seeds
0, 1, 2 (``--seeds``). Per strategy: each attribute's final mAP, the query-weighted MeanAP,
forgetting, BWT (mean ± std over seeds), training samples, optimiser steps and stored
parameters; a chance row; attributes at chance flagged. Then:

* **the upper bound is converged**: ``joint`` is run with its budget doubled
  (``joint_steps`` x 2) and the change of its MeanAP is reported (target < 0.01);
* **the orderings the lesson rests on**, checked on the means and the spread: joint at or
  above every shared-encoder continual strategy; every attribute above chance for
  ``isolated`` and ``joint``; ``isolated`` at chance + 0.3 or more on each attribute;
  ``frozen`` clearly below ``isolated``; ``finetune`` forgetting at least 4x ``mclfir``;
* **the paper's cost claim** ("comparable at about 30% of the cost"): mclfir / joint MeanAP,
  and the cost ratios (optimiser steps, samples forwarded, samples + teacher forwards),
  against the converged upper bound and against ``retrain`` (the equal-budget static
  method the paper's ratio is computed against).
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

STRATEGIES = ("joint", "retrain", "finetune", "frozen", "isolated", "released", "lwf", "ewc", "replay", "mclfir")
SHARED_CONTINUAL = ("finetune", "frozen", "lwf", "ewc", "replay", "mclfir")   # one shared encoder, continual
SEEDS = {"default": [0, 1, 2], "quick": [0, 1]}


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, fresh: bool = False, **_) -> dict:
    from mclfir_lite.config import preset
    from mclfir_lite.lab.report import over_seeds
    seeds = [seed + k for k in SEEDS["quick" if quick else "default"]]
    overrides, note = C.train_overrides(device)
    jobs = [(s, strat, dict(overrides), {}) for strat in STRATEGIES for s in seeds]
    budget = preset(quick)["joint_steps"] if not quick else C.QUICK_SYNTH.get("joint_steps", 20)
    jobs += [(s, "joint", {**overrides, "joint_steps": 2 * budget}, {}) for s in seeds]
    results = C.run_many(jobs, quick, processes=processes, fresh=fresh)
    by = {strat: [r for r in results[k * len(seeds):(k + 1) * len(seeds)]] for k, strat in enumerate(STRATEGIES)}
    doubled = results[len(STRATEGIES) * len(seeds):]
    summary = over_seeds(by)
    out = {"seeds": seeds, "increments": by["mclfir"][0]["increments"], "summary": summary,
           "joint_steps": budget, "joint_doubled": over_seeds({"joint x2": doubled})["joint x2"],
           "per_seed": {s: [{k: r[k] for k in ("final_map", "final_meanap", "forgetting", "bwt", "map_matrix",
                                               "train_samples", "teacher_samples", "optimizer_steps", "train_seconds")}
                            for r in rs] for s, rs in by.items()}}
    out["checks"] = checks(summary, out["joint_doubled"])
    out["cost"] = cost_ratios(summary)
    if note:
        out["device_note"] = note
    return out


def _m(summary, s, key="final_meanap"):
    return summary[s][key]["mean"]


def _sd(summary, s, key="final_meanap"):
    return summary[s][key]["std"]


def checks(summary: dict, doubled: dict) -> dict:
    """The orderings, each ``{"holds": bool, "detail": str}``."""
    out = {}
    j, jd = _m(summary, "joint"), doubled["final_meanap"]["mean"]
    out["joint converged (doubling its budget moves MeanAP < 0.01)"] = (abs(jd - j) < 0.01, f"{j:.3f} -> {jd:.3f}")
    for s in SHARED_CONTINUAL:
        gap = j - _m(summary, s)
        out[f"joint >= {s}"] = (gap >= -max(_sd(summary, "joint"), _sd(summary, s)),
                                f"{j:.3f} vs {_m(summary, s):.3f}")
    for s in ("isolated", "joint"):
        low = [a for a in summary[s]["attributes"]
               if summary[s]["final_map"][a]["mean"] < summary[s]["chance_map"][a]["mean"] + 0.05]
        out[f"every attribute above chance for {s}"] = (not low, f"at chance: {low or 'none'}")
    iso = summary["isolated"]
    margins = {a: iso["final_map"][a]["mean"] - iso["chance_map"][a]["mean"] for a in iso["attributes"]}
    out["isolated >= chance + 0.3 on each attribute"] = (min(margins.values()) >= 0.3,
                                                          ", ".join(f"{a} +{v:.2f}" for a, v in margins.items()))
    out["frozen clearly below isolated"] = (_m(summary, "isolated") - _m(summary, "frozen")
                                            > max(0.05, _sd(summary, "isolated"), _sd(summary, "frozen")),
                                            f"{_m(summary, 'frozen'):.3f} vs {_m(summary, 'isolated'):.3f}")
    f_ft, f_mc = _m(summary, "finetune", "forgetting"), _m(summary, "mclfir", "forgetting")
    out["finetune forgets >= 4x mclfir"] = (f_ft >= 4 * max(f_mc, 1e-9), f"{f_ft:.3f} vs {f_mc:.3f}")
    return {k: {"holds": bool(h), "detail": d} for k, (h, d) in out.items()}


def cost_ratios(summary: dict) -> dict:
    """mclfir against joint (the converged upper bound) and against retrain (equal budget)."""
    out = {}
    for ref in ("joint", "retrain"):
        r, m = summary[ref], summary["mclfir"]
        samples = lambda x: x["train_samples"]["mean"]
        total = lambda x: x["train_samples"]["mean"] + x["teacher_samples"]["mean"]
        out[ref] = {"meanap_ratio": m["final_meanap"]["mean"] / r["final_meanap"]["mean"],
                    "meanap_gap": m["final_meanap"]["mean"] - r["final_meanap"]["mean"],
                    "steps_ratio": m["optimizer_steps"]["mean"] / r["optimizer_steps"]["mean"],
                    "samples_ratio": samples(m) / samples(r),
                    "samples_plus_teacher_ratio": total(m) / total(r),
                    "seconds_ratio": m["train_seconds"]["mean"] / r["train_seconds"]["mean"]}
    return out


def render(r: dict) -> str:
    from mclfir_lite.lab.report import strategy_table
    out = [f"SynthFashion, default preset, increments {r['increments']}, seeds {r['seeds']} "
           "(each increment brings its own images).", "", strategy_table(r["summary"]), "",
           f"Upper bound: joint with {r['joint_steps']} mixed steps per increment; with twice that, its MeanAP is "
           f"{r['joint_doubled']['final_meanap']['mean']:.3f} ± {r['joint_doubled']['final_meanap']['std']:.3f}.", "",
           C.table(["check", "holds", "numbers"], [[k, v["holds"], v["detail"]] for k, v in r["checks"].items()]), "",
           C.table(["mclfir vs", "MeanAP ratio", "MeanAP gap", "steps", "samples", "samples + teacher", "wall s"],
                   [[ref, c["meanap_ratio"], c["meanap_gap"], c["steps_ratio"], c["samples_ratio"],
                     c["samples_plus_teacher_ratio"], c["seconds_ratio"]] for ref, c in r["cost"].items()])]
    if r.get("device_note"):
        out += ["", f"Note: {r['device_note']}."]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
