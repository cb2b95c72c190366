"""forgetting: every strategy on the same increments (SynthFashion, the lesson's default preset).

What ``python -m mclfir_lite demo`` computes, through ``Lab.run`` so that runs cached in the
benchmarks' own cache are reused (``cost`` leaves fresh ``mclfir`` and ``joint`` runs there).
The training seconds of a cached run are those measured when it was trained; the
``cached`` column says which runs those are (``run_all.py --fresh`` retrains everything).

Reported per strategy: mean final mAP, average forgetting, backward transfer (BWT),
training samples forwarded (and teacher forwards), optimiser steps, training seconds,
trainable and stored parameters (model + teacher + EWC state).
"""
from __future__ import annotations

import sys

import _common as C


def run(quick: bool, seed: int, device: str = "cpu", fresh: bool = False, **_) -> dict:
    from mclfir_lite.continual import STRATEGIES
    overrides, note = C.train_overrides(device)
    lab = C.synth_lab(quick, seed)
    out = {"dataset": "SynthFashion" + (" (quick)" if quick else ""), "n_images": len(lab.table),
           "image_size": int(lab.images.shape[-1]), "increments": lab.increments,
           "steps_per_attribute": lab.config.steps_per_attribute, "strategies": {}}
    for s in STRATEGIES:
        C.log(f"forgetting: {s}")
        r, wall, cached = C.run_strategy(lab, s, fresh=fresh, **overrides)
        r["cached"] = cached
        r["wall_seconds_this_call"] = round(wall, 2)
        out["strategies"][s] = r
        C.log(f"forgetting: {s} mean final mAP {r['mean_final_map']:.3f} forgetting {C.fmt(r['forgetting'])}"
              f"{' (cached)' if cached else ''}")
    if note:
        out["device_note"] = note
    return out


def render(r: dict) -> str:
    rows = []
    for s, x in r["strategies"].items():
        rows.append([s, x["mean_final_map"], C.fmt(x["forgetting"], "+.3f"), C.fmt(x["bwt"], "+.3f"),
                     x["train_samples"], x["teacher_samples"],
                     x["optimizer_steps"], x["train_seconds"], x["params"]["stored"], x["cached"]])
    out = [f"{r['dataset']}: {r['n_images']:,} images at {r['image_size']} px, increments {r['increments']}, "
           f"{r['steps_per_attribute']} steps per attribute.", "",
           C.table(["strategy", "mean final mAP", "forgetting", "BWT", "train samples", "teacher fwd", "steps",
                    "train s", "stored params", "cached"], rows)]
    if r.get("device_note"):
        out += ["", f"Note: {r['device_note']}."]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
