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
        raise FileNotFoundError(f"{path} not found: the README's findings are written from it")
    return json.loads(path.read_text())


def digests(entries) -> str:
    """The code digests of ``entries`` (dicts with ``code``), sorted, for a paragraph's source line."""
    return ", ".join(sorted({str(e.get("code")) for e in entries}))


def _bar_misses(entry: dict, bar: float) -> list[str]:
    return [f"`{a}` {s['above_chance']:+.2f}" for a, s in entry["attributes"].items() if s["above_chance"] < bar]


def plan_history() -> str:
    """Why style v2, and why joint balances its losses: learnable_exploration.json, learnable_balance.json."""
    ex = load("learnable_exploration.json")
    bar = ex.get("thresholds", {}).get("isolated", 0.3)
    iso = {st: [e for e in ex["entries"].values() if e["style"] == st and e["strategy"] == "isolated"] for st in ("v1", "v2")}
    out = []
    if iso["v1"] and iso["v2"]:
        v1 = "; ".join(f"seed {e['seed']}: {', '.join(_bar_misses(e, bar)) or 'none'}" for e in iso["v1"])
        v2 = [m for e in iso["v2"] for m in _bar_misses(e, bar)]
        low = min((s["above_chance"], a) for e in iso["v2"] for a, s in e["attributes"].items())
        out.append(f"* With the renderer's style `v1`, a single-attribute model (`isolated`, {iso['v1'][0]['image_size']} px) "
                   f"leaves these attributes under the bar of chance + {bar}: {v1}. Style `v2` recalibrates the "
                   f"renderer (longer sleeves and hems, clearer necklines): "
                   + (f"every attribute clears the bar (the lowest, `{low[1]}`, at {low[0]:+.2f})" if not v2 else
                      f"still under the bar: {', '.join(v2)}")
                   + f" (`benchmarks/results/learnable_exploration.json`, code {digests(iso['v1'] + iso['v2'])}).")
    bal = [e for e in load("learnable_balance.json")["entries"].values() if e["strategy"] == "joint"]
    late = [e for e in bal if e["plan"][-1] == ["pattern"]]
    summed = [e for e in late if e["config_overrides"].get("joint_balance", "sum") == "sum"]   # the default of that code
    if summed:
        pairs = []   # (summed run, the same plan and seed balanced by training rate)
        for e in summed:
            pairs += [(e, r) for r in late if (r["plan"], r["seed"]) == (e["plan"], e["seed"])
                      and r["config_overrides"].get("joint_balance") == "ratio"]
        above = lambda e, a: e["attributes"][a]["above_chance"]   # noqa: E731
        runs = [f"seed {e['seed']}, α = {r['config_overrides'].get('balance_alpha'):g}: `pattern` "
                f"{above(e, 'pattern'):+.3f} → {above(r, 'pattern'):+.2f}, the others at most "
                f"{max(above(e, a) - above(r, a) for a in e['attributes'] if a != 'pattern'):.2f} lower" for e, r in pairs]
        fixed = bool(pairs) and all(above(r, "pattern") >= JOINT_BAR for _, r in pairs)
        out.append(f"* **The upper bound failed first.** With the attributes' losses summed, `joint` left `pattern`, "
                   "the last attribute, near chance where it comes late; weighting each attribute by how far its loss "
                   "still is from where it started (GradNorm's inverse training rate, no extra passes) "
                   + ("lifts it over the bar of chance + 0.2" if fixed else "does not lift it over the bar everywhere")
                   + f", paired by plan and seed: {'; '.join(runs)} (`benchmarks/results/learnable_balance.json`, "
                   f"exploration runs with code {digests(summed)}). `joint_balance=\"sum\"` stays available as the "
                   "failing variant.")
    return "\n".join(out)


JOINT_BAR = 0.2


def _rule(gain: float, attrs: list[float]) -> bool:
    """The strategies benchmark's convergence rule (``bench_strategies.CONVERGED``), on mean gains."""
    from bench_strategies import CONVERGED
    return abs(gain) < CONVERGED["meanap"] and all(abs(x) < CONVERGED["attribute"] for x in attrs)


