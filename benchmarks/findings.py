"""The README's findings about the default plan, generated from the exploration files that hold them.

The README explains how the default plan came to be (issue 20): what failed on the way, and what
the budgets of ``joint`` and ``retrain`` are known to reach. Its numbers come from the committed
files below, each of which records the code digest that made it; every paragraph here is
written from those files and names the digests, so no number in it is typed by hand.

    python benchmarks/findings.py          # rewrite the README's finding-* sections
    (python benchmarks/run_all.py --readme does it too)

Sections (``<!-- finding-NAME:start -->`` ... ``:end -->`` in the README): :data:`SECTIONS`.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

import _common as C

RESULTS = C.RESULTS_DIR


def load(name: str) -> dict:
    path = RESULTS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(C.README.parent)} not found: the README's findings are written from it")
    return json.loads(path.read_text())


def digests(entries) -> str:
    """The code digests of ``entries`` (dicts with ``code``), sorted, for a paragraph's source line."""
    return ", ".join(sorted({str(e.get("code")) for e in entries}))


def plan_history() -> str:
    """Why style v2, and why joint balances its losses: learnable_exploration.json, learnable_balance.json."""
    ex = load("learnable_exploration.json")["entries"].values()
    v1 = [e for e in ex if e["style"] == "v1" and e["strategy"] == "isolated"]
    bal = list(load("learnable_balance.json")["entries"].values())
    late = [e for e in bal if e["strategy"] == "joint" and e["plan"][-1] == ["pattern"]]
    plain = [e["attributes"]["pattern"]["above_chance"] for e in late if not e["config_overrides"]]
    ratio = {a: [e["attributes"]["pattern"]["above_chance"] for e in late
                 if e["config_overrides"].get("joint_balance") == "ratio" and e["config_overrides"].get("balance_alpha") == a]
             for a in (1.0, 2.0)}
    both = ratio[1.0] + ratio[2.0]
    out = []
    if v1:
        e = v1[0]
        out.append(f"* With the renderer's style `v1`, `sleeve_length` and `neckline` reach only chance "
                   f"{e['attributes']['sleeve_length']['above_chance']:+.2f} and "
                   f"{e['attributes']['neckline']['above_chance']:+.2f} alone at {e['image_size']} px (`isolated`, seed "
                   f"{e['seed']}; `benchmarks/results/learnable_exploration.json`, code {e['code']}). Style `v2` "
                   "recalibrates the renderer (longer sleeves and hems, clearer necklines), and a single-attribute "
                   "model learns all six.")
    if plain and both:
        out.append(f"* **The upper bound failed first.** With the attributes' losses summed, `joint` left `pattern`, the "
                   f"last attribute, at chance + {min(plain):.2f} to + {max(plain):.2f} on the plans where it comes "
                   "late: the attributes already learnt dominate the shared encoder. Weighting each attribute by how far "
                   "its loss still is from where it started (GradNorm's inverse training rate, no extra passes) fixes "
                   f"it: chance + {min(both):.2f} to + {max(both):.2f} for `pattern` at α = 1 and 2"
                   + (f" (+ {min(ratio[2.0]):.2f} to + {max(ratio[2.0]):.2f} at α = 2)" if ratio[2.0] else "")
                   + f" (`benchmarks/results/learnable_balance.json`, exploration runs with code {digests(late)}). "
                   "`joint_balance=\"sum\"` stays available as the failing variant.")
    return "\n".join(out)


def _paired_gain(a: list[float], b: list[float]) -> tuple[float, float]:
    d = np.asarray(b) - np.asarray(a)
    return float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else float("nan")


