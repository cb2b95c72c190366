"""The continual runner: attributes arrive in increments; train, evaluate, checkpoint.

One generic loop serves every method; a method (:mod:`mclfir_lite.methods`, one small
class per file) only adds its pieces through named hooks: what happens before an
increment, which batch a step trains on, the extra loss at a step, what happens after a
step and after an increment (:mod:`mclfir_lite.methods.base` lists the hooks and the
runner's public API a method may use).

After each increment every attribute seen so far is evaluated (mAP on its query and
candidate sets, :mod:`mclfir_lite.training.evaluate`), and the state is checkpointed
atomically, so a run can resume from the last finished increment and give the same
numbers as an uninterrupted one. Batches, gathered losses and the optimiser step (what
changes under torchrun) are in :mod:`mclfir_lite.training.batches`.

The cost ledger (:class:`~mclfir_lite.methods.base.Costs`) counts what a method pays:
``train_samples`` (images forwarded *and* back-propagated, Fisher passes included),
``teacher_samples`` (images forwarded through a teacher), ``optimizer_steps`` and
``train_seconds``.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..core import metrics
from ..core.encoders import build_encoder
from ..core.losses import triplet_loss
from ..core.model import RetrievalModel, count_parameters
from ..data.table import AttributeSplit, PairSampler, check_attributes
from ..methods import STRATEGY_CLASSES, Batch, Costs, check_strategies
from . import batches, checkpoint
from . import distributed as dist
from .evaluate import evaluate
from .recipes import mixed_precision


# ---------------------------------------------------------------------------- the runner

class ContinualRunner:
    """Runs one strategy over an increment plan (see the module docstring).

    ``images``: uint8 tensor ``(N, 3, S, S)``; ``labels``: ``{attribute: int array (N,)}``;
    ``protocol``: :func:`mclfir_lite.data.table.make_protocol`'s output.
    """

    def __init__(self, strategy: str, images: torch.Tensor, labels: dict[str, np.ndarray],
                 protocol: dict[str, AttributeSplit], increments: list[list[str]],
                 config: Config | None = None, checkpoint_dir: str | Path | None = None,
                 progress: bool = True, data_fingerprint: str | dict = "", features: torch.Tensor | None = None):
        check_strategies([strategy])
        cls = STRATEGY_CLASSES[strategy]
        self.config = dataclasses.replace(config or Config(), **cls.config_overrides)
        self.config.validate()
        # Cached features (mclfir_lite.retrieval.features.encode_dataset), one row per image: a frozen
        # encoder's outputs (only the heads train), or with Config.trainable_blocks a pretrained
        # encoder's frozen trunk's outputs (the model's encoder is then the trainable tail). Where
        # the loop would index images it indexes these instead (random flips do not apply).
        # None: run the encoder on images.
        tail = self.config.trainable_blocks is not None
        if features is not None and ((self.config.encoder_trainable and not tail) or len(features) != len(images)):
            raise ValueError("cached features need Config.encoder_trainable=False (or Config.trainable_blocks) "
                             f"and one row per image (got {len(features)} rows for {len(images)} images)")
        if tail and features is None:
            raise ValueError(f"Config.trainable_blocks={self.config.trainable_blocks}: the tail trains on the "
                             "trunk's cached features; pass features=encode_dataset(trunk, images)")
        self.features = features
        for i, group in enumerate(increments):
            if not group:
                raise ValueError(f"increment {i} is empty: every increment needs an attribute")
            check_attributes(group, list(protocol))
        self.strategy, self.images, self.labels = strategy, images, labels
        self.protocol, self.increments = protocol, [list(g) for g in increments]
        self.attributes = [a for g in self.increments for a in g]
        self.progress = progress
        self.checkpoint = Path(checkpoint_dir) / f"{strategy}.pt" if checkpoint_dir else None
        # everything that decides the numbers: config, plan, digests of the images, labels and
        # protocol rows, package version and code, and what the caller adds (dataset, caps)
        extra = dict(data_fingerprint) if isinstance(data_fingerprint, dict) else {"data": data_fingerprint}
        if features is not None:
            extra.setdefault("features", "x".join(map(str, features.shape)))
        self.fingerprint = checkpoint.run_fingerprint(self.config, strategy, self.increments, images, labels,
                                                      protocol, extra)
        self.source = batches.BatchSource(images, features, self.config.flip, self.config.device)
        self.losses = batches.GatheredLoss(self.config, labels)
        self._reset_state()

    # -- state ---------------------------------------------------------------
    def _reset_state(self):
        self.encoder_frozen = False
        self.strat = STRATEGY_CLASSES[self.strategy](self)
        self.model = self.new_model(0)
        self.history: list[dict[str, float]] = []
        self.snapshots: list[dict] = []      # model state after each increment (for browsing)
        self.costs = Costs()
        self.peak_extra_params = 0           # a teacher that lives only while training
        self.done = 0  # finished increments

    def new_model(self, increment: int) -> RetrievalModel:
        """A fresh model (a strategy retrained from scratch gets a new seed per increment)."""
        c = self.config
        factory = lambda: build_encoder(c.encoder, trainable=c.encoder_trainable, width=c.encoder_width,
                                        trainable_blocks=c.trainable_blocks)
        seed = c.seed * 1000 + (increment if self.strat.from_scratch else 0)
        self.encoder_frozen = False
        return RetrievalModel(factory, c.embed_dim, isolated=self.strat.isolated, seed=seed,
                              head=c.head).to(c.device)

    def replace_model(self, model: RetrievalModel) -> None:
        """Train ``model`` from now on (a method that starts an increment from a fresh model)."""
        self.model = model

    @property
    def world_size(self) -> int:
        """Processes training together (torchrun's world size; 1 without it)."""
        return self.source.world_size()

    def backward(self, loss: torch.Tensor, params) -> None:
        """The gradient of ``loss`` in ``params``' ``.grad``, averaged over the ranks under torchrun
        (the global batch's gradient)."""
        batches.backward(loss, params)

    def freeze_encoder(self) -> None:
        """Freeze the shared encoder: no gradients, and evaluation mode (BatchNorm statistics fixed)."""
        self.model.encoder.requires_grad_(False)
        self.model.encoder.eval()
        self.encoder_frozen = True

    # -- checkpoints ---------------------------------------------------------
    def save(self) -> None:
        """Checkpoint the finished increments (:func:`mclfir_lite.training.checkpoint.save`: tensors and
        plain data only, written atomically under a unique temp name)."""
        if self.checkpoint is None:
            return
        state = {"done": self.done, "attributes": self.model.attributes,
                 "model": self.model.state_dict(), "strategy": self.strat.state(),
                 "history": self.history, "costs": self.costs, "peak_extra_params": self.peak_extra_params,
                 "snapshots": self.snapshots}
        checkpoint.save(self.checkpoint, state, self.fingerprint)

    def load(self) -> bool:
        """Resume from the checkpoint if there is one. A file that is not a safe checkpoint, or
        one made with another fingerprint, is a :class:`~mclfir_lite.training.checkpoint.CheckpointError`
        naming the file (and the fields that differ); nothing in it is ever executed."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return False
        state = checkpoint.load(self.checkpoint, self.fingerprint)
        self._check_state(state)
        self.done = state["done"]
        try:
            self.model = self.new_model(self.done - 1)
            for a in state["attributes"]:
                self.model.add_attribute(a)
            self.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            self._reset_state()
            self._bad(f"field 'model' does not fit this model ({type(err).__name__}: "
                      f"{str(err).strip().splitlines()[0][:160] if str(err).strip() else ''})")
        self.history, self.costs = state["history"], Costs(state["costs"])
        self.peak_extra_params = state.get("peak_extra_params", 0)
        self.snapshots = state.get("snapshots", [])
        try:
            self.strat.load_state(state.get("strategy", {}))
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as err:
            self._reset_state()
            self._bad(f"field 'strategy' does not fit the {self.strategy} strategy ({type(err).__name__}: {err})")
        return True

    def _bad(self, why: str):
        raise checkpoint.CheckpointError(f"checkpoint {self.checkpoint}: {why}; it was cut or edited by hand. "
                                         "Delete it (or use --fresh) to start over")

    def _check_state(self, state) -> None:
        """The structure of a checkpoint's state, before any of it is used: a file that was
        cut or edited by hand is a CheckpointError naming the file and the field."""
        if not isinstance(state, dict):
            self._bad(f"its state is a {type(state).__name__}, not a dict")
        for key in ("done", "attributes", "model", "history", "costs"):
            if key not in state:
                self._bad(f"field {key!r} is missing")
        done, n = state["done"], len(self.increments)
        if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= n:
            self._bad(f"field 'done' is {done!r}; this plan has {n} increments (0..{n} can be finished)")
        history = state["history"]
        if not isinstance(history, list) or len(history) != done:
            what = f"{len(history)} entries" if isinstance(history, list) else f"a {type(history).__name__}"
            self._bad(f"field 'history' has {what} for done={done} finished increments")
        for i, h in enumerate(history):
            seen = {a for g in self.increments[: i + 1] for a in g}
            # (NaN is a real value: no query with a relevant candidate, no_relevant="skip")
            ok = isinstance(h, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             for v in h.values())
            if not ok or set(h) != seen:
                self._bad(f"field 'history[{i}]' should hold an mAP for each of {sorted(seen)}, "
                          f"it holds {h!r:.160}")
        if not isinstance(state["attributes"], list) or \
                not all(isinstance(a, str) and a in self.attributes for a in state["attributes"]):
            self._bad(f"field 'attributes' is {state['attributes']!r:.160}; the plan's attributes are {self.attributes}")
        if not isinstance(state["model"], dict) or not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
            self._bad("field 'model' is not a dict of tensors")
        costs = state["costs"]
        if not isinstance(costs, dict) or any(
                not isinstance(costs.get(k), (int, float)) or isinstance(costs.get(k), bool)
                or not np.isfinite(costs.get(k)) or costs.get(k) < 0
                for k in ("train_samples", "teacher_samples", "optimizer_steps", "train_seconds")):
            self._bad(f"field 'costs' should hold train_samples, teacher_samples, optimizer_steps and "
                      f"train_seconds (numbers >= 0), it holds {costs!r:.160}")
        snapshots = state.get("snapshots", [])
        if not isinstance(snapshots, list) or len(snapshots) not in (0, done) \
                or not all(isinstance(s, dict) for s in snapshots):
            what = f"{len(snapshots)} entries" if isinstance(snapshots, list) else f"a {type(snapshots).__name__}"
            self._bad(f"field 'snapshots' has {what} for done={done} finished increments")
        peak = state.get("peak_extra_params", 0)
        if isinstance(peak, bool) or not isinstance(peak, int) or peak < 0:
            self._bad(f"field 'peak_extra_params' is {peak!r}, not a count")
        if not isinstance(state.get("strategy", {}), dict):
            self._bad(f"field 'strategy' is a {type(state.get('strategy')).__name__}, not a dict")

    # -- one training step -----------------------------------------------------
    def encoder_of(self, model: RetrievalModel, attr: str):
        """What turns the loop's inputs into ``model``'s features for ``attr``: its encoder (on
        images, or on cached trunk features), or the identity for a frozen encoder's cached outputs."""
        return model.encoder_for(attr) if self.features is None or model.on_features else (lambda f: f)

    def teacher_features(self, teacher: RetrievalModel, x: torch.Tensor, attr: str | None = None) -> torch.Tensor:
        """A teacher's encoder features of the inputs ``x`` (a frozen encoder's cached features pass through)."""
        return self.encoder_of(teacher, attr)(x)

    def metric_loss(self, attr: str, sampler: PairSampler, batch: int, rng) -> Batch:
        """One global batch of ``batch`` samples of ``attr`` and its metric loss, as a
        :class:`~mclfir_lite.methods.base.Batch`. Under torchrun this rank forwards its part of
        the batch (:class:`~mclfir_lite.training.batches.BatchSource`). Counts the images in
        ``costs["train_samples"]``."""
        c = self.config
        enc = self.encoder_of(self.model, attr)
        if c.loss == "triplet" and c.triplet_mining == "random":
            a, x, b = self.source.triplets(sampler, batch, rng)
            feats = enc(x)
            za, zp, zn = self.model.heads(feats, attr).split(b)
            loss = triplet_loss(za, zp, zn, 2 * c.margin)  # squared distance = 2 - 2 cos; a mean over triplets
        else:
            a, x, b = self.source.doublets(sampler, batch, rng)
            feats = enc(x)
            za, zp = self.model.heads(feats, attr).split(b)
            if c.loss == "triplet":   # semi-hard negatives from the whole global batch
                loss = self.losses.semi_hard(attr, za, zp, a)
            else:
                loss = self.losses.pairs(attr, za, zp, a)
        self.costs.add("train_samples", len(x) * self.world_size)
        return Batch(loss, x, feats, [attr], a)

    def mixed_metric_loss(self, attrs: list[str], samplers: dict, batch: int, rng) -> Batch:
        """One mixed batch: ``batch`` doublets of every attribute in ``attrs``, encoded in one
        pass, each attribute's loss through its own head; the losses are summed (and kept
        apart in ``Batch.parts``, for a method that weighs them)."""
        anchors, x, b = self.source.mixed(samplers, attrs, batch, rng)
        feats = self.encoder_of(self.model, attrs[0])(x)
        loss, parts = 0.0, {}
        for k, (a, anchor) in enumerate(zip(attrs, anchors)):
            f = feats[2 * b * k: 2 * b * (k + 1)]
            za, zp = self.model.heads(f, a).split(b)
            parts[a] = self.losses.pairs(a, za, zp, anchor)
            loss = loss + parts[a]
        self.costs.add("train_samples", len(x) * self.world_size)
        return Batch(loss, x, feats, list(attrs), np.concatenate(anchors), parts)

    # -- one increment -------------------------------------------------------
    def train_increment(self, i: int) -> None:
        c, strat = self.config, self.strat
        new = self.increments[i]
        seen = [a for g in self.increments[: i + 1] for a in g]
        old = [a for a in seen if a not in new]
        torch.manual_seed(c.seed * 7919 + strat.rng_id * 101 + i)
        rng = self.source.rng([c.seed, strat.rng_id, i])   # under torchrun: this rank's own stream
        if not strat.from_scratch:
            for a in new:
                self.model.add_attribute(a)
        strat.before_increment(i, new, old)
        train_attrs = strat.train_attributes(new, seen)
        samplers = {a: PairSampler(self.labels[a], self.protocol[a].train) for a in train_attrs}
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=strat.learning_rate(), weight_decay=c.weight_decay)
        steps = strat.steps(train_attrs)
        self.model.train()
        if not c.encoder_trainable or self.encoder_frozen:  # a frozen encoder keeps its BatchNorm statistics
            for enc in ([self.model.encoder] if self.model.encoder is not None else self.model.encoders.values()):
                enc.eval()
        self.peak_extra_params = max(self.peak_extra_params, strat.peak_extra_parameters())
        start = time.perf_counter()
        from tqdm.auto import tqdm
        bar = tqdm(range(steps), desc=f"{self.strategy} increment {i + 1}/{len(self.increments)}",
                   disable=not self.progress, leave=False)
        autocast, scaler = mixed_precision(c.device, c.amp)
        for step in bar:
            with autocast():
                batch = strat.batch(step, train_attrs, samplers, rng)
                extra = strat.extra_loss(step, batch, old, rng)
                loss = batch.loss if extra is None else batch.loss + extra
            batches.optimizer_step(opt, scaler, loss, params)   # gradients averaged over the ranks
            self.costs.add("optimizer_steps", 1)
            strat.after_step()
            if step % 25 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        strat.after_increment(i, new, train_attrs, samplers, rng)
        batches.share_state(strat)   # under torchrun: every rank continues from rank 0's Fisher / buffer
        self.costs.add("train_seconds", time.perf_counter() - start)

    # -- the whole plan --------------------------------------------------------
    def run(self, resume: bool = True, stop_after: int | None = None) -> dict:
        """Train every increment not yet done, evaluating and checkpointing after each.

        ``stop_after`` stops after that many finished increments (to show resuming).
        Returns :meth:`result`.
        """
        if resume:
            self.load()
        elif self.checkpoint is not None and self.checkpoint.exists():
            raise FileExistsError(f"checkpoint {self.checkpoint} exists; pass resume=True or delete it")
        while self.done < len(self.increments):
            if stop_after is not None and self.done >= stop_after:
                break
            i = self.done
            self.train_increment(i)
            seen = [a for g in self.increments[: i + 1] for a in g]
            self.history.append(dist.on_main(evaluate, self.model, self.images, self.labels, self.protocol,
                                             seen, features=self.features, no_relevant=self.config.no_relevant))
            self.snapshots.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
            self.done = i + 1
            dist.on_main(self.save)   # rank 0 writes, the others wait
        return self.result()

    def model_after(self, increment: int) -> RetrievalModel:
        """The model as it was after ``increment`` (0-based) finished."""
        if not 0 <= increment < len(self.snapshots):
            raise ValueError(f"increment {increment} not available: {len(self.snapshots)} finished")
        model = self.new_model(increment)
        for a in [a for g in self.increments[: increment + 1] for a in g]:
            model.add_attribute(a)
        model.load_state_dict(self.snapshots[increment])
        model.eval()
        return model

    def stored_parameters(self) -> int:
        """Parameters kept between increments: the model, and what the strategy keeps (EWC's
        Fisher and anchors). A teacher rebuilt at every increment is not stored: it is in
        ``peak_training_params``."""
        return count_parameters(self.model) + self.strat.stored_parameters()

    def result(self) -> dict:
        R = metrics.accuracy_matrix(self.history, self.attributes)
        final = {a: float(R[-1, j]) for j, a in enumerate(self.attributes)} if self.done == len(self.increments) else {}
        chance = metrics.chance_map_per_attribute(self.labels, self.protocol, self.attributes, self.config.no_relevant)
        n_queries = {a: int(len(self.protocol[a].query)) for a in self.attributes}
        scratch = self.strat.from_scratch  # independently trained models: "forgetting" would compare two models
        return {
            "strategy": self.strategy,
            "increments": self.increments,
            "attributes": self.attributes,
            "map_matrix": [[None if np.isnan(v) else float(v) for v in row] for row in R],
            "final_map": final,
            "mean_final_map": float(np.mean(list(final.values()))) if final else None,
            "final_meanap": metrics.query_weighted_mean(final, n_queries) if final else None,
            "chance_map": chance,
            "at_chance": [a for a in final if final[a] < chance[a] + metrics.AT_CHANCE_MARGIN],
            "forgetting": None if scratch else _none_if_nan(metrics.average_forgetting(R)),
            "bwt": None if scratch else _none_if_nan(metrics.backward_transfer(R)),
            "forgetting_note": "retrained from scratch at every increment: no forgetting or BWT" if scratch else "",
            "note": self.strat.note() if hasattr(self.strat, "note") else "",
            "train_samples": int(self.costs["train_samples"]),
            "teacher_samples": int(self.costs["teacher_samples"]),
            "optimizer_steps": int(self.costs["optimizer_steps"]),
            "train_seconds": round(float(self.costs["train_seconds"]), 2),
            "params": {"trainable": count_parameters(self.model, trainable_only=True),
                       "stored": self.stored_parameters(),
                       "peak_training": count_parameters(self.model) + self.peak_extra_params,
                       "replay_rows": self.strat.replay_rows() if hasattr(self.strat, "replay_rows") else 0},
            "config": dataclasses.asdict(self.config),
            "finished_increments": self.done,
        }


def _none_if_nan(x: float):
    return None if x is None or np.isnan(x) else float(x)