def joint_budget() -> str:
    """joint's budget: the strategies benchmark (results.json) and exploration_joint_budget.json."""
    from mclfir_lite.lab.lab import stale_reason
    entry = load("results.json")["benchmarks"].get("strategies")
    out, sd = [], None
    if entry and entry.get("status") == "ok" and stale_reason(entry) is None:
        r = entry["result"]
        same, doubled = r["joint_same_seeds"]["final_meanap"]["values"], r["joint_doubled"]["final_meanap"]["values"]
        gains = [b - a for a, b in zip(same, doubled)]
        attrs = list(r.get("joint_doubled_per_attribute", {}).values())
        shown = _rule(float(np.mean(gains)), attrs)
        out.append(f"* **At its own rate and {r['joint_steps']} steps per increment, `joint` is "
                   f"{'' if shown else 'not '}shown converged** (the strategies benchmark, code {entry['code']}): "
                   f"doubling the budget moves MeanAP by {np.mean(gains):+.3f} on average over seeds "
                   f"{r['joint_doubled_seeds']} ({', '.join(f'{g:+.3f}' for g in gains)} seed by seed)"
                   + (f", and single attributes by {min(attrs):+.3f} to {max(attrs):+.3f}" if attrs else "") + ".")
        margins, orders = [], 0
        for o in r["by_order"].values():
            s_ = o["summary"]
            if all(k in s_ for k in ("joint", "lwf", "mclfir")):
                orders += 1
                margins += [j - max(l, m) for j, l, m in zip(s_["joint"]["final_meanap"]["values"],
                                                           s_["lwf"]["final_meanap"]["values"],
                                                           s_["mclfir"]["final_meanap"]["values"])]
        if margins:
            held = sum(m > 0 for m in margins)
            out.append(f"  As a bound on the continual methods: `joint` ends above the better of `lwf` and `mclfir` on "
                       f"{held} of the {len(margins)} (order, seed) runs ({orders} of {len(r['by_order'])} orders hold all "
                       f"three), by {min(margins):+.2f} to {max(margins):+.2f} MeanAP ({np.mean(margins):+.2f} on average).")
    x = load("exploration_joint_budget.json")
    t = x.get("test_protocol_doubling_800_1600")
    if t:
        m = t["doubling_800_to_1600"]["meanap"]
        gains = [row["meanap_1600"] - row["meanap_800"] for row in t["rows"]]
        attr = [d["mean"] for d in t["doubling_800_to_1600"]["per_attribute"].values()]
        shown = _rule(m["mean"], attr)
        cross = [abs(row["meanap_800"] - row["meanap_800_committed_amd_epyc"]) for row in t["rows"]
                 if row.get("meanap_800_committed_amd_epyc") is not None]
        sd = float(np.std(gains, ddof=1))
        extra = t.get("extra_seed_5")
        out.append(f"* Twice the budget (800 steps), doubled again on the test seeds {t['paired_seeds']} (lesson order, "
                   f"both budgets trained on one {t['cpu_model']}, paired; `benchmarks/results/exploration_joint_budget.json`, "
                   f"code {t['code']}): MeanAP moves by {m['mean']:+.3f}, 95% interval [{m['lo']:+.3f}, {m['hi']:+.3f}] "
                   f"({min(gains):+.3f} to {max(gains):+.3f} seed by seed), and attributes by {min(attr):+.3f} to "
                   f"{max(attr):+.3f} on average: by the rule (< 0.01 on MeanAP and < 0.02 on every attribute) 800 is "
                   f"{'shown' if shown else 'not shown'} converged."
                   + (f" One more seed trained later (seed 5) moved by {extra['meanap_1600'] - extra['meanap_800']:+.3f}; it is "
                      "not in these statistics." if extra else "")
                   + (f" The same seeds' 800-step runs on another CPU differ by up to {max(cross):.3f}: another CPU rounds "
                      "differently." if cross else ""))
        out.append(f"  The doubling's gain varies between these {len(gains)} seeds with a standard deviation of {sd:.3f}, "
                   f"so a 95% interval of ±0.01 would need about {math.ceil((1.96 * sd / 0.01) ** 2)} seeds "
                   "(n ≈ (1.96 σ / 0.01)²).")
    e = x.get("end_point_traces")
    if e:
        rows = [row for row in e["rows"] if not row["single_increment"]]
        const = [row for row in rows if row["schedule"] == "constant"]
        other = {(row["seed"], row["joint_steps"]): row for row in rows if row["schedule"] != "constant"}
        names = sorted({row["schedule"] for row in other.values()})
        lower = [c["final_meanap"] - other[(c["seed"], c["joint_steps"])]["final_meanap"] for c in const
                 if (c["seed"], c["joint_steps"]) in other]
        own = [other[(s_, 2 * n)]["final_meanap"] - other[(s_, n)]["final_meanap"] for (s_, n) in other if (s_, 2 * n) in other]
        sds = [c["last_increment_second_half"]["meanap_sd"] for c in const]
        n_ev = sorted({c["last_increment_second_half"]["n_evaluations"] for c in const})
        out.append(f"  Traces inside every increment (validation seeds; same file, `end_point_traces`, code {e['code']}, "
                   f"{e['cpu_model']}): over the last half of the last increment a constant-rate run's MeanAP has a "
                   f"standard deviation of {' and '.join(f'{v:.3f}' for v in sds)} ({'/'.join(map(str, n_ev))} evaluations)"
                   + (f", {'below' if sd is not None and max(sds) < sd else 'not below'} the {sd:.3f} between seeds above"
                      if sd is not None else "")
                   + (f"; the schedule {', '.join(names)} ends {min(lower):+.3f} to {max(lower):+.3f} "
                      f"{'lower' if min(lower) > 0 else 'higher or lower'} at the same budget" if lower else "")
                   + (f", and its own doubling moves MeanAP by {' and '.join(f'{g:+.3f}' for g in own)}" if own else "")
                   + ".")
    return "\n".join(out)