def joint_budget() -> str:
    """joint's budget: the strategies benchmark (results.json) and exploration_joint_budget.json."""
    from mclfir_lite.lab.lab import stale_reason
    entry = load("results.json")["benchmarks"].get("strategies")
    out = []
    if entry and entry.get("status") == "ok" and stale_reason(entry) is None:
        r = entry["result"]
        same, doubled = r["joint_same_seeds"]["final_meanap"]["values"], r["joint_doubled"]["final_meanap"]["values"]
        gains = [b - a for a, b in zip(same, doubled)]
        margins = []
        for o in r["by_order"].values():
            s = o["summary"]
            if all(k in s for k in ("joint", "lwf", "mclfir")):
                margins += [j - max(l, m) for j, l, m in zip(s["joint"]["final_meanap"]["values"],
                                                           s["lwf"]["final_meanap"]["values"],
                                                           s["mclfir"]["final_meanap"]["values"])]
        shown = abs(float(np.mean(gains))) < 0.01
        out.append(f"* **`joint`'s budget is {'' if shown else 'not '}shown converged on MeanAP.** At its own rate "
                   f"({r['joint_steps']} steps per increment), "
                   f"doubling the budget raises MeanAP by {np.mean(gains):+.3f} over {len(gains)} seeds "
                   f"({', '.join(f'{g:+.3f}' for g in gains)} seed by seed; the strategies benchmark, code {entry['code']}).")
        if margins:
            out.append(f"  The bound itself holds by a wide margin: on every one of the {len(margins)} (order, seed) runs "
                       f"`joint` ends {'above' if min(margins) > 0 else 'NOT always above'} the better of `lwf` and "
                       f"`mclfir`, by {min(margins):.2f} to {max(margins):.2f} MeanAP ({np.mean(margins):.2f} on average).")
    x = load("exploration_joint_budget.json")
    v = x.get("doubling_800_to_1600")
    if v:
        moved = ", ".join(format(d["meanap"], "+.3f") for d in v["by_seed"].values())
        out.append(f"* Twice the budget, on the validation seeds (doubling 800 to 1,600 steps), moved MeanAP "
                   f"by {moved}, and single attributes by up to "
                   f"{max(abs(a) for d in v['by_seed'].values() for a in d['per_attribute'].values()):.2f} "
                   f"(`benchmarks/results/exploration_joint_budget.json`, code {x['code']}).")
    t = x.get("test_protocol_doubling_800_1600")
    if t:
        m = t["doubling_800_to_1600"]["meanap"]
        gains = [row["meanap_1600"] - row["meanap_800"] for row in t["rows"]]
        extra = t.get("extra_seed_5")
        if extra:
            gains.append(extra["meanap_1600"] - extra["meanap_800"])
        attr = [d["mean"] for d in t["doubling_800_to_1600"]["per_attribute"].values()]
        cross = [abs(row["meanap_800"] - row["meanap_800_committed_amd_epyc"]) for row in t["rows"]
                 if row.get("meanap_800_committed_amd_epyc") is not None]
        sd = float(np.std(gains, ddof=1))
        out.append(f"  On the test seeds (lesson order, both budgets trained on one {t['cpu_model']}, paired; code "
                   f"{t['code']}): doubling 800 moved MeanAP by {m['mean']:+.3f}, 95% interval [{m['lo']:+.3f}, "
                   f"{m['hi']:+.3f}] over {m['n']} seeds ({min(gains):+.3f} to {max(gains):+.3f} seed by seed over "
                   f"{len(gains)}), and attributes by {min(attr):+.3f} to {max(attr):+.3f} on average: by the rule "
                   "(< 0.01 on MeanAP and < 0.02 on every attribute) 800 is "
                   f"{'shown' if t.get('converged_at_800_by_the_rule') else 'not shown'} converged either."
                   + (f" (The same seeds' 800-step runs on another CPU differ by up to {max(cross):.3f}: another CPU "
                      "rounds differently.)" if cross else ""))
        out.append(f"  The doubling's gain varies between seeds with a standard deviation of {sd:.3f}, so a 95% interval "
                   f"of ±0.01 would need about {math.ceil((1.96 * sd / 0.01) ** 2)} seeds "
                   "(n ≈ (1.96 σ / 0.01)²).")
    e = x.get("end_point_traces")
    if e:
        rows = [row for row in e["rows"] if not row["single_increment"]]
        const = [row for row in rows if row["schedule"] == "constant"]
        wsd = {(row["seed"], row["joint_steps"]): row for row in rows if row["schedule"] != "constant"}
        lower = [c["final_meanap"] - wsd[(c["seed"], c["joint_steps"])]["final_meanap"] for c in const
                 if (c["seed"], c["joint_steps"]) in wsd]
        wsd_gain = [wsd[(s, 2 * n)]["final_meanap"] - wsd[(s, n)]["final_meanap"] for (s, n) in wsd if (s, 2 * n) in wsd]
        sds = " and ".join(format(c["last_increment_second_half"]["meanap_sd"], ".3f") for c in const)
        out.append(f"  Where the spread comes from (validation seeds, MeanAP evaluated inside every increment; same file, "
                   f"`end_point_traces`, code {e['code']}, {e['cpu_model']}): not from a noisy end point. Over the last "
                   f"half of the last increment a constant-rate run moves by a standard deviation of "
                   f"{sds}"
                   + (f"; a rate decayed over the last quarter of each increment ends {min(lower):.3f} to "
                      f"{max(lower):.3f} *lower* at the same budget" if lower else "")
                   + (f", and its own doubling still moves MeanAP by {' and '.join(f'{g:+.3f}' for g in wsd_gain)}"
                      if wsd_gain else "")
                   + ". The spread is between trajectories, so deciding convergence at 0.01 needs many more seeds "
                   "(or a resolution matched to the spread), not another schedule.")
    return "\n".join(out)


