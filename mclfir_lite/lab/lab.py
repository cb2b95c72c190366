"""One-line set-up for notebooks and the demo: data, protocol, presets and cached runs.

``lab = Lab.synthfashion()`` renders SynthFashion at the size of the current mode
(quick when ``MCLFIR_QUICK=1``), splits it with the ASEN protocol and picks the
increment plan. ``lab.run("mclfir")`` trains a strategy, or, when it has been trained
before with the same configuration, loads it from the cache (the UvA-notebook pattern:
slow steps are cached under ``MCLFIR_CACHE`` and recomputed when missing).
"""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..training.checkpoint import CheckpointError
from ..config import CONFIG_KEYS, PRESETS, PRETRAINED, Config, preset, preset_config  # noqa: F401  (the presets live in config)
from ..training.runner import ContinualRunner
from .parallel import run_many
from ..workers import torch_threads
from ..data.table import QUERY_FRACTION, AttributeSplit, FashionTable, load_images, make_protocol, parse_increments
from ..data.datasets import fingerprint, load_dataset
from ..settings import cache_dir, quick_mode


@dataclass
class Lab:
    table: FashionTable
    images: torch.Tensor
    protocol: dict[str, AttributeSplit]
    increments: list[list[str]]
    config: Config
    quick: bool
    runs_dir: Path = field(default=None)
    # the protocol's caps (max_queries, max_candidates, query_fraction): part of the cache key
    caps: dict = field(default_factory=dict)
    # SynthFashion's renderer calibration (synth.STYLES) the images were drawn in; None for other data
    style: str | None = None

    @classmethod
    def from_table(cls, table: FashionTable, increments, config: Config, quick: bool, image_size: int,
                   max_queries=None, max_candidates=None, seed: int = 0, progress: bool = False,
                   query_fraction: float = QUERY_FRACTION) -> "Lab":
        caps = {"max_queries": max_queries, "max_candidates": max_candidates, "query_fraction": query_fraction}
        protocol = make_protocol(table, seed=seed, **caps)
        images = load_images(table, image_size, progress=progress)
        return cls(table, images, protocol, parse_increments(increments, table.attributes), config, quick,
                   caps=caps)

    @classmethod
    def synthfashion(cls, quick: bool | None = None, seed: int = 0, increments=None, pools: str = "per_increment",
                     domain_shift: bool = False, style: str | None = None, **config) -> "Lab":
        """SynthFashion at the current mode's size; each increment brings its own images unless
        ``pools="shared"``; ``style``: the renderer's calibration (``synth.STYLES``; default:
        the preset's);
        ``config`` overrides :class:`Config` fields."""
        p = preset(quick)
        plan = increments or p["increments"]
        table = load_dataset("synthfashion", n=p["n_images"], size=p["image_size"], seed=seed, increments=plan,
                             pools=pools, domain_shift=domain_shift, style=style or p["style"])
        cfg = Config(**{**preset_config(p), "seed": seed, **config})
        lab = cls.from_table(table, plan, cfg, quick_mode() if quick is None else quick,
                             p["image_size"], p["max_queries"], p["max_candidates"], seed)
        lab.style = style or p["style"]
        return lab

    @property
    def attributes(self) -> list[str]:
        return [a for g in self.increments for a in g]

    @property
    def data_fingerprint(self) -> dict:
        """The data part of a run's fingerprint: the table and the protocol caps (the runner
        adds digests of the images, labels and protocol rows, the config and the code)."""
        return {"data": fingerprint(self.table), **self.caps}

    def run_fingerprint(self, strategy: str, **overrides) -> str:
        """The hash of the fingerprint a run of ``strategy`` on this lab would carry: every field
        that decides its numbers (configuration with ``overrides``, strategy, plan, digests of the
        images, labels and protocol rows, the code digest). Equal hashes, the same run."""
        return self.runner(strategy, cache=False, progress=False, **overrides).fingerprint["hash"]

    def trunk_features(self, trainable_blocks: int, progress: bool = False) -> torch.Tensor:
        """The outputs of the pretrained encoder's frozen trunk (all but its last ``trainable_blocks``
        stages) for every image, computed once and cached on disk (:mod:`mclfir_lite.retrieval.features`):
        what a run with ``Config.trainable_blocks`` trains its encoder's last stages on."""
        from ..core.encoders import split_encoder
        from ..retrieval.features import encode_dataset
        trunk = split_encoder(self.config.encoder, trainable_blocks)[0]
        return encode_dataset(trunk, self.images, [fingerprint(self.table)], progress=progress)

    def runner(self, strategy: str, cache: bool = True, progress: bool = True, **overrides) -> ContinualRunner:
        """A runner for ``strategy`` (``overrides`` change config fields for this run only)."""
        cfg = dataclasses.replace(self.config, **overrides)
        ckpt = None
        if cache:
            key = hashlib.sha1(f"{fingerprint(self.table)}:{self.images.shape[-1]}px".encode()).hexdigest()[:12]
            ckpt = Path(self.runs_dir or cache_dir() / "runs") / key
        features = None if cfg.trainable_blocks is None else self.trunk_features(cfg.trainable_blocks, progress)
        runner = ContinualRunner(strategy, self.images, self.table.labels, self.protocol, self.increments, cfg,
                                 checkpoint_dir=ckpt, progress=progress, data_fingerprint=self.data_fingerprint,
                                 features=features)
        if runner.checkpoint is not None:  # one file per fingerprint: another configuration, another file
            runner.checkpoint = runner.checkpoint.with_name(f"{strategy}-{runner.fingerprint['hash'][:10]}.pt")
        return runner

    def run(self, strategy: str, cache: bool = True, progress: bool = True, threads: int | None = 1,
            **overrides) -> ContinualRunner:
        """Train ``strategy`` over the increments (or load it from the cache) and return the runner;
        ``runner.result()`` has the numbers, ``runner.model`` the final model.

        On a CPU the run uses ``threads`` torch threads (then restores them). One (the default)
        makes its numbers independent of the machine's cores and equal to the benchmarks' and
        :meth:`run_many`'s (:mod:`mclfir_lite.lab.parallel` says why one is also the fastest
        here); None: torch's setting."""
        with torch_threads(threads if self.config.device == "cpu" else None):
            runner = self.runner(strategy, cache, progress, **overrides)
            try:
                runner.run(resume=True)
            except CheckpointError as err:  # a cache file made by other code, damaged or foreign: recompute
                warnings.warn(f"{err}; recomputing it", stacklevel=2)
                runner.checkpoint.unlink(missing_ok=True)
                runner = self.runner(strategy, cache, progress, **overrides)
                runner.run(resume=True)
        return runner

    def run_many(self, strategies, processes: int | None = None, progress: bool = False, **overrides) -> dict:
        """Several runs at once, a worker process each with one torch thread
        (:func:`mclfir_lite.lab.parallel.run_many`); returns ``{name: runner}`` as :meth:`run` would.

        ``strategies``: names (``overrides`` apply to every one), or ``{name: (strategy,
        {field: value})}`` for runs of one strategy with other settings."""
        if isinstance(strategies, str):
            raise TypeError(f"run_many takes several strategies (a list or a dict), not the string {strategies!r}: "
                            f"use lab.run({strategies!r}) for one")
        jobs = (strategies if isinstance(strategies, dict)
                else {s: (s, dict(overrides)) for s in strategies})
        if isinstance(strategies, dict) and overrides:
            jobs = {n: (s, {**overrides, **ov}) for n, (s, ov) in jobs.items()}
        return run_many(self, jobs, processes=processes, progress=progress)

    def pixels(self, rows) -> np.ndarray:
        """Images of ``rows`` as (n, H, W, 3) uint8, for plotting."""
        return self.images[torch.as_tensor(np.atleast_1d(rows))].permute(0, 2, 3, 1).numpy()