LEARNT = 0.2   # joint's bar (issue 20): an attribute this far above chance is learnt


def retrain_budget() -> str:
    """retrain's budget: the single-increment traces in exploration_joint_budget.json, one per validation seed."""
    e = load("exploration_joint_budget.json").get("end_point_traces") or {}
    rows = sorted((row for row in e.get("rows", []) if row["single_increment"]), key=lambda r: r["seed"])
    if not rows:
        return "*No single-increment trace in `benchmarks/results/exploration_joint_budget.json`.*"
    from mclfir_lite.config import preset
    p = preset(False)
    budget = p.get("retrain_steps", p["steps_per_attribute"])   # what retrain's fresh models get with this code
    out, learnt, at_budget = [], [], []
    for row in rows:
        chance = row["chance_map"]
        by_step = {t["step"]: t for t in row["trace"]}
        steps = sorted(by_step)
        above = lambda s, a: by_step[s]["map"][a] - chance[a]   # noqa: E731
        weakest = min(chance, key=lambda a: above(steps[-1], a))
        early = steps[:4]
        line = (f"Validation seed {row['seed']} (code {row.get('code', e['code'])}, schedule {row['schedule']}): its weakest "
                f"attribute, `{weakest}`, is " + ", ".join(format(above(s, weakest), "+.2f") for s in early)
                + f" above chance at {', '.join(str(s) for s in early)} steps.")
        converged = [s for s in steps if 2 * s in steps and _rule(by_step[2 * s]["meanap"] - by_step[s]["meanap"],
                                                                [above(2 * s, a) - above(s, a) for a in chance])]
        if converged:
            s = converged[0]
            d = by_step[2 * s]["meanap"] - by_step[s]["meanap"]
            worst = max(abs(above(2 * s, a) - above(s, a)) for a in chance)
            line += (f" The first budget whose doubling passes the rule is {s:,} steps (MeanAP {by_step[s]['meanap']:.3f}; "
                     f"doubling it moves MeanAP by {d:+.3f} and no attribute by more than {worst:.3f}).")
        else:
            line += " No budget in its trace passes the convergence rule on doubling."
        if budget in by_step:
            low = min(above(budget, a) for a in chance)
            learnt.append(low >= LEARNT)
            line += f" At {budget:,} steps every attribute is at least {low:+.2f} above chance"
            if 2 * budget in by_step:
                moved = {a: above(2 * budget, a) - above(budget, a) for a in chance}
                worst = max(moved, key=lambda a: abs(moved[a]))
                ok = _rule(by_step[2 * budget]["meanap"] - by_step[budget]["meanap"], list(moved.values()))
                at_budget.append(ok)
                line += (f"; doubling it moves MeanAP by {by_step[2 * budget]['meanap'] - by_step[budget]['meanap']:+.3f} "
                         f"and `{worst}` by {moved[worst]:+.3f}: {'passes' if ok else 'misses'} the rule")
            line += "."
        out.append(line)
    head = ("One fresh model on all six attributes at `joint`'s rate, as `retrain` trains at its last increment, "
            "evaluated along the way on the validation protocol (`benchmarks/results/exploration_joint_budget.json`, "
            "`end_point_traces`, the single-increment rows):")
    verdict = f"`retrain`'s fresh models get {budget:,} mixed steps (`Config.retrain_steps`, the preset's)"
    if learnt and all(learnt) and len(learnt) == len(rows):
        verdict += (f": on every validation seed traced ({len(rows)}) every attribute is learnt at that budget (at "
                    f"least {LEARNT:+.1f} above chance, `joint`'s bar)")
        if at_budget and not all(at_budget):
            verdict += (", but its doubling passes the convergence rule on "
                        f"{sum(at_budget)} of {len(at_budget)} seeds: a cost reference that learns every attribute, "
                        "not one shown converged on every seed")
    else:
        verdict += ": not every attribute is learnt at that budget on every validation seed traced"
    verdict += "."
    return "\n".join([head, ""] + [f"* {x}" for x in out] + ["", verdict])


