"""threads: the same run at 1 and 2 torch threads, and how far its numbers move.

A float sum's result depends on its order, and torch orders its reductions by thread
count, so a seeded run is reproducible at a fixed thread count but not across counts.
This benchmark measures the tolerance that goes beside every table: the largest change
of a final mAP, of MeanAP and of forgetting between 1 and 2 threads, for a few
strategies on the lesson's default plan (trained fresh, outside the cache).
"""
from __future__ import annotations

import sys

import _common as C

STRATEGIES = ("joint", "mclfir", "ewc")
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = STRATEGIES


def _one(args):
    quick, seed, strategy, threads = args
    import torch
    torch.set_num_threads(threads)
    lab = C.synth_lab(quick, seed)
    r = lab.runner(strategy, cache=False, progress=False).run(resume=False)
    return {k: r[k] for k in ("final_map", "final_meanap", "forgetting")}


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    import multiprocessing as mp
    rows = {}
    with mp.get_context("spawn").Pool(1) as pool:      # one process at a time: each gets its threads
        for s in STRATEGIES:
            one, two = pool.map(_one, [(quick, seed, s, 1), (quick, seed, s, 2)])
            diffs = {a: abs(one["final_map"][a] - two["final_map"][a]) for a in one["final_map"]}
            rows[s] = {"final_map_1": one["final_map"], "final_map_2": two["final_map"],
                       "max_map_diff": max(diffs.values()), "meanap_diff": abs(one["final_meanap"] - two["final_meanap"]),
                       "forgetting_diff": None if one["forgetting"] is None or two["forgetting"] is None
                       else abs(one["forgetting"] - two["forgetting"])}
    tol = max(max(r["max_map_diff"], r["meanap_diff"]) for r in rows.values())
    return {"seed": seed, "strategies": rows, "tolerance": tol}


def render(r: dict) -> str:
    rows = [[s, x["max_map_diff"], x["meanap_diff"], C.fmt(x["forgetting_diff"])] for s, x in r["strategies"].items()]
    return "\n".join([f"1 vs 2 torch threads, seed {r['seed']}: numbers move by up to {r['tolerance']:.3f} "
                      "(state this tolerance beside tables made at another thread count).", "",
                      C.table(["strategy", "largest final mAP change", "MeanAP change", "forgetting change"], rows)])


if __name__ == "__main__":
    C.main(sys.modules[__name__])
