"""cost: the training-cost claim, MCL-FIR against static retraining (``joint``).

``joint`` retrains a fresh model on every attribute seen so far at each increment (what a
static method pays to stay up to date); ``mclfir`` trains the new attributes only, with
an EMA teacher. Both run on the same increments of

* SynthFashion at the lesson's default preset (``Lab.synthfashion(quick=False)``), and
* the real-photo subset ``../shared/data/fashion-product-images-small`` (dataset
  ``fashion-product-images``, its default plan), when the package can load it.

Reported: final mean mAP and its ratio, and the cost ratios: student samples forwarded,
teacher forwards (reported apart: they need no backward pass), optimiser steps and
training wall seconds (evaluation excluded). The claim checked: >= 0.97 of joint's mAP at
<= 0.35 of its cost (steps and wall seconds). Both strategies are retrained now (their
checkpoints in the benchmarks' cache are replaced), so the two timings are taken back to
back on the same machine; ``forgetting`` then reuses these runs.
"""
from __future__ import annotations

import sys
import traceback

import _common as C

MAP_TARGET = 0.97
COST_TARGET = 0.35
QUICK_FPI_PLAN = [["subCategory"], ["baseColour"], ["gender"]]


def _fpi_lab(quick: bool, seed: int):
    """The real-photo lab, or ``(None, reason)`` when it cannot be built."""
    from mclfir_lite import datasets
    from mclfir_lite.continual import Config
    from mclfir_lite.lab import Lab, preset
    name = "fashion-product-images"
    if name not in getattr(datasets, "DATASETS", ()):
        return None, f"mclfir_lite.datasets has no dataset {name!r} yet"
    if not (C.FPI_DIR / "styles.csv").is_file():
        return None, f"the real-photo subset is not at {C.FPI_DIR} (set MCLFIR_FPI_DIR)"
    p = preset(quick)
    table = datasets.load_dataset(name, C.FPI_DIR, seed=seed)
    plan = QUICK_FPI_PLAN if quick else datasets.DEFAULT_PLAN.get(name, "fpi3")
    cfg = {k: v for k, v in C.QUICK_SYNTH.items() if k != "increments"} if quick else {}
    config = Config(**{"steps_per_attribute": p["steps_per_attribute"], "seed": seed, **cfg})
    lab = Lab.from_table(table, plan, config, quick, p["image_size"], p["max_queries"], p["max_candidates"], seed)
    lab.runs_dir = C.bench_cache() / "runs"
    return lab, None


def compare(lab, label: str, overrides: dict) -> dict:
    runs = {}
    for s in ("mclfir", "joint"):
        C.log(f"cost [{label}]: training {s} (fresh, timed)")
        r, wall, _ = C.run_strategy(lab, s, fresh=True, **overrides)
        runs[s] = {k: r[k] for k in ("mean_final_map", "final_map", "forgetting", "train_samples", "teacher_samples",
                                     "optimizer_steps", "train_seconds")}
        runs[s]["wall_seconds_incl_eval"] = round(wall, 2)
        C.log(f"cost [{label}]: {s} mean final mAP {r['mean_final_map']:.3f}, {r['optimizer_steps']} steps, "
              f"{r['train_seconds']:.1f} s")
    m, j = runs["mclfir"], runs["joint"]
    new = [len(g) for g in lab.increments]
    seen = [sum(new[:i + 1]) for i in range(len(new))]
    ratios = {
        "map": m["mean_final_map"] / j["mean_final_map"],
        "train_samples": m["train_samples"] / j["train_samples"],
        "train_plus_teacher_samples": (m["train_samples"] + m["teacher_samples"]) / (j["train_samples"] + j["teacher_samples"]),
        "optimizer_steps": m["optimizer_steps"] / j["optimizer_steps"],
        "train_seconds": m["train_seconds"] / j["train_seconds"] if j["train_seconds"] else None,
        "optimizer_steps_analytic": sum(new) / sum(seen),
    }
    met_map = ratios["map"] >= MAP_TARGET
    met_cost = ratios["optimizer_steps"] <= COST_TARGET and (ratios["train_seconds"] or 1) <= COST_TARGET
    return {"dataset": label, "increments": lab.increments, "n_images": len(lab.table),
            "image_size": int(lab.images.shape[-1]), "steps_per_attribute": lab.config.steps_per_attribute,
            "runs": runs, "ratios": ratios, "met": {"map": met_map, "cost": met_cost, "both": met_map and met_cost},
            "why": _why(ratios, runs, new, seen, met_map, met_cost)}


