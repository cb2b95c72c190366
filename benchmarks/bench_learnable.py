"""learnable: is every SynthFashion attribute learnable at the lesson's default size?

For a renderer style (``mclfir_lite.data.synth.STYLES``), an increment plan and seeds, trains
``isolated`` (one encoder per attribute: the single-task control) and ``joint`` (one
shared encoder on mixed batches of every attribute seen so far: the upper bound) at the
default preset (6000 images, 48 px, smallcnn width 16, 400 steps per attribute, 400 joint
steps per increment; each increment brings its own images), and reports per attribute
its final mAP, chance, mAP - chance and whether it passes issue 20's thresholds:
isolated >= chance + 0.3 and joint >= chance + 0.2. Optionally (``--strategies ... frozen``)
the frozen-first-increment-encoder control: a frozen encoder must not already solve the
later attributes.

The table is ``load_dataset("synthfashion", ..., style=style)`` (:func:`style_table`).

    python benchmarks/bench_learnable.py --style v2 --plan synth6 --seeds 1 2 --out benchmarks/results/learnable.json
    python benchmarks/bench_learnable.py --seeds 11 --strategies isolated joint finetune lwf mclfir   # the preset's plan
    python benchmarks/bench_learnable.py --readme    # issue 20's bar, from this code's entries, into the README

Each call adds (or replaces) one entry per (style, plan, size, seed, strategy) in the JSON
file, with the wall time and the code digest (``mclfir_lite.files.code_digest()``).
Not run by ``run_all.py`` (minutes per seed): run it by hand.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import _common as C

ISOLATED_MARGIN, JOINT_MARGIN = 0.3, 0.2       # issue 20: mAP above chance to pass
MARGINS = {"isolated": ISOLATED_MARGIN, "joint": JOINT_MARGIN}


def style_table(n: int, size: int, seed: int, plan, style: str):
    """SynthFashion rendered with ``style``, one pool of images per increment
    (``load_dataset("synthfashion", ..., style=style)``)."""
    from mclfir_lite.data.datasets import load_dataset
    return load_dataset("synthfashion", n=n, size=size, seed=seed, increments=plan, style=style)


def make_lab(style: str, plan, seed: int, image_size: int | None = None, n_images: int | None = None, **config):
    """A :class:`~mclfir_lite.lab.lab.Lab` at the default preset, with the table of :func:`style_table`."""
    from mclfir_lite.config import Config
    from mclfir_lite.lab.lab import Lab
    from mclfir_lite.config import preset, preset_config
    p = preset(quick=False)
    size, n = image_size or p["image_size"], n_images or p["n_images"]
    table = style_table(n, size, seed, plan, style)
    cfg = Config(**{**preset_config(p), "seed": seed, **config})
    return Lab.from_table(table, plan, cfg, False, size, p["max_queries"], p["max_candidates"], seed)


def score(result: dict, strategy: str) -> dict:
    """Per attribute: final mAP, chance, mAP - chance, and pass/fail against the threshold."""
    need = MARGINS.get(strategy)
    out = {}
    for a in result["attributes"]:
        m, c = result["final_map"][a], result["chance_map"][a]
        out[a] = {"map": round(m, 4), "chance": round(c, 4), "above_chance": round(m - c, 4),
                  "passes": None if need is None else bool(m - c >= need)}
    return out


def run_one(style: str, plan, seed: int, strategy: str, image_size=None, n_images=None, **config) -> dict:
    from mclfir_lite.files import code_digest
    from mclfir_lite.lab.lab import preset_fields
    t0 = time.perf_counter()
    lab = make_lab(style, plan, seed, image_size, n_images, **config)
    t_data = time.perf_counter() - t0
    r = lab.runner(strategy, cache=False, progress=False).run(resume=False)
    wall = time.perf_counter() - t0
    return {"style": style, "plan": lab.increments, "seed": seed, "strategy": strategy,
            "image_size": int(lab.images.shape[-1]), "n_images": len(lab.table), "config_overrides": config,
            "attributes": score(r, strategy), "final_meanap": r["final_meanap"],
            "map_matrix": r["map_matrix"], "train_seconds": r["train_seconds"],
            "data_seconds": round(t_data, 2), "wall_seconds": round(wall, 2),
            "code": code_digest(), "preset": preset_fields(False), "date": time.strftime("%Y-%m-%d %H:%M"),
            **C.scope_fields([strategy], False, sys.modules[__name__])}


def key(e: dict) -> str:
    plan = ";".join(",".join(g) for g in e["plan"])
    extra = ",".join(f"{k}={v}" for k, v in sorted(e["config_overrides"].items()))
    return f"{e['style']}|{plan}|{e['image_size']}px|{e['n_images']}|seed{e['seed']}|{e['strategy']}|{extra}"


def save(entries: list[dict], path) -> None:
    from pathlib import Path
    path = Path(path)
    old = json.loads(path.read_text()) if path.is_file() else {"entries": {}}
    for e in entries:
        old["entries"][key(e)] = e
    old["thresholds"] = {"isolated": ISOLATED_MARGIN, "joint": JOINT_MARGIN}
    old["machine"] = C.machine()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")


def render(entries: list[dict]) -> str:
    """A markdown table: one row per attribute, one column per (strategy, seed)."""
    cols = [(e["strategy"], e["seed"]) for e in entries]
    from mclfir_lite.data.synth import ATTRIBUTES
    seen = {a for e in entries for a in e["attributes"]}
    attrs = [a for a in ATTRIBUTES if a in seen] + sorted(seen - set(ATTRIBUTES))
    rows = []
    for a in attrs:
        row = [a]
        for e in entries:
            s = e["attributes"].get(a)
            row.append("" if s is None else f"{s['map']:.3f} ({s['above_chance']:+.2f})"
                       + ("" if s["passes"] in (None, True) else " FAIL"))
        rows.append(row)
    rows.append(["wall s"] + [f"{e['wall_seconds']:.0f}" for e in entries])
    return C.table(["attribute"] + [f"{s} seed {k}" for s, k in cols], rows)


README_MARKER = "default-plan-bar"     # <!-- default-plan-bar:start --> ... :end --> in the README


def bar(entries: list[dict]) -> list[dict]:
    """Issue 20's bar per (order, seed) at the default size, from the entries measured with this
    code and preset (``stale_reason``) at the preset's own settings (no overrides): isolated >= chance +
    0.3 and joint >= chance + 0.2 on every attribute, joint's MeanAP >= the best of finetune /
    lwf / mclfir - 0.01, finetune's forgetting >= 3x mclfir's. A check is None when a run it
    needs is missing."""
    from mclfir_lite.core.forgetting import average_forgetting
    from mclfir_lite.lab.lab import stale_reason
    groups = {}
    for e in entries:
        if stale_reason({**e, "quick": False}) is None and not e["config_overrides"]:
            groups.setdefault((";".join(",".join(g) for g in e["plan"]), e["seed"]), {})[e["strategy"]] = e
    rows = []
    for (plan, seed), by in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        # the smallest mAP above chance over the attributes; forgetting from the stored matrix
        # (its None cells, attributes not seen yet, are read as NaN by average_forgetting)
        low = {s: min(v["above_chance"] for v in e["attributes"].values()) for s, e in by.items()}
        forget = {s: float(average_forgetting(by[s]["map_matrix"])) for s in ("finetune", "mclfir") if s in by}
        meanap = {s: e["final_meanap"] for s, e in by.items()}
        rivals = [s for s in ("finetune", "lwf", "mclfir") if s in by]
        best = max(rivals, key=meanap.get) if rivals else None
        f_ft, f_mc = forget.get("finetune"), forget.get("mclfir")
        checks = {"isolated": low["isolated"] >= ISOLATED_MARGIN if "isolated" in low else None,
                  "joint": low["joint"] >= JOINT_MARGIN if "joint" in low else None,
                  "upper_bound": None if "joint" not in by or best is None else meanap["joint"] >= meanap[best] - 0.01,
                  "forgetting": None if f_ft is None or f_mc is None else f_ft >= 3 * f_mc}
        rows.append({"plan": plan, "seed": seed, "meanap": meanap, "isolated_min": low.get("isolated"),
                     "joint_min": low.get("joint"), "best_rival": best, "forgetting": {"finetune": f_ft, "mclfir": f_mc},
                     "checks": checks})
    return rows


def shows(entries: list[dict]) -> str:
    """What the README says the bar's runs show, from the entries alone (those :func:`bar` reads):
    per (order, seed), how far above chance the distilling methods leave the last increment's
    attributes against ``isolated`` and ``joint``; and the attribute ``retrain`` learns least."""
    from mclfir_lite.lab.lab import stale_reason
    groups = {}
    for e in entries:
        if stale_reason({**e, "quick": False}) is None and not e["config_overrides"]:
            groups.setdefault((tuple(tuple(g) for g in e["plan"]), e["seed"]), {})[e["strategy"]] = e
    last, weak, above_joint = [], [], []
    for (plan, seed), by in sorted(groups.items(), key=lambda kv: kv[0][1]):
        above = lambda st, a: by[st]["attributes"][a]["above_chance"]   # noqa: E731
        cells = [f"`{st}` {', '.join(f'{above(st, a):+.2f}' for a in plan[-1])}"
                 for st in ("lwf", "mclfir", "isolated", "joint") if st in by]
        last.append(f"  * seed {seed}, last increment {' and '.join(f'`{a}`' for a in plan[-1])}: {'; '.join(cells)}")
        if "retrain" in by and "joint" in by:
            a = min(by["retrain"]["attributes"], key=lambda x: by["retrain"]["attributes"][x]["above_chance"])
            gap = by["retrain"]["final_meanap"] - by["joint"]["final_meanap"]
            above_joint.append(gap)
            weak.append(f"seed {seed}: `{a}` {above('retrain', a):+.2f} above chance (`joint` {above('joint', a):+.2f}); "
                        f"MeanAP {gap:+.3f} against `joint`'s")
    out = ["What these runs show (generated from `benchmarks/results/learnable.json`, mAP above chance):", "",
           "* The last increment's attributes under distillation (`lwf`, `mclfir`), against `isolated` and `joint`:",
           *last]
    if weak:
        out += ["* The attribute `retrain` learns least:", *(f"  * {w}" for w in weak)]
    over = [g for g in above_joint if g > 0.01]
    if over:
        out += [f"* **`retrain` ends above `joint` on {len(over)} of {len(above_joint)} seeds** (by {min(over):+.3f} to "
                f"{max(over):+.3f} MeanAP): one fresh model trained on all the data with `retrain`'s budget beats the "
                "cumulative `joint` at its budget, so at that budget `joint` is an upper bound on the continual methods "
                "(the bar's column) but not on what one model learns from the same data (its budget: the findings above)."]
    return "\n".join(out)


def render_bar(rows: list[dict]) -> str:
    """The markdown table of :func:`bar` (what ``--readme`` writes between the README's :data:`README_MARKER` markers)."""
    from mclfir_lite.files import code_digest
    strategies = [s for s in ("isolated", "joint", "retrain", "finetune", "lwf", "mclfir")
                  if any(s in r["meanap"] for r in rows)]
    f = lambda v, fmt: "–" if v is None else format(v, fmt)   # noqa: E731
    ok = lambda v: "–" if v is None else ("yes" if v else "**no**")   # noqa: E731
    out = []
    for r in rows:
        out.append([r["plan"], str(r["seed"])] + [f(r["meanap"].get(s), ".3f") for s in strategies]
                   + [f(r["isolated_min"], "+.2f"), f(r["joint_min"], "+.2f"),
                      f"{f(r['forgetting']['finetune'], '.3f')} / {f(r['forgetting']['mclfir'], '.3f')}"]
                   + [ok(r["checks"][k]) for k in ("isolated", "joint", "upper_bound", "forgetting")])
    head = (["order", "seed"] + [f"{s} MeanAP" for s in strategies]
            + ["isolated min above chance", "joint min above chance", "forgetting finetune / mclfir",
               "isolated ≥ +0.3", "joint ≥ +0.2", "joint ≥ best − 0.01", "finetune ≥ 3× mclfir"])
    return (C.table(head, out) + f"\n\nCode digest {code_digest()}; generated by "
            "`python benchmarks/bench_learnable.py --readme` from `benchmarks/results/learnable.json`.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from mclfir_lite.config import preset
    ap.add_argument("--style", default=preset(quick=False)["style"])
    ap.add_argument("--plan", default=preset(quick=False)["increments"], help="a name in data.PLANS or 'a;b,c;...'")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--strategies", nargs="+", default=["isolated", "joint"])
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--n-images", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="Config.steps_per_attribute (default: the preset's)")
    ap.add_argument("--joint-steps", type=int, default=None)
    ap.add_argument("--joint-balance", default=None, help="Config.joint_balance: sum (default) | ratio")
    ap.add_argument("--balance-alpha", type=float, default=None, help="Config.balance_alpha (joint_balance ratio)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(C.RESULTS_DIR / "learnable.json"))
    ap.add_argument("--show", action="store_true", help="only print the tables of the entries in --out")
    ap.add_argument("--readme", action="store_true",
                    help="write issue 20's bar, from the entries of --out measured with this code, into the README")
    a = ap.parse_args(argv)
    if a.readme:
        rows = bar(list(json.loads(open(a.out).read())["entries"].values()))
        if not rows:
            raise SystemExit(f"{a.out} has no entry measured with this code at the preset's settings: run it first")
        text = render_bar(rows) + "\n\n" + shows(list(json.loads(open(a.out).read())["entries"].values()))
        print(text)
        C.write_between(README_MARKER, text)
        return
    if a.show:
        entries = list(json.loads(open(a.out).read())["entries"].values())
        groups = {}
        for e in entries:
            groups.setdefault((e["style"], ";".join(",".join(g) for g in e["plan"]), e["image_size"]), []).append(e)
        for (style, plan, size), es in groups.items():
            codes = sorted({e["code"] for e in es})
            print(f"\nstyle {style}, plan {plan}, {size} px (code {', '.join(codes)})\n")
            print(render(sorted(es, key=lambda e: (e["seed"], e["strategy"]))))
        return
    C.set_threads(a.threads)
    C.warm_up()
    config = {k: v for k, v in (("steps_per_attribute", a.steps), ("joint_steps", a.joint_steps),
                                ("joint_balance", a.joint_balance),
                                ("balance_alpha", a.balance_alpha)) if v is not None}
    entries = []
    for seed in a.seeds:
        for strategy in a.strategies:
            C.log(f"{a.style} {a.plan} seed {seed} {strategy}")
            e = run_one(a.style, a.plan, seed, strategy, a.image_size, a.n_images, **config)
            C.log(f"  {e['wall_seconds']:.0f} s: " + ", ".join(f"{k} {v['above_chance']:+.2f}"
                                                          for k, v in e["attributes"].items()))
            entries.append(e)
            save([e], a.out)   # after each run: nothing lost if a later one is interrupted
    print(render(entries))


if __name__ == "__main__":
    main()
