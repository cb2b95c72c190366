"""Tables of results with their controls: a chance row, and the seeds' spread.

Every table of strategies this package prints (the demo, the benchmarks, notebook 07)
comes from here, so that each has the same controls:

* a **chance** row: the mAP of a random ranking per attribute
  (:func:`mclfir_lite.core.metrics.chance_map`);
* attributes **at chance** marked with ``*`` (final mAP below chance +
  :data:`mclfir_lite.core.metrics.AT_CHANCE_MARGIN`), never averaged in silently;
* with several seeds, **mean ± std** (std over seeds, ddof 0), and the number of seeds.

``over_seeds({strategy: [result per seed]})`` turns the runner's per-seed results
(:meth:`mclfir_lite.training.runner.ContinualRunner.result`) into one summary per strategy.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.metrics import AT_CHANCE_MARGIN

__all__ = ["over_seeds", "strategy_table", "mean_std"]

SCALARS = ("final_meanap", "mean_final_map", "forgetting", "bwt", "train_samples", "teacher_samples",
           "optimizer_steps", "train_seconds")


def mean_std(values) -> dict | None:
    """``{"mean", "std", "n", "values"}`` of the non-None values; None when there are none."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v), "values": v}


def over_seeds(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Per strategy: each scalar of :data:`SCALARS` and each attribute's final mAP and chance
    as :func:`mean_std` over seeds, the map matrix's mean and std, and the attributes at chance
    (by the mean). ``results``: ``{strategy: [result of seed 0, result of seed 1, ...]}``."""
    out = {}
    for s, runs in results.items():
        if not runs:
            raise ValueError(f"strategy {s!r} has no result")
        attrs = runs[0]["attributes"]
        summary = {k: mean_std([r.get(k) for r in runs]) for k in SCALARS}
        summary["final_map"] = {a: mean_std([r["final_map"][a] for r in runs]) for a in attrs}
        summary["chance_map"] = {a: mean_std([r["chance_map"][a] for r in runs]) for a in attrs}
        summary["at_chance"] = [a for a in attrs
                                if summary["final_map"][a]["mean"] < summary["chance_map"][a]["mean"] + AT_CHANCE_MARGIN]
        mats = np.array([[[np.nan if v is None else v for v in row] for row in r["map_matrix"]] for r in runs])
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # cells before an attribute arrives are all NaN
            summary["map_matrix"] = np.where(np.isnan(mats[0]), None, np.nanmean(mats, 0)).tolist()
            summary["map_matrix_std"] = np.where(np.isnan(mats[0]), None, np.nanstd(mats, 0)).tolist()
        summary["attributes"], summary["increments"] = attrs, runs[0]["increments"]
        summary["seeds"] = [r.get("config", {}).get("seed") for r in runs]
        summary["params"] = runs[0]["params"]
        summary["forgetting_note"] = runs[0].get("forgetting_note", "")
        out[s] = summary
    return out


def _cell(x: dict | None, spec: str = ".3f", signed: bool = False) -> str:
    if x is None:
        return "n/a"
    spec = ("+" if signed else "") + spec
    return format(x["mean"], spec) + (f" ± {x['std']:.3f}" if x["n"] > 1 else "")


def strategy_table(summary: dict[str, dict], cost: bool = True) -> str:
    """A markdown table of :func:`over_seeds`'s output: per-attribute final mAP, MeanAP
    (query-weighted), forgetting, BWT and (``cost``) samples and stored parameters, with a
    chance row; ``*`` marks an attribute at chance."""
    first = next(iter(summary.values()))
    attrs = first["attributes"]
    head = ["strategy", *attrs, "MeanAP", "forgetting", "BWT"] + (["train samples", "stored params"] if cost else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s, x in summary.items():
        cells = [_cell(x["final_map"][a]) + ("*" if a in x["at_chance"] else "") for a in attrs]
        cells += [_cell(x["final_meanap"]), _cell(x["forgetting"], signed=True), _cell(x["bwt"], signed=True)]
        if cost:
            cells += [f"{x['train_samples']['mean']:,.0f}", f"{x['params']['stored']:,}"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("| *chance* | " + " | ".join(f"{first['chance_map'][a]['mean']:.3f}" for a in attrs)
                 + " |" * (len(head) - len(attrs) - 1) + " |")
    n = first["final_meanap"]["n"] if first["final_meanap"] else 1
    lines.append("")
    lines.append(f"{'Mean ± std over ' + str(n) + ' seeds. ' if n > 1 else ''}`*`: at chance (below chance + "
                 f"{AT_CHANCE_MARGIN}). Forgetting and BWT are n/a for strategies retrained from scratch.")
    return "\n".join(lines)