def retrain_budget() -> str:
    """retrain's budget: the single-increment trace in exploration_joint_budget.json."""
    e = load("exploration_joint_budget.json").get("end_point_traces") or {}
    one = [row for row in e.get("rows", []) if row["single_increment"]]
    if not one:
        return "*No single-increment trace in `benchmarks/results/exploration_joint_budget.json`.*"
    row = one[0]
    chance = row["chance_map"]
    by_step = {t["step"]: t for t in row["trace"]}
    weakest = min(chance, key=lambda a: row["final_map"][a] - chance[a] if a in row["final_map"] else 1)
    early = [s for s in sorted(by_step) if s <= 800]
    steps = sorted(by_step)
    flat = [s for s in steps if s >= 1200]

    def doubling(s):
        if s not in by_step or 2 * s not in by_step:
            return None
        a, b = by_step[s], by_step[2 * s]
        return b["meanap"] - a["meanap"], max(abs(b["map"][k] - a["map"][k]) for k in a["map"])
    d = doubling(1200)
    return (f"Measured on validation seed {row['seed']} (`benchmarks/results/exploration_joint_budget.json`, "
            f"`end_point_traces`, the single-increment row, code {e['code']}): one fresh model on all six attributes at "
            f"`joint`'s rate, as `retrain` trains at its last increment, learns `{weakest}` last: "
            + ", ".join(format(by_step[s]["map"][weakest] - chance[weakest], "+.2f") for s in early)
            + f" above chance at {', '.join(str(s) for s in early)} steps"
            + (f"; its MeanAP is {by_step[flat[0]]['meanap']:.3f} at {flat[0]:,} steps and {by_step[flat[-1]]['meanap']:.3f} "
               f"at {flat[-1]:,}" if flat else "")
            + (f", and doubling 1,200 moves MeanAP by {d[0]:+.3f} and no attribute by more than {d[1]:.3f}" if d else "")
            + ". So `retrain`'s 400 mixed steps per fresh model sit at the onset of that attribute's learning, and "
            "about 1,200 is the budget that learns every attribute there; setting it (a `retrain` budget of its own, "
            "then the cost ratios again) changes the numeric code, so it goes with the next full re-measurement.")


SECTIONS = {"finding-plan-history": plan_history, "finding-joint-budget": joint_budget,
            "finding-retrain-budget": retrain_budget}


def write(readme: Path | None = None) -> list[str]:
    """Rewrite every section of :data:`SECTIONS` that has markers in ``readme``; the names written."""
    readme = Path(readme or C.README)
    text, written = readme.read_text(encoding="utf-8"), []
    for name, make in SECTIONS.items():
        if f"<!-- {name}:start -->" in text:
            C.write_between(name, make(), readme)
            written.append(name)
    return written


if __name__ == "__main__":
    print(f"README sections rewritten: {', '.join(write()) or 'none (no markers)'}")
    sys.exit(0)
