"""Run the benchmarks and write ``results.json`` and ``RESULTS.md``.

    make benchmarks                                 # everything, default sizes
    .venv/bin/python benchmarks/run_all.py --quick  # smoke run, a few minutes
    .venv/bin/python benchmarks/run_all.py --only map --only throughput

Each benchmark is ``benchmarks/bench_<name>.py`` with ``run(quick, seed, ...) -> dict`` and
``render(result) -> str`` (markdown). The results are written after *each* benchmark
(nothing is lost if a later one fails or is interrupted) into ``benchmarks/results/``
(``benchmarks/results/quick/`` for ``--quick``, so a smoke run never replaces real
numbers). Entries of benchmarks not run this time are kept from the previous file, each
with its own date, seed, mode and machine. See ``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ORDER = ["map", "tuning", "strategies", "baselines", "sensitivity", "cost_curves", "ema_teacher", "ema_regimes", "doublets_vs_triplets", "throughput", "datapath", "loop", "speedups", "threads", "real"]
TITLES = {
    "map": "Vectorised mAP vs the reference loop",
    "tuning": "Every method tuned alike: the same validation protocol and number of configurations",
    "strategies": "Every strategy over seeds and orders: chance, the upper bound and its budget, the orderings, the cost claim",
    "baselines": "The tuned-alike baselines (ewc, replay) against mclfir on the same seeds and orders, paired",
    "sensitivity": "Counterfactual sensitivity: how far each head moves when one attribute, or only the nuisances, change",
    "cost_curves": "Accuracy against cost: joint, retrain, mclfir and lwf at four budgets each; the cost to 95% of joint at its largest budget",
    "ema_teacher": "EMA teacher vs LwF's frozen snapshot, over seeds, at 1x and 4x the increment length",
    "ema_regimes": "Where an EMA teacher could differ from a snapshot: five increments carried, per epoch, high lr, short increments",
    "doublets_vs_triplets": "InfoNCE doublets vs tuned semi-hard triplets at equal steps, over seeds",
    "throughput": "Throughput: feature extraction, feature cache, notebooks",
    "datapath": "Lazy image data path: images/s with 0, 1, 2 workers, and peak RSS against the number of images",
    "loop": "Training-loop overhead against a bare forward + backward + step",
    "speedups": "A faster training step? Seeds batched with vmap, bf16, channels_last, against the 90-minute benchmark",
    "threads": "The same runs at 1 and 2 torch threads: the tolerance beside every table",
    "real": "Real photographs: a pretrained encoder's last stage trained on cached trunk features, over seeds",
}


def parse(argv=None):
    p = argparse.ArgumentParser(description="Run the mclfir_lite benchmarks (see benchmarks/README.md).")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every code path (minutes)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"run only this benchmark (repeatable, or comma-separated): {', '.join(ORDER)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N], passed to the benchmarks")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's choice). On a busy shared machine --threads 1 is "
                        "often much faster")
    p.add_argument("--notebooks", choices=["both", "quick", "default", "none"], default="both",
                   help="throughput: notebook modes to time (default both; --quick times none)")
    p.add_argument("--fresh", action="store_true",
                   help="retrain cached runs (strategies, ema_teacher) instead of reusing the run ledger or the "
                        "benchmarks' cache")
    p.add_argument("--no-ledger", action="store_true",
                   help="neither read nor write the run ledger (<out>/ledger): every run not in the cache is trained")
    p.add_argument("--prune-ledger", action="store_true",
                   help="only delete the run ledger's entries made by other numeric code, and exit")
    p.add_argument("--strategies", default=None, metavar="A,B,...",
                   help="strategies: run only these strategies (comma-separated; default every one)")
    p.add_argument("--joint-doubled-seeds", type=int, default=None, metavar="N",
                   help="strategies: the converged-upper-bound check (joint at twice its budget) on the first N "
                        "seeds only (default every seed; it is the benchmark's longest run)")
    p.add_argument("--joint-budgets", default=None, metavar="M,M,...",
                   help="strategies: joint's budget curve, at these multiples of its budget (2 is always run; "
                        "e.g. 2,4), on the --joint-doubled-seeds seeds")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results, or "
                                                 "benchmarks/results/quick with --quick)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--readme", action="store_true",
                   help="only rewrite the README's generated sections (<!-- NAME:start --> ... :end -->) from "
                        "results.json: the numbers of a result measured with this code, or why they are not quoted")
    args = p.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {ORDER}")
    args.names = [n for n in ORDER if n in names] if names else list(ORDER)
    if args.joint_budgets is not None:
        try:
            args.joint_budgets = [int(x) for x in args.joint_budgets.split(",") if x.strip()]
        except ValueError:
            p.error(f"--joint-budgets takes whole multiples such as 2,4, not {args.joint_budgets!r}")
        if not args.joint_budgets or min(args.joint_budgets) < 2:
            p.error(f"--joint-budgets: multiples of 2 or more, such as 2,4 (got {args.joint_budgets})")
    if args.strategies is not None:
        import bench_strategies
        args.strategies = [x.strip() for x in args.strategies.split(",") if x.strip()]
        bad = [x for x in args.strategies if x not in bench_strategies.STRATEGIES]
        if bad or not args.strategies:
            p.error(f"--strategies {bad or '(empty)'}: choose from {', '.join(bench_strategies.STRATEGIES)}")
    return args


def _load(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        backup = path.with_suffix(f".unreadable-{int(time.time())}.json")
        path.replace(backup)  # keep it for inspection rather than overwrite it silently
        print(f"warning: {path} could not be read ({err}); moved to {backup.name}", file=sys.stderr)
        return {}


def _write(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(report, indent=1, default=str)), ("RESULTS.md", markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text + "\n")
        tmp.replace(out / name)


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when it lies inside it (results.json names no machine's folders)."""
    try:
        return str(Path(path).resolve().relative_to(C.README.parent.resolve()))
    except ValueError:
        return Path(path).name


