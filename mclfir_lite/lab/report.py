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

Comparing two methods: :func:`paired_difference` pairs their runs (same seed, same task
order), so the seed-to-seed spread that both share cancels, and gives a 95% bootstrap
confidence interval of the mean difference with a verdict that can say "no difference at
this resolution". :func:`stability` and :func:`plasticity` split MeanAP into what is kept
and what is learnt, so that a verdict is never given on MeanAP alone.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.metrics import AT_CHANCE_MARGIN

__all__ = ["over_seeds", "strategy_table", "mean_std", "paired_difference", "paired_measures", "stability",
           "plasticity"]

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


# ---------------------------------------------------------------------------- paired comparisons

def _matrix(result: dict) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in result["map_matrix"]], dtype=float)


def _first_increment(result: dict) -> dict[str, int]:
    return {a: i for i, group in enumerate(result["increments"]) for a in group}


def plasticity(result: dict) -> float:
    """How well a run learns what is new: the mean over attributes of the mAP right after the
    increment that brought it (the accuracy matrix's diagonal, ``R[first(a), a]``)."""
    R, first = _matrix(result), _first_increment(result)
    return float(np.mean([R[first[a], j] for j, a in enumerate(result["attributes"])]))


def stability(result: dict) -> float:
    """How well a run keeps what is old: the mean final mAP of the attributes that came before
    the last increment (NaN with one increment). Forgetting is the same question asked
    against each attribute's best; this one is not flattered by an attribute never learnt."""
    R, first = _matrix(result), _first_increment(result)
    last = len(result["increments"]) - 1
    old = [j for j, a in enumerate(result["attributes"]) if first[a] < last]
    return float(np.mean(R[-1, old])) if old else float("nan")


def paired_difference(a, b, resolution: float = 0.01, n_boot: int = 10_000, seed: int = 0,
                      level: float = 0.95, interval: str = "bootstrap") -> dict:
    """The mean of ``a[k] - b[k]`` over paired runs (same seed, same order) and its confidence
    interval: ``interval="bootstrap"`` (percentile, ``n_boot`` resamples of the pairs, seeded) or
    ``"t"`` (Student's t on the differences: with a handful of pairs a percentile bootstrap can
    only span the observed differences, so its interval is too narrow; three seeds want ``"t"``).

    ``verdict``: ``"above"`` when the whole interval is above ``+resolution``, ``"below"``
    when it is below ``-resolution``, ``"no difference"`` when it lies inside
    ``[-resolution, resolution]``, and ``"undecided"`` otherwise (the interval is wider than
    the question: more seeds or orders are needed). NaN pairs are refused, not dropped."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired_difference needs two equal-length, non-empty lists, got {a.shape} and {b.shape}")
    d = a - b
    if not np.all(np.isfinite(d)):
        raise ValueError(f"paired_difference: a pair is not finite ({d.tolist()})")
    if interval == "t":
        if d.size < 2:
            raise ValueError("paired_difference(interval='t') needs at least two pairs")
        from scipy import stats
        half = float(stats.t.ppf(1 - (1 - level) / 2, d.size - 1) * d.std(ddof=1) / d.size ** 0.5)
        lo, hi = float(d.mean()) - half, float(d.mean()) + half
    elif interval == "bootstrap":
        idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
        means = d[idx].mean(axis=1)
        lo, hi = (float(x) for x in np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2]))
    else:
        raise ValueError(f"paired_difference: interval must be 'bootstrap' or 't', got {interval!r}")
    if lo > resolution:
        verdict = "above"
    elif hi < -resolution:
        verdict = "below"
    elif -resolution <= lo and hi <= resolution:
        verdict = "no difference"
    else:
        verdict = "undecided"
    return {"mean": float(d.mean()), "lo": lo, "hi": hi, "n": int(d.size), "level": level,
            "resolution": resolution, "verdict": verdict, "interval": interval}


def paired_measures(runs_a: list[dict], runs_b: list[dict]) -> dict[str, dict]:
    """:func:`paired_difference` of two methods' paired runs (same seed and order, in the same
    positions) on MeanAP, :func:`stability`, :func:`plasticity` and forgetting; a measure that
    is missing or not finite for some run (forgetting of a method retrained from scratch) is
    left out."""
    measures = {"meanap": lambda r: r["final_meanap"], "stability": stability, "plasticity": plasticity,
                "forgetting": lambda r: r["forgetting"]}
    out = {}
    for name, f in measures.items():
        va, vb = [f(r) for r in runs_a], [f(r) for r in runs_b]
        if all(v is not None and np.isfinite(v) for v in va + vb):
            out[name] = paired_difference(va, vb)
    return out
