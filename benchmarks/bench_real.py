"""Real photographs in the regime the paper studies: a pretrained encoder that trains (issue 21).

On Fashion Product Images (``../shared/data/fashion-product-images-small``, or
``$MCLFIR_FPI_DIR``), plan ``fpi3`` (subCategory -> baseColour -> usage + gender), **each
increment bringing its own images** (``--pools per_increment``: the catalogue's rows dealt into
one stratified pool per increment), EfficientNet-Lite0 with ImageNet weights whose **last stage
trains** on the frozen trunk's cached features (``--trainable-blocks 1``, the default), over
several seeds: finetune, frozen (the encoder of increment 1), isolated, lwf, mclfir, replay and
joint, plus mclfir on **frozen features** (``--trainable-blocks 0``: only the heads train).
Every run is ``python -m mclfir_lite demo`` itself; this script collects the results.json
files and reports mean and a 95% t-interval over seeds, the chance row and the cost.

It also measures what the trunk cache buys: optimiser steps/s of the trainable part on cached
trunk features against a full forward/backward of the whole encoder on images.

    python benchmarks/bench_real.py            # 3 seeds; writes docs/results_real.md too
    python benchmarks/run_all.py --only real

``docs/results_real.md`` is generated from this result, with the code digest it was made with.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

STRATEGIES = ("joint", "finetune", "frozen", "isolated", "lwf", "replay", "mclfir")
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = STRATEGIES
# Package code every run here goes through that no digest covers: the demo command builds the
# table, the protocol's sizes, the preset and each strategy's overrides. It is one of the result's
# sources (scope_fields), so a change to it makes this result's scoped digest differ
# (tests/test_migrate_digest.py) and it is measured again, never carried over.
DRIVES = ("mclfir_lite/cli/main.py",)
DOC = C.REPO / "docs" / "results_real.md"


def _demo(out: Path, seed: int, quick: bool, device: str, *extra) -> dict:
    from mclfir_lite.cli import main as cli
    argv = ["demo", "--dataset", "fashion-product-images", "--data-dir", str(C.FPI_DIR), "--encoder",
            "efficientnet_lite0", "--pools", "per_increment", "--seed", str(seed), "--device", device,
            "--no-progress", "--out", str(out), *(["--quick"] if quick else []), *extra]
    t0 = time.perf_counter()
    rc = cli.main(argv)
    if rc != 0:
        raise RuntimeError(f"python -m mclfir_lite {' '.join(argv)} exited {rc}")
    report = json.loads((out / "results.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def step_speed(image_size: int = 96, batch: int = 128, blocks: int = 1, repeats: int = 5) -> dict:
    """Seconds per optimiser step (one attribute head, AdamW) of the trainable part on cached trunk
    features, and of the whole encoder on images, at the same batch."""
    import torch
    from mclfir_lite.core import encoders
    from mclfir_lite.core.heads import MultiHead
    x = torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8)
    trunk, tail = encoders.split_encoder("efficientnet_lite0", blocks)
    with torch.no_grad():
        f = trunk(x)
    whole = encoders.EfficientNetLite0(pretrained=True)

    def per_step(module, inputs):
        heads = MultiHead(module.out_channels, 64)
        heads.add("a")
        opt = torch.optim.AdamW([p for p in [*module.parameters(), *heads.parameters()] if p.requires_grad], 5e-4)
        module.train()
        times = []
        for k in range(repeats + 1):
            t0 = time.perf_counter()
            loss = heads(module(inputs), "a").square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        return sorted(times[1:])[len(times[1:]) // 2]     # the median, after one warm-up step

    cached, full = per_step(tail, f), per_step(whole, x)
    return {"image_size": image_size, "batch": batch, "trainable_blocks": blocks, "trunk_output": list(f.shape[1:]),
            "seconds_per_step_cached_trunk": round(cached, 4), "seconds_per_step_whole_encoder": round(full, 4),
            "speedup": round(full / cached, 1), "torch_threads": torch.get_num_threads()}


def _ci(values: list[float]) -> dict:
    """Mean and the half-width of a 95% t-interval over seeds (None for one seed)."""
    import numpy as np
    from scipy import stats
    a = np.asarray(values, dtype=float)
    half = None if len(a) < 2 else float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return {"mean": float(a.mean()), "ci95": half, "values": [float(v) for v in a]}


def run(quick: bool = False, seed: int = 0, device: str = "cpu", out_dir: Path | None = None,
        fresh: bool = False, seeds: int = 3, **_) -> dict:
    from mclfir_lite.files import code_digest
    if not (C.FPI_DIR / "styles.csv").is_file():
        raise FileNotFoundError(f"Fashion Product Images not found at {C.FPI_DIR} (set MCLFIR_FPI_DIR)")
    runs_dir = C.bench_cache() / ("real-quick" if quick else "real")
    per_seed, frozen, walls = [], [], {}   # walls keyed by str(seed), as JSON keeps them (the page is written from either)
    for s in range(seed, seed + seeds):
        extra = ["--fresh"] if fresh else []
        C.log(f"seed {s}: {' '.join(STRATEGIES)} (last stage trained)")
        rep = _demo(runs_dir / f"seed{s}", s, quick, device, "--strategies", *STRATEGIES, *extra)
        C.log(f"seed {s}: mclfir on frozen features")
        fz = _demo(runs_dir / f"seed{s}-frozen", s, quick, device, "--strategies", "mclfir", "--trainable-blocks",
                   "0", *extra)
        per_seed.append(rep)
        frozen.append(fz)
        walls[str(s)] = {"trained": rep["wall_seconds"], "frozen_features": fz["wall_seconds"]}
    first = per_seed[0]
    rows = {}
    for name, reports, key in [*((s, per_seed, s) for s in STRATEGIES), ("mclfir (frozen features)", frozen, "mclfir")]:
        rs = [r["strategies"][key] for r in reports]
        rows[name] = {
            "final_map": {a: _ci([r["final_map"][a] for r in rs]) for a in first["attributes"]},
            "final_meanap": _ci([r["final_meanap"] for r in rs]),
            "forgetting": None if rs[0]["forgetting"] is None else _ci([r["forgetting"] for r in rs]),
            "learned_map": {a: _ci([_at_learning(r, a) for r in rs]) for a in first["attributes"]},
            "train_samples": rs[0]["train_samples"], "teacher_samples": rs[0]["teacher_samples"],
            "optimizer_steps": rs[0]["optimizer_steps"],
            "train_seconds": _ci([r["train_seconds"] for r in rs]),
            "params": rs[0]["params"], "at_chance": sorted({a for r in rs for a in r["at_chance"]}),
        }
    from mclfir_lite.lab.lab import preset_fields
    return {"code": code_digest(), "preset": preset_fields(quick),   # the presets are not in the digest
            **scope_fields(sorted(CODE_SCOPE), quick),
            "seeds": list(range(seed, seed + seeds)), "quick": quick,
            "dataset": str(C.FPI_DIR.name), "increments": first["increments"], "attributes": first["attributes"],
            "pools": "per_increment", "image_size": first["image_size"],
            "encoder": first["encoder"], "encoder_frozen_features": frozen[0]["encoder"],
            "config": {k: first["config"].get(k) for k in ("steps_per_attribute", "joint_steps", "batch_size", "lr",
                                                             "joint_lr", "ema_decay", "distill_weight",
                                                             "feature_distill_weight")},
            "chance_map": {a: _ci([r["chance_map"][a] for r in per_seed]) for a in first["attributes"]},
            "strategies": rows, "wall_seconds": walls, "step_speed": step_speed(first["image_size"])}


def scope_fields(scope, quick: bool = False, module=None) -> dict:
    """``_common.scope_fields`` with :data:`DRIVES` among the sources (``run_all.py`` and
    ``migrate_digest.py`` use it in place of the common one)."""
    from mclfir_lite.training.checkpoint import scoped_code_digest
    sources = sorted({*C.bench_sources(sys.modules[__name__]), *DRIVES})
    return {"code_scope": list(scope), "code_sources": sources, "scoped_code": scoped_code_digest(scope, quick, sources)}


def _at_learning(result: dict, attribute: str) -> float:
    """An attribute's mAP right after the increment that brought it (plasticity)."""
    j = result["attributes"].index(attribute)
    for row in result["map_matrix"]:
        if row[j] is not None:
            return row[j]
    raise ValueError(f"{attribute} was never evaluated")