def _record(out: Path, meta: dict, name: str, entry: dict) -> Path:
    """Merge one benchmark's ``entry`` into ``out/results.json`` and rewrite RESULTS.md: read the
    file as it is now (another run_all may have written its own entries since this one started),
    set this entry and this run's metadata, write; under the folder's lock, so that two runs
    never drop each other's entries. If the lock stays busy for 30 s, the entry goes to a file of
    its own beside results.json (never lost), and the message says so. Returns the file written."""
    from mclfir_lite.files import FolderLockedError, lock_folder
    out.mkdir(parents=True, exist_ok=True)
    for _ in range(300):
        try:
            with lock_folder(out, "benchmark run"):
                report = _load(out / "results.json")
                report.setdefault("benchmarks", {})
                report.update(meta)
                report["benchmarks"][name] = entry
                _write(out, report)
                return out / "results.json"
        except FolderLockedError:
            time.sleep(0.1)
    aside = out / f"results.{name}.{os.getpid()}.json"
    aside.write_text(json.dumps({**meta, "benchmarks": {name: entry}}, indent=1, default=str) + "\n")
    print(f"warning: {out} stayed locked by another benchmark run for 30 s; {name}'s result is in {aside.name} "
          "(merge it into results.json by hand, or rerun it: cached runs are fast)", file=sys.stderr)
    return aside


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# mclfir_lite benchmark results", "",
             f"Generated by `{report['command']}` on {report['date']} (seed {report['seed']}). "
             "Machine-readable numbers: `results.json`.", "",
             f"Machine: {m.get('cpu_model')}, {m.get('usable_cores')} usable cores, {m.get('memory_gib', '?')} GiB, "
             f"torch {m.get('torch')} ({m.get('torch_threads')} threads), Python {m.get('python')}"
             + (f", GPU {m['cuda']}" if m.get("cuda") else "")
             + (f"; load average at start {m['load_average_1_5_15'][0]}" if m.get("load_average_1_5_15") else "")
             + ". Timings are only comparable within one run (ratios).", ""]
    from importlib import import_module
    for name in ORDER:
        e = report["benchmarks"].get(name)
        if e is None:
            continue
        lines += [f"## {name}: {TITLES[name]}", ""]
        mode = "quick (smoke-test sizes)" if e.get("quick") else "default sizes"
        lines += [f"*{mode}, {e.get('date')}, {e.get('seconds', 0):.0f} s, device {e.get('device', 'cpu')}"
                  + (f", {e['machine'].get('torch_threads')} thread(s), load {e['machine'].get('load_average_1_5_15', ['?'])[0]}"
                     if e.get("machine") else "") + "*", ""]
        if e["status"] == "ok":
            try:
                lines.append(import_module(f"bench_{name}").render(e["result"]))
            except Exception as err:  # a render bug must not hide the numbers in results.json
                lines.append(f"(could not render: {type(err).__name__}: {err}; see results.json)")
        else:
            lines.append(f"**{e['status']}**: {e.get('error', '')}")
        lines.append("")
    return "\n".join(lines)