def preset_fields(quick: bool) -> dict:
    """The preset a result at this size is measured with (``config.PRESETS`` of the mode, and
    ``config.PRETRAINED``'s overlay under ``"pretrained"``). They are data, left out of
    :func:`mclfir_lite.files.code_digest` (``files.DATA_NOT_CODE``), so every benchmark result records them and
    :func:`stale_reason` compares them."""
    mode = "quick" if quick else "default"
    return {**PRESETS[mode], "pretrained": dict(PRETRAINED[mode])}


def stale_reason(entry: dict) -> str | None:
    """Why a result ``entry`` (with its ``code``, ``preset`` and ``quick``) is not a result of
    this checkout, or None when it is: measured with other numeric code, with no preset
    recorded, or with another preset (the keys that differ are named, then and now)."""
    from ..files import code_digest
    code = entry.get("code")
    if code != code_digest():
        return f"it was measured with code {code or '(not recorded)'}, this checkout's numeric code is {code_digest()}"
    then = entry.get("preset")
    if not isinstance(then, dict):
        return "it does not record the preset it was measured with"
    now = preset_fields(bool(entry.get("quick")))
    changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
    if changed:
        return "it was measured with another preset (" + "; ".join(
            f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in changed) + ")"
    return None


class StaleResultError(RuntimeError):
    """A benchmark result measured with other numeric code than this checkout's."""


