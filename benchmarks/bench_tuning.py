"""tuning: EWC's lambda chosen on a validation split, as every baseline deserves.

``ewc`` with lambda in a grid, on the default plan, scored by MeanAP on a *validation*
protocol (held-out training rows as queries and candidates,
:func:`mclfir_lite.data.table.validation_protocol`), never on the test queries. The chosen value is
the one the default preset uses (``mclfir_lite.config.PRESETS["default"]["ewc_lambda"]``);
this benchmark checks that it is still the best, and reports the grid. Each run counts its
Fisher passes in its training samples.
"""
from __future__ import annotations

import dataclasses
import sys

import _common as C

GRID = {"default": [1.0, 10.0, 100.0, 1000.0], "quick": [1.0, 100.0]}


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    from mclfir_lite.data.table import validation_protocol
    from mclfir_lite.config import preset
    overrides, note = C.train_overrides(device)
    lab = C.synth_lab(quick, seed)
    val_lab = dataclasses.replace(lab, protocol=validation_protocol(lab.protocol, seed=seed))
    rows = {}
    for lam in GRID["quick" if quick else "default"]:
        C.log(f"tuning: ewc lambda {lam:g}")
        r = val_lab.runner("ewc", cache=False, progress=False, ewc_lambda=lam, **overrides).run(resume=False)
        rows[str(lam)] = {"val_meanap": r["final_meanap"], "forgetting": r["forgetting"], "final_map": r["final_map"],
                          "train_samples": r["train_samples"]}
    best = max(rows, key=lambda k: rows[k]["val_meanap"])
    used = preset(quick).get("ewc_lambda")
    out = {"grid": GRID["quick" if quick else "default"], "rows": rows, "best_lambda": float(best),
           "preset_lambda": used, "preset_is_best": used is not None and float(best) == float(used)}
    if note:
        out["device_note"] = note
    return out


def render(r: dict) -> str:
    rows = [[k, v["val_meanap"], C.fmt(v["forgetting"], "+.3f"), v["train_samples"]] for k, v in r["rows"].items()]
    return "\n".join([f"EWC lambda on a validation split (seed 0): best {r['best_lambda']:g}; the preset uses "
                      f"{r['preset_lambda']} ({'the best' if r['preset_is_best'] else 'NOT the best: update the preset'}).",
                      "", C.table(["lambda", "validation MeanAP", "forgetting", "train samples"], rows)])


if __name__ == "__main__":
    C.main(sys.modules[__name__])
