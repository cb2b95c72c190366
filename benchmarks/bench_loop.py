"""loop: the training loop's overhead against a bare forward + backward + optimiser step.

The runner's loop (``ContinualRunner.train_increment``, strategy ``mclfir``) is timed per
step in its first increment (metric loss only) and its second (plus the EMA teacher's
forward pass, distillation and the EMA update). The floor is a bare step of the same
model and batch: one fixed, already-sampled uint8 batch of ``2 x batch`` images on the
device, encoder + the attribute's head + InfoNCE, ``zero_grad``, ``backward``, AdamW
``step``, nothing else. The pieces the loop adds are timed on their own: sampling the
doublets (``PairSampler.doublets``), gathering and flipping their images
(``runner.source.inputs``), and, in the second increment, the distillation and EMA update. The
ratio loop / bare is the overhead (target: at most 1.2 in the first increment).
"""
from __future__ import annotations

import statistics
import sys
import time

import _common as C

SIZES = {"default": {"n_images": 3000, "size": 64, "width": 16, "batch": 64, "steps": 200, "reps": 3},
         "quick": {"n_images": 600, "size": 32, "width": 16, "batch": 32, "steps": 20, "reps": 2}}
TARGET = 1.2


def _timed(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = ("mclfir",)


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    import numpy as np
    import torch
    from mclfir_lite.config import Config
    from mclfir_lite.training.runner import ContinualRunner
    from mclfir_lite.data.table import PairSampler, load_images, make_protocol
    from mclfir_lite.data.datasets import synthfashion_table
    from mclfir_lite.core.losses import doublet_infonce
    p = SIZES["quick" if quick else "default"]
    table = synthfashion_table(n=p["n_images"], size=p["size"], seed=seed)
    attrs = table.attributes[:2]
    protocol = make_protocol(table, seed=seed)
    images = load_images(table, p["size"])
    config = Config(encoder_width=p["width"], batch_size=p["batch"], steps_per_attribute=p["steps"], seed=seed,
                    device=device)
    out = {"params": p, "device": device, "loop_s_per_step": {}, "reps": []}
    for rep in range(p["reps"]):
        C.log(f"loop: rep {rep + 1}/{p['reps']}")
        runner = ContinualRunner("mclfir", images, table.labels, protocol, [attrs[:1], attrs[1:]], config,
                                 progress=False)
        row = {}
        for i in range(2):
            t0 = time.perf_counter()
            runner.train_increment(i)
            row[f"loop_increment_{i + 1}"] = (time.perf_counter() - t0) / p["steps"]
        # the floor: the same model, one fixed batch, nothing but forward, backward and step
        model, attr = runner.model, attrs[1]
        sampler = PairSampler(table.labels[attr], protocol[attr].train)
        rng = np.random.default_rng(seed)
        a, pos = sampler.doublets(p["batch"], rng)
        x = images[torch.as_tensor(np.concatenate([a, pos]))].to(device)
        params = [q for q in model.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        y = torch.as_tensor(table.labels[attr][a])

        def bare():
            za, zp = model.heads(model.encoder(x), attr).split(p["batch"])
            loss = doublet_infonce(za, zp, y, config.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        bare()  # warm-up
        row["bare"] = _timed(bare, p["steps"])
        row["sampling"] = _timed(lambda: sampler.doublets(p["batch"], rng), p["steps"])
        rows = np.concatenate([a, pos])
        row["images_and_flips"] = _timed(lambda: runner.source.inputs(rows, rng), p["steps"])
        out["reps"].append(row)
    med = {k: statistics.median(r[k] for r in out["reps"]) for k in out["reps"][0]}
    out["median_s_per_step"] = med
    out["overhead_increment_1"] = med["loop_increment_1"] / med["bare"]
    out["overhead_increment_2"] = med["loop_increment_2"] / med["bare"]
    out["met"] = out["overhead_increment_1"] <= TARGET
    return out


def render(r: dict) -> str:
    m, p = r["median_s_per_step"], r["params"]
    rows = [["bare forward + backward + step (one fixed batch)", m["bare"] * 1e3, 1.0],
            ["loop, increment 1 (sampling, flips, loss, step, bookkeeping)", m["loop_increment_1"] * 1e3,
             r["overhead_increment_1"]],
            ["loop, increment 2 (+ EMA teacher forward, distillation, EMA update)", m["loop_increment_2"] * 1e3,
             r["overhead_increment_2"]],
            ["of which: sampling doublets", m["sampling"] * 1e3, m["sampling"] / m["bare"]],
            ["of which: gathering images + flips", m["images_and_flips"] * 1e3, m["images_and_flips"] / m["bare"]]]
    return "\n".join([f"smallcnn width {p['width']}, {p['size']} px, batch {p['batch']} doublets, {p['steps']} steps "
                      f"per increment, median of {p['reps']} ({r['device']}):", "",
                      C.table(["per step", "ms", "x bare"], rows), "",
                      f"Overhead of the loop in increment 1: {r['overhead_increment_1']:.2f}x "
                      f"(target <= {TARGET}: {'met' if r['met'] else 'NOT met'})."])


if __name__ == "__main__":
    C.main(sys.modules[__name__])