def benchmark_result(name: str, require_fresh: bool = True) -> dict:
    """The committed result of benchmark ``name`` (``benchmarks/results/results.json`` of this
    checkout, written by ``make benchmarks``): the multi-seed numbers a notebook quotes when
    one seed is not enough to make a claim. Raises FileNotFoundError (saying how to make it)
    when the checkout has no such result.

    The result carries ``_code`` and ``_preset``, the code digest
    (:func:`mclfir_lite.files.code_digest`; None for results older than the digest) and the
    preset (:func:`preset_fields`) it was measured with, and ``_fresh``,
    whether both are this checkout's (:func:`stale_reason`). A stale result is a :class:`StaleResultError`
    that says how to refresh it; ``require_fresh=False`` returns it anyway (to inspect an old
    number, never to quote it)."""
    import json
    root = Path(__file__).resolve().parents[2]
    path = root / "benchmarks" / "results" / "results.json"
    shown = path.relative_to(root)       # messages name the checkout's file, not this machine's path
    if not path.is_file():
        raise FileNotFoundError(f"{shown} not found: run `make benchmarks` (or python benchmarks/run_all.py "
                                f"--only {name}) in a checkout of mclfir_lite")
    entry = json.loads(path.read_text()).get("benchmarks", {}).get(name)
    if not entry or entry.get("status") != "ok":
        raise FileNotFoundError(f"benchmark {name!r} has no result in {shown}: run "
                                f"python benchmarks/run_all.py --only {name}")
    code, why = entry.get("code"), stale_reason(entry)
    if require_fresh and why:
        raise StaleResultError(f"benchmark {name!r} in {shown} is stale: {why}. Refresh it with "
                               f"python benchmarks/run_all.py --only {name}")
    return {**entry["result"], "_date": entry.get("date"), "_machine": entry.get("machine", {}),
            "_code": code, "_preset": entry.get("preset"), "_fresh": why is None}


def benchmark_runs(bench: dict | None, lab: Lab, strategies) -> dict[str, dict]:
    """The runs of ``strategies`` that the strategies benchmark ``bench`` (from
    :func:`benchmark_result`, fresh: this checkout's code digest) made of exactly this ``lab``:
    ``{strategy: result}``, the result ``lab.run(strategy).result()`` would give (measured on the
    benchmark's machine: ``bench["_machine"]``), for each strategy whose stored run carries the
    fingerprint a run on ``lab`` would (:meth:`Lab.run_fingerprint`: same data, protocol, plan,
    configuration, seed and code). Anything else (no benchmark, a stale one, quick mode, another
    seed, protocol or setting) gives nothing for that strategy: train it instead."""
    if not bench or not bench.get("_fresh"):
        return {}
    stored = bench.get("first_seed_runs") or {}
    return {s: stored[s] for s in strategies
            if s in stored and stored[s].get("fingerprint") == lab.run_fingerprint(s)}