def readme_sections(report: dict, readme: Path | None = None) -> list[str]:
    """Rewrite each README section ``<!-- NAME:start --> ... <!-- NAME:end -->`` of a benchmark
    from its ``readme(result)`` (or, without one, its ``render(result)``): that text when the result was measured with this code
    and this preset (:func:`mclfir_lite.lab.lab.stale_reason`), otherwise a line saying why it is not quoted.
    Returns the names written."""
    from mclfir_lite.lab.lab import stale_reason
    from migrate_digest import provenance
    readme = Path(readme or C.README)
    text, written = readme.read_text(encoding="utf-8"), []
    for name in ORDER:
        if f"<!-- {name}:start -->" not in text:
            continue
        module = importlib.import_module(f"bench_{name}")
        text_of = getattr(module, "readme", None) or getattr(module, "render", None)   # its own, or its RESULTS.md text
        if text_of is None:
            raise SystemExit(f"{readme}: section {name!r} has markers, but bench_{name}.py has no readme(result)")
        e = report.get("benchmarks", {}).get(name)
        if e is None or e.get("status") != "ok":
            body = f"*Not measured: `python benchmarks/run_all.py --only {name}`.*"
        elif why := stale_reason(e):
            body = (f"*Not quoted: the result of {e.get('date')} is stale: {why}. "
                    f"Refresh it with `python benchmarks/run_all.py --only {name}`.*")
        else:
            m = e.get("machine", {})
            body = (text_of(e["result"]) + f"\n\n*Generated by `python benchmarks/run_all.py --readme` from "
                    f"`benchmarks/results/results.json`: measured {e.get('date')}, code digest {e.get('code')}"
                    + provenance(e) + ", "
                    f"{e.get('seconds', 0) / 60:.0f} min on {m.get('usable_cores', '?')} cores"
                    + (f" of an {m['cpu_model']}" if m.get("cpu_model") else "")
                    + f" ({m.get('torch_threads', '?')} torch thread(s) per process)"
                    + (f"; {runs['cached']} of its {runs['total']} runs came from the run ledger or the benchmarks' cache, trained "
                       "earlier by the same code" if isinstance(runs := e["result"].get("runs"), dict) and runs.get("cached") else "")
                    + ".*")
        C.write_between(name, body, readme)
        written.append(name)
    return written


def main(argv=None) -> int:
    args = parse(argv)
    if args.list:
        for n in ORDER:
            print(f"{n:22s} {TITLES[n]}")
        return 0
    out = Path(args.out) if args.out else (C.RESULTS_DIR / "quick" if args.quick else C.RESULTS_DIR)
    if args.prune_ledger:
        gone = C.ledger_prune(out / "ledger") if (out / "ledger").is_dir() else []
        print(f"run ledger {out / 'ledger'}: {len(gone)} entr{'y' if len(gone) == 1 else 'ies'} of other code deleted")
        return 0
    if args.readme:
        written = readme_sections(_load(out / "results.json"))
        if out.resolve() == C.RESULTS_DIR.resolve():   # the README's findings read the committed files
            import findings
            written += findings.write()
        print(f"README sections rewritten: {', '.join(written) or 'none (no markers)'}")
        return 0
    threads = C.set_threads(args.threads)
    import torch
    if args.device != "cpu" and (not args.device.startswith("cuda") or not torch.cuda.is_available()):
        print(f"error: --device {args.device}: only cpu or an available cuda device can be used "
              f"(torch.cuda.is_available() = {torch.cuda.is_available()})", file=sys.stderr)
        return 2
    before = os.environ.get(C.LEDGER_ENV)
    if args.no_ledger:
        os.environ.pop(C.LEDGER_ENV, None)
    else:   # worker processes inherit it (see _common.run_strategy)
        os.environ[C.LEDGER_ENV] = str((out / "ledger").resolve())
    try:
        return _measure(args, threads, out, argv)
    finally:   # as it was (main may be called in-process, by a test)
        if before is None:
            os.environ.pop(C.LEDGER_ENV, None)
        else:
            os.environ[C.LEDGER_ENV] = before


