"""baselines: the tuned-alike baselines against mclfir, on the strategies benchmark's seeds and orders.

The strategies benchmark holds the lesson's five strategies (``joint``, ``isolated``,
``finetune``, ``lwf``, ``mclfir``). This one runs the other baselines the issue asks to be
tuned alike: ``ewc`` (online EWC, lambda chosen on validation) and ``replay`` (a buffer of old
training rows at the preset's size, ``Config.replay_per_attribute``), each at its preset, over
the same seeds and three task orders (the hardest attribute is measured again, from
``isolated`` runs on the lesson's order). ``mclfir`` is trained again beside them, so that every
paired difference compares runs of one machine: another CPU rounds differently
(``bench_threads`` measures how far), which would add its difference to every pair. The
tuning benchmark says how far each preset is from the best configuration it found.
``derpp`` (DER++: replay plus distillation of the stored embeddings) at its tuned weights.

``replay`` also runs at two more buffer sizes (:data:`REPLAY_SIZES`), on the same seeds and
orders, paired with ``mclfir``: the buffer that takes the bytes of MCL-FIR's teacher (the
comparison at equal memory, :func:`bench_tuning.teacher_sized_replay`) and the tuning's best
on validation. A buffer is memory, not a knob: a larger one is better until it holds every
old row (``joint`` by another name), so the question is what ``mclfir`` is worth at each size.
``--strategies`` is not read here; ``STRATEGIES`` is.

Usage: ``python benchmarks/run_all.py --only baselines --threads 1``.
"""
from __future__ import annotations

import sys

import _common as C
import bench_strategies as S
import bench_tuning as T

STRATEGIES = ("mclfir", "ewc", "replay", "derpp")
# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = STRATEGIES + ("isolated",)   # isolated: the hardest attribute
# replay's buffer (rows per attribute) at sizes other than the preset's: "teacher" is the bytes of
# MCL-FIR's teacher; 512 is the tuning benchmark's best on validation (seeds 101, 102; the edge of its grid)
REPLAY_SIZES = {"replay (teacher bytes)": "teacher", "replay (512 rows)": 512}


def run(quick: bool, seed: int, device: str = "cpu", processes: int = 2, fresh: bool = False, **_) -> dict:
    """:func:`bench_strategies.run` with :data:`STRATEGIES` (no ``joint``, so no budget doubling),
    then ``replay`` at each of :data:`REPLAY_SIZES` on the same seeds and orders."""
    out = S.run(quick=quick, seed=seed, device=device, processes=processes, fresh=fresh, strategies=STRATEGIES)
    return replay_sizes(out, quick, device=device, processes=processes, fresh=fresh)


def replay_sizes(out: dict, quick: bool, device: str = "cpu", processes: int = 2, fresh: bool = False) -> dict:
    """``out`` with ``replay`` at each of :data:`REPLAY_SIZES` added, as rows of their own
    (``summary``, ``per_seed``, ``by_order``) and paired with ``mclfir`` (``paired``) over every
    (order, seed); ``replay_sizes`` records each row's buffer. ``mclfir``'s side of the pairs is
    its per-seed rows in ``out`` (with its order's attributes and increments, which stability and
    plasticity read), not its runs fetched again."""
    from mclfir_lite.lab.report import over_seeds, paired_measures
    seeds = out["seeds"]
    lab = C.synth_lab(quick, seeds[0])
    sized = T.teacher_sized_replay(lab)
    sizes = {name: sized["replay_per_attribute"] if v == "teacher" else int(v) for name, v in REPLAY_SIZES.items()}
    overrides, _ = C.train_overrides(device)
    pooled = {n: [] for n in [*sizes, "mclfir"]}
    for order in out["orders"]:
        at = out["by_order"][order["name"]]
        jobs = [(s, "replay", {**overrides, "replay_per_attribute": sizes[n]}, {"increments": S._spec(order["plan"])})
                for n in sizes for s in seeds]
        res = C.run_many(jobs, quick, processes=processes, fresh=fresh)
        new = {n: res[k * len(seeds):(k + 1) * len(seeds)] for k, n in enumerate(sizes)}
        mc = at["summary"]["mclfir"]
        pooled["mclfir"] += [{**row, "attributes": mc["attributes"], "increments": mc["increments"]}
                             for row in at["per_seed"]["mclfir"]]
        for n in sizes:
            pooled[n] += new[n]
        for x in [at] + ([out] if order["name"] == "lesson" else []):
            x["summary"].update(over_seeds(new))
            x["per_seed"].update(S._per_seed(new))
    for n in sizes:
        out["paired"][f"mclfir vs {n}"] = paired_measures(pooled["mclfir"], pooled[n])
    more = C.run_costs([r for n in sizes for r in pooled[n]])
    out["runs"] = {k: round(out["runs"][k] + more[k], 1) if k == "train_seconds" else out["runs"][k] + more[k]
                   for k in out["runs"]}
    out["replay_sizes"] = {"sizes": sizes, "preset": lab.config.replay_per_attribute, "teacher_sized": sized,
                           "train_rows": {a: len(lab.protocol[a].train) for a in lab.attributes}}
    return out


