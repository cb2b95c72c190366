"""sensitivity: the counterfactual sensitivity matrix of each head, per strategy and increment.

SynthFashion redraws a garment with exactly one attribute changed, or with only its
nuisances (pose, background, light) changed (:mod:`mclfir_lite.retrieval.sensitivity`). For
finetune, lwf, mclfir and joint on the lesson's plan (the runs are the strategies
benchmark's, through the benchmarks' cache), after every increment: how far each head's
embedding moves (1 - cos) when its own attribute changes, when another attribute changes,
and when the nuisances change; and each head's selectivity (own / largest other). A head
that forgets loses its diagonal; a head that interferes follows another attribute.
"""
from __future__ import annotations

import sys

import numpy as np

import _common as C

STRATEGIES = ("finetune", "lwf", "mclfir", "joint")
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = STRATEGIES
N_GARMENTS = {"default": 200, "quick": 24}


def run(quick: bool, seed: int, device: str = "cpu", out_dir=None, **_) -> dict:
    from mclfir_lite.retrieval.sensitivity import FACTORS, counterfactual_images, over_increments, selectivity
    overrides, note = C.train_overrides(device)
    lab = C.synth_lab(quick, seed)
    style = lab.style                     # the renderer's calibration the lab's images were drawn with
    images = counterfactual_images(N_GARMENTS["quick" if quick else "default"], int(lab.images.shape[-1]),
                                   seed=seed + 1, style=style)
    out = {"seed": seed, "increments": lab.increments, "style": style, "factors": list(FACTORS),
           "n_garments": len(images["base"]), "strategies": {}}
    for s in STRATEGIES:
        runner = lab.runner(s, cache=True, progress=False, **overrides)
        runner.run(resume=True)
        mats = over_increments(runner, images)
        out["strategies"][s] = {"matrices": mats, "selectivity": [selectivity(m) for m in mats]}
    if out_dir is not None:
        out["figure"] = figure(out, out_dir)
    if note:
        out["device_note"] = note
    return out


def figure(r: dict, out_dir) -> str:
    """One heat map per strategy (after the last increment): rows heads, columns factors."""
    strategies = list(r["strategies"])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(strategies), figsize=(3.3 * len(strategies), 3.4), squeeze=False)
    for ax, s in zip(axes[0], strategies):
        m = r["strategies"][s]["matrices"][-1]
        heads = list(m)
        grid = np.array([[m[h][f] for f in r["factors"]] for h in heads])
        ax.imshow(grid, cmap="magma", vmin=0, vmax=max(1e-6, grid.max()))
        ax.set(title=s, xticks=range(len(r["factors"])), yticks=range(len(heads)))
        ax.set_xticklabels([f[:6] for f in r["factors"]], rotation=60, fontsize=7)
        ax.set_yticklabels(heads, fontsize=7)
    fig.suptitle("how far each head moves (1 - cos) when one factor changes", fontsize=9)
    fig.tight_layout()
    from pathlib import Path
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return C.save_figure(fig, Path(out_dir), "sensitivity.png")


def render(r: dict) -> str:
    out = [f"Counterfactual sensitivity, {r['n_garments']} garments drawn in the lab's renderer style "
           f"{r.get('style', 'v1')}, plan {r['increments']}, seed {r['seed']}.", ""]
    for s, x in r["strategies"].items():
        last = x["matrices"][-1]
        out += [f"{s}, after the last increment (1 - cos; own attribute in the diagonal):", "",
                C.table(["head", *r["factors"], "selectivity"],
                        [[h, *[row[f] for f in r["factors"]], x["selectivity"][-1][h]] for h, row in last.items()]), ""]
        trail = [f"{h}: " + " -> ".join(f"{sel[h]:.2f}" for sel in x["selectivity"] if h in sel) for h in last]
        out += ["selectivity over increments: " + "; ".join(trail), ""]
    return "\n".join(out)


def shows(r: dict) -> str:
    """What the README says the matrices show, from the result alone: per strategy, how selective
    the heads are right after their own increment and after the last one (below 1: a head that
    follows another factor more than its own attribute, i.e. has lost it)."""
    heads = [h for g in r["increments"] for h in g]
    early = [h for h in heads if h not in r["increments"][-1]]

    def trails(s):
        sel = r["strategies"][s]["selectivity"]
        return {h: [t[h] for t in sel if h in t] for h in heads}

    out = ["What it shows (generated from this result):", ""]
    if "finetune" in r["strategies"]:
        t = trails("finetune")
        lost = [h for h in early if t[h][-1] < 1]
        first, last = [t[h][0] for h in early], [t[h][-1] for h in early]
        out.append(f"* Under `finetune`, {len(lost)} of the {len(early)} heads before the last increment end below 1 "
                   f"(they follow another factor more than their own attribute): right after its own increment "
                   f"each moves {min(first):.1f} to {max(first):.1f} times more for its attribute than for anything "
                   f"else, after the last increment {min(last):.2f} to {max(last):.2f} times. That is forgetting seen "
                   "from inside the embedding.")
    for s in [x for x in r["strategies"] if x != "finetune"]:
        t = trails(s)
        more = [h for h in heads if len(t[h]) > 1 and t[h][-1] > t[h][0]]
        ends = [t[h][-1] for h in heads]
        out.append(f"* `{s}`: every head ends {'above 1' if min(ends) > 1 else 'at or below 1 for some'} "
                   f"(lowest {min(ends):.1f}, highest {max(ends):.1f}); {len(more)} of the {len(early)} heads with "
                   "later increments end more selective than right after their own.")
    return "\n".join(out)


def readme(r: dict) -> str:
    """The README's compact view: per strategy and head, the selectivity right after the head's
    own increment and after the last one (above 1: the head follows its own attribute most)."""
    heads = [h for g in r["increments"] for h in g]
    rows = []
    for s, x in r["strategies"].items():
        sel = x["selectivity"]
        cells = []
        for h in heads:
            trail = [t[h] for t in sel if h in t]
            cells.append(f"{trail[0]:.2f} → {trail[-1]:.2f}" if trail else "–")
        rows.append([s, *cells])
    return "\n".join([f"Selectivity of each head (its own attribute's sensitivity over the largest other factor's; "
                      f"1 - cos over {r['n_garments']} counterfactual garments drawn in style {r.get('style', 'v1')}, "
                      f"seed {r['seed']}), right after the head's own increment → after the last increment:", "",
                      C.table(["strategy", *heads], rows), "",
                      "Full matrices per increment: `benchmarks/results/RESULTS.md`; heat maps: "
                      "`benchmarks/results/sensitivity.png`.", "", shows(r)])


if __name__ == "__main__":
    C.main(sys.modules[__name__])
