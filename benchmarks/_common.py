"""Helpers shared by the benchmarks: paths, the machine description, labs, device notes, tables.

Not a benchmark itself (``run_all.py`` only picks up ``bench_*.py``).
"""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

# The real-photo subset lives beside the checkout (see ../shared/data/*/README.md).
FPI_DIR = Path(os.environ.get("MCLFIR_FPI_DIR", REPO.parent / "shared" / "data" / "fashion-product-images-small"))


def bench_cache() -> Path:
    """Where the benchmarks keep their own training checkpoints, apart from the notebooks' and
    the demo's: ``$MCLFIR_BENCH_CACHE``, default ``<MCLFIR_CACHE>/benchmarks``. Image and feature
    caches stay in the ordinary ``MCLFIR_CACHE`` (they are keyed by content, so sharing is safe)."""
    from mclfir_lite.settings import cache_dir
    path = Path(os.environ.get("MCLFIR_BENCH_CACHE", cache_dir() / "benchmarks")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------- machine

def _git(*args) -> str | None:
    try:  # read-only queries
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine() -> dict:
    """What the numbers were measured on (cores, CPU model, memory, torch, load at the start)."""
    import numpy as np
    import torch
    from mclfir_lite.settings import cpu_model, usable_cores
    info = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    info["git_commit"] = _git("rev-parse", "--short", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    info["git_dirty"] = None if status is None else bool(status)
    return info


# ---------------------------------------------------------------------------- device

def train_overrides(device: str) -> tuple[dict, str | None]:
    """``(Config overrides, note)`` for training on ``device``.

    The package is CPU-first: while ``mclfir_lite.config.Config`` has no ``device``
    field, training runs on the CPU whatever was asked, and the note says so.
    """
    from mclfir_lite.config import Config
    if device == "cpu":
        return {}, None
    if "device" in Config.__dataclass_fields__:
        return {"device": device}, None
    return {}, (f"--device {device} was asked, but mclfir_lite.config.Config has no device switch yet "
                "(Config has no 'device' field): training ran on the CPU")


# ---------------------------------------------------------------------------- labs

# Quick (smoke) mode: SynthFashion's quick preset, three one-attribute increments, few short
# steps. The numbers mean nothing; the point is that every code path runs in seconds.
QUICK_SYNTH = {"increments": "synth3", "steps_per_attribute": 10, "batch_size": 32, "joint_steps": 20, "retrain_steps": 30}


def synth_lab(quick: bool, seed: int, validation: bool = False, **config):
    """SynthFashion at the lesson's default preset, or the smoke-test size in quick mode; the
    lab's checkpoints go to the benchmarks' own cache. ``validation=True``: the tuning
    protocol (:func:`mclfir_lite.data.table.validation_protocol`, seeded by ``seed``): held-out
    training rows as queries and candidates, the test queries never looked at."""
    import dataclasses
    from mclfir_lite.data.table import validation_protocol
    from mclfir_lite.lab.lab import Lab
    kw = {**(QUICK_SYNTH if quick else {}), **config}
    lab = Lab.synthfashion(quick=quick, seed=seed, **kw)
    if validation:
        lab = dataclasses.replace(lab, protocol=validation_protocol(lab.protocol, seed=seed))
    lab.runs_dir = bench_cache() / "runs"
    return lab


# The run ledger: one small JSON per finished run (its result and its fingerprint's fields),
# named by the fingerprint's hash, committed with the results. The fingerprint holds the
# Config fields the strategy reads, the digests of the images, labels and protocol, the plan and
# the code digest, and the entry also records the device, torch version and threads and the CPU
# model it was trained with (:func:`ledger_context`), so an entry is reused only by a run that
# would compute exactly it on this kind of machine, like a checkpoint of the run cache; unlike
# one, it is small and lives in the repository, so a re-measurement can be spread over several
# sessions (on the same kind of machine). ``--fresh`` (run_all.py) retrains instead, and
# ``python benchmarks/run_all.py --prune-ledger`` deletes the entries of other code. run_all.py
# keeps it beside the results it writes (``<out>/ledger``, so a ``--quick`` smoke run never
# writes into the committed one) and hands it to its worker processes in $MCLFIR_LEDGER; a
# benchmark run on its own (``python benchmarks/bench_x.py``) uses the run cache only.
LEDGER_ENV = "MCLFIR_LEDGER"


def ledger_dir() -> Path | None:
    """The run ledger in use ($MCLFIR_LEDGER), or None."""
    return Path(os.environ[LEDGER_ENV]) if os.environ.get(LEDGER_ENV) else None


def ledger_context(device: str = "cpu") -> dict:
    """What, besides the fingerprint, can move a run's numbers: the device, torch's version and
    threads, and the CPU model (kernels differ; 1 and 2 threads already move a final mAP by up to
    0.07, the README's threads table). A ledger entry is served only where all of them match,
    so its numbers, and its training seconds, are the ones this machine would produce."""
    import torch
    from mclfir_lite.settings import cpu_model
    return {"device": str(device), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_model": cpu_model()}


def ledger_path(fingerprint: dict, ledger: Path, context: dict | None = None) -> Path:
    """``<ledger>/<fingerprint hash>.<context digest>.json``: one entry per run and kind of machine."""
    import hashlib
    import json
    ctx = json.dumps(context or ledger_context(), sort_keys=True).encode()
    return ledger / f"{fingerprint['hash']}.{hashlib.sha1(ctx).hexdigest()[:8]}.json"


def ledger_read(fingerprint: dict, ledger: Path, context: dict | None = None) -> dict | None:
    """The ledger's result for a run with this ``fingerprint`` (``{"hash", "fields"}``) made in
    this ``context`` (:func:`ledger_context`), or None. An entry that cannot be read, or whose
    stored fingerprint differs from the run's (a collision, a hand edit), is ignored with a
    warning (the run is trained and the entry replaced). Entries made in another context have
    other names (:func:`ledger_path`) and are left alone."""
    import json
    context = context or ledger_context()
    path = ledger_path(fingerprint, ledger, context)
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text())
        stored, result, made_in = entry["fingerprint"], entry["result"], entry.get("context")
        if not isinstance(result, dict):
            raise TypeError("its result is not a mapping")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log(f"warning: ledger entry {path.name} unreadable ({type(err).__name__}: {err}); the run is trained instead")
        return None
    if stored != fingerprint:
        log(f"warning: ledger entry {path.name} holds another run's fingerprint; the run is trained instead")
        return None
    if made_in != context:
        log(f"warning: ledger entry {path.name} was made in another context ({made_in}); the run is trained instead")
        return None
    return result


def ledger_write(fingerprint: dict, result: dict, ledger: Path, context: dict | None = None) -> Path:
    """Record a run trained in this call, with the context it was trained in (atomically; the
    checkpoint stays in the run cache)."""
    import json
    from mclfir_lite.files import atomic_write_file
    context = context or ledger_context()
    path = ledger_path(fingerprint, ledger, context)
    text = json.dumps({"fingerprint": fingerprint, "context": context, "result": result},
                      indent=1, default=str) + "\n"
    return atomic_write_file(path, lambda f: f.write(text.encode()))


def ledger_prune(ledger: Path) -> list[str]:
    """Delete the ledger entries made by other numeric code than this checkout's (the code their
    strategy runs: ``files.strategy_code_digest``); their names."""
    import json
    from mclfir_lite.files import strategy_code_digest
    gone = []
    for path in sorted(ledger.glob("*.json")):
        try:
            fields = json.loads(path.read_text())["fingerprint"]["fields"]
            fresh = fields.get("code") == strategy_code_digest(str(fields["strategy"]))
        except (OSError, ValueError, KeyError, TypeError):
            fresh = False
        if not fresh:
            path.unlink()
            gone.append(path.name)
    return gone


def code_scope(module, result) -> list[str] | None:
    """The strategies whose runs a benchmark's ``result`` is made of (its module's ``CODE_SCOPE``:
    a tuple, or a function of the result; ``()`` for a benchmark of shared code only), or None
    when the module does not say (then any change to numeric code makes it stale)."""
    scope = getattr(module, "CODE_SCOPE", None)
    if callable(scope):
        scope = scope(result)
    return None if scope is None else sorted({str(s) for s in scope})


def bench_sources(module) -> list[str]:
    """The benchmark code behind a module's result: its file, ``_common.py`` and the bench modules
    it imports (``import bench_strategies as S``), as paths from the checkout's root."""
    import ast
    here = Path(module.__file__).resolve()
    names = {here.name, "_common.py"}
    for node in ast.walk(ast.parse(here.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {f"{a.name}.py" for a in node.names if a.name.startswith("bench_")}
    return sorted(f"benchmarks/{n}" for n in names if (here.parent / n).is_file())


def scope_fields(scope: list[str] | None, quick: bool = False, module=None) -> dict:
    """What a result records of its scope (:func:`code_scope`): the strategies, the benchmark
    code behind it (:func:`bench_sources` of ``module``) and
    ``training.checkpoint.scoped_code_digest`` of them; nothing without a scope."""
    if scope is None:
        return {}
    from mclfir_lite.training.checkpoint import scoped_code_digest
    sources = bench_sources(module) if module is not None else []
    return {"code_scope": list(scope), "code_sources": sources,
            "scoped_code": scoped_code_digest(scope, quick, sources)}


def run_strategy(lab, strategy: str, fresh: bool = False, **overrides) -> tuple[dict, float, bool]:
    """``lab.run(strategy)`` through the run ledger (:func:`ledger_dir`, when one is in use) and the benchmarks' cache.
    Returns (result, with the hash of the run's fingerprint added; wall seconds of this call;
    whether it came from the ledger or the cache). ``fresh=True`` deletes that configuration's
    ledger entry and checkpoint first (the benchmarks' own cache only), so the run is trained and
    timed now. A cached result keeps the ``train_seconds`` it took when it was trained; the
    ledger serves only a run made on the same device, torch, threads and CPU model
    (:func:`ledger_context`), and records only runs trained in this call."""
    runner = lab.runner(strategy, cache=True, progress=False, **overrides)
    fp, ledger = runner.fingerprint, ledger_dir()
    context = ledger_context(runner.config.device) if ledger is not None else None
    if fresh:
        if ledger is not None:
            ledger_path(fp, ledger, context).unlink(missing_ok=True)
        if runner.checkpoint is not None:
            runner.checkpoint.unlink(missing_ok=True)
    elif ledger is not None and (stored := ledger_read(fp, ledger, context)) is not None:
        # the fields this strategy does not read may differ from the stored run's: report this run's
        return {**stored, "config": dataclasses.asdict(runner.config), "fingerprint": fp["hash"]}, 0.0, True
    cached = runner.checkpoint is not None and runner.checkpoint.is_file()
    t0 = time.perf_counter()
    runner.run(resume=True)
    result = runner.result()
    if ledger is not None and not cached:    # only what this call trained: its context is known
        ledger_write(fp, result, ledger, context)
    return {**result, "fingerprint": fp["hash"]}, time.perf_counter() - t0, cached


# ---------------------------------------------------------------------------- output

def new_axes(out_dir: Path, figsize: tuple[float, float]):
    """``(fig, ax)`` of a new Agg figure (``out_dir`` created), or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    return plt.subplots(figsize=figsize)


def save_figure(fig, out_dir: Path, name: str) -> str:
    """Lay out, save as ``out_dir/name`` at 100 dpi, close; return the file name."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=100)
    plt.close(fig)
    return name


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table."""
    def cell(v):
        if v is None:
            return "n/a"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            if v == 0:
                return "0"
            if abs(v) < 0.001:
                return f"{v:.2e}"
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


README = BENCH_DIR.parent / "README.md"


def write_between(name: str, text: str, readme: Path | None = None) -> None:
    """Replace the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in the
    README (numbers there are generated from result files, never typed by hand). A README
    without both markers is a SystemExit naming the file and the markers."""
    from mclfir_lite.files import write_between as write
    try:
        write(Path(readme or README), name, text)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def fmt(x, spec=".3f", none="n/a") -> str:
    return none if x is None else format(x, spec)


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------- set-up

def set_threads(n: int | None) -> int:
    """Use ``n`` torch threads here and in child processes (notebooks, workers); None keeps
    torch's default. On a machine shared with other busy processes, 1 thread can be an order
    of magnitude faster than 2: OpenMP threads that wait for each other at every operation
    lose their cores to the other processes."""
    import torch
    if n:
        torch.set_num_threads(n)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
    return torch.get_num_threads()


def warm_up() -> None:
    """Pay one-off costs before anything is timed: the first optimiser built imports
    torch._dynamo (seconds), which would otherwise land on the first run timed."""
    import torch
    p = torch.zeros(4, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=1e-3)
    p.sum().backward()
    opt.step()


def main(module) -> None:
    """``python benchmarks/bench_<name>.py [--quick] [--seed N] [--threads N] [--device D]``:
    run one benchmark on its own and print its JSON and markdown (figures go to
    benchmarks/results/standalone/; results.json and RESULTS.md are left alone)."""
    import argparse
    import json
    ap = argparse.ArgumentParser(description=(module.__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    set_threads(a.threads)
    warm_up()
    res = module.run(quick=a.quick, seed=a.seed, device=a.device, out_dir=RESULTS_DIR / "standalone")
    print(json.dumps(res, indent=1, default=str))
    print(module.render(res))


# ---------------------------------------------------------------------------- many runs at once

def _job(args):
    """One (seed, strategy, overrides, lab options) run in a worker process, through the cache."""
    quick, seed, strategy, overrides, lab_kw, threads, fresh = args
    import torch
    torch.set_num_threads(threads)
    lab = synth_lab(quick, seed, **lab_kw)
    r, wall, cached = run_strategy(lab, strategy, fresh=fresh, **overrides)
    r["cached"], r["wall_seconds_this_call"] = cached, round(wall, 2)
    return r


def run_many(jobs: list[tuple], quick: bool, processes: int = 1, threads: int = 1, fresh: bool = False) -> list[dict]:
    """Run ``jobs`` = ``[(seed, strategy, config overrides, lab options), ...]``, ``processes``
    at a time (each with ``threads`` torch threads), through the benchmarks' cache; results in
    job order. Runs are seeded, so the numbers do not depend on ``processes``; only the
    seconds do (several processes share the cores)."""
    args = [(quick, seed, s, ov, lab_kw, threads, fresh) for seed, s, ov, lab_kw in jobs]
    if processes <= 1:
        out = []
        for k, a in enumerate(args):
            log(f"run {k + 1}/{len(args)}: seed {a[1]} {a[2]} {a[3] or ''} {a[4] or ''}")
            out.append(_job(a))
        return out
    import multiprocessing as mp
    with mp.get_context("spawn").Pool(processes) as pool:
        out = []
        for k, r in enumerate(pool.imap(_job, args)):
            log(f"run {k + 1}/{len(args)} done: {r['strategy']} seed {r['config']['seed']}"
                f"{' (cached)' if r['cached'] else ''}")
            out.append(r)
        return out


def run_costs(results: list[dict]) -> dict:
    """What a benchmark's runs cost: how many, how many came from the cache, and the sum of
    their training times (seconds at one torch thread; a cached run counts the time it took
    when it was trained). The README footer and the sections' cost lines read it as ``runs``."""
    return {"total": len(results), "cached": sum(bool(r.get("cached")) for r in results),
            "train_seconds": round(sum(r["train_seconds"] for r in results), 1)}
