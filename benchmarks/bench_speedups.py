"""speedups: would a faster training step bring the full benchmark within 90 minutes?

Issue 20 asks for every strategy over five seeds and three orders in at most 90 minutes on two
cores, and names the speed-up to try first: several seeds trained as one batched model
(``torch.func.stack_module_state`` + ``vmap``). This measures that, and the two other step-level
speed-ups a CPU offers, on the default preset's model (SmallCNN, its width, its image size,
``batch_size`` doublets, one SE head, InfoNCE, AdamW) at one torch thread, the way the
benchmarks train (two runs at a time, one thread each):

* ``sequential``: ``K`` models, one full step each in turn (what ``K`` runs do today);
* ``vmap``: the same ``K`` models stacked, one ``vmap(grad)`` over them and one AdamW step on
  the stacked tensors (AdamW is elementwise, so this is ``K`` independent AdamWs);
* ``bf16``: the step under ``torch.autocast("cpu", torch.bfloat16)``;
* ``channels_last``: the model and batch in channels-last memory format.

Each is timed per seed-step (median over interleaved repetitions) and checked for keeping the
numbers: the largest difference of any gradient of one batch from the same start, against
``sequential``, relative to the largest gradient (float32 rounding gives ~1e-6, bf16's 8-bit
mantissa ~1e-2; even a rounding-level difference moves a whole run's numbers, as another CPU's
rounding does, so any of them means a full re-measurement). Beside them, the share of a step
spent in convolutions (``torch.profiler``) and the convolutions' arithmetic rate against a large
matrix product's on the same thread: a step that is mostly convolutions already running near
that rate has little left for the loop or the framework to win.
"""
from __future__ import annotations

import copy
import statistics
import sys
import time

import _common as C

SIZES = {"default": {"k": 5, "steps": 20, "reps": 5}, "quick": {"k": 2, "steps": 3, "reps": 2}}
CODE_SCOPE = ()   # the shared model code only; no strategy's runs
FASTER = 1.05  # timings on a shared machine move by a few percent
KEEPS = 1e-4   # a gradient difference (relative to the largest gradient) at most this is float32 rounding


def _model(p: dict, seed: int):
    from mclfir_lite.core.encoders import build_encoder
    from mclfir_lite.core.model import RetrievalModel
    m = RetrievalModel(lambda: build_encoder("smallcnn", width=p["encoder_width"]), 64, seed=seed)
    m.add_attribute("a")
    return m


def _loss(m, x, y, batch: int, t: float):
    from mclfir_lite.core.losses import doublet_infonce
    za, zp = m(x, "a").float().split(batch)
    return doublet_infonce(za, zp, y, t)


def _loss_functional(functional_call, base, pr, bu, xx, yy, batch, t):
    from mclfir_lite.core.losses import doublet_infonce
    za, zp = functional_call(base, (pr, bu), (xx, "a")).float().split(batch)
    return doublet_infonce(za, zp, yy, t)


def _candidates(p: dict, seed: int, k: int, x, y, batch: int, t: float, opt_for) -> tuple[dict, dict]:
    """The four ways to make a step, as functions of no argument, and what the gradient check needs."""
    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap
    seq = [_model(p, seed + j) for j in range(k)]
    seq_opts = [opt_for(m.parameters()) for m in seq]

    def sequential():      # K models, a step each
        for j, (m, o) in enumerate(zip(seq, seq_opts)):
            loss = _loss(m, x[j], y[j], batch, t)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

    params, buffers = stack_module_state([_model(p, seed + j) for j in range(k)])
    params = {n: q.detach().requires_grad_(False) for n, q in params.items()}
    base = copy.deepcopy(seq[0]).to("meta")
    vopt = opt_for(list(params.values()))
    batched_grad = vmap(grad(lambda pr, bu, xx, yy: _loss_functional(functional_call, base, pr, bu, xx, yy, batch, t)))

    def vmapped():         # the K models stacked, one batched step (AdamW is elementwise: K AdamWs)
        grads = batched_grad(params, buffers, x, y)
        for n, q in params.items():
            q.grad = grads[n]
        vopt.step()

    one_bf, one_cl = _model(p, seed), _model(p, seed).to(memory_format=torch.channels_last)
    o_bf, o_cl = opt_for(one_bf.parameters()), opt_for(one_cl.parameters())
    x_cl = x[0].contiguous(memory_format=torch.channels_last)

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = _loss(one_bf, x[0], y[0], batch, t)
        o_bf.zero_grad(set_to_none=True)
        loss.backward()
        o_bf.step()

    def channels_last():
        loss = _loss(one_cl, x_cl, y[0], batch, t)
        o_cl.zero_grad(set_to_none=True)
        loss.backward()
        o_cl.step()
    fns = {"sequential": sequential, "vmap": vmapped, "bf16": bf16, "channels_last": channels_last}
    return fns, {"seq": seq, "seq_opts": seq_opts, "batched_grad": batched_grad, "buffers": buffers, "params": params,
                 "bf16": one_bf, "channels_last": one_cl, "x_cl": x_cl}


def _gradient_differences(p, seed, k, x, y, batch, t, parts) -> dict:
    """Each candidate's gradients of one batch from the same start against one model's, relative to
    its largest gradient (gradients, not parameters after a step: AdamW's first step moves a
    parameter by about the learning rate whatever the size of its gradient, turning rounding into
    steps of lr)."""
    import torch

    def grads_of(model, xx, autocast=False):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = _loss(model, xx, y[0], batch, t)
        loss.backward()
        return {n: q.grad.detach().clone() for n, q in model.named_parameters()}
    start = _model(p, seed)
    before = copy.deepcopy(start.state_dict())
    ref = grads_of(start, x[0])
    stacked = {n: torch.stack([before[n]] * k) for n in parts["params"]}
    cands = {"vmap": {n: g[0] for n, g in parts["batched_grad"](stacked, parts["buffers"], x, y).items()}}
    for name, xx, ac in (("bf16", x[0], True), ("channels_last", parts["x_cl"], False)):
        parts[name].load_state_dict(before)
        cands[name] = grads_of(parts[name], xx, autocast=ac)
    scale = max(float(g.abs().max()) for g in ref.values())
    return {name: max(float((g[n].float() - ref[n]).abs().max()) for n in ref) / scale for name, g in cands.items()}