def _cell(x: dict | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    m = f"{x['mean']:+.3f}" if signed else f"{x['mean']:.3f}"
    return m if x["ci95"] is None else f"{m} ± {x['ci95']:.3f}"


def render(res: dict) -> str:
    attrs = res["attributes"]
    head = ["strategy", *attrs, "MeanAP", "forgetting", "train samples", "+ teacher", "steps", "stored params"]
    body = []
    for name, r in res["strategies"].items():
        star = lambda a: "*" if a in r["at_chance"] else ""
        body.append([name, *[_cell(r["final_map"][a]) + star(a) for a in attrs], _cell(r["final_meanap"]),
                     _cell(r["forgetting"], signed=True), f"{r['train_samples']:,}", f"{r['teacher_samples']:,}",
                     f"{r['optimizer_steps']:,}", f"{r['params']['stored']:,}"])
    body.append(["*chance*", *[f"{res['chance_map'][a]['mean']:.3f}" for a in attrs], "", "", "", "", "", ""])
    plast = C.table(["strategy", *attrs],
                    [[n, *[_cell(r["learned_map"][a]) for a in attrs]] for n, r in res["strategies"].items()])
    sp = res["step_speed"]
    return "\n".join([
        C.table(head, body), "",
        f"Mean ± 95% t-interval over seeds {res['seeds']}; `*`: at chance in at least one seed. "
        "Forgetting is n/a for strategies retrained from scratch.", "",
        "mAP of each attribute right after the increment that brought it (plasticity):", "", plast, "",
        f"Trunk cache: {sp['seconds_per_step_cached_trunk']} s per step for the trainable part on cached trunk "
        f"features against {sp['seconds_per_step_whole_encoder']} s for the whole encoder on images "
        f"({sp['speedup']}x; batch {sp['batch']}, {sp['image_size']} px, {sp['torch_threads']} torch thread(s))."])


def publish(result: dict, out_dir: Path, quick: bool) -> list[Path]:
    """Write what a result of :func:`run` publishes besides results.json, whichever entry point
    made it (``python benchmarks/bench_real.py`` or ``run_all.py --only real``): ``real.json`` in
    ``out_dir``, and, for a default-size result written to the committed results folder,
    ``docs/results_real.md`` (:func:`write_doc`). Returns the paths written."""
    from mclfir_lite.files import atomic_write
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "real.json"]
    text = json.dumps(result, indent=1) + "\n"
    atomic_write(written[0], lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if not quick and out_dir.resolve() == C.RESULTS_DIR.resolve():
        written.append(write_doc(result))
    return written


def carried(res: dict) -> str:
    """The note of a result carried over a change outside its strategies' code, or ""."""
    from migrate_digest import CARRIED_FROM
    if not res.get(CARRIED_FROM):
        return ""
    return (f" (measured with code `{res[CARRIED_FROM]}`; the code and settings of its strategies are this "
            "checkout's, so `benchmarks/migrate_digest.py` carried it over)")


def write_doc(res: dict, path: Path = DOC) -> Path:
    """docs/results_real.md from a result of :func:`run` (the only way that page is written)."""
    from mclfir_lite.files import atomic_write
    s = res["strategies"]
    ft, mc, fz = s["finetune"], s["mclfir"], s["mclfir (frozen features)"]
    cfg = res["config"]
    text = f"""# Results on real photographs: Fashion Product Images (Small)

<!-- generated by benchmarks/bench_real.py from benchmarks/results/real.json: do not edit by hand -->
Code digest **`{res['code']}`** (`mclfir_lite.files.code_digest()`){carried(res)}; seeds {res['seeds']};
{'quick' if res['quick'] else 'default'} preset{'' if res.get('preset') else ' (not recorded: older than the presets leaving the digest)'}. Regenerate with `python benchmarks/bench_real.py`.

**Data.** The real-image subset beside the checkout (`../shared/data/fashion-product-images-small`:
9,583 Myntra product photos, 60x80 px), prepared once by the package's preparer (values with fewer
than 150 images dropped). Plan: {' -> '.join(' + '.join(g) for g in res['increments'])}. **Each
increment brings its own images** (`--pools per_increment`): a catalogue labels every photo with
every attribute, so its rows are dealt into one pool per increment, stratified by value, and an
attribute is labelled on its own pool only, as FashionAI -> DeepFashion -> DARN do in the paper.

**Encoder.** {res['encoder']['used']}. The first {7 - res['encoder']['trainable_blocks']} of its 7
stages are frozen and their outputs cached once per image (keyed by the weights, the image bytes
and size, and the cut); the last stage, its 1x1 head convolution and the heads train. Images at
{res['image_size']} px, {cfg['steps_per_attribute']} steps per attribute (joint: {cfg['joint_steps']}
mixed steps per increment), batch {cfg['batch_size']} doublets, learning rate {cfg['lr']}
(joint: {cfg.get('joint_lr') or cfg['lr']}). No
pixel augmentation: a flipped image would need the trunk again (the cached features are of the
unflipped images). The frozen-feature row (`--trainable-blocks 0`) trains the heads only.

## Final mAP after the last increment

{render(res)}

## What it shows

* **finetune forgets visibly**: {_cell(ft['forgetting'], True)} average forgetting; its first attribute
  ends at {_cell(ft['final_map'][res['attributes'][0]])} after {_cell(ft['learned_map'][res['attributes'][0]])} right after learning it.
* **mclfir keeps it**: forgetting {_cell(mc['forgetting'], True)}, MeanAP {_cell(mc['final_meanap'])}
  against finetune's {_cell(ft['final_meanap'])} and joint's {_cell(s['joint']['final_meanap'])}.
* **Training the last stage against frozen features**: mclfir ends at {_cell(mc['final_meanap'])} with
  the last stage trained, {_cell(fz['final_meanap'])} on frozen features.
* **Why finetune forgets here**: the last stage is shared by every attribute; training it for
  colour, then usage and gender, moves the features the earlier heads read, and nothing pulls
  them back. mclfir's EMA teacher does.

Wall time per seed (s): {res['wall_seconds']}.
"""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--fresh", action="store_true")
    a = ap.parse_args()
    C.set_threads(a.threads)
    result = run(quick=a.quick, seed=a.seed, seeds=a.seeds, fresh=a.fresh)
    print(render(result))
    print("wrote " + " and ".join(str(p) for p in publish(result, C.RESULTS_DIR / ("quick" if a.quick else ""), a.quick)))
