"""cost_curves: accuracy against cost, so that "comparable at 30% of the cost" is a point on a curve.

joint (cumulative, and retrained from scratch), retrain, mclfir and lwf on the lesson's
default plan at several budgets (:data:`BUDGETS`: multiples of the preset's steps per
attribute and joint steps), over seeds. For each run: MeanAP, the images it forwarded
(training samples + teacher forwards) and its training wall time. Then, per method, the
cost at which it first reaches 95% of *converged* joint (joint at the largest budget),
read on the curve (linear between measured budgets), or "not reached". Wall times are
this machine's (see ``machine``), measured one run at a time.
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

BUDGETS = {"default": [0.25, 0.5, 1.0, 2.0], "quick": [0.5, 1.0]}
SEEDS = {"default": [0, 1, 2], "quick": [0]}
METHODS = {"joint": ("joint", {}), "joint (from scratch)": ("joint", {"joint_warm_start": False}),
           "retrain": ("retrain", {}), "mclfir": ("mclfir", {}), "lwf": ("lwf", {})}
TARGET = 0.95
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = tuple(s for s, _ in METHODS.values())


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 1, out_dir=None, **_) -> dict:
    from mclfir_lite.config import preset
    overrides, note = C.train_overrides(device)
    p = {**preset(quick), **(C.QUICK_SYNTH if quick else {})}
    budgets, seeds = BUDGETS["quick" if quick else "default"], [seed + s for s in SEEDS["quick" if quick else "default"]]
    jobs, keys = [], []
    for name, (strategy, extra) in METHODS.items():
        for b in budgets:
            cfg = {**overrides, **extra, "steps_per_attribute": max(1, round(b * p["steps_per_attribute"])),
                   "joint_steps": max(1, round(b * p["joint_steps"])),
                   "retrain_steps": max(1, round(b * p["retrain_steps"]))}
            for s in seeds:
                jobs.append((s, strategy, cfg, {}))
                keys.append((name, b))
    results = C.run_many(jobs, quick, processes=processes)
    curves = {name: [] for name in METHODS}
    for (name, b), r in zip(keys, results):
        curves[name].append({"budget": b, "seed": r["config"]["seed"], "meanap": r["final_meanap"],
                             "images": r["train_samples"] + r["teacher_samples"], "seconds": r["train_seconds"]})
    mean = {name: [{"budget": b, **{k: float(np.mean([x[k] for x in pts if x["budget"] == b]))
                                    for k in ("meanap", "images", "seconds")}}
                   for b in budgets] for name, pts in curves.items()}
    converged = mean["joint"][-1]["meanap"]
    reach = {name: reach_cost(pts, TARGET * converged) for name, pts in mean.items()}
    out = {"budgets": budgets, "seeds": seeds, "curves": curves, "mean": mean, "converged_joint": converged,
           "target": TARGET, "reach": reach}
    if out_dir is not None:
        out["figure"] = figure(out, out_dir)
    if note:
        out["device_note"] = note
    return out


def reach_cost(points: list[dict], target: float) -> dict | None:
    """The images and seconds at which a curve (ordered by budget) first reaches ``target``,
    linear between the two budgets around the crossing; None when it never does."""
    for k, pt in enumerate(points):
        if pt["meanap"] >= target:
            if k == 0:
                return {"images": pt["images"], "seconds": pt["seconds"], "at_smallest_budget": True}
            a = points[k - 1]
            f = (target - a["meanap"]) / (pt["meanap"] - a["meanap"])
            return {"images": a["images"] + f * (pt["images"] - a["images"]),
                    "seconds": a["seconds"] + f * (pt["seconds"] - a["seconds"]), "at_smallest_budget": False}
    return None


def figure(r: dict, out_dir) -> str:
    from pathlib import Path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, pts in r["mean"].items():
        for ax, x in zip(axes, ("images", "seconds")):
            ax.plot([p[x] for p in pts], [p["meanap"] for p in pts], marker="o", label=name)
    for ax, label in zip(axes, ("images forwarded (training + teacher)", "training wall time (s)")):
        ax.axhline(r["target"] * r["converged_joint"], color="grey", ls=":", lw=0.8, label="95% of converged joint")
        ax.set(xscale="log", xlabel=label, ylabel="MeanAP")
    axes[0].legend(fontsize=7)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return C.save_figure(fig, Path(out_dir), "cost_curves.png")


def render(r: dict) -> str:
    rows = []
    for name, pts in r["mean"].items():
        got = r["reach"][name]
        rows.append([name, *[f"{p['meanap']:.3f}" for p in pts],
                     "not reached" if got is None else f"{got['images']:,.0f}",
                     "not reached" if got is None else f"{got['seconds']:.0f}"])
    return "\n".join([f"MeanAP at budgets {r['budgets']} x the preset (seeds {r['seeds']}); converged joint "
                      f"{r['converged_joint']:.3f}; cost to reach {r['target']:.0%} of it:", "",
                      C.table(["method", *[f"x{b:g}" for b in r["budgets"]], "images to 95%", "seconds to 95%"], rows)])


if __name__ == "__main__":
    C.main(sys.modules[__name__])