def _timings(fns: dict, k: int, steps: int, reps: int) -> tuple[list, dict]:
    """Seconds per seed and step of each candidate, interleaved repetitions, and their medians."""
    per_seed = {"sequential": k, "vmap": k, "bf16": 1, "channels_last": 1}
    for fn in fns.values():
        fn()   # warm-up
    rows = []
    for rep in range(reps):
        C.log(f"speedups: rep {rep + 1}/{reps}")
        row = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            row[name] = (time.perf_counter() - t0) / steps / per_seed[name]
        rows.append(row)
    return rows, {n: statistics.median(r[n] for r in rows) for n in fns}


def _where_time_goes(model, opt, x, y, batch, t, steps, gen) -> tuple[float, float, float]:
    """The share of a step in convolutions (torch.profiler), their GFLOP/s, and a 1024 x 1024
    matrix product's GFLOP/s on the same thread."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            loss = _loss(model, x, y, batch, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    step = (time.perf_counter() - t0) / steps
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mkldnn_convolution", "aten::convolution_backward",
                                                                     "aten::_convolution", "aten::thnn_conv2d"))
    share = conv / max(total, 1)
    conv_gflops = _conv_flops(model, x) * 3 / max(step * share, 1e-12) / 1e9   # forward, backward's two products
    a = torch.randn(1024, 1024, generator=gen)
    a @ a
    t0 = time.perf_counter()
    for _ in range(10):
        a @ a
    return share, conv_gflops, 2 * 1024 ** 3 / ((time.perf_counter() - t0) / 10) / 1e9


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    import torch
    from mclfir_lite.config import Config, preset
    torch.set_num_threads(1)
    s, p, cfg = SIZES["quick" if quick else "default"], preset(quick), Config()
    k, size, batch, t = s["k"], p["image_size"], cfg.batch_size, cfg.temperature
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (k, 2 * batch, 3, size, size), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 4, (k, batch), generator=gen)
    opt_for = lambda params: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    fns, parts = _candidates(p, seed, k, x, y, batch, t, opt_for)
    diffs = _gradient_differences(p, seed, k, x, y, batch, t, parts)
    reps, med = _timings(fns, k, s["steps"], s["reps"])
    share, conv_gflops, matmul_gflops = _where_time_goes(parts["seq"][0], parts["seq_opts"][0], x[0], y[0], batch, t,
                                                         s["steps"], gen)
    return {"params": {**s, "image_size": size, "encoder_width": p["encoder_width"], "batch_doublets": batch},
            "device": "cpu", "reps": reps, "median_s_per_seed_step": med,
            "speedup": {n: med["sequential"] / med[n] for n in fns}, "gradient_difference": diffs,
            "keeps_numbers": {n: diffs[n] <= KEEPS for n in diffs},
            "conv_share": share, "conv_gflops": conv_gflops, "matmul_gflops": matmul_gflops}


def _conv_flops(model, x) -> float:
    """Multiply-adds x 2 of the encoder's convolutions on ``x``, counted with forward hooks."""
    import torch
    flops = []

    def hook(mod, inp, out):
        flops.append(2 * out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1])
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x, "a")
    for h in hs:
        h.remove()
    return float(sum(flops))


def render(r: dict) -> str:
    m, sp, d, p = r["median_s_per_seed_step"], r["speedup"], r["gradient_difference"], r["params"]
    labels = {"sequential": f"sequential: {p['k']} models, a step each (today's runs)",
              "vmap": f"vmap: the {p['k']} models stacked, one batched step (torch.func)",
              "bf16": "bf16 autocast", "channels_last": "channels_last"}
    rows = [[labels[n], m[n] * 1e3, sp[n], "-" if n == "sequential" else f"{d[n]:.1e}"] for n in m]
    best = max((n for n in sp if n != "sequential"), key=lambda n: sp[n])
    keeps = [n for n, ok in r["keeps_numbers"].items() if ok]
    return "\n".join([
        f"One training step of the default model (smallcnn width {p['encoder_width']}, {p['image_size']} px, "
        f"{p['batch_doublets']} doublets, SE head, InfoNCE, AdamW) at one torch thread, median of {p['reps']} "
        f"interleaved repetitions of {p['steps']} steps:", "",
        C.table(["per seed and step", "ms", "speed-up", "gradient difference (relative)"], rows), "",
        f"Convolutions take {r['conv_share']:.0%} of a step, at {r['conv_gflops']:.0f} GFLOP/s against "
        f"{r['matmul_gflops']:.0f} for a 1024 x 1024 matrix product on the same thread.", "",
        f"Rounding-level gradients (a difference <= {KEEPS:g}): {', '.join(keeps) or 'none'}; "
        f"at least {FASTER - 1:.0%} faster than today's steps: "
        f"{', '.join(n for n in sp if n != 'sequential' and sp[n] >= FASTER) or 'none'}. The best candidate is "
        f"{best}, {sp[best]:.2f}x" + ("." if r["keeps_numbers"][best] else ", and it changes the numbers.")])


if __name__ == "__main__":
    C.main(sys.modules[__name__])
