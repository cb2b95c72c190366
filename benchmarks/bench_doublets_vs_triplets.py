"""doublets_vs_triplets: InfoNCE on doublets against a fair triplet baseline, at equal steps.

One attribute (``silhouette``, the hardest of the default plan), one increment,
SynthFashion at the default preset. The triplet baseline is the one ASEN trains: a margin
of 0.2 on cosine similarity, with semi-hard negatives mined in the batch (the same
doublet batches as InfoNCE, so both forward the same images per step). Both losses get
the same tuning: the learning rate is chosen from the same grid, by mAP on a validation
split of the training rows (never on the test queries). Then, over seeds:

* mAP on the test split after every ``eval_every`` steps (the curves, and a figure);
* the final mAP at equal steps (equal images forwarded);
* the steps InfoNCE needs to reach the triplet loss's best mAP, as a fraction of the steps
  the triplet loss needed for it.

A difference is called one only when it exceeds the seeds' spread.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

import _common as C

ATTRIBUTE = "silhouette"
SETTINGS = {"default": {"steps": 600, "eval_every": 100, "lrs": [2.5e-4, 5e-4, 1e-3], "seeds": [0, 1, 2]},
            "quick": {"steps": 10, "eval_every": 5, "lrs": [5e-4, 1e-3], "seeds": [0]}}
LOSSES = ("infonce", "triplet")


def _val_split(lab, seed: int):
    """A validation protocol from the attribute's *training* rows: 20% of them, split into
    queries and candidates; the model then trains on the other 80%."""
    from mclfir_lite.data.table import AttributeSplit
    split = lab.protocol[ATTRIBUTE]
    rng = np.random.default_rng([seed, 4242])
    rows = rng.permutation(split.train)
    n_val = len(rows) // 5
    val, train = np.sort(rows[:n_val]), np.sort(rows[n_val:])
    q = val[: n_val // 4]
    c = val[n_val // 4:]
    return ({ATTRIBUTE: AttributeSplit(train, split.query, split.candidate)},
            {ATTRIBUTE: AttributeSplit(train, q, c)})


def _train(lab, loss: str, lr: float, seed: int, s: dict, overrides: dict) -> dict:
    """Train one model ``s["steps"]`` steps; its validation and test curves."""
    import torch
    from mclfir_lite.config import Config
    from mclfir_lite.training.runner import ContinualRunner
    from mclfir_lite.training.evaluate import evaluate
    from mclfir_lite.data.table import PairSampler
    test_prot, val_prot = _val_split(lab, seed)
    cfg = dataclasses.replace(lab.config, loss=loss, lr=lr, seed=seed, **overrides)
    runner = ContinualRunner("finetune", lab.images, lab.table.labels, test_prot, [[ATTRIBUTE]], cfg, progress=False)
    runner.model.add_attribute(ATTRIBUTE)
    torch.manual_seed(seed * 7919 + 17)
    rng = np.random.default_rng([seed, 0])
    sampler = PairSampler(lab.table.labels[ATTRIBUTE], test_prot[ATTRIBUTE].train)
    opt = torch.optim.AdamW([p for p in runner.model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=cfg.weight_decay)
    curve = []
    for step in range(s["steps"] + 1):
        if step % s["eval_every"] == 0:
            ev = lambda prot: evaluate(runner.model, lab.images, lab.table.labels, prot, [ATTRIBUTE])[ATTRIBUTE]
            curve.append({"step": step, "val": ev(val_prot), "test": ev(test_prot)})
            runner.model.train()
        if step == s["steps"]:
            break
        l = runner.metric_loss(ATTRIBUTE, sampler, cfg.batch_size, rng).loss
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
    return {"loss": loss, "lr": lr, "seed": seed, "curve": curve, "images_per_step": 2 * cfg.batch_size}


# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = ("finetune",)   # one attribute, trained by the finetune runner


def run(quick: bool, seed: int, device: str = "cpu", out_dir: Path = C.RESULTS_DIR, **_) -> dict:
    from mclfir_lite.core.metrics import chance_map
    s = SETTINGS["quick" if quick else "default"]
    overrides, note = C.train_overrides(device)
    seeds = [seed + k for k in s["seeds"]]
    out = {"attribute": ATTRIBUTE, **s, "seeds": seeds, "runs": [], "chosen_lr": {}, "by_seed": {}}
    for sd in seeds:
        lab = C.synth_lab(quick, sd, increments=[[ATTRIBUTE]])
        runs = {}
        for loss in LOSSES:
            for lr in s["lrs"]:
                C.log(f"doublets_vs_triplets: seed {sd} {loss} lr {lr}")
                runs[(loss, lr)] = _train(lab, loss, lr, sd, s, overrides)
        out["runs"] += list(runs.values())
        pick = {loss: max(s["lrs"], key=lambda lr: max(p["val"] for p in runs[(loss, lr)]["curve"]))
                for loss in LOSSES}
        out["chosen_lr"][str(sd)] = pick
        out["by_seed"][str(sd)] = {loss: runs[(loss, pick[loss])]["curve"] for loss in LOSSES}
        split = lab.protocol[ATTRIBUTE]
        out["chance"] = chance_map(lab.table.labels[ATTRIBUTE][split.query], lab.table.labels[ATTRIBUTE][split.candidate])
    final = {loss: [out["by_seed"][str(sd)][loss][-1]["test"] for sd in seeds] for loss in LOSSES}
    out["final_test_map"] = {loss: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v}
                             for loss, v in final.items()}
    ratios = []
    for sd in seeds:
        c = out["by_seed"][str(sd)]
        best = max(p["test"] for p in c["triplet"])
        t_trip = next(p["step"] for p in c["triplet"] if p["test"] >= best)
        reach = next((p["step"] for p in c["infonce"] if p["test"] >= best), None)
        ratios.append(None if reach is None or t_trip == 0 else reach / t_trip)
    out["steps_ratio_to_triplet_best"] = ratios
    gap = out["final_test_map"]["infonce"]["mean"] - out["final_test_map"]["triplet"]["mean"]
    spread = max(out["final_test_map"]["infonce"]["std"], out["final_test_map"]["triplet"]["std"])
    out["verdict"] = (f"InfoNCE ends {gap:+.3f} above the tuned semi-hard triplet loss (spread {spread:.3f})" if gap > spread
                      else f"the tuned semi-hard triplet loss ends {-gap:+.3f} above InfoNCE (spread {spread:.3f})"
                      if -gap > spread else f"no difference here at equal steps ({gap:+.3f}, spread {spread:.3f})")
    if note:
        out["device_note"] = note
    out["figure"] = _figure(out, Path(out_dir))
    return out


def _figure(r: dict, out_dir: Path) -> str | None:
    made = C.new_axes(out_dir, (5, 3.4))
    if made is None:
        return None
    fig, ax = made
    for loss, colour in zip(LOSSES, ("C0", "C1")):
        for k, sd in enumerate(r["seeds"]):
            curve = r["by_seed"][str(sd)][loss]
            ax.plot([p["step"] for p in curve], [p["test"] for p in curve], color=colour, marker=".",
                    alpha=0.8, label=f"{loss} (lr {r['chosen_lr'][str(sd)][loss]:g})" if k == 0 else None)
    ax.axhline(r["chance"], color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("optimiser steps (same images per step)")
    ax.set_ylabel(f"test mAP ({r['attribute']})")
    ax.set_title("InfoNCE doublets vs semi-hard triplets, tuned lr, seeds", fontsize=9)
    ax.legend(fontsize=8)
    return C.save_figure(fig, out_dir, "doublets_vs_triplets.png")


def render(r: dict) -> str:
    f = r["final_test_map"]
    rows = [[loss, f"{f[loss]['mean']:.3f} ± {f[loss]['std']:.3f}",
             ", ".join(f"{r['chosen_lr'][str(sd)][loss]:g}" for sd in r["seeds"])] for loss in LOSSES]
    out = [f"One attribute ({r['attribute']}), {r['steps']} steps, lr grid {r['lrs']} chosen on a validation split, "
           f"seeds {r['seeds']}; chance mAP {r['chance']:.3f}.", "",
           C.table(["loss", f"test mAP at {r['steps']} steps", "chosen lr per seed"], rows), "",
           f"Verdict: {r['verdict']}. Steps InfoNCE needs to reach the triplet loss's best, as a fraction of the "
           f"triplet's: {', '.join('never' if x is None else f'{x:.2f}' for x in r['steps_ratio_to_triplet_best'])} "
           f"(resolution {r['eval_every']} steps)."]
    if r.get("figure"):
        out += ["", f"Test mAP against steps, per seed: `benchmarks/results/{r['figure']}`."]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