def _why(r, runs, new, seen, met_map, met_cost) -> str:
    parts = []
    T = len(new)
    if r["optimizer_steps"] > COST_TARGET:
        parts.append(f"steps ratio {r['optimizer_steps']:.2f} > {COST_TARGET}: over {T} increments of "
                     f"{new} attribute(s) joint retrains {sum(seen)} attribute-rounds vs {sum(new)} for mclfir "
                     f"(analytic {r['optimizer_steps_analytic']:.2f}); with T equal increments the ratio is "
                     f"2/(T+1), <= {COST_TARGET} only from T = 5. The paper's ~30% compares training budgets "
                     "(10 epochs x 20k doublets vs ASEN's 50 x 100k), not incremental vs joint steps")
    else:
        parts.append(f"steps ratio {r['optimizer_steps']:.2f} <= {COST_TARGET} ({T} increments of {new}: "
                     f"{sum(new)} vs {sum(seen)} attribute-rounds)")
    if r["train_seconds"] is not None and r["train_seconds"] > COST_TARGET:
        parts.append(f"wall-time ratio {r['train_seconds']:.2f} > {COST_TARGET}"
                     + (f", above the steps ratio: mclfir's teacher forwards "
                        f"({runs['mclfir']['teacher_samples']:,} samples, no backward) and EMA updates cost extra"
                        if r["train_seconds"] > 1.1 * r["optimizer_steps"] else ""))
    if not met_map:
        f = runs["mclfir"]["forgetting"]
        parts.append(f"mAP ratio {r['map']:.3f} < {MAP_TARGET}" +
                     (f": mclfir's old attributes still lose {f:.3f} mAP on average (forgetting)" if f else ""))
    else:
        parts.append(f"mAP ratio {r['map']:.3f} >= {MAP_TARGET}")
    return "; ".join(parts) + (" (both targets met)" if met_map and met_cost else "")


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    overrides, note = C.train_overrides(device)
    out = {"targets": {"map_ratio": MAP_TARGET, "cost_ratio": COST_TARGET}, "results": [], "skipped": []}
    if note:
        out["device_note"] = note
    out["results"].append(compare(C.synth_lab(quick, seed), "SynthFashion" + (" (quick)" if quick else ""), overrides))
    try:
        lab, reason = _fpi_lab(quick, seed)
    except Exception as err:  # a broken loader must not lose the SynthFashion numbers
        lab, reason = None, f"loading fashion-product-images failed: {type(err).__name__}: {err}"
        out["fpi_traceback"] = traceback.format_exc()[-3000:]
    if lab is None:
        C.log(f"cost: real-photo part skipped: {reason}")
        out["skipped"].append({"dataset": "fashion-product-images", "reason": reason})
    else:
        out["results"].append(compare(lab, "fashion-product-images" + (" (quick)" if quick else ""), overrides))
    return out


def render(r: dict) -> str:
    rows = []
    for x in r["results"]:
        m, j, q = x["runs"]["mclfir"], x["runs"]["joint"], x["ratios"]
        rows.append([x["dataset"], m["mean_final_map"], j["mean_final_map"], q["map"], q["train_samples"],
                     q["train_plus_teacher_samples"], q["optimizer_steps"], q["train_seconds"],
                     "met" if x["met"]["both"] else "not met"])
    out = [f"MCL-FIR vs static retraining (joint): target >= {MAP_TARGET} of joint's mAP at <= {COST_TARGET} "
           "of its cost, in optimiser steps and in training seconds (ratios are mclfir / joint; teacher forwards "
           "need no backward pass, so they are counted apart).", "",
           C.table(["dataset", "mAP mclfir", "mAP joint", "mAP ratio", "samples ratio", "samples+teacher ratio",
                    "steps ratio", "wall ratio", "claim"], rows), ""]
    for x in r["results"]:
        m, j = x["runs"]["mclfir"], x["runs"]["joint"]
        out.append(f"- **{x['dataset']}** ({x['n_images']:,} images, {x['image_size']} px, plan {x['increments']}, "
                   f"{x['steps_per_attribute']} steps/attribute): mclfir {m['optimizer_steps']:,} steps, "
                   f"{m['train_samples']:,} samples + {m['teacher_samples']:,} teacher forwards, "
                   f"{m['train_seconds']:.0f} s; joint {j['optimizer_steps']:,} steps, {j['train_samples']:,} "
                   f"samples, {j['train_seconds']:.0f} s. Why: {x['why']}.")
    for s in r["skipped"]:
        out.append(f"- **{s['dataset']}** skipped: {s['reason']}.")
    if r.get("device_note"):
        out.append(f"- Note: {r['device_note']}.")
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