def _seeds(xs) -> str:
    xs = list(xs)
    return "no seed" if not xs else ("seed " if len(xs) == 1 else "seeds ") + ", ".join(map(str, xs))


def replay_plasticity() -> str:
    """Why a large replay buffer leaves the last attribute at chance:
    exploration_replay_plasticity.json (``explore_replay_plasticity.py``), its hypothesis tested
    prediction by prediction, and which strategies of the committed benchmarks leave that
    attribute at chance on the same seeds. "At chance": every attribute of the last increment
    under chance + ``AT_CHANCE_MARGIN``, as the tables flag it."""
    from mclfir_lite.config import Config
    from mclfir_lite.core.metrics import AT_CHANCE_MARGIN
    from mclfir_lite.lab.lab import stale_reason
    x = load("exploration_replay_plasticity.json")
    rows = x["rows"]
    arm = lambda n, full: next(r["label"] for r in rows if r["rows"] == n and (r["weight"] == 1.0) == full)  # noqa: E731
    small, large = arm(min(r["rows"] for r in rows), True), arm(max(r["rows"] for r in rows), True)
    eased = arm(max(r["rows"] for r in rows), False)
    labels = [small, large, eased]
    seeds = sorted({r["seed"] for r in rows})
    at = {(r["label"], r["seed"]): r for r in rows}
    last = rows[0]["last_attributes"]
    names = "`, `".join(last)
    stuck_at = lambda maps, chance: all(maps[a] < chance[a] + AT_CHANCE_MARGIN for a in last)  # noqa: E731
    learnt = {lab: [s for s in seeds if not stuck_at(at[(lab, s)]["learnt_map"], at[(lab, s)]["chance_map"])]
              for lab in labels}
    above = lambda r: min(r["learnt_map"][a] - r["chance_map"][a] for a in last)  # noqa: E731
    loss = lambda lab, s, kind, when: at[(lab, s)]["last_increment_loss"][kind][when]  # noqa: E731
    bench = load("results.json")["benchmarks"]
    base = bench.get("baselines")
    committed = {}                                # (rows, seed) -> the baselines benchmark's final MeanAP, as committed now
    if base and base.get("status") == "ok" and stale_reason(base) is None and "replay_sizes" in base["result"]:
        from bench_baselines import _rows
        for name, n in _rows(base["result"]["replay_sizes"]).items():
            for r in base["result"]["by_order"]["lesson"]["per_seed"].get(name, []):
                committed[(n, r["seed"])] = r["final_meanap"]
    same = [r for r in rows if r["weight"] == 1.0 and (r["rows"], r["seed"]) in committed]
    match = max((abs(r["final_meanap"] - committed[(r["rows"], r["seed"])]) for r in same), default=None)
    head = (f"**Why the largest buffer leaves `{names}` at chance** (an exploration: "
            f"`benchmarks/explore_replay_plasticity.py`, `replay` on the lesson's order, seeds {', '.join(map(str, seeds))}, "
            f"with each step's losses recorded; code {x['code']}, {x['cpu_model']}, {x['date']}"
            + (f"; the {len(same)} runs the baselines benchmark also made end with its MeanAP to within {match:.4f}"
               if match is not None else "")
            + "). The hypothesis, written before the runs: " + " ".join(x["hypothesis"].replace("``", "`").split()))
    out = [f"`{lab}`: `{names}` learnt (mAP at least chance + {AT_CHANCE_MARGIN}) on {_seeds(learnt[lab])}. "
           + ". ".join(f"Seed {s}: {above(at[(lab, s)]):+.3f} above chance; rehearsal loss {loss(lab, s, 'rehearsal', 'first_50'):.3f} "
                       f"→ {loss(lab, s, 'rehearsal', 'last_50'):.3f}; the new attribute's loss "
                       f"{loss(lab, s, 'new', 'first_50'):.2f} → {loss(lab, s, 'new', 'last_50'):.2f}" for s in seeds)
           for lab in labels]
    untrained = [loss(lab, s, "new", "first_50") for lab in labels for s in seeds]
    fit = [s for s in seeds if loss(large, s, "rehearsal", "last_50") < 0.1 * min(untrained)]
    p1 = {w: [s for s in seeds if loss(large, s, "rehearsal", w) > loss(small, s, "rehearsal", w)]
          for w in ("first_50", "last_50")}
    gained = [s for s in seeds if s in learnt[eased] and s not in learnt[large]]
    lost = [s for s in seeds if s in learnt[large] and s not in learnt[eased]]
    p2 = bool(gained) and not lost
    verdict = [
        f"The premise (a large buffer stays unfit) {'fails' if fit == seeds else 'holds on some seeds' if fit else 'holds'}: "
        f"with {large} the rehearsal loss over the last 50 steps of the last increment is under a tenth of the loss of an "
        f"untrained head ({min(untrained):.2f} to {max(untrained):.2f}, the new attribute's over its first 50 steps) on "
        f"{len(fit)} of {len(seeds)} seeds. Low loss on the buffer shows it is fit; it does not tell memorised rows "
        "from a rule that also holds for rows outside it.",
        f"Prediction 1 (higher rehearsal loss with {large} than with {small}): on {len(p1['first_50'])} of {len(seeds)} "
        f"seeds over the first 50 steps, {len(p1['last_50'])} of {len(seeds)} over the last 50.",
        f"Prediction 2 (weighting the rehearsal term down lets {large} learn `{names}`): multiplying the rehearsal loss by "
        f"0.25 {'lets' if p2 else 'does not let'} it: learnt on {_seeds(gained)} where full weight leaves it at chance"
        + (f", and lost on {_seeds(lost)}" if lost else "") + " (the losses above are unweighted)."]
    tested = bool(x.get("reading")) and all("encoder_moved_last_increment" in r for r in rows)
    if fit == seeds and p2:
        rose = all(loss(eased, s, "rehearsal", "last_50") > loss(eased, s, "rehearsal", "first_50") for s in gained)
        dropped = [s for s in gained if loss(eased, s, "new", "last_50") < 0.9 * loss(eased, s, "new", "first_50")]
        cost = [s for s in gained if at[(eased, s)]["final_meanap"] < at[(large, s)]["final_meanap"]]
        verdict.append(
            "So the large buffer does not stall the last attribute by staying unfit. With the term multiplied by 0.25 "
            "the new attribute's loss falls by more than a tenth on " + _seeds(dropped)
            + (", and there the rehearsal loss rises over the increment instead of falling" if rose else "")
            + (", at some cost in MeanAP (" if cost == gained else ", and MeanAP moves (")
            + ", ".join(f"seed {s}: {at[(large, s)]['final_meanap']:.3f} → {at[(eased, s)]['final_meanap']:.3f}" for s in gained)
            + ")." + ("" if tested else " One reading, not tested here: learning the new attribute needs the shared "
                      "encoder to move away from where it serves the old ones, and the full-weight term does not let it; a "
                      "bigger buffer, fit as well, constrains more of the encoder."))
    fails, ran, derpp = {}, {}, None
    for name in ("strategies", "baselines"):
        e = bench.get(name)
        if not (e and e.get("status") == "ok" and stale_reason(e) is None):
            continue
        for strat, runs in e["result"]["by_order"]["lesson"]["per_seed"].items():
            for r in runs:
                ran.setdefault(r["seed"], set()).add(strat)
            chance_runs = [r["seed"] for r in runs if stuck_at(r["final_map"], r["chance_map"])]
            for s in chance_runs:
                fails.setdefault(s, set()).add(strat)
            if strat == "derpp":
                derpp = (len(chance_runs), len(runs))
    everyone = set().union(*ran.values())
    if everyone:
        out.append(f"In the committed strategies and baselines benchmarks (lesson order, the same seeds), what ends with "
                   f"`{names}` at chance: "
                   + "; ".join(f"seed {s}: " + (", ".join(f"`{n}`" for n in sorted(fails.get(s, ()))) or "nothing")
                               if s in ran else f"seed {s}: not run" for s in seeds)
                   + f" (of {', '.join(f'`{n}`' for n in sorted(everyone))}).")
        stuck = [s for s in seeds if s not in learnt[eased]]
        if stuck:
            verdict.append(f"Weighting down is not enough everywhere: on {_seeds(stuck)} `{names}` stays at chance at 0.25"
                           + (" too" if not set(stuck) & set(learnt[large]) else "") + "; " + "; ".join(
                               f"on seed {s} "
                               + (", ".join(f"`{n}`" for n in sorted(ran[s] - fails.get(s, set()))) or "none")
                               + " of the committed benchmarks' strategies learn it" for s in stuck if s in ran)
                           + ", and every other strategy run there leaves it at chance.")
        if derpp is not None:
            verdict.append(f"`derpp` multiplies its rehearsal loss by `derpp_beta` = {Config().derpp_beta:g} (tuned on "
                           f"validation data with 128 rows) and leaves `{names}` at chance on {derpp[0]} of its {derpp[1]} "
                           "seeds of the lesson's order: in line with this reading, though not a test of it (`derpp` "
                           "also pulls the stored embeddings back).")
    paragraphs = [" ".join(verdict)]
    if tested:
        moved = lambda lab, s: at[(lab, s)]["encoder_moved_last_increment"]  # noqa: E731
        less = [s for s in seeds if moved(large, s) < moved(small, s)]
        more = [s for s in seeds if moved(eased, s) > moved(large, s)]
        first_miss, second_miss = [s_ for s_ in seeds if s_ not in less], [s_ for s_ in seeds if s_ not in more]
        misses = "; ".join(f"the {which} fails on {_seeds(m)}" for which, m in (("first", first_miss), ("second", second_miss)) if m)
        paragraphs.append(
            "**A second test** (written after the premise failed, before the runs that measure it): "
            + " ".join(x["reading"].replace("``", "`").split())
            + " The encoder's parameters move over the last increment by "
            + ", ".join(f"{float(np.mean([moved(lab, s) for s in seeds])):.3f} with `{lab}`" for lab in labels)
            + f" of their norm on average; less with {large} than with {small} on {len(less)} of {len(seeds)} seeds, and "
            f"more at 0.25 than at full weight on {len(more)} of {len(seeds)}. "
            + ("The reading's two predictions hold on every seed." if not misses else
               f"The reading's predictions do not hold on every seed ({misses})" + (f"; the first fails only on seeds where {small} leaves `{names}` at chance too, so there it "
                        "compares two runs that both stay at chance"
                        if first_miss and all(s_ not in learnt[small] for s_ in first_miss) else "")
               + ": the reading is not shown on every seed."))
    return "\n".join([head, ""] + [f"* {o}" for o in out] + [""] + "\n\n".join(paragraphs).split("\n"))


SECTIONS = {"finding-plan-history": plan_history, "finding-joint-budget": joint_budget,
            "finding-retrain-budget": retrain_budget, "finding-replay-plasticity": replay_plasticity}


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