def _measure(args, threads: int, out: Path, argv) -> int:
    """Run ``args.names`` and record each result as it finishes (see :func:`main`)."""
    machine = C.machine()
    load = (machine.get("load_average_1_5_15") or [0])[0]
    if threads > 1 and load > (machine.get("usable_cores") or 1):
        print(f"warning: load average {load} exceeds the {machine['usable_cores']} usable cores; timings will be "
              f"noisy and {threads} torch threads may be far slower than --threads 1", flush=True)
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    meta = {"date": now, "seed": args.seed, "quick": args.quick, "device": args.device,
            "command": "python benchmarks/run_all.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": machine}
    notebook_modes = {"both": ["quick", "default"], "none": []}.get(args.notebooks, [args.notebooks])
    print(f"benchmarks: {', '.join(args.names)} ({'quick' if args.quick else 'default'} sizes, seed {args.seed}, "
          f"{threads} thread(s), device {args.device}) -> {out}", flush=True)
    C.warm_up()
    failed = []
    for k, name in enumerate(args.names, 1):
        print(f"[{k}/{len(args.names)}] {name}: {TITLES[name]}", flush=True)
        from mclfir_lite.files import code_digest
        from mclfir_lite.lab.lab import preset_fields
        entry = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "seed": args.seed,
                 "code": code_digest(),   # the numeric code it was measured with (lab.benchmark_result checks it)
                 "preset": preset_fields(args.quick),   # and the preset (data, not code: left out of the digest)
                 "quick": args.quick, "device": args.device,
                 "machine": {k2: machine[k2] for k2 in ("cpu_model", "usable_cores", "torch", "torch_threads",
                                                        "load_average_1_5_15", "git_commit") if k2 in machine}}
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench_{name}")
            extra = {k: v for k, v in (("strategies", args.strategies), ("doubled_seeds", args.joint_doubled_seeds),
                                        ("joint_budgets", args.joint_budgets)) if v is not None} \
                if name == "strategies" else {}
            result = module.run(quick=args.quick, seed=args.seed, device=args.device, out_dir=out,
                                fresh=args.fresh, notebook_modes=notebook_modes, **extra)
            scope_fields = getattr(module, "scope_fields", C.scope_fields)   # bench_real adds the package code it drives
            entry.update(status="ok", result=result, **scope_fields(C.code_scope(module, result), args.quick, module))
            if hasattr(module, "publish"):   # files of its own besides results.json (bench_real: real.json, its page)
                entry["published"] = [_shown(p) for p in module.publish(result, out, args.quick)]
        except KeyboardInterrupt:
            entry.update(status="interrupted", error="interrupted by the user")
            entry["seconds"] = time.perf_counter() - t0
            _record(out, meta, name, entry)
            print("interrupted; results so far are written", file=sys.stderr)
            return 130
        except Exception as err:
            entry.update(status="error", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
            failed.append(name)
            print(traceback.format_exc(), file=sys.stderr)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        written = _record(out, meta, name, entry)
        print(f"[{k}/{len(args.names)}] {name}: {entry['status']} in {entry['seconds']:.0f} s "
              f"(written to {written})", flush=True)
    print(f"done: {out / 'RESULTS.md'}" + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
