"""doublets_vs_triplets: InfoNCE on doublets against the triplet margin loss, at equal wall time.

One attribute (``sleeve_length``), a single increment, SynthFashion at the lesson's default
preset; the same model, optimiser, batch size (anchors per step) and learning rate for
both losses. Each loss gets the same budget of *training* seconds. The two trainings are
interleaved, ``eval_every`` steps at a time, so that machine load falls on both alike;
after every block the model is evaluated with ``continual.evaluate`` (mAP on the
attribute's query/candidate split; evaluation time is not counted).

The training step is the package's: a ``ContinualRunner`` (strategy ``finetune``, one
increment) provides the model and ``_metric_loss`` (doublet sampling + InfoNCE, or triplet
sampling + margin loss); the loop here only adds the optimiser step and the clock, as
``ContinualRunner.train_increment`` does for one increment without old attributes.

Reported: the mAP-vs-seconds curves (and a figure), the final mAP at equal time, and the
time InfoNCE needs to reach the triplet loss's best mAP, as a fraction of the time the
triplet loss needed for it (target <= 2/3; resolution: one evaluation block).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

import _common as C

ATTRIBUTE = "sleeve_length"
SETTINGS = {"default": {"budget_seconds": 120.0, "eval_every": 50},
            "quick": {"budget_seconds": 6.0, "eval_every": 5}}
TARGET = 2 / 3


class _Trainer:
    """One loss: a fresh model, its optimiser, its sampler, its clock and its curve."""

    def __init__(self, lab, loss: str, overrides: dict):
        import torch
        from mclfir_lite.continual import ContinualRunner, STRATEGIES
        from mclfir_lite.data import PairSampler
        cfg = dataclasses.replace(lab.config, loss=loss, **overrides)
        self.lab, self.loss = lab, loss
        self.runner = ContinualRunner("finetune", lab.images, lab.table.labels, lab.protocol, [[ATTRIBUTE]], cfg,
                                      progress=False)
        self.runner.model.add_attribute(ATTRIBUTE)
        torch.manual_seed(cfg.seed * 7919 + STRATEGIES.index("finetune") * 101)  # as train_increment seeds
        self.rng = np.random.default_rng([cfg.seed, 0])  # the same batches' anchors for both losses
        self.sampler = PairSampler(lab.table.labels[ATTRIBUTE], lab.protocol[ATTRIBUTE].train)
        params = [p for p in self.runner.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.batch = cfg.batch_size
        self.steps, self.seconds, self.samples = 0, 0.0, 0
        self.curve: list[dict] = []
        self.evaluate()

    def train(self, n: int) -> None:
        self.runner.model.train()
        t0 = time.perf_counter()
        for _ in range(n):
            loss, x, _ = self.runner._metric_loss(ATTRIBUTE, self.sampler, self.batch, self.rng)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.samples += len(x)
        self.seconds += time.perf_counter() - t0
        self.steps += n

    def evaluate(self) -> None:
        from mclfir_lite.continual import evaluate
        m = evaluate(self.runner.model, self.lab.images, self.lab.table.labels, self.lab.protocol, [ATTRIBUTE])
        self.curve.append({"step": self.steps, "seconds": round(self.seconds, 3), "map": m[ATTRIBUTE]})


def _value_at(curve, t):
    """mAP of the last evaluation at or before ``t`` seconds."""
    return [p for p in curve if p["seconds"] <= t + 1e-9][-1]["map"]


def run(quick: bool, seed: int, device: str = "cpu", out_dir: Path = C.RESULTS_DIR, **_) -> dict:
    s = SETTINGS["quick" if quick else "default"]
    overrides, note = C.train_overrides(device)
    lab = C.synth_lab(quick, seed, increments=[[ATTRIBUTE]])
    C.log(f"doublets_vs_triplets: {s['budget_seconds']:.0f} s of training per loss, evaluated every "
          f"{s['eval_every']} steps")
    trainers = [_Trainer(lab, "infonce", overrides), _Trainer(lab, "triplet", overrides)]
    while any(t.seconds < s["budget_seconds"] for t in trainers):
        for t in trainers:
            if t.seconds < s["budget_seconds"]:
                t.train(s["eval_every"])
                t.evaluate()
        C.log("doublets_vs_triplets: " + ", ".join(f"{t.loss} {t.steps} steps {t.seconds:.1f} s mAP "
                                                  f"{t.curve[-1]['map']:.3f}" for t in trainers))
    info, trip = trainers
    equal_t = min(info.seconds, trip.seconds)
    best = max(trip.curve, key=lambda p: p["map"])
    t_trip_best = next(p for p in trip.curve if p["map"] >= best["map"])["seconds"]
    reach = next((p for p in info.curve if p["map"] >= best["map"]), None)
    ratio = reach["seconds"] / t_trip_best if reach is not None and t_trip_best > 0 else None
    out = {
        "attribute": ATTRIBUTE, "n_images": len(lab.table), "image_size": int(lab.images.shape[-1]),
        "batch_anchors": lab.config.batch_size, "lr": lab.config.lr, "temperature": lab.config.temperature,
        "margin": lab.config.margin, **s,
        "curves": {t.loss: t.curve for t in trainers},
        "steps": {t.loss: t.steps for t in trainers},
        "train_seconds": {t.loss: round(t.seconds, 2) for t in trainers},
        "steps_per_second": {t.loss: t.steps / t.seconds for t in trainers},
        "images_per_second": {t.loss: t.samples / t.seconds for t in trainers},
        "equal_time_seconds": round(equal_t, 2),
        "final_map_at_equal_time": {t.loss: _value_at(t.curve, equal_t) for t in trainers},
        "triplet_best_map": best["map"], "triplet_seconds_to_best": t_trip_best,
        "infonce_seconds_to_triplet_best": None if reach is None else reach["seconds"],
        "time_ratio": ratio, "target_time_ratio": TARGET,
        "met": ratio is not None and ratio <= TARGET,
    }
    if note:
        out["device_note"] = note
    out["figure"] = _figure(out, Path(out_dir))
    return out


def _figure(r: dict, out_dir: Path) -> str | None:
    made = C.new_axes(out_dir, (5, 3.4))
    if made is None:
        return None
    fig, ax = made
    for loss, curve in r["curves"].items():
        ax.plot([p["seconds"] for p in curve], [p["map"] for p in curve], marker=".", label=loss)
    ax.axhline(r["triplet_best_map"], color="grey", lw=0.8, ls="--", label="triplet's best")
    ax.set_xlabel("training seconds")
    ax.set_ylabel(f"mAP ({r['attribute']})")
    ax.set_title("InfoNCE doublets vs triplet margin, equal wall time", fontsize=9)
    ax.legend(fontsize=8)
    return C.save_figure(fig, out_dir, "doublets_vs_triplets.png")


def render(r: dict) -> str:
    fm = r["final_map_at_equal_time"]
    rows = [[loss, r["steps"][loss], r["train_seconds"][loss], r["images_per_second"][loss], fm[loss],
             max(p["map"] for p in r["curves"][loss])] for loss in r["curves"]]
    out = [f"One attribute ({r['attribute']}), {r['n_images']:,} images at {r['image_size']} px, "
           f"{r['batch_anchors']} anchors per step, {r['budget_seconds']:.0f} s of training each "
           f"(evaluated every {r['eval_every']} steps).", "",
           C.table(["loss", "steps", "train s", "images/s", f"mAP at {r['equal_time_seconds']:.0f} s", "best mAP"], rows),
           "",
           f"Time for InfoNCE to reach the triplet loss's best mAP ({r['triplet_best_map']:.3f}, reached at "
           f"{r['triplet_seconds_to_best']:.1f} s): "
           + (f"{r['infonce_seconds_to_triplet_best']:.1f} s, ratio **{r['time_ratio']:.2f}**"
              if r["time_ratio"] is not None else "never within the budget")
           + f" (target <= {TARGET:.2f}: {'met' if r['met'] else 'not met'})."]
    if r.get("figure"):
        out += ["", f"![mAP vs training seconds]({r['figure']})"]
    if r.get("device_note"):
        out += ["", f"Note: {r['device_note']}."]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
