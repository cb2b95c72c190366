"""strategies: every strategy, over seeds and task orders, with its controls and paired statistics.

SynthFashion at the default preset (each increment bringing its own images), five seeds
(two in quick mode) and three task orders (:func:`orders`): the lesson's plan, the plan
reversed, and the plan with its hardest attribute first (the hardest is the one the
lesson-order ``isolated`` runs learn least above chance, so it is measured, not assumed).
The result keeps the ``seeds`` and ``orders`` lists. Per strategy and order: each attribute's final mAP, the query-weighted MeanAP,
forgetting, BWT (mean ± std over seeds), training samples, optimiser steps and stored
parameters; a chance row; attributes at chance flagged. Then:

* **the upper bound is converged**: ``joint`` is run with its budget doubled
  (``joint_steps`` x 2) and the change of its MeanAP is reported (target < 0.01); with
  ``joint_budgets`` (``--joint-budgets 2,4``) at more multiples too: joint's budget curve, and
  the smallest budget whose doubling moves MeanAP < 0.01 and every attribute < 0.02;
* **the orderings the lesson rests on**, checked on the means and the spread: joint at or
  above every shared-encoder continual strategy; every attribute above chance for
  ``isolated`` and ``joint``; ``isolated`` at chance + 0.3 or more on each attribute;
  ``frozen`` clearly below ``isolated``; ``finetune`` forgetting at least 4x ``mclfir``;
* **paired differences** (:data:`PAIRS`, same seed and order paired, all orders pooled):
  MeanAP, stability (old attributes' final mAP), plasticity (mAP at learning) and
  forgetting, each with a 95% bootstrap CI and a verdict at the 0.01 level
  (:func:`mclfir_lite.lab.report.paired_difference`);
* **issue 20's bar on every run**, not on means (:func:`per_run_checks`);
* **the paper's cost claim** ("comparable at about 30% of the cost"): mclfir / joint MeanAP,
  and the cost ratios (optimiser steps, samples forwarded, samples + teacher forwards),
  against the upper bound (joint) and against ``retrain`` (the equal-budget static
  method the paper's ratio is computed against).
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

STRATEGIES = ("joint", "retrain", "finetune", "frozen", "isolated", "released", "lwf", "ewc", "replay", "mclfir")
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = lambda result: [*result["strategies"], "isolated"]   # isolated: the hardest attribute, always
SHARED_CONTINUAL = ("finetune", "frozen", "lwf", "ewc", "replay", "mclfir")   # one shared encoder, continual
SEEDS = {"default": [0, 1, 2, 3, 4], "quick": [0, 1]}
# paired comparisons (same seed, same order): (a, b) reads "a against b"
PAIRS = [("mclfir", "lwf"), ("mclfir", "finetune"), ("mclfir", "ewc"), ("mclfir", "replay"), ("mclfir", "derpp"),
         ("lwf", "ewc"), ("lwf", "replay"), ("lwf", "derpp"), ("derpp", "replay"),
         ("joint", "mclfir"), ("joint", "lwf"), ("joint", "finetune"), ("lwf", "finetune")]


def orders(plan: list[list[str]], hardest: str | None = None) -> dict[str, list[list[str]]]:
    """The task orders the benchmark runs: the lesson's plan, the same plan reversed, and
    (given the hardest attribute, the one ``isolated`` learns least above chance on the
    lesson's order) the plan with that attribute's increment moved first, or, when the
    lesson already starts with it, the plan rotated by half (``rotated``), so that there are
    always three different orders."""
    out = {"lesson": [list(g) for g in plan], "reversed": [list(g) for g in reversed(plan)]}
    if hardest is not None:
        k = next(i for i, g in enumerate(plan) if hardest in g)
        if k > 0:
            out["hardest_first"] = [list(plan[k])] + [list(g) for i, g in enumerate(plan) if i != k]
        elif len(plan) > 2:    # the lesson already starts with it: a third order is the plan rotated by half
            h = len(plan) // 2
            out["rotated"] = [list(g) for g in plan[h:] + plan[:h]]
    return out


def _spec(plan) -> str:
    return ";".join(",".join(g) for g in plan)


def _hardest(summary: dict) -> str:
    iso = summary["isolated"]
    return min(iso["attributes"], key=lambda a: iso["final_map"][a]["mean"] - iso["chance_map"][a]["mean"])


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, fresh: bool = False,
        strategies=STRATEGIES, n_seeds: int | None = None, doubled_seeds: int | None = None,
        joint_budgets=(2,), **_) -> dict:
    """Every strategy, every seed, on three task orders (the lesson's first; the hardest
    attribute is read from its ``isolated`` runs to build the third order). ``joint`` with its
    budget multiplied by each of ``joint_budgets`` (2 always among them) runs last, on the first
    ``doubled_seeds`` seeds (default: every seed) of the lesson's order: joint's budget curve."""
    from mclfir_lite.config import preset
    from mclfir_lite.lab.report import over_seeds
    seeds = [seed + k for k in SEEDS["quick" if quick else "default"]][: n_seeds or None]
    overrides, note = C.train_overrides(device)
    p = preset(quick)
    from mclfir_lite.data.table import parse_increments
    from mclfir_lite.data.synth import ATTRIBUTES
    plan = parse_increments(C.QUICK_SYNTH["increments"] if quick else p["increments"], list(ATTRIBUTES))
    budget = p["joint_steps"] if not quick else C.QUICK_SYNTH.get("joint_steps", 20)
    strategies = tuple(strategies)

    def runs_for(order_plan, extra_jobs=()):
        lab_kw = {"increments": _spec(order_plan)}
        jobs = [(s, strat, dict(overrides), lab_kw) for strat in strategies for s in seeds] + list(extra_jobs)
        res = C.run_many(jobs, quick, processes=processes, fresh=fresh)
        by = {strat: res[k * len(seeds):(k + 1) * len(seeds)] for k, strat in enumerate(strategies)}
        return by, res[len(strategies) * len(seeds):]

    lesson = plan
    by_lesson = runs_for(lesson)[0]
    extra_iso = [] if "isolated" in strategies else C.run_many(   # the hardest attribute is measured, with
        [(s, "isolated", dict(overrides), {"increments": _spec(lesson)}) for s in seeds], quick,  # isolated runs of
        processes=processes, fresh=fresh)                                                      # its own if need be
    hardest = _hardest(over_seeds({"isolated": by_lesson.get("isolated") or extra_iso}))
    plans = orders(lesson, hardest)
    by_order = {"lesson": by_lesson}
    for name, order_plan in plans.items():
        if name != "lesson":
            by_order[name] = runs_for(order_plan)[0]
    mults = sorted({2, *(int(m) for m in joint_budgets)})
    curve_seeds = seeds[: doubled_seeds or None]
    scaled_jobs = [(s, "joint", {**overrides, "joint_steps": m * budget}, {"increments": _spec(lesson)})
                   for m in mults for s in curve_seeds] if "joint" in strategies else []
    scaled = C.run_many(scaled_jobs, quick, processes=processes, fresh=fresh) if scaled_jobs else []
    by_mult = {m: scaled[k * len(curve_seeds):(k + 1) * len(curve_seeds)] for k, m in enumerate(mults)} if scaled else {}
    doubled = by_mult.get(2, [])

    summary = over_seeds(by_lesson)
    out = {"seeds": seeds, "strategies": list(strategies), "increments": lesson, "summary": summary, "joint_steps": budget,
           "orders": [{"name": n, "plan": pl} for n, pl in plans.items()], "hardest": hardest,
           "per_seed": _per_seed(by_lesson),
           "by_order": {n: {"summary": over_seeds(by), "per_seed": _per_seed(by)} for n, by in by_order.items()}}
    out["first_seed_runs"] = first_seed_runs(by_lesson)
    if doubled:   # compared with joint on the same seeds (paired)
        out["joint_doubled_seeds"] = [r["config"]["seed"] for r in doubled]
        out["joint_doubled"] = over_seeds({"joint x2": doubled})["joint x2"]
        out["joint_same_seeds"] = over_seeds({"joint": by_lesson["joint"][:len(doubled)]})["joint"]
        out["joint_doubled_per_attribute"] = {
            a: out["joint_doubled"]["final_map"][a]["mean"] - out["joint_same_seeds"]["final_map"][a]["mean"]
            for a in summary["joint"]["attributes"]}
    if by_mult:
        out["joint_budget_curve"] = budget_curve({1: by_lesson["joint"][:len(curve_seeds)], **by_mult}, budget)
        out["joint_converged_at"] = converged_at(out["joint_budget_curve"])
        out["joint_doubling"] = doubling_pairs({1: by_lesson["joint"][:len(curve_seeds)], **by_mult})
    every = [r for by in by_order.values() for rs in by.values() for r in rs] + scaled + extra_iso
    out["runs"] = C.run_costs(every)
    out["paired"] = paired(by_order, strategies)
    out["per_run_checks"] = per_run_checks(by_order, strategies)
    if {"joint", "isolated", "finetune", "mclfir"} <= set(strategies) and doubled:
        out["checks"] = checks(summary, out["joint_doubled"], out["joint_same_seeds"])
    if {"mclfir", "joint", "retrain"} <= set(strategies):
        out["cost"] = cost_ratios(summary)
    if note:
        out["device_note"] = note
    return out


def budget_curve(by_mult: dict, budget: int) -> list[dict]:
    """joint's MeanAP and per-attribute mAP (mean over the same seeds) at each budget multiplier."""
    from mclfir_lite.lab.report import over_seeds
    out = []
    for m, runs in sorted(by_mult.items()):
        x = over_seeds({"joint": runs})["joint"]
        out.append({"multiplier": m, "steps": m * budget, "seeds": [r["config"]["seed"] for r in runs],
                    "final_meanap": x["final_meanap"]["mean"], "final_meanap_std": x["final_meanap"]["std"],
                    "final_map": {a: x["final_map"][a]["mean"] for a in x["attributes"]},
                    "train_seconds": x["train_seconds"]["mean"]})
    return out


CONVERGED = {"meanap": 0.01, "attribute": 0.02}   # what doubling may still move at a converged budget


def doubling_pairs(by_mult: dict) -> list[dict]:
    """For each budget multiplier whose double was run too: what doubling moved, seed by seed
    (paired: the same seeds), on MeanAP and on each attribute, with a 95% bootstrap interval
    and a verdict at the convergence criterion's resolution (:data:`CONVERGED`)."""
    from mclfir_lite.lab.report import paired_difference
    out = []
    for m, runs in sorted(by_mult.items()):
        nxt = by_mult.get(2 * m)
        if not nxt:
            continue
        seeds = [r["config"]["seed"] for r in runs]
        after = {r["config"]["seed"]: r for r in nxt}
        pairs = [(r, after[s]) for r, s in zip(runs, seeds) if s in after]
        if not pairs:
            continue
        attrs = pairs[0][0]["attributes"]
        out.append({"from": m, "to": 2 * m, "seeds": [a["config"]["seed"] for a, _ in pairs],
                    "meanap": paired_difference([b["final_meanap"] for _, b in pairs],
                                                [a["final_meanap"] for a, _ in pairs], resolution=CONVERGED["meanap"]),
                    "per_attribute": {at: paired_difference([b["final_map"][at] for _, b in pairs],
                                                            [a["final_map"][at] for a, _ in pairs],
                                                            resolution=CONVERGED["attribute"]) for at in attrs}})
    return out


def converged_at(curve: list[dict]) -> int | None:
    """The smallest budget multiplier whose doubling (the next point of ``curve``, at twice the
    multiplier) moves MeanAP by < 0.01 and every attribute's mAP by < 0.02; None if none does."""
    at = {c["multiplier"]: c for c in curve}
    for m, c in sorted(at.items()):
        nxt = at.get(2 * m)
        if nxt and abs(nxt["final_meanap"] - c["final_meanap"]) < CONVERGED["meanap"] and all(
                abs(nxt["final_map"][a] - c["final_map"][a]) < CONVERGED["attribute"] for a in c["final_map"]):
            return m
    return None


def first_seed_runs(by_lesson: dict) -> dict:
    """Every strategy's whole result on the first seed of the lesson's order, with its run's
    fingerprint: what notebook 07 reads instead of training a run again when it is the very run
    its own lab would make (:func:`mclfir_lite.lab.lab.benchmark_runs` compares the fingerprints)."""
    return {s: rs[0] for s, rs in by_lesson.items()}


def _per_seed(by: dict) -> dict:
    return {s: [{k: r[k] for k in ("final_map", "chance_map", "final_meanap", "forgetting", "bwt", "map_matrix",
                                   "train_samples", "teacher_samples", "optimizer_steps", "train_seconds")}
                | {"seed": r["config"]["seed"]} for r in rs] for s, rs in by.items()}


def paired(by_order: dict, strategies) -> dict:
    """For each pair of :data:`PAIRS`, over every (order, seed): MeanAP, stability (old
    attributes' final mAP), plasticity (mAP at learning) and forgetting, as
    :func:`~mclfir_lite.lab.report.paired_difference` (mean, 95% bootstrap CI, verdict at 0.01)."""
    from mclfir_lite.lab.report import paired_measures
    out = {}
    for a, b in PAIRS:
        if a not in strategies or b not in strategies:
            continue
        row = paired_measures([r for by in by_order.values() for r in by[a]],
                              [r for by in by_order.values() for r in by[b]])
        out[f"{a} vs {b}"] = row
    return out


def per_run_checks(by_order: dict, strategies) -> dict:
    """Issue 20's bar on every (order, seed), not on means: isolated >= chance + 0.3 and joint
    >= chance + 0.2 on every attribute; joint >= the best of finetune / lwf / mclfir - 0.01;
    and per order, finetune's mean forgetting >= 3x mclfir's. None when the strategies hold
    none of these (a bar with nothing to check would hold on every run)."""
    if not ({"isolated", "joint"} & set(strategies) or {"finetune", "mclfir"} <= set(strategies)):
        return None
    fails, n = [], 0
    for name, by in by_order.items():
        for k in range(len(next(iter(by.values())))):
            n += 1
            for s, need in (("isolated", 0.3), ("joint", 0.2)):
                if s in by:
                    r = by[s][k]
                    low = {a: round(r["final_map"][a] - r["chance_map"][a], 3) for a in r["attributes"]
                           if r["final_map"][a] - r["chance_map"][a] < need}
                    if low:
                        fails.append(f"{name} seed {r['config']['seed']}: {s} below chance + {need}: {low}")
            rivals = [s for s in ("finetune", "lwf", "mclfir") if s in by]
            if "joint" in by and rivals:
                best = max(rivals, key=lambda s: by[s][k]["final_meanap"])
                j, b = by["joint"][k]["final_meanap"], by[best][k]["final_meanap"]
                if j < b - 0.01:
                    fails.append(f"{name} seed {by['joint'][k]['config']['seed']}: joint {j:.3f} < {best} {b:.3f} - 0.01")
        if "finetune" in by and "mclfir" in by:
            ft = float(np.mean([r["forgetting"] for r in by["finetune"]]))
            mc = float(np.mean([r["forgetting"] for r in by["mclfir"]]))
            if ft < 3 * max(mc, 1e-9):
                fails.append(f"{name}: finetune forgets {ft:.3f} < 3 x mclfir {mc:.3f}")
    return {"runs": n, "holds": not fails, "failures": fails}


def _m(summary, s, key="final_meanap"):
    return summary[s][key]["mean"]


def _sd(summary, s, key="final_meanap"):
    return summary[s][key]["std"]


def checks(summary: dict, doubled: dict, same_seeds: dict | None = None) -> dict:
    """The orderings, each ``{"holds": bool, "detail": str}``; ``doubled``: joint at twice its
    budget, against ``same_seeds`` (joint on the seeds it was run on; default every seed)."""
    out = {}
    j, jd = _m(summary, "joint"), doubled["final_meanap"]["mean"]
    j0 = (same_seeds or summary["joint"])["final_meanap"]["mean"]
    out["joint converged (doubling its budget moves MeanAP < 0.01)"] = (abs(jd - j0) < 0.01, f"{j0:.3f} -> {jd:.3f}")
    for s in (x for x in SHARED_CONTINUAL if x in summary):
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
    if "frozen" in summary:
        out["frozen clearly below isolated"] = (_m(summary, "isolated") - _m(summary, "frozen")
                                                > max(0.05, _sd(summary, "isolated"), _sd(summary, "frozen")),
                                                f"{_m(summary, 'frozen'):.3f} vs {_m(summary, 'isolated'):.3f}")
    f_ft, f_mc = _m(summary, "finetune", "forgetting"), _m(summary, "mclfir", "forgetting")
    out["finetune forgets >= 4x mclfir"] = (f_ft >= 4 * max(f_mc, 1e-9), f"{f_ft:.3f} vs {f_mc:.3f}")
    return {k: {"holds": bool(h), "detail": d} for k, (h, d) in out.items()}


def cost_ratios(summary: dict) -> dict:
    """mclfir against joint (the upper bound) and against retrain (equal budget)."""
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
    out = [f"SynthFashion, default preset, the lesson's order {r['increments']}, seeds {r['seeds']} "
           f"(each increment brings its own images); strategies: {', '.join(r.get('strategies', r['summary']))}.", "", strategy_table(r["summary"]), ""]
    if "joint_doubled" in r:
        out += [f"Upper bound: joint with {r['joint_steps']} mixed steps per increment; with twice that, its MeanAP "
                f"is {r['joint_doubled']['final_meanap']['mean']:.3f} ± {r['joint_doubled']['final_meanap']['std']:.3f} "
                f"(seeds {r.get('joint_doubled_seeds', r['seeds'])}, against "
                f"{r.get('joint_same_seeds', r['summary']['joint'])['final_meanap']['mean']:.3f} on the same seeds); "
                "per attribute it moves by " + ", ".join(f"{a} {d:+.3f}" for a, d in
                                                         r.get("joint_doubled_per_attribute", {}).items()) + ".", ""]
    curve = r.get("joint_budget_curve", [])
    if len(curve) > 2:
        atts = list(curve[0]["final_map"])
        out += [f"joint's budget curve (lesson order, seeds {curve[0]['seeds']}, mean over them):", "",
                C.table(["steps per increment", "MeanAP", *atts, "train s"],
                        [[c["steps"], c["final_meanap"], *(c["final_map"][a] for a in atts), c["train_seconds"]]
                         for c in curve]),
                "", _converged_sentence(r), ""]
    if "checks" in r:
        out += [C.table(["check", "holds", "numbers"], [[k, v["holds"], v["detail"]] for k, v in r["checks"].items()]), ""]
    if "cost" in r:
        out += [C.table(["mclfir vs", "MeanAP ratio", "MeanAP gap", "steps", "samples", "samples + teacher", "wall s"],
                        [[ref, c["meanap_ratio"], c["meanap_gap"], c["steps_ratio"], c["samples_ratio"],
                          c["samples_plus_teacher_ratio"], c["seconds_ratio"]] for ref, c in r["cost"].items()])]
    out += ["", f"Task orders: " + "; ".join(f"{o['name']} = {_spec(o['plan'])}" for o in r.get("orders", [])),
            f"(hardest attribute by isolated mAP above chance on the lesson's order: {r.get('hardest')})", ""]
    for name, x in r.get("by_order", {}).items():
        if name != "lesson":
            out += [f"Order {name}:", "", strategy_table(x["summary"]), ""]
    rows = [[pair, m, f"{d['mean']:+.3f}", f"[{d['lo']:+.3f}, {d['hi']:+.3f}]", d["n"], d["verdict"]]
            for pair, row in r.get("paired", {}).items() for m, d in row.items()]
    if rows:
        out += ["Paired differences over every (order, seed), 95% bootstrap CI, verdict at 0.01:", "",
                C.table(["pair", "measure", "mean a - b", "95% CI", "pairs", "verdict"], rows), ""]
    pr = r.get("per_run_checks")
    if pr:
        out += [f"Issue 20's bar on each of {pr['runs']} (order, seed) runs: "
                + ("holds." if pr["holds"] else "fails:"), *[f"- {f}" for f in pr["failures"]]]
    if r.get("device_note"):
        out += ["", f"Note: {r['device_note']}."]
    return "\n".join(out)


def _converged_sentence(r: dict) -> str:
    m = r.get("joint_converged_at")
    top = max(c["multiplier"] for c in r["joint_budget_curve"])
    if m is None:
        return (f"joint did not converge within {top}x its budget (doubling moved MeanAP by >= {CONVERGED['meanap']} "
                f"or an attribute by >= {CONVERGED['attribute']} at every budget tried).")
    return (f"joint converges at {m}x its budget ({m * r['joint_steps']} steps per increment): doubling that moves "
            f"MeanAP by < {CONVERGED['meanap']} and every attribute by < {CONVERGED['attribute']}.")


README_MARKER = "strategies"     # <!-- strategies:start --> ... :end --> in the README (run_all.py --readme)


def readme(r: dict) -> str:
    """The README's section: MeanAP per strategy and order (mean ± std over seeds), the paired
    differences over every (order, seed) with their 95% CI and verdict, the converged upper
    bound, and issue 20's bar on every run."""
    orders_ = [o["name"] for o in r.get("orders", [])] or ["lesson"]
    by = r.get("by_order", {"lesson": {"summary": r["summary"]}})
    strategies = list(r["summary"])
    rows = []
    for s in strategies:
        cells = [f"{by[o]['summary'][s]['final_meanap']['mean']:.3f} ± {by[o]['summary'][s]['final_meanap']['std']:.3f}"
                 for o in orders_]
        pooled = [x["final_meanap"] for o in orders_ for x in by[o]["per_seed"][s]] if all(
            "per_seed" in by[o] for o in orders_) else []
        f_pooled = [x["forgetting"] for o in orders_ for x in by[o]["per_seed"][s]] if pooled else []
        rows.append([s, *cells, f"{np.mean(pooled):.3f}" if pooled else "n/a",
                     f"{np.mean(f_pooled):.3f}" if f_pooled and all(v is not None for v in f_pooled) else "n/a"])
    out = [f"Seeds {r['seeds']}, {len(orders_)} orders: "
           + "; ".join(f"**{o['name']}** = {_spec(o['plan'])}" for o in r.get("orders", []))
           + f" (hardest attribute, by `isolated`'s mAP above chance on the lesson's order: {r.get('hardest')}). "
           f"Final MeanAP, mean ± std over seeds:", "",
           C.table(["strategy", *orders_, "all orders", "forgetting (all orders)"], rows), ""]
    if "joint_doubled" in r:
        base = r.get("joint_same_seeds", r["summary"]["joint"])
        d = r["joint_doubled"]["final_meanap"]["mean"] - base["final_meanap"]["mean"]
        worst = max(r.get("joint_doubled_per_attribute", {"-": 0}).items(), key=lambda kv: abs(kv[1]))
        out += [f"Upper bound: twice `joint`'s budget ({2 * r['joint_steps']} steps per increment, lesson order, "
                f"seeds {r.get('joint_doubled_seeds', r['seeds'])}) moves its MeanAP by {d:+.3f} (the attribute that "
                f"moves most, {worst[0]}, by {worst[1]:+.3f}).", ""]
    curve = r.get("joint_budget_curve", [])
    if len(curve) > 2:
        out += ["joint's MeanAP against its budget: " + ", ".join(
            f"{c['steps']} steps {c['final_meanap']:.3f}" for c in curve) + ". " + _converged_sentence(r), ""]
    if r.get("joint_doubling"):
        rows = [[f"{x['from'] * r['joint_steps']} → {x['to'] * r['joint_steps']}", len(x["seeds"]),
                 f"{x['meanap']['mean']:+.3f} [{x['meanap']['lo']:+.3f}, {x['meanap']['hi']:+.3f}]",
                 ", ".join(f"{a} {v['mean']:+.3f}" for a, v in x["per_attribute"].items())]
                for x in r["joint_doubling"]]
        out += ["What each doubling of `joint`'s budget moves, seed by seed (paired; 95% bootstrap interval):", "",
                C.table(["steps per increment", "seeds", "MeanAP", "each attribute (mean)"], rows), ""]
    if r.get("runs"):
        out += [f"Cost: {r['runs']['total']} training runs, {r['runs']['train_seconds'] / 3600:.1f} h of training "
                "in all (the sum of every run's training time, one torch thread each; two ran at a time).", ""]
    prs = [[pair, m, f"{x['mean']:+.3f}", f"[{x['lo']:+.3f}, {x['hi']:+.3f}]", x["n"], x["verdict"]]
           for pair, row in r.get("paired", {}).items() for m, x in row.items()]
    if prs:
        out += ["Paired differences (same seed and order), pooled over every order; stability = the old "
                "attributes' final mAP, plasticity = each attribute's mAP when it was learnt; 95% bootstrap CI, "
                "verdict at the 0.01 level:", "",
                C.table(["a vs b", "measure", "mean a − b", "95% CI", "pairs", "verdict"], prs), ""]
    pr = r.get("per_run_checks")
    if pr:
        out += [f"Issue 20's bar on each of the {pr['runs']} (order, seed) runs: "
                + ("**holds on every run**." if pr["holds"] else "**fails** on: " + "; ".join(pr["failures"]) + ".")]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
