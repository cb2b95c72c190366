"""tuning: every method tuned the same way, on validation data, with the same budget.

One validation protocol for all: held-out *training* rows as queries and candidates
(:func:`mclfir_lite.data.table.validation_protocol`), on validation seeds that no reported
result uses (:data:`VALIDATION_SEEDS`), never the test queries. Every method gets the
same number of configurations (:data:`BUDGET`): its learning rate, and its own knobs:

* ``finetune``: the learning rate only; ``joint``: its own learning rate (``joint_lr``, which
  ``retrain`` shares), the only knob it has;
* ``lwf``: the embedding- and feature-distillation weights;
* ``mclfir``: the same weights and the EMA decay;
* ``ewc``: lambda (the Fisher is the empirical one, scaled to mean 1: see ``methods``);
* ``replay``: the buffer size per attribute; one of the sizes is the buffer that takes as
  many bytes as MCL-FIR's teacher (float32 parameters against uint8 images:
  :func:`teacher_sized_replay`), so that replay and MCL-FIR are compared at equal memory;
* ``derpp`` (replay + distillation): the weights of its embedding pull and of its rehearsed
  InfoNCE, with the preset's buffer.

The runs go through the benchmarks' cache, two processes at a time at one torch thread each
(the numbers do not depend on the number of processes), so an interrupted search resumes.

Each method's best configuration (by validation MeanAP, averaged over the validation
seeds) is reported beside what the preset uses; a preset that is not the best says so.
Each run counts its extra passes (Fisher, teacher) in its cost.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

import _common as C

VALIDATION_SEEDS = {"default": [101, 102], "quick": [101]}
BUDGET = 4       # configurations per method, the same for every method
LR = [2.5e-4, 5e-4, 1e-3]
SEARCH = {
    "finetune": [{"lr": v} for v in LR] + [{"lr": 2e-3}],
    "joint": [{"joint_lr": v} for v in (1e-3, 2e-3, 4e-3, 8e-3)],   # joint learns at its own rate
    "lwf": [{"lr": 5e-4, "distill_weight": w, "feature_distill_weight": f}
            for w, f in ((0.3, 0.3), (1.0, 1.0), (3.0, 1.0), (3.0, 3.0))],
    "mclfir": [{"lr": 5e-4, "distill_weight": w, "feature_distill_weight": f, "ema_decay": d}
               for w, f, d in ((1.0, 1.0, 0.99), (1.0, 1.0, 0.999), (3.0, 1.0, 0.999), (3.0, 3.0, 0.9995))],
    "ewc": [{"ewc_lambda": v} for v in (1.0, 10.0, 100.0, 1000.0)],
    # replay and DER++: grown past the edges where their best lay (2026-12-06: replay 256, DER++ 2/2), keeping
    # the preset; replay keeps the teacher-sized buffer (the comparison at equal memory)
    "replay": [{"replay_per_attribute": v} for v in ("teacher", 128, 256, 512)],
    "derpp": [{"derpp_alpha": a, "derpp_beta": b} for a, b in ((0.5, 2.0), (2.0, 2.0), (4.0, 2.0), (2.0, 4.0))],
}

# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = lambda result: [*result["methods"], "mclfir"]   # mclfir: the teacher that sizes a replay buffer


def quick_grid(grid: list[dict], used: dict) -> list[dict]:
    """Quick mode's two configurations of a grid: the preset's (when the grid has it), then the
    first other one, so that a quick run still says whether the preset beats an alternative."""
    preset_rows = [c for c in grid if all(used.get(k) == v for k, v in c.items())][:1]
    return (preset_rows + [c for c in grid if c not in preset_rows])[:2]


def run(quick: bool, seed: int, device: str = "cpu", methods=None, processes: int = 2, **_) -> dict:
    from mclfir_lite.config import Config, preset, preset_config
    overrides, note = C.train_overrides(device)
    used = {**dataclasses.asdict(Config()), **preset_config(preset(quick))}
    search = {m: quick_grid(grid, used) for m, grid in SEARCH.items()} if quick else SEARCH
    methods = list(methods or search)
    unknown = [m for m in methods if m not in search]
    if unknown:
        raise ValueError(f"tuning: no search grid for {unknown}; known: {', '.join(search)}")
    assert all(len(search[m]) == len(search[methods[0]]) for m in methods), "every method gets the same budget"
    seeds = VALIDATION_SEEDS["quick" if quick else "default"]
    sized = teacher_sized_replay(C.synth_lab(quick, seeds[0], validation=True))
    search = {m: [{k: (sized["replay_per_attribute"] if v == "teacher" else v) for k, v in cfg.items()} for cfg in grid]
              for m, grid in search.items()}
    jobs = [(s, m, {**overrides, **cfg}, {"validation": True}) for m in methods for cfg in search[m] for s in seeds]
    done = iter(C.run_many(jobs, quick, processes=processes))
    out = {"validation_seeds": seeds, "budget": len(search[methods[0]]), "methods": {}, "teacher_sized_replay": sized}
    for m in methods:
        rows = []
        for cfg in search[m]:
            runs = [next(done) for _ in seeds]
            rows.append({"config": cfg, "val_meanap": float(np.mean([r["final_meanap"] for r in runs])),
                         "per_seed": [r["final_meanap"] for r in runs],
                         "forgetting": _mean([r["forgetting"] for r in runs]),
                         "train_samples": float(np.mean([r["train_samples"] for r in runs])),
                         "train_seconds": float(np.mean([r["train_seconds"] for r in runs]))})
        best = max(rows, key=lambda r: r["val_meanap"])
        preset_row = next((r for r in rows if all(used.get(k) == v for k, v in r["config"].items())), None)
        out["methods"][m] = {"rows": rows, "best": best["config"], "best_val_meanap": best["val_meanap"],
                             "preset_in_grid": preset_row is not None,
                             "preset_is_best": preset_row is not None and preset_row["val_meanap"] >= best["val_meanap"]}
    # kept for notebook 05/07 readers of the EWC row
    if "ewc" in out["methods"]:
        e = out["methods"]["ewc"]
        out["best_lambda"] = float(e["best"]["ewc_lambda"])
        out["preset_lambda"] = used.get("ewc_lambda")
        out["preset_is_best"] = e["preset_is_best"]
    if note:
        out["device_note"] = note
    return out


def teacher_sized_replay(lab) -> dict:
    """The replay buffer per attribute whose uint8 images take the bytes of MCL-FIR's teacher
    (a float32 copy of the model with every head of the plan)."""
    from mclfir_lite.core.model import count_parameters
    model = lab.runner("mclfir", cache=False, progress=False).new_model(0)
    for a in lab.attributes:
        model.add_attribute(a)
    teacher_bytes = 4 * count_parameters(model)
    image_bytes = int(np.prod(lab.images.shape[1:]))          # uint8: one byte per value
    per_attribute = max(1, teacher_bytes // (image_bytes * len(lab.attributes)))
    return {"teacher_bytes": int(teacher_bytes), "image_bytes": image_bytes, "replay_per_attribute": int(per_attribute)}


def _mean(values):
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def render(r: dict) -> str:
    s = r["teacher_sized_replay"]
    out = [f"Every method tuned on a validation split (validation seeds {r['validation_seeds']}, never reported), "
           f"{r['budget']} configurations each. MCL-FIR's teacher takes {s['teacher_bytes']:,} bytes: "
           f"{s['replay_per_attribute']} images per attribute ({s['image_bytes']:,} bytes each).", ""]
    rows = []
    for m, x in r["methods"].items():
        for row in x["rows"]:
            mark = " (best)" if row["config"] == x["best"] else ""
            rows.append([m, ", ".join(f"{k}={v:g}" for k, v in row["config"].items()) + mark, row["val_meanap"],
                         C.fmt(row["forgetting"], "+.3f"), row["train_samples"]])
    out.append(C.table(["method", "configuration", "validation MeanAP", "forgetting", "train samples"], rows))
    stale = [m for m, x in r["methods"].items() if not x["preset_is_best"]]
    out += ["", "The presets use the best configuration of every method." if not stale else
            f"The presets do NOT use the best configuration of: {', '.join(stale)} (what that means: below)."]
    return "\n".join(out)



def preset_row(r: dict, method: str) -> dict | None:
    """The row of ``method`` whose configuration is the one this checkout's preset uses (None
    when its grid does not hold it). A result quoted in the README is fresh (same code and
    preset), so this is also the configuration it was measured with."""
    from mclfir_lite.config import Config, preset, preset_config
    used = {**dataclasses.asdict(Config()), **preset_config(preset(False))}
    return next((row for row in r["methods"][method]["rows"]
                 if all(used.get(k) == v for k, v in row["config"].items())), None)


def shows(r: dict, noise: float = 0.01) -> str:
    """What the README says the search shows, from the result alone: per method, the preset's
    validation MeanAP against the best configuration's, and whether the best lies at the edge
    of its grid (a grid to grow before the preset moves). Gaps below ``noise`` are called noise:
    two validation seeds resolve no finer."""
    def cfg(c):
        return ", ".join(f"{k} {v:g}" for k, v in c.items())
    at_best, close, off = [], [], []
    for m, x in r["methods"].items():
        rows, row = x["rows"], preset_row(r, m)
        best = max(rows, key=lambda q: q["val_meanap"])
        if row is None:
            off.append(f"`{m}` (its preset is not in its grid; the best is {cfg(best['config'])}, "
                       f"{best['val_meanap']:.3f})")
            continue
        gap = best["val_meanap"] - row["val_meanap"]
        varied = [k for k in best["config"] if len({str(q["config"].get(k)) for q in rows}) > 1]
        extreme = lambda k: best["config"][k] in (min(q["config"][k] for q in rows), max(q["config"][k] for q in rows))   # noqa: E731
        edge = bool(varied) and all(isinstance(best["config"][k], (int, float)) and extreme(k) for k in varied)
        where = ", at the edge of its grid" if edge else ""
        if gap <= 0:
            at_best.append(f"`{m}` ({cfg(row['config'])}{where})")
        elif gap < noise:
            close.append(f"`{m}` ({gap:.3f} below {cfg(best['config'])})")
        else:
            off.append(f"`{m}`, whose preset ({cfg(row['config'])}, {row['val_meanap']:.3f}) is "
                       f"{gap:.3f} below {cfg(best['config'])} ({best['val_meanap']:.3f}{where})")
    out = [f"What it shows (generated from this result; gaps under {noise}, the project's resolution, are not "
           f"called a difference on {len(r['validation_seeds'])} validation seeds):", ""]
    if at_best:
        out.append(f"* Presets at their best: {', '.join(at_best)}.")
    if close:
        out.append(f"* Within {noise} of their best: {', '.join(close)}.")
    if off:
        out.append(f"* **Presets clearly not at their best:** {'; '.join(off)}. They were left as they are: "
                   "changing a method's setting makes stale every result holding runs of that method (its "
                   "`code_scope`), which must then be measured again with it.")
    if "replay" in r["methods"]:
        sized = r["teacher_sized_replay"]["replay_per_attribute"]
        rows = r["methods"]["replay"]["rows"]
        worst = min(rows, key=lambda q: q["val_meanap"])
        if worst["config"].get("replay_per_attribute") == sized:
            out.append(f"* The teacher-sized buffer ({sized} images per attribute, the bytes of MCL-FIR's teacher) "
                       f"is the worst replay ({worst['val_meanap']:.3f}).")
    return "\n".join(out)


def readme(r: dict) -> str:
    """The README's section: the table (:func:`render`) and what it shows (:func:`shows`)."""
    return render(r) + "\n\n" + shows(r)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
