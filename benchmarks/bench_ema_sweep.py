"""ema_sweep: the stability-plasticity trade-off of ``mclfir`` as its EMA decay and
distillation weight change.

Two one-dimensional sweeps on SynthFashion (the lesson's default preset) that share their
middle point (the package's defaults, decay 0.999 and weight 1, the run ``forgetting``
already trained):

* ``ema_decay`` in {0.9, 0.99, 0.999, 0.9999} at ``distill_weight`` 1;
* ``distill_weight`` (old heads' embeddings) in {0, 0.3, 1, 3} at decay 0.999
  (``feature_distill_weight`` stays at its default, 1).

For each run: the final mAP on the *old* attributes (the first increment's), on the *new*
ones (the last increment's), the mean, and the forgetting. ``finetune`` (no protection)
and ``joint`` are added as reference points when they are in the benchmarks' cache. The
figure ``ema_sweep.png`` plots old vs new mAP. Runs go through ``Lab.run`` and the cache.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import _common as C

GRID = {"default": {"ema_decay": [0.9, 0.99, 0.999, 0.9999], "distill_weight": [0.0, 0.3, 1.0, 3.0]},
        "quick": {"ema_decay": [0.9, 0.999], "distill_weight": [0.0, 1.0]}}
CENTRE = {"ema_decay": 0.999, "distill_weight": 1.0}


def _point(lab, r: dict) -> dict:
    old, new = lab.increments[0], lab.increments[-1]
    f = r["final_map"]
    return {"old_map": float(np.mean([f[a] for a in old])), "new_map": float(np.mean([f[a] for a in new])),
            "mean_final_map": r["mean_final_map"], "forgetting": r["forgetting"], "bwt": r["bwt"],
            "train_seconds": r["train_seconds"]}


def run(quick: bool, seed: int, device: str = "cpu", out_dir: Path = C.RESULTS_DIR, fresh: bool = False, **_) -> dict:
    grid = GRID["quick" if quick else "default"]
    overrides, note = C.train_overrides(device)
    lab = C.synth_lab(quick, seed)
    configs = [{"ema_decay": d, "distill_weight": CENTRE["distill_weight"]} for d in grid["ema_decay"]]
    configs += [{"ema_decay": CENTRE["ema_decay"], "distill_weight": w} for w in grid["distill_weight"]
                if w != CENTRE["distill_weight"]]
    points = []
    for k, cfg in enumerate(configs):
        C.log(f"ema_sweep: {k + 1}/{len(configs)} mclfir decay {cfg['ema_decay']} distill {cfg['distill_weight']}")
        r, _, cached = C.run_strategy(lab, "mclfir", fresh=fresh, **overrides, **cfg)
        points.append({**cfg, **_point(lab, r), "cached": cached,
                       "sweep": "ema_decay" if cfg["distill_weight"] == CENTRE["distill_weight"] else "distill_weight"})
    refs = {}
    for s in ("finetune", "joint"):
        runner = lab.runner(s, cache=True, progress=False, **overrides)
        if runner.checkpoint is not None and runner.checkpoint.is_file():
            refs[s] = _point(lab, runner.run(resume=True))
    out = {"old_attributes": lab.increments[0], "new_attributes": lab.increments[-1], "grid": grid, "centre": CENTRE,
           "points": points, "references": refs,
           "references_note": None if len(refs) == 2 else
           "finetune / joint reference points are shown only when `forgetting` has trained them (cache)"}
    if note:
        out["device_note"] = note
    out["figure"] = _figure(out, Path(out_dir))
    return out


def _figure(r: dict, out_dir: Path) -> str | None:
    made = C.new_axes(out_dir, (5.2, 4))
    if made is None:
        return None
    fig, ax = made
    for sweep, marker, label in (("ema_decay", "o", "EMA decay (distill 1)"),
                                 ("distill_weight", "s", "distill weight (decay 0.999)")):
        pts = [p for p in r["points"] if p["sweep"] == sweep or (p["ema_decay"], p["distill_weight"]) ==
               (r["centre"]["ema_decay"], r["centre"]["distill_weight"])]
        pts.sort(key=lambda p: p[sweep])
        ax.plot([p["new_map"] for p in pts], [p["old_map"] for p in pts], marker=marker, label=label)
        for p in pts:
            ax.annotate(f"{p[sweep]:g}", (p["new_map"], p["old_map"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    for s, p in r["references"].items():
        ax.scatter([p["new_map"]], [p["old_map"]], marker="x", color="k")
        ax.annotate(s, (p["new_map"], p["old_map"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel(f"final mAP, new attributes {r['new_attributes']} (plasticity)")
    ax.set_ylabel(f"final mAP, old attributes {r['old_attributes']} (stability)")
    ax.set_title("mclfir: stability vs plasticity", fontsize=9)
    ax.legend(fontsize=7)
    return C.save_figure(fig, out_dir, "ema_sweep.png")


def render(r: dict) -> str:
    rows = [[f"{p['ema_decay']:g}", f"{p['distill_weight']:g}", p["old_map"], p["new_map"], p["mean_final_map"],
             C.fmt(p["forgetting"], "+.3f"), p["train_seconds"]] for p in r["points"]]
    rows += [[f"({s})", "", p["old_map"], p["new_map"], p["mean_final_map"], C.fmt(p["forgetting"], "+.3f"),
              p["train_seconds"]] for s, p in r["references"].items()]
    out = [f"mclfir, final mAP on the old attributes {r['old_attributes']} vs the new ones {r['new_attributes']}.", "",
           C.table(["EMA decay", "distill weight", "old mAP", "new mAP", "mean mAP", "forgetting", "train s"], rows)]
    if r.get("references_note"):
        out += ["", r["references_note"] + "."]
    if r.get("figure"):
        out += ["", f"![stability vs plasticity]({r['figure']})"]
    if r.get("device_note"):
        out += ["", f"Note: {r['device_note']}."]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
