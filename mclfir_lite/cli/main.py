"""Command line: ``python -m mclfir_lite demo [--quick] [--seed N] [--strategies ...] [--out DIR]``.

The demo runs the continual protocol on a dataset (SynthFashion by default, offline),
for each strategy, and writes ``DIR/results.json`` plus PNG figures. Each strategy
checkpoints after every increment under ``DIR/checkpoints``; running the same command
again resumes where it stopped (``--fresh`` starts over).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import secrets
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import SEED_MAX, Config
from ..methods import STRATEGIES, check_strategies
from ..training.runner import ContinualRunner
from ..files import RESULTS_FORMAT, atomic_write_file, create_exclusive, lock_folder, os_message, refuse_link, results_maker
from ..training.checkpoint import difference_text, run_identity
from ..data.table import PLANS, QUERY_FRACTION, load_images, make_protocol, parse_increments
from ..data.imagedata import open_images
from ..core.metrics import chance_map_per_attribute
from ..data.datasets import DEFAULT_PLAN, DATASETS, fingerprint, load_dataset, per_increment_pools
from ..training import distributed as dist
from ..config import PRESETS, PRETRAINED, preset_config
from ..training.recipes import RECIPES, get_recipe, recipe_config

# the demo's strategies: the upper bound, the cost reference, the baselines and MCL-FIR as described
DEFAULT_STRATEGIES = ("joint", "retrain", "finetune", "frozen", "isolated", "lwf", "ewc", "replay", "mclfir")


# efficientnet_lite0 trains its last stage(s) on cached trunk features by default (issue 21)
DEFAULT_TRAINABLE_BLOCKS = 1

RESULTS = "results.json"
FIGURES = ("forgetting.png", "accuracy_matrices.png", "neighbours.png")

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mclfir_lite", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the continual protocol and write results.json and figures")
    d.add_argument("--quick", action="store_true", help="small and fast (also set by MCLFIR_QUICK=1)")
    d.add_argument("--seed", type=int, default=0, help=f"0..{SEED_MAX} (default: 0)")
    d.add_argument("--strategies", nargs="+", default=None, metavar="NAME",
                   help=f"any of {', '.join(STRATEGIES)} (default: {' '.join(DEFAULT_STRATEGIES)})")
    d.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    d.add_argument("--dataset", default="synthfashion",
                   help=f"{', '.join(DATASETS)} or table (default: synthfashion)")
    d.add_argument("--data-dir", default=None,
                   help="a real dataset's unpacked folder (see data_scripts/README.md), or a table CSV")
    d.add_argument("--increments", default=None,
                   help="a plan name (synth3, synth6, fpi3, ...) or 'a,b;c;d' (default: the dataset's plan)")
    d.add_argument("--encoder", default=None,
                   help="smallcnn (default), efficientnet_lite0, or open_clip:<model>:<pretrained>")
    d.add_argument("--frozen-encoder", action="store_true",
                   help="freeze the (pretrained) encoder: its features are computed once, cached, "
                        "and only the heads train")
    d.add_argument("--trainable-blocks", type=int, default=None, metavar="N",
                   help="efficientnet_lite0: train its last N of 7 stages on the frozen trunk's features, "
                        f"computed once and cached (default {DEFAULT_TRAINABLE_BLOCKS}; 0 = frozen features, "
                        "heads only, as --frozen-encoder)")
    d.add_argument("--steps", type=int, default=None, help="optimiser steps per attribute per increment")
    d.add_argument("--joint-steps", type=int, default=None,
                   help="joint (the upper bound): mixed steps per increment (default: the preset's; notebook 07 measures how close to converged it is)")
    d.add_argument("--retrain-steps", type=int, default=None,
                   help="retrain (the cost reference): mixed steps per fresh model (default: the preset's)")
    d.add_argument("--joint-lr", type=float, default=None,
                   help="joint and retrain: their own learning rate (default: the preset's, tuned on validation data)")
    d.add_argument("--ema-decay", type=float, default=None, help="mclfir: the EMA teacher's decay")
    d.add_argument("--ema-every", type=int, default=None, help="mclfir: update the EMA teacher every N steps")
    d.add_argument("--pools", default=None, choices=["per_increment", "shared"],
                   help="per_increment: each increment brings its own images (SynthFashion's default; a real "
                        "dataset's rows are dealt into one pool per increment, stratified by value); shared: "
                        "every increment labels the same images (a real dataset's default)")
    d.add_argument("--domain-shift", action="store_true",
                   help="SynthFashion: render each increment's images in its own visual domain")
    d.add_argument("--image-size", type=int, default=None)
    d.add_argument("--n-images", type=int, default=None, help="SynthFashion images to render")
    d.add_argument("--loss", default=None, choices=["infonce", "ntxent", "triplet"],
                   help="the metric loss (default: infonce; released and --recipe paper use ntxent)")
    d.add_argument("--device", default="cpu", help="cpu (default) or cuda: the same code on a GPU "
                   "(under torchrun: gloo on the CPU, NCCL with one GPU per process; see docs/distributed.md)")
    d.add_argument("--recipe", default=None, choices=sorted(RECIPES),
                   help="a published set-up (paper: ResNet-50 to layer3, attention heads, the released "
                        "hyper-parameters, AMP on CUDA; see mclfir_lite/training/recipes.py); --steps, --image-size and "
                        "the other size flags still win; an --encoder or --loss other than the recipe's is refused")
    d.add_argument("--lazy-images", action="store_true",
                   help="read image files when a batch needs them instead of all into memory (bounded "
                        "memory for large real datasets; see mclfir_lite/data/imagedata.py)")
    d.add_argument("--fresh", action="store_true", help="ignore and overwrite existing checkpoints")
    d.add_argument("--strict", action="store_true",
                   help="real datasets: stop on any problem the preparer reports (a skipped line, a missing "
                        "or corrupt image) instead of leaving the row out")
    d.add_argument("--rebuild", action="store_true",
                   help="render or prepare the dataset again, and read its images again, even when they "
                        "are cached (caches are also checked on every load and rebuilt when damaged)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    from . import doctor
    doctor.add_arguments(sub.add_parser("doctor", help="is this environment ready? versions, cache, GPU, expected time"))
    from ..retrieval import composed
    from ..retrieval import crossmodal
    crossmodal.add_arguments(sub.add_parser("crossmodal", help="continual text<->image retrieval: compatibility, backfilling"))
    composed.add_arguments(sub.add_parser("composed", help="composed queries (image + text): static fusions vs dynamic routing"))
    from ..lab import labprep
    labprep.add_arguments(sub.add_parser("prepare-lab", help="fill the cache before class: run every notebook once"))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    args.finished, args.current = [], None  # what is done, for the message after Ctrl-C
    try:
        if args.command == "demo":
            demo(args)
        elif args.command == "prepare-lab":
            from ..lab import labprep
            return labprep.main(args)
        elif args.command == "doctor":
            from . import doctor
            return doctor.main(benchmark=not args.no_benchmark, seconds=args.bench_seconds)
        elif args.command in ("crossmodal", "composed"):
            from ..retrieval import composed, crossmodal
            {"crossmodal": crossmodal, "composed": composed}[args.command].run(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {_progress_line(args)}; run the same command again to resume from there",
              file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # FileNotFoundError, PermissionError, NotADirectoryError, disk full, ...
        print(f"error: {os_message(err)}", file=sys.stderr)
        return 2
    return 0


def _progress_line(args) -> str:
    done = [f"{s} (all increments)" for s in args.finished]
    r = args.current
    if r is not None and r.strategy not in args.finished:
        done.append(f"{r.strategy} ({r.done}/{len(r.increments)} increments checkpointed)")
    return "finished " + ", ".join(done) if done else "nothing was finished yet"


def validate_demo_args(args) -> None:
    """Check every demo argument before any data is loaded; raise ValueError (or an OSError
    naming the path) for a zero, negative, empty, ignored or unusable value."""
    for flag in ("steps", "image_size", "n_images"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer, got {v}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.seed > SEED_MAX:
        raise ValueError(f"--seed must be in 0..{SEED_MAX} (2**32 - 1), got {args.seed}")
    if not str(args.out).strip():
        raise ValueError("--out is empty: give a folder (e.g. --out runs/demo); an empty value would mean "
                         "the current folder")
    if args.data_dir is not None and not str(args.data_dir).strip():
        raise ValueError("--data-dir is empty: give the dataset's folder or a table CSV")
    if args.dataset == "table" and args.increments is None:
        raise ValueError("--dataset table needs --increments: the table's attribute columns, as 'a,b;c' "
                         "(a plan is for the datasets this package knows)")
    if args.increments is not None and not args.increments.strip(" ;,"):
        raise ValueError(f"--increments {args.increments!r} is empty: give a plan name (e.g. synth3) "
                         "or attributes as 'a,b;c'")
    for flag, v in (("--joint-steps", args.joint_steps), ("--retrain-steps", args.retrain_steps),
                    ("--ema-every", args.ema_every)):
        if v is not None and v < 1:
            raise ValueError(f"{flag} must be a positive integer, got {v}")
    if args.joint_lr is not None and not (math.isfinite(args.joint_lr) and args.joint_lr > 0):
        raise ValueError(f"--joint-lr must be a positive number, got {args.joint_lr}")
    if args.ema_decay is not None and not 0.0 <= args.ema_decay <= 1.0:
        raise ValueError(f"--ema-decay must be in [0, 1], got {args.ema_decay}")
    if args.strategies is not None:
        check_strategies(args.strategies)
    twice = sorted({s for s in (args.strategies or []) if args.strategies.count(s) > 1})
    if twice:
        raise ValueError(f"--strategies lists {twice} more than once")
    if args.dataset not in (*DATASETS, "table"):
        raise ValueError(f"unknown dataset {args.dataset!r}; choose from {list(DATASETS) + ['table']}")
    real = args.dataset != "synthfashion"
    if not real:
        for flag, given in (("--data-dir", args.data_dir is not None), ("--strict", args.strict)):
            if given:
                raise ValueError(f"{flag} does not apply to synthfashion (it is rendered, not read): it would be "
                                 "ignored; pass --dataset NAME for a real dataset")
    elif args.n_images is not None:
        raise ValueError(f"--n-images applies to synthfashion only; {args.dataset} uses every image it has")
    elif args.dataset == "table" and args.strict:
        raise ValueError("--strict applies to the real datasets' preparers; a table CSV is read "
                         "as it is (and any problem in it is already an error)")
    recipe = get_recipe(args.recipe) if args.recipe else None
    strategies = args.strategies or ([recipe["strategy"]] if recipe else list(DEFAULT_STRATEGIES))
    _check_options_apply(args, recipe, strategies, real)
    if args.data_dir is not None:
        path = Path(args.data_dir).expanduser()
        if path.exists() and not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise PermissionError(13, "--data-dir is not readable (permission denied)", str(path))
    _check_device(args.device)
    if args.encoder is not None and not recipe:
        _check_encoder(args.encoder)
    if args.trainable_blocks is not None:
        from ..core.encoders import check_trainable_blocks
        if args.recipe:
            raise ValueError("--trainable-blocks applies to --encoder efficientnet_lite0, not to --recipe "
                             f"{args.recipe} (its backbone trains whole)")
        check_trainable_blocks(args.encoder or "smallcnn", args.trainable_blocks)
        if args.frozen_encoder and args.trainable_blocks != 0:
            raise ValueError(f"--frozen-encoder trains no encoder stage, --trainable-blocks {args.trainable_blocks} "
                             "trains some: give one of them (--frozen-encoder = --trainable-blocks 0)")
    out = Path(args.out)
    _check_writable(out, "--out")
    _check_writable(out / "checkpoints", "--out")
    for path in [out / n for n in (".lock", RESULTS, *FIGURES)] + [out / "checkpoints" / f"{s}.pt" for s in strategies]:
        refuse_link(path, "--out")   # nothing is written through a link planted in --out
    _previous_results(out / RESULTS)  # one this package did not write is refused, never overwritten


def _check_options_apply(args, recipe: dict | None, strategies: list[str], real: bool) -> None:
    """Refuse an option that would be silently ignored or overridden by the recipe, the
    strategies or the dataset (results.json must record what ran)."""
    from ..methods import STRATEGY_CLASSES
    if recipe:
        if args.encoder is not None and args.encoder != recipe["encoder"]:
            raise ValueError(f"--encoder {args.encoder} conflicts with --recipe {args.recipe}, which runs "
                             f"{recipe['encoder']} (its published backbone): drop --encoder, or drop --recipe "
                             "to choose the encoder")
        if args.loss is not None and args.loss != recipe["loss"]:
            raise ValueError(f"--loss {args.loss} conflicts with --recipe {args.recipe}, whose loss is "
                             f"{recipe['loss']}: drop --loss, or drop --recipe to choose the loss")
    if args.loss is not None:
        own = [s for s in strategies if STRATEGY_CLASSES[s].config_overrides.get("loss", args.loss) != args.loss]
        if own:
            theirs = STRATEGY_CLASSES[own[0]].config_overrides
            raise ValueError(f"--loss {args.loss} does not apply to {', '.join(own)}: it uses its own loss "
                             f"({theirs['loss']}, temperature {theirs.get('temperature')}, as the released code); "
                             f"drop --loss, or run {', '.join(own)} in a command of its own")
    if real:
        if args.domain_shift:   # (--pools applies: a catalogue's rows are dealt into per-increment pools)
            raise ValueError("--domain-shift applies to synthfashion only (it decides how images are rendered); "
                             f"{args.dataset} has its own images, so it would be ignored: drop --domain-shift")
    for flag, value, needs in (("--joint-steps", args.joint_steps, ("joint",)),
                               ("--retrain-steps", args.retrain_steps, ("retrain",)),
                               ("--joint-lr", args.joint_lr, ("joint", "retrain")),
                               ("--ema-every", args.ema_every, ("mclfir",)),
                               ("--ema-decay", args.ema_decay, ("mclfir",))):
        if value is not None and not set(needs) & set(strategies):
            raise ValueError(f"{flag} applies to {' and '.join(needs)} only, which {'is' if len(needs) == 1 else 'are'} "
                             f"not among the strategies ({' '.join(strategies)}), so it would be ignored: add "
                             f"{needs[0]} to --strategies or drop {flag}")


def _check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device torch knows; use cpu, cuda or cuda:N "
                         "(mps on an Apple GPU)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device!r}: torch sees no CUDA GPU here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device!r}: there are {torch.cuda.device_count()} CUDA GPU(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device!r}: torch sees no Apple GPU (MPS) here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device!r}: this package runs on cpu, cuda or mps")


def _check_encoder(name: str) -> None:
    if not name.strip():
        raise ValueError("--encoder is empty: use smallcnn, efficientnet_lite0 or open_clip:<model>:<pretrained>")
    if name in ("smallcnn", "efficientnet_lite0"):
        return
    parts = name.split(":", 2)
    if parts[0] != "open_clip" or len(parts) != 3 or not parts[1]:
        raise ValueError(f"--encoder {name!r}: use smallcnn, efficientnet_lite0 or open_clip:<model>:<pretrained>")
    from ..retrieval.zeroshot import open_clip_problem   # a typo is named here, not taken for missing weights
    problem = open_clip_problem(parts[1], parts[2])
    if problem:
        raise ValueError(f"--encoder {name!r}: {problem}")


def _check_writable(folder: Path, flag: str) -> None:
    """Create ``folder`` if needed and write a probe file in it, so that a bad --out fails now, not
    after training. OSErrors propagate (main prints them as one line with the path)."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, f"{flag} needs a folder, but this is a file", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    # an unpredictable name, created exclusively without following links: a planted file or
    # link is never opened, let alone truncated
    probe = folder / f".write-probe-{secrets.token_hex(8)}"
    try:
        os.close(create_exclusive(probe, 0o600))
    except OSError as err:
        raise type(err)(err.errno, f"{flag}: cannot write in this folder ({err.strerror})", str(folder)) from None
    probe.unlink()


