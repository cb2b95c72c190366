"""cost_curves: accuracy against cost, so that "comparable at 30% of the cost" is a point on a curve.

joint (cumulative, and from scratch at every increment), retrain, mclfir and lwf on the lesson's
default plan at four budgets each (:data:`BUDGETS`: multiples of the preset's steps per
attribute, joint steps and retrain steps), over :data:`SEEDS`. For each run: MeanAP, the
images it forwarded (training samples + teacher forwards) and its training time. Then, per
method, the cost at which its mean curve first reaches the line, 95% of ``joint`` at its
largest budget (issue 20's "95% of converged joint"; ours is **not** shown converged there:
the strategies benchmark finds it still gaining from x1 to x2, and ``retrain`` ends above it),
read on the curve (linear between measured budgets), or "not reached"; and the same per seed.

``joint (from scratch)`` is ``retrain``'s algorithm (a fresh model per increment, mixed batches
of every seen attribute) at ``joint``'s steps and rate schedule; ``retrain`` has budgets of its own
(:data:`RETRAIN_BUDGETS`, of ``Config.retrain_steps``, 1,200 mixed steps per fresh model: the
budget at which one fresh model learns every attribute, the README's retrain-budget finding).
Twice that would cost as much as retrain's whole four-point curve. Its budget of 1/3 is 400
steps, the continual methods' own: the paper's "retrain at the same budget".

Cost: "images" counts a teacher's forward pass like a training sample (forward and backward),
so it flatters no method but overstates what a teacher costs; the seconds axis is the fairer
one. Wall times are this machine's (see ``machine``): the runs trained in one call run two side
by side on two cores (one torch thread each), as in the strategies benchmark; a run served by
the run ledger keeps the time it took when it was trained (``runs`` counts them).
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

BUDGETS = {"default": [0.25, 0.5, 1.0, 2.0], "quick": [0.5, 1.0]}
RETRAIN_BUDGETS = {"default": [0.125, 1 / 3, 0.5, 1.0], "quick": [1 / 3, 1.0]}
# A seed costs about 45 minutes on two cores. More seeds are added here; the run ledger
# (benchmarks/results/ledger) keeps the runs already made, so only the new seed trains.
SEEDS = {"default": [0, 1, 2], "quick": [0]}
METHODS = {"joint": ("joint", {}), "joint (from scratch)": ("joint", {"joint_warm_start": False}),
           "retrain": ("retrain", {}), "mclfir": ("mclfir", {}), "lwf": ("lwf", {})}
TARGET = 0.95
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = tuple(s for s, _ in METHODS.values())


def budgets_of(name: str, quick: bool) -> list[float]:
    """The budgets of ``name``'s curve, smallest first: :data:`RETRAIN_BUDGETS` for retrain, else :data:`BUDGETS`."""
    mode = "quick" if quick else "default"
    return sorted((RETRAIN_BUDGETS if METHODS[name][0] == "retrain" else BUDGETS)[mode])


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, fresh: bool = False, out_dir=None,
        **_) -> dict:
    from mclfir_lite.config import preset
    overrides, note = C.train_overrides(device)
    p = {**preset(quick), **(C.QUICK_SYNTH if quick else {})}
    budgets, seeds = budgets_of("joint", quick), [seed + s for s in SEEDS["quick" if quick else "default"]]
    jobs, keys = [], []
    for s in seeds:   # seed by seed (a seed is whole as soon as it can be): retrain's runs, then each method's, largest budget first
        for name, (strategy, extra) in sorted(METHODS.items(), key=lambda kv: kv[1][0] != "retrain"):
            for b in reversed(budgets_of(name, quick)):
                cfg = {**overrides, **extra, "steps_per_attribute": max(1, round(b * p["steps_per_attribute"])),
                       "joint_steps": max(1, round(b * p["joint_steps"])),
                       "retrain_steps": max(1, round(b * p["retrain_steps"]))}
                jobs.append((s, strategy, cfg, {}))
                keys.append((name, b))
    results = C.run_many(jobs, quick, processes=processes, fresh=fresh)
    curves = {name: [] for name in METHODS}
    for (name, b), r in zip(keys, results):
        curves[name].append({"budget": b, "seed": r["config"]["seed"], "meanap": r["final_meanap"],
                             "images": r["train_samples"] + r["teacher_samples"], "seconds": r["train_seconds"]})
    mean = {name: [{"budget": b, **{k: float(np.mean([x[k] for x in pts if x["budget"] == b]))
                                    for k in ("meanap", "images", "seconds")}}
                   for b in budgets_of(name, quick)] for name, pts in curves.items()}
    top = mean["joint"][-1]
    line = TARGET * top["meanap"]
    reach = {name: reach_cost(pts, line) for name, pts in mean.items()}
    seed_line = {x["seed"]: TARGET * x["meanap"] for x in curves["joint"] if x["budget"] == top["budget"]}   # each seed's own
    per_seed = {name: {str(s): reach_cost(sorted((x for x in pts if x["seed"] == s), key=lambda x: x["budget"]), seed_line[s])
                       for s in seeds} for name, pts in curves.items()}
    best_name, best_pt = max(((name, pt) for name, pts in mean.items() for pt in pts), key=lambda item: item[1]["meanap"])
    out = {"budgets": budgets, "retrain_budgets": budgets_of("retrain", quick), "seeds": seeds, "curves": curves,
           "mean": mean, "reference": {"method": "joint", "budget": top["budget"], "meanap": top["meanap"]},
           "target": TARGET, "line": line, "reach": reach, "reach_per_seed": per_seed,
           "best": {"method": best_name, "budget": best_pt["budget"], "meanap": best_pt["meanap"]},
           "runs": C.run_costs(results)}
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
    from mclfir_lite.lab.plots import plot_cost_curves
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return C.save_figure(plot_cost_curves(r), Path(out_dir), "cost_curves.png")