def buffers(r: dict) -> str:
    """One line: each replay row's buffer (the rows it held at the end, as measured, per attribute)
    against the teacher's bytes and against an attribute's training rows."""
    x = r.get("replay_sizes")
    if not x:
        return ""
    t, train = x["teacher_sized"], x.get("train_rows") or {}
    rows = _rows(x)

    def one(n, v):
        held = r["summary"][n]["params"].get("replay_rows")
        text = f"`{n}` {v}"
        if held:
            text += f" ({held * t['image_bytes'] / t['teacher_bytes']:.1f}x the teacher's bytes at the end"
            if train:
                lo, hi = f"{v / max(train.values()):.0%}", f"{min(v / min(train.values()), 1):.0%}"
                text += f"; {lo if lo == hi else f'{lo} to {hi}'} of an attribute's training rows"
            text += ")"
        return text
    return ("Replay's buffers, in rows per attribute (one stored image takes "
            f"{t['image_bytes']:,} bytes; MCL-FIR's teacher, a float32 copy of the model with every head, "
            f"{t['teacher_bytes']:,}): " + ", ".join(one(n, v) for n, v in sorted(rows.items(), key=lambda kv: kv[1]))
            + ". `replay`'s is the preset's (`Config.replay_per_attribute`). The teacher is held while an increment "
            "trains; the buffer is kept between increments (attributes of one increment may hold the same image "
            "twice: the bytes are an upper bound).")


SAYS = {"above": "`mclfir` higher", "below": "`mclfir` lower", "undecided": "not resolved at 0.01",
        "no difference": "no difference at 0.01"}


def _rows(x: dict) -> dict:
    """Each replay row's buffer, in rows per attribute (``x``: a result's ``replay_sizes``)."""
    return {"replay": x["preset"], **x["sizes"]}


def _at_chance(r: dict, n: str) -> dict:
    """The attributes ``n`` leaves at chance (mean over seeds), order by order."""
    return {o: r["by_order"][o]["summary"][n].get("at_chance") or [] for o in r["by_order"]}


def shows(r: dict) -> list[str]:
    """Generated lines: ``mclfir`` against replay at each buffer size, every measure's paired
    difference and verdict over every (order, seed); the attributes each leaves at chance; and
    what the sizes say together."""
    x = r.get("replay_sizes")
    if not x:
        return []
    rows = _rows(x)
    out, meanap = [], {}
    for n, v in sorted(rows.items(), key=lambda kv: kv[1]):
        pair = r["paired"].get(f"mclfir vs {n}")
        if not pair:
            continue
        meanap[n] = pair["meanap"]["verdict"]
        out.append(f"* `mclfir` − `{n}` ({v} rows per attribute), over {pair['meanap']['n']} (order, seed) pairs: "
                   + "; ".join(f"{'MeanAP' if m == 'meanap' else m} {d['mean']:+.3f} ({SAYS[d['verdict']]})"
                               for m, d in pair.items()) + ".")
    out.append("* Attributes left at chance (mean over seeds), order by order: "
               + "; ".join(f"`{n}`: " + ("; ".join(f"{o} {', '.join(f'`{a}`' for a in v)}"
                                                    for o, v in _at_chance(r, n).items() if v) or "none")
                           for n in ["mclfir", *sorted(meanap, key=rows.get)]) + ".")
    small, large = (min(meanap, key=rows.get), max(meanap, key=rows.get)) if meanap else (None, None)
    if small and large and small != large:
        if meanap[small] == "above" and meanap[large] != "above":
            out.append(f"* On MeanAP, `mclfir` ends above `{small}` but not above `{large}`: what the teacher "
                       "buys over replay depends on the memory replay is given.")
        elif all(v == "above" for v in meanap.values()):
            out.append("* On MeanAP, `mclfir` ends above `replay` at every buffer size measured.")
        mine = _at_chance(r, "mclfir")
        lost = {o: [a for a in v if a not in mine[o]] for o, v in _at_chance(r, large).items()}
        lost = {o: v for o, v in lost.items() if v}
        if lost:
            out.append(f"* MeanAP hides what `{large}` gives up: it leaves at chance what `mclfir` learns ("
                       + "; ".join(f"{o}: {', '.join(f'`{a}`' for a in v)}" for o, v in lost.items())
                       + "), so a tie on MeanAP is not a tie on every attribute.")
    return out


def render(r: dict) -> str:
    return "\n\n".join(x for x in (S.render(r), buffers(r), "\n".join(shows(r))) if x)


def readme(r: dict) -> str:
    return "\n\n".join(x for x in (S.readme(r), buffers(r), "\n".join(shows(r))) if x)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