def demo(args) -> dict:
    """Run the demo: check the arguments, lock ``--out``, then :func:`run_demo`."""
    validate_demo_args(args)
    vars(args).setdefault("finished", [])  # (main sets these; a caller of demo() need not)
    vars(args).setdefault("current", None)
    if int(os.environ.get("RANK", "0")) != 0:   # under torchrun, rank 0 holds the lock for the whole group
        return run_demo(args)
    with lock_folder(args.out, "demo run"):
        return run_demo(args)


def run_demo(args) -> dict:
    from ..settings import quick_mode
    quick = args.quick or quick_mode()
    preset = demo_preset(args, quick)
    args.device = dist.init(args.device)   # under torchrun: join the group (a no-op otherwise)
    recipe = get_recipe(args.recipe) if args.recipe else None
    strategies = check_strategies(args.strategies or ([recipe["strategy"]] if recipe else list(DEFAULT_STRATEGIES)))
    size = _given(args.image_size, (recipe or preset)["image_size"])
    progress = not args.no_progress and dist.is_main()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    plan = _given(args.increments, DEFAULT_PLAN.get(args.dataset) or preset["increments"])
    with dist.main_first():   # rank 0 fills the render and image caches, then the others read them
        table = load_dataset(args.dataset, args.data_dir, n=_given(args.n_images, preset["n_images"]), size=size,
                             seed=args.seed, increments=plan if args.dataset == "synthfashion" else None,
                             pools=args.pools or "per_increment", domain_shift=args.domain_shift, strict=args.strict,
                             rebuild=args.rebuild and dist.is_main(), progress=progress,
                             **({"style": preset["style"]} if args.dataset == "synthfashion" else {}))
        images = open_images(table, size) if args.lazy_images else \
            load_images(table, size, progress=progress, rebuild=args.rebuild and dist.is_main())
    increments = parse_increments(plan, table.attributes) if not getattr(table, "removed_attributes", None) \
        else _parse_explained(plan, table)
    # SynthFashion renders each increment's own images unless --pools shared. A real catalogue labels
    # every image with every attribute (the shared pools, its default): --pools per_increment deals
    # its rows into one pool per increment, so that each increment brings its own images.
    pools = args.pools or ("per_increment" if args.dataset == "synthfashion" else "shared")
    if args.dataset != "synthfashion" and pools == "per_increment":
        table = per_increment_pools(table, increments, seed=args.seed)
    caps = {"max_queries": preset["max_queries"], "max_candidates": preset["max_candidates"],
            "query_fraction": QUERY_FRACTION}
    protocol = make_protocol(table, seed=args.seed, attributes=[a for g in increments for a in g], **caps)
    overrides = {k: v for k, v in (("steps_per_attribute", args.steps), ("joint_steps", args.joint_steps),
                                   ("retrain_steps", args.retrain_steps),
                                   ("joint_lr", args.joint_lr),
                                   ("ema_decay", args.ema_decay), ("ema_every", args.ema_every)) if v is not None}
    if recipe:
        config = recipe_config(args.recipe, **overrides, seed=args.seed, device=args.device,
                               encoder_trainable=not args.frozen_encoder)
    else:
        config = Config(**{**preset_config(preset), **overrides}, encoder=args.encoder or "smallcnn",
                        loss=args.loss or "infonce", seed=args.seed, encoder_trainable=not args.frozen_encoder,
                        device=args.device, trainable_blocks=trainable_blocks(args))
    asked_encoder = args.encoder or ("smallcnn" if not recipe else f"{config.encoder} (--recipe {args.recipe})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoints"
    if args.fresh and dist.is_main():
        for s in strategies:
            (ckpt / f"{s}.pt").unlink(missing_ok=True)
    dist.barrier()
    # with the runner's own digests of images, labels and protocol rows: the checkpoint fingerprint
    data_fp = {"dataset": args.dataset, "data": fingerprint(table), **caps}
    # what this run is, as a whole: a results.json already in --out is added to only when it is the same run
    identity = run_identity(config, increments, images.shape, table.labels, protocol,
                            {**data_fp, "processes": dist.world_size()})
    results_path = out / RESULTS
    earlier = _earlier_results(results_path, identity, strategies, args.fresh)
    features, encoder = None, None
    if config.trainable_blocks is not None:
        # A pretrained encoder's first stages stay frozen: their outputs are computed once per image
        # (cached on disk, keyed by the weights, the image bytes and size, and the cut), and only the
        # last stage(s) and the heads train on them (mclfir_lite.core.encoders.Trunk / Tail).
        from ..core.encoders import split_encoder
        from ..retrieval.features import encode_dataset, feature_path, feature_key
        encoder = split_encoder(args.encoder, config.trainable_blocks)[0].to(config.device)
        with dist.main_first():
            features = encode_dataset(encoder, images, [data_fp["data"]], progress=progress)
        data_fp["features"] = f"cached: {encoder.description}"
        trunk_cache = str(feature_path(feature_key(encoder, images, [data_fp["data"]])))
    elif args.frozen_encoder and not recipe and config.encoder != "smallcnn":
        # A frozen pretrained encoder gives the same features at every step: compute them once
        # (cached on disk) and train the heads on them. (A random smallcnn is re-seeded per model,
        # so it keeps running on images.)
        from ..core.encoders import build_encoder
        from ..retrieval.features import encode_dataset
        encoder = build_encoder(config.encoder, trainable=False).to(config.device)
        with dist.main_first():
            features = encode_dataset(encoder, images, [data_fp["data"]], progress=progress)
        data_fp["features"] = f"cached: {encoder.description}"
    command = "python -m mclfir_lite " + " ".join(getattr(args, "argv", []))
    report = {
        "format": RESULTS_FORMAT, "made_by": "demo", "command": command,
        "commands": [*(earlier or {}).get("commands", []), command], "run": identity,
        "version": __version__, "dataset": args.dataset, "data": data_fp, "seed": args.seed, "quick": quick,
        "image_size": size, "pools": pools, "processes": dist.world_size(), "config": dataclasses.asdict(config),
        "increments": increments, "attributes": [a for g in increments for a in g], "protocol": caps,
        "n_queries": {a: int(len(protocol[a].query)) for a in protocol},
        "chance_map": chance_map_per_attribute(table.labels, protocol, [a for g in increments for a in g],
                                               config.no_relevant),
        "map_convention": f"mAP over each attribute's queries; a query with no relevant candidate counts as "
                          f"{'AP 0' if config.no_relevant == 'zero' else 'nothing (left out)'}; MeanAP "
                          "(final_meanap) is the query-weighted mean over attributes",
        "strategies": {s: r for s, r in (earlier or {}).get("strategies", {}).items() if s not in strategies},
    }
    if (earlier or {}).get("encoder"):
        report["encoder"] = earlier["encoder"]
    runners = {}
    for s in strategies:
        t0 = time.perf_counter()
        runner = ContinualRunner(s, images, table.labels, protocol, increments, config,
                                 checkpoint_dir=ckpt, progress=progress, data_fingerprint=data_fp,
                                 features=features)
        args.current = runner
        res = runner.run(resume=True)
        args.finished.append(s)
        if "encoder" not in report:
            report["encoder"] = encoder_used(asked_encoder, runner.model.encoder_for(increments[0][0])
                                             if config.trainable_blocks is not None else
                                             encoder or runner.model.encoder_for(increments[0][0]))
            if config.trainable_blocks is not None:
                report["encoder"].update(trainable_blocks=config.trainable_blocks, trunk=encoder.description,
                                         trunk_parameters=sum(p.numel() for p in encoder.parameters()),
                                         trunk_cache=trunk_cache)
        runners[s] = runner
        report["strategies"][s] = res
        if not dist.is_main():
            continue
        _write_json(results_path, report)  # after every strategy: nothing is lost on a crash
        print(f"{s:>9}: MeanAP {res['final_meanap']:.3f}  forgetting {_fmt(res['forgetting'])}  "
              f"BWT {_fmt(res['bwt'])}  samples {res['train_samples']:>8}  "
              f"train {res['train_seconds']:.0f}s (total {time.perf_counter() - t0:.0f}s)", flush=True)
    if dist.is_main():
        from ..lab.figures import write_figures
        write_figures(report, runners, images, table, protocol, out)
        print(summary_table(report))
        print(f"wrote {results_path}")
    dist.shutdown()
    return report


def demo_preset(args, quick: bool) -> dict:
    """The preset a demo runs at: the lesson's, with :data:`PRETRAINED`'s overlay for a pretrained
    trunk trained in part (larger images, fewer steps); any other pretrained encoder trains joint
    at the continual methods' rate too (joint's own rate was tuned for a smallcnn from scratch)."""
    preset = PRESETS["quick" if quick else "default"]
    overlay = PRETRAINED["quick" if quick else "default"]
    if trainable_blocks(args) is not None:
        return {**preset, **overlay}
    if (args.encoder or "smallcnn") != "smallcnn" and not args.recipe:
        return {**preset, "joint_lr": overlay["joint_lr"]}
    return dict(preset)


def trainable_blocks(args) -> int | None:
    """How many of efficientnet_lite0's last stages train on cached trunk features: ``--trainable-blocks``,
    else 0 with ``--frozen-encoder``, else :data:`DEFAULT_TRAINABLE_BLOCKS`; None for other encoders
    (they run whole on images, or frozen as before)."""
    if args.encoder != "efficientnet_lite0" or args.recipe:
        return None
    if args.trainable_blocks is not None:
        return args.trainable_blocks
    return 0 if args.frozen_encoder else DEFAULT_TRAINABLE_BLOCKS


def _given(value, default):
    """``value`` unless it is None (0 and "" are values, checked by :func:`validate_demo_args`)."""
    return default if value is None else value


def _parse_explained(plan, table):
    """:func:`parse_increments`, but an attribute the preparer removed is named as such
    (with the preparer's reason), not as an unknown attribute."""
    try:
        return parse_increments(plan, table.attributes)
    except ValueError:
        asked = [a for g in (PLANS[plan] if plan in PLANS else
                             [g.split(",") for g in plan.split(";")]) for a in g]
        gone = {a.strip(): table.removed_attributes[a.strip()] for a in asked if a.strip() in table.removed_attributes}
        if not gone:
            raise
        raise ValueError("attribute(s) removed when the dataset was prepared: " + "; ".join(
            f"{a!r} ({why})" for a, why in gone.items()) + "; choose others with --increments "
            f"(left: {table.attributes})") from None


def encoder_used(asked: str, encoder) -> dict:
    """What results.json says about the encoder: the one asked for (``"... (--recipe NAME)"``
    when a recipe chose it), the one that ran with its weights (``used``: "trained from
    scratch", "random init" or where the pretrained weights came from), and why they differ
    (``Encoder.fallback``, set by :func:`mclfir_lite.core.encoders.build_encoder`, or pretrained
    weights that were not found)."""
    used = getattr(encoder, "description", "") or type(encoder).__name__
    why = getattr(encoder, "fallback", None)
    if not why and used.startswith("resnet50_layer3") and "random init" in used:
        from ..core.encoders import resnet50_weight_files
        why = ("torchvision's ImageNet weights for ResNet-50 are not in the torch hub cache ("
               + ", ".join(str(p) for p in resnet50_weight_files()) + "); nothing is downloaded, so the backbone "
               "started from random weights (put the file there to use them)")
    return {"asked": asked, "used": used, "why": why or "as asked"}


def _fmt(x):
    return "  n/a" if x is None else f"{x:+.3f}"


def _write_json(path: Path, obj) -> None:
    """Valid JSON, always: a value that is not a finite number (NaN, inf) is written as null
    and named, with the reason, in a ``notes`` list."""
    notes: list[str] = []
    clean = json_safe(obj, notes)
    if notes and isinstance(clean, dict):
        clean["notes"] = [*clean.get("notes", []), *notes]
    text = json.dumps(clean, indent=1, allow_nan=False)
    atomic_write_file(path, lambda f: f.write(text.encode("utf-8")))


def json_safe(obj, notes: list, where: str = ""):
    """``obj`` with every non-finite float replaced by None, each named in ``notes``."""
    if isinstance(obj, dict):
        return {k: json_safe(v, notes, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, notes, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        notes.append(f"{where} was {float(obj)} (no value: not a finite number), written as null")
        return None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _previous_results(path: Path) -> dict | None:
    """The results.json already in --out when this package wrote it (None: there is none).
    One it did not write is refused: it is never overwritten."""
    if not path.exists():
        return None
    refuse = lambda why: ValueError(f"--out {path.parent} already holds a results.json that the demo (mclfir_lite) "
                                    f"did not write ({why}); it is never overwritten: use another --out, or move it away")
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise refuse(f"it cannot be read as JSON: {type(err).__name__}") from None
    maker = results_maker(old)
    if maker != "demo":   # another command's (even with --fresh: its checkpoints share our names), or none of ours
        raise refuse(f"the {maker} command wrote it" if maker else "it has no mclfir_lite run in it")
    if not isinstance(old.get("strategies"), dict):
        raise refuse("its field strategies is not of the kind mclfir_lite writes")
    run = old.get("run", {})   # the fields later steps read, with the types this package writes
    wrong = [k for k, ok in (("run", isinstance(run, dict)), ("commands", isinstance(old.get("commands", []), list)),
                             ("run.hash", not isinstance(run, dict) or isinstance(run.get("hash", ""), str)),
                             ("run.fields", not isinstance(run, dict) or isinstance(run.get("fields", {}), dict)))
             if not ok]
    if wrong:
        raise refuse(f"its field(s) {', '.join(wrong)} are not of the kind mclfir_lite writes")
    return old


def _earlier_results(path: Path, identity: dict, strategies: list[str], fresh: bool) -> dict | None:
    """What of the results.json in --out this command keeps: the whole of it when it is the
    same run (same data, seed, plan, config and code), so that a second command adds its
    strategies; nothing with --fresh otherwise; and a refusal naming what differs without."""
    old = _previous_results(path)
    if old is None or (old.get("run") or {}).get("hash") == identity["hash"]:
        return old
    if fresh:
        return None
    kept = list(old["strategies"])
    why = difference_text(old.get("run"), identity) if old.get("run") else \
        f"it was written by mclfir_lite {old.get('version', '?')}, which did not record the run"
    raise ValueError(f"--out {path.parent}: its results.json was made with a different configuration ({why}); "
                     f"adding to it would mix two runs{' (it holds ' + ', '.join(kept) + ')' if kept else ''}: "
                     "use another --out, or --fresh to replace it")


def summary_table(report: dict) -> str:
    """A markdown table of the strategies in a results.json report, with a chance row
    (:func:`mclfir_lite.lab.report.strategy_table`)."""
    from ..lab.report import over_seeds, strategy_table
    return strategy_table(over_seeds({s: [r] for s, r in report["strategies"].items()}))