def _cost(got: dict | None, key: str, fmt: str) -> str:
    """A reach cost as a table cell: "not reached", or the cost ("≤" when the curve starts above the line)."""
    if got is None:
        return "not reached"
    return ("≤ " if got["at_smallest_budget"] else "") + format(got[key], fmt)


def render(r: dict) -> str:
    n = max(len(pts) for pts in r["mean"].values())
    rows = []
    for name, pts in r["mean"].items():
        got = r["reach"][name]
        cells = [f"{p['meanap']:.3f} (x{p['budget']:.3g})" for p in pts] + [""] * (n - len(pts))
        seeds = r.get("reach_per_seed", {}).get(name, {})
        rows.append([name, *cells, _cost(got, "images", ",.0f"), _cost(got, "seconds", ".0f"),
                     f"{sum(v is not None for v in seeds.values())} of {len(seeds)}"])
    ref = r["reference"]
    return "\n".join([f"Mean MeanAP over seeds {r['seeds']} at each budget (a multiple of the method's preset steps), "
                      f"and the cost at which the mean curve first reaches the line: {r['target']:.0%} of `joint` at "
                      f"x{ref['budget']:g} (MeanAP {ref['meanap']:.3f}, so the line is {r['line']:.3f}; `joint` is not "
                      f"shown converged there). Images: training samples plus teacher forwards. Seconds: training time.",
                      "", C.table(["method", *[f"budget {k + 1}" for k in range(n)], "images to the line",
                                   "seconds to the line", "seeds whose own curve reaches it"], rows)])


def _at(pts: list[dict], budget: float) -> dict | None:
    return next((p for p in pts if abs(p["budget"] - budget) < 1e-9), None)


def readme(r: dict) -> str:
    """The README's section: :func:`render`'s table, the figure, and what it shows (generated)."""
    mean, reach, best = r["mean"], r["reach"], r["best"]
    lines = [render(r), "", "![MeanAP against cost](benchmarks/results/cost_curves.png)", "",
             "What it shows (generated from this result):", ""]
    lines.append(f"* The highest mean MeanAP of any method at any budget: `{best['method']}` at x{best['budget']:.3g}, "
                 f"{best['meanap']:.3f}" + (" (above `joint` at its largest budget, the line's reference)"
                                             if best["meanap"] > r["reference"]["meanap"] else "") + ".")
    for name, pts in mean.items():
        top = max(pts, key=lambda p: p["meanap"])
        got = reach[name]
        lines.append(f"* `{name}`: " + (f"does not reach the line at any of its budgets (its best: {top['meanap']:.3f} at "
                                         f"x{top['budget']:.3g}, {r['line'] - top['meanap']:.3f} below it)" if got is None else
                                         f"reaches the line at {_cost(got, 'images', ',.0f')} images forwarded and "
                                         f"{_cost(got, 'seconds', '.0f')} s of training") + ".")
    for name in mean:
        seeds = r.get("reach_per_seed", {}).get(name, {})
        mine = sum(v is not None for v in seeds.values())
        if seeds and mine not in (0, len(seeds)):
            lines.append(f"* The seeds disagree for `{name}`: {mine} of {len(seeds)} seeds' own curves reach the line "
                         f"(against their own `joint`), while the mean curve " + ("does" if reach[name] else "does not")
                         + f": more seeds are needed before that verdict is more than a description of these {len(seeds)}.")
    groups: dict[float, list] = {}
    for name, pts in mean.items():
        for pt in pts:
            key = next((k for k in groups if abs(k - pt["images"]) <= 0.01 * k), pt["images"])
            groups.setdefault(key, []).append((name, pt))
    for images, same_cost in sorted(groups.items()):
        if len({name for name, _ in same_cost}) >= 3:
            lines.append(f"* At the same cost, {images:,.0f} images forwarded: " + "; ".join(
                f"`{name}` at x{pt['budget']:.3g} ends at {pt['meanap']:.3f} ({pt['seconds']:.0f} s)"
                for name, pt in sorted(same_cost, key=lambda np_: -np_[1]["meanap"])) + ".")
    m, rt = _at(mean.get("mclfir", []), 1.0), mean.get("retrain", [])
    same = _at(rt, 1 / 3) if rt else None
    own = _at(rt, 1.0) if rt else None
    if m and same and own:
        lines.append(f"* The paper's comparison as points on these curves: `mclfir` at its preset forwards "
                     f"{m['images']:,.0f} images (its teacher's included) in {m['seconds']:.0f} s and ends at "
                     f"{m['meanap']:.3f}; `retrain` at the continual budget (x1/3 of its preset) forwards "
                     f"{same['images']:,.0f} (mclfir forwards {m['images'] / same['images']:.2f} of that) in "
                     f"{same['seconds']:.0f} s and ends at {same['meanap']:.3f}; at its own preset {own['images']:,.0f} "
                     f"({m['images'] / own['images']:.2f}) in {own['seconds']:.0f} s, ending at {own['meanap']:.3f}.")
    return "\n".join(lines)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
