"""Mechanism diagrams, drawn in code: figures that explain *how* something works, not what a
run measured. Each function returns a matplotlib figure (and draws nothing it was not told):

* :func:`model_diagram`: a shared encoder, one head per attribute, and the EMA teacher;
* :func:`doublet_batch`: which pairs of a doublet batch InfoNCE treats as positive, negative,
  or masked false negative;
* :func:`increment_timeline`: attributes arriving in increments, each with its own images;
* :func:`gallery_diagram`: a stale gallery index against a re-indexed one;
* :func:`ap_ranking`: average precision read off one ranking;
* :func:`compatibility_diagram`: the T x T compatibility matrix of query models and indexes;
* :func:`ema_memory`: what an EMA teacher is made of at the end of an increment;
* :func:`routing_diagram`: composed retrieval with routers per modality over fusion operations;
* :func:`draw_reindexing` (notebook 08): keeping the old gallery index versus re-indexing;
* :func:`draw_fusion` (notebook 09): dynamic fusion of an image and a text query.

The last two draw into ``ax`` (a new figure when None) and return the axes.
"""
from __future__ import annotations

import numpy as np

from .plots import pyplot

__all__ = ["model_diagram", "doublet_batch", "increment_timeline", "gallery_diagram", "ap_ranking",
           "compatibility_diagram", "ema_memory", "routing_diagram", "draw_reindexing", "draw_fusion"]

_BLUE, _ORANGE, _GREEN, _RED, _GREY = "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8c8c8c"


def _box(ax, x, y, w, h, text, color, fontsize=8, alpha=0.25, ls="-"):
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec=color, alpha=alpha, ls=ls))
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc="none", ec=color, lw=1.2, ls=ls))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, xy_from, xy_to, color="black", text=None, ls="-", fontsize=7):
    ax.annotate("", xy=xy_to, xytext=xy_from,
                arrowprops=dict(arrowstyle="->", color=color, lw=1.2, linestyle=ls))
    if text:
        ax.text((xy_from[0] + xy_to[0]) / 2, (xy_from[1] + xy_to[1]) / 2 + 0.03, text, ha="center",
                fontsize=fontsize, color=color)


def _canvas(figsize):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return fig, ax


def model_diagram(attributes=("sleeve_length", "neckline", "colour"), new=("colour",), teacher: bool = True):
    """(a) MCL-FIR's model: image -> shared encoder -> one head per attribute -> 128-d unit
    embeddings; with ``teacher``, the EMA teacher (a slowly moving copy of the encoder) whose
    features the student is pulled towards. Heads in ``new`` are drawn as just added."""
    attributes = list(attributes)
    if not attributes:
        raise ValueError("model_diagram needs at least one attribute")
    unknown = set(new) - set(attributes)
    if unknown:
        raise ValueError(f"new attributes {sorted(unknown)} are not in attributes {attributes}")
    fig, ax = _canvas((8.5, 3.8 if teacher else 2.8))
    y0 = 0.55 if teacher else 0.5
    _box(ax, 0.01, y0 - 0.08, 0.11, 0.16, "image", _GREY)
    _box(ax, 0.2, y0 - 0.12, 0.2, 0.24, "shared encoder\n(student)", _BLUE, 9)
    _arrow(ax, (0.12, y0), (0.2, y0))
    n = len(attributes)
    ys = np.linspace(0.85, 0.15, n) if not teacher else np.linspace(0.85, 0.35, n)
    for a, y in zip(attributes, ys):
        fresh = a in new
        _box(ax, 0.52, y - 0.06, 0.2, 0.12, f"head: {a}" + ("\n(new)" if fresh else ""),
             _ORANGE if fresh else _GREEN, 7, ls="--" if fresh else "-")
        _arrow(ax, (0.4, y0), (0.52, y))
        _box(ax, 0.8, y - 0.05, 0.19, 0.1, f"{a} embedding\n(unit length)", _GREY, 6)
        _arrow(ax, (0.72, y), (0.8, y))
    ax.text(0.62, 0.97, "one head per attribute", ha="center", fontsize=8, style="italic")
    if teacher:
        _box(ax, 0.2, 0.02, 0.2, 0.18, "EMA teacher\n(frozen for gradients)", _RED, 8, ls="--")
        _arrow(ax, (0.3, y0 - 0.12), (0.3, 0.2), _RED, None, "--")
        ax.text(0.29, 0.27, "after each step:\nθ_T ← d·θ_T + (1−d)·θ_S", fontsize=7, color=_RED, ha="right")
        ax.text(0.42, 0.09, "distillation: keep the student's features\nclose to the teacher's on new images",
                fontsize=7, color=_RED, va="center")
    return fig


def doublet_batch(labels=(0, 1, 0, 2, 1, 0), value_names=None):
    """(b) A batch of doublets: row ``i`` is item ``i`` (anchors first, then their positives),
    column ``k`` what InfoNCE does with ``z_k`` for it: its partner (the positive), a true
    negative, a false negative (same value, not its partner: masked by the masked InfoNCE,
    pushed away by the released NT-Xent) or itself (never compared)."""
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) < 2:
        raise ValueError(f"doublet_batch needs a 1-d list of at least 2 anchor labels, got {labels!r}")
    b = len(labels)
    items = np.concatenate([labels, labels])               # a positive has its anchor's value
    n = 2 * b
    kind = np.full((n, n), 1)                              # 1 = true negative
    kind[items[:, None] == items[None, :]] = 2             # 2 = false negative
    idx = np.arange(n)
    kind[idx, (idx + b) % n] = 3                           # 3 = partner (positive)
    kind[idx, idx] = 0                                     # 0 = itself
    names = value_names or [f"v{v}" for v in range(int(labels.max()) + 1)]
    tick = [f"{'a' if i < b else 'p'}{i % b} ({names[items[i]]})" for i in range(n)]
    fig, ax = plt.subplots(figsize=(8, 4.6))
    colours = ["white", "#d9d9d9", _RED, _GREEN]
    ax.imshow(kind, cmap=ListedColormap(colours), vmin=-0.5, vmax=3.5)
    ax.set_xticks(range(n), tick, rotation=90, fontsize=7)
    ax.set_yticks(range(n), tick, fontsize=7)
    ax.axhline(b - 0.5, color="black", lw=0.8)
    ax.axvline(b - 0.5, color="black", lw=0.8)
    ax.set_title("one doublet batch: what InfoNCE does with each pair", fontsize=9)
    ax.legend(handles=[Patch(color=_GREEN, label="partner (positive)"),
                       Patch(color="#d9d9d9", label="true negative"),
                       Patch(color=_RED, label="false negative: masked (ours) /\npushed away (unmasked NT-Xent)"),
                       Patch(fc="white", ec="black", label="itself (not compared)")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.subplots_adjust(left=0.1, right=0.62, bottom=0.2, top=0.92)
    return fig


def increment_timeline(increments=(("sleeve_length", "neckline"), ("length",), ("colour", "pattern")),
                       new_images: bool = True):
    """(c) The continual protocol: one box per increment with the attributes it brings; with
    ``new_images`` each increment trains on its own, disjoint pool of images. After every
    increment all attributes seen so far are evaluated (one row of the accuracy matrix)."""
    increments = [list(g) for g in increments]
    if not increments or any(not g for g in increments):
        raise ValueError(f"increment_timeline needs non-empty increments, got {increments!r}")
    fig, ax = _canvas((max(6.0, 3.0 * len(increments)), 3.0))
    t = len(increments)
    w = 0.7 / t
    seen = []
    for i, group in enumerate(increments):
        x = 0.05 + i * (0.9 / t)
        seen += group
        _box(ax, x, 0.55, w, 0.3, f"increment {i + 1}\ntrain:\n" + "\n".join(group), _BLUE, 8)
        pool = f"image pool {i + 1} (new images)" if new_images else "the same images, new labels"
        _box(ax, x, 0.38, w, 0.1, pool, _ORANGE if new_images else _GREY, 7)
        lines = [", ".join(seen[k:k + 2]) for k in range(0, len(seen), 2)]
        _box(ax, x, 0.02, w, 0.27, "evaluate:\n" + "\n".join(lines) + f"\n→ row {i + 1} of R", _GREEN, 7)
        _arrow(ax, (x + w / 2, 0.38), (x + w / 2, 0.27))
        if i + 1 < t:
            _arrow(ax, (x + w, 0.7), (x + 0.9 / t, 0.7))
    ax.text(0.5, 0.95, "attributes arrive over time; one model goes on; old attributes get no more training data",
            ha="center",
            fontsize=9, style="italic")
    return fig


def gallery_diagram():
    """(d) Deployment after a model update: keep the stored gallery embeddings (stale: made by
    the old model, compared with queries from the new one) or re-index (re-embed every gallery
    image with the new model)."""
    fig, ax = _canvas((8, 3.2))
    for col, (title, gallery_model, cost, colour) in enumerate((
            ("keep the old index (no re-indexing)", "old model (increment t)", "cost: nothing", _ORANGE),
            ("re-index the gallery", "new model (increment t+1)", "cost: re-embed every gallery image", _GREEN))):
        x = 0.03 + col * 0.5
        ax.text(x + 0.22, 0.95, title, ha="center", fontsize=9, weight="bold")
        _box(ax, x, 0.62, 0.18, 0.16, "query image", _GREY, 7)
        _box(ax, x + 0.25, 0.62, 0.19, 0.16, "new model\n(increment t+1)", _BLUE, 7)
        _arrow(ax, (x + 0.18, 0.7), (x + 0.25, 0.7))
        _box(ax, x, 0.2, 0.18, 0.16, "gallery images", _GREY, 7)
        _box(ax, x + 0.25, 0.2, 0.19, 0.16, f"stored embeddings,\nmade by the\n{gallery_model}", colour, 7)
        _arrow(ax, (x + 0.18, 0.28), (x + 0.25, 0.28))
        _arrow(ax, (x + 0.345, 0.62), (x + 0.345, 0.36), text=None)
        ax.text(x + 0.36, 0.48, "rank by\ndot product", fontsize=7, va="center")
        ax.text(x + 0.22, 0.06, cost, ha="center", fontsize=7, style="italic")
    ax.plot([0.5, 0.5], [0.02, 0.98], color="black", lw=0.6)
    return fig


def ap_ranking(relevant=(1, 0, 1, 0, 0, 1)):
    """AP read off one ranking: one square per rank (green = relevant), the precision@k at
    every relevant rank, and their mean, the AP."""
    plt = pyplot()
    rel = np.asarray(relevant, dtype=bool)
    if rel.ndim != 1 or not rel.any():
        raise ValueError(f"ap_ranking needs a 1-d ranking with at least one relevant item, got {relevant!r}")
    ranks = np.arange(1, len(rel) + 1)
    precision = np.cumsum(rel) / ranks
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(rel)), 2.1))
    for k, r in zip(ranks, rel):
        ax.add_patch(plt.Rectangle((k - 0.4, 0.2), 0.8, 0.6, color=_GREEN if r else "#d9d9d9"))
        ax.text(k, 0.5, f"{k}", ha="center", va="center", fontsize=8)
        if r:
            ax.text(k, -0.15, f"P@{k}\n={precision[k - 1]:.2f}", ha="center", va="top", fontsize=7)
    ap = precision[rel].mean()
    terms = " + ".join(f"{p:.2f}" for p in precision[rel])
    ax.set_title(f"AP = ({terms}) / {rel.sum()} = {ap:.3f}\n(green = relevant; rank 1 = most similar)",
                 fontsize=8)
    ax.set_xlim(0.4, len(rel) + 0.6)
    ax.set_ylim(-0.9, 1.0)
    ax.axis("off")
    fig.subplots_adjust(top=0.78, bottom=0.02)
    return fig


def compatibility_diagram(T: int = 3):
    """(f) What each cell of a T x T compatibility matrix pairs: the query model after increment
    ``i`` (row) with the index built after increment ``j`` (column). The diagonal re-indexes
    every time; below it a newer query model searches an older index (keeping the index); BCT's
    criterion compares each such cell with the diagonal cell of its column."""
    if T < 2:
        raise ValueError(f"compatibility_diagram needs T >= 2, got {T}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(T - 0.5, -0.5)
    for i in range(T):
        for j in range(T):
            if i == j:
                colour, text = _GREEN, "re-indexed\n(both sides\nfrom %d)" % (i + 1)
            elif i > j:
                colour, text = _ORANGE, "new queries (%d)\nold index (%d)" % (i + 1, j + 1)
            else:
                colour, text = _GREY, "old queries (%d)\nnewer index (%d)" % (i + 1, j + 1)
            ax.add_patch(plt.Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fc=colour, alpha=0.3, ec=colour))
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.annotate("", xy=(-0.38, T - 1), xytext=(-0.38, 0.22),
                arrowprops=dict(arrowstyle="<->", color=_RED, lw=1.2))
    ax.text((T - 1) / 2, T - 0.5 + 0.12, "red arrow, BCT's criterion: each orange cell >= the green cell "
            "at the top of its column", color=_RED, fontsize=7, ha="center", va="top")
    ax.set_xticks(range(T), [f"index after {j + 1}" for j in range(T)], fontsize=7)
    ax.set_yticks(range(T), [f"queries after {i + 1}" for i in range(T)], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_title("compatibility matrix C[i][j]: query model i x index j", fontsize=9, pad=22)
    fig.tight_layout()
    return fig


def ema_memory(decays=(0.99, 0.999), steps: int = 400):
    """(g) What an EMA teacher is made of after ``steps`` updates of an increment: the share
    ``d**steps`` of the snapshot it started from (the previous increment's model: ``lwf``'s whole
    teacher) and the weights ``(1 - d) d**k`` of the student's states ``k`` steps ago, one panel
    per decay. The shares add up to 1; the mean age of the student part is drawn as a line."""
    decays = tuple(float(d) for d in decays)
    if not decays or any(not 0 < d < 1 for d in decays):
        raise ValueError(f"ema_memory needs decays strictly between 0 and 1, got {decays}")
    if int(steps) < 1:
        raise ValueError(f"ema_memory needs steps >= 1, got {steps}")
    steps = int(steps)
    plt = pyplot()
    from matplotlib.patches import Patch
    fig, axes = plt.subplots(1, len(decays), figsize=(4.2 * len(decays), 2.8), squeeze=False)
    k = np.arange(steps)
    for ax, d in zip(axes[0], decays):
        w = (1 - d) * d ** k                        # weight of the student state k steps ago
        snapshot = d ** steps                       # what is left of the teacher the increment started with
        ax.bar(k, w, width=1.0, color=_BLUE, alpha=0.6, label=f"student, k steps ago (sum {w.sum():.2f})")
        age = float((k * w).sum() / w.sum())
        ax.axvline(age, color=_RED, ls="--", lw=1, label=f"mean age of the student part: {age:.0f} steps")
        ax.set(xlabel="k (steps ago)", ylabel="weight in the teacher", yticks=[], xlim=(-steps * 0.02, steps * 1.02),
               ylim=(0, w.max() * 1.9), title=f"decay {d:g}: memory 1/(1-d) = {1 / (1 - d):.0f} steps")
        ax.title.set_fontsize(9)
        share = ax.inset_axes([0.05, 0.84, 0.35, 0.08])       # the teacher's composition, to scale
        share.barh([0], [1 - snapshot], color=_BLUE, alpha=0.6)
        share.barh([0], [snapshot], left=[1 - snapshot], color=_ORANGE)
        share.set(xlim=(0, 1), xticks=[], yticks=[])
        share.text(1.04, 0.5, f"teacher = {1 - snapshot:.0%} student + {snapshot:.0%} snapshot",
                   transform=share.transAxes, ha="left", va="center", fontsize=7)
        handles = ax.get_legend_handles_labels()[0] + [
            Patch(color=_ORANGE, label=f"snapshot of the previous increment ({snapshot:.0%})")]
        ax.legend(handles=handles, fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.55))
    fig.suptitle(f"the EMA teacher after the {steps} steps of an increment", fontsize=9)
    fig.tight_layout()
    return fig


def routing_diagram(ops=("sum", "tirg", "concat_mlp", "film")):
    """(g) Composed retrieval with dynamic fusion (after SDFN): a reference image ``r`` and a
    modification text ``t`` go through every fusion operation; a router per modality scores
    the operations (their logits add), a softmax mixes the operations' outputs into the query;
    self path distillation pulls the routing weights towards an EMA teacher's."""
    ops = list(ops)
    if not ops:
        raise ValueError("routing_diagram needs at least one operation")
    fig, ax = _canvas((9, 3.8))
    _box(ax, 0.01, 0.72, 0.13, 0.14, "reference\nimage", _GREY, 7)
    _box(ax, 0.01, 0.14, 0.13, 0.14, "modification\ntext", _GREY, 7)
    _box(ax, 0.19, 0.72, 0.1, 0.14, "r", _BLUE, 9)
    _box(ax, 0.19, 0.14, 0.1, 0.14, "t", _ORANGE, 9)
    _arrow(ax, (0.14, 0.79), (0.19, 0.79))
    _arrow(ax, (0.14, 0.21), (0.19, 0.21))
    n = len(ops)
    ys = [0.12 + 0.76 * (k + 0.5) / n for k in range(n)]
    for y, name in zip(ys, ops):
        _box(ax, 0.42, y - 0.05, 0.14, 0.1, f"op: {name}(r, t)", _GREEN, 7)
        _arrow(ax, (0.29, 0.79), (0.42, y), color="0.6")
        _arrow(ax, (0.29, 0.21), (0.42, y), color="0.6")
        _arrow(ax, (0.56, y), (0.7, 0.5), color="0.6")
    _box(ax, 0.2, 0.44, 0.13, 0.12, "router_img(r)\n+ router_txt(t)\n-> softmax: w", _RED, 7)
    _arrow(ax, (0.24, 0.72), (0.24, 0.56), color=_RED)
    _arrow(ax, (0.24, 0.28), (0.24, 0.44), color=_RED)
    _box(ax, 0.7, 0.42, 0.12, 0.16, "q = sum over k\nof w_k op_k(r, t)", _BLUE, 7)
    _arrow(ax, (0.33, 0.5), (0.7, 0.46), color=_RED, ls="--", text="weights w")
    _box(ax, 0.86, 0.42, 0.12, 0.16, "rank the\ngallery", _GREY, 7)
    _arrow(ax, (0.82, 0.5), (0.86, 0.5))
    ax.text(0.6, 0.02, "self path distillation: KL(w || w of an EMA teacher), the router's own earlier decisions",
            ha="center", fontsize=7, style="italic", color=_RED)
    ax.text(0.5, 0.97, "static fusion = one operation for every query; dynamic = the routers mix them per query",
            ha="center", fontsize=8, style="italic")
    return fig


# ---------------------------------------------------------------------------- keeping or re-indexing (notebook 08)

def draw_reindexing(ax=None):
    """A diagram: the gallery indexed once by the model of its own time (kept) versus
    embedded again by today's model (re-indexed); queries always come from today's model.
    Returns the matplotlib axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 3.4))
    ax.set(xlim=(0, 10), ylim=(0, 5.2))
    ax.axis("off")

    def box(x, y, text, color, w=2.1, h=0.7):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    fc=color, ec="0.3", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1, style="-|>", color="0.25", ls="-"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10,
                                     color=color, lw=1.1, linestyle=ls))

    # timeline of models
    ax.text(0.2, 4.85, "models over time:", fontsize=8, va="center")
    for k, (x, name) in enumerate([(3.0, "model after increment t\n(the task is learnt)"),
                                   (5.6, "model after\nincrement t+1"), (8.2, "today's model\n(after the last one)")]):
        box(x, 4.75, name, "#dde7f5" if k else "#cfe8cf")
        if k:
            arrow(x - 1.6, 4.75, x - 0.98, 4.75)
    # two panels
    for y0, title, gal_model, gal_color, note in [
            (2.85, "keep the old index", "model after increment t", "#cfe8cf",
             "gallery embedded once, consistent with the head it was trained with;\nonly the query side drifts"),
            (0.95, "re-index", "today's model", "#f5dada",
             "every gallery image embedded again, after every update;\nthe gallery gets the forgotten embedding too")]:
        ax.text(0.2, y0 + 0.55, title, fontsize=9, weight="bold")
        box(1.3, y0, "query image", "white", w=1.5)
        box(3.7, y0, "today's model", "#dde7f5", w=1.7)
        arrow(2.08, y0, 2.83, y0)
        box(7.0, y0, f"gallery index\n({gal_model})", gal_color, w=2.5, h=0.8)
        arrow(4.58, y0, 5.72, y0, style="<|-|>")
        ax.text(5.15, y0 + 0.17, "rank", fontsize=7, ha="center")
        ax.text(5.0, y0 - 0.72, note, fontsize=7, ha="center", va="center", color="0.3")
    ax.text(9.1, 2.85, "0 gallery\npasses", fontsize=7, ha="center", va="center", color="green")
    ax.text(9.1, 0.95, "|gallery|\npasses", fontsize=7, ha="center", va="center", color="firebrick")
    arrow(3.0, 4.38, 6.2, 3.28, color="green", ls="--")
    return ax


# ---------------------------------------------------------------------------- dynamic fusion (notebook 09)

def draw_fusion(ax=None):
    """A diagram of dynamic fusion: image path, text path, a router over both, weighted sum."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 3.2))
    ax.set(xlim=(0, 10), ylim=(0, 4.4))
    ax.axis("off")

    def box(x, y, text, color, w=1.8, h=0.6):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", fc=color,
                                    ec="0.3", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1, color="0.25"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10, color=color, lw=1.1))

    box(1.0, 3.6, "query image", "white", w=1.5)
    box(1.0, 0.8, '"same length,\nbut in red"', "white", w=1.7, h=0.8)
    box(3.4, 3.6, "keep head\nf_keep(q)", "#cfe8cf", w=1.6, h=0.7)
    box(3.4, 0.8, "text encoder\n+ linear g(t)", "#f5e6c8", w=1.7, h=0.7)
    box(3.4, 2.2, "router (MLP)\n-> w_img, w_txt", "#dde7f5", w=1.9, h=0.7)
    arrow(1.78, 3.6, 2.58, 3.6)
    arrow(1.88, 0.8, 2.53, 0.8)
    arrow(3.4, 3.23, 3.4, 2.57)
    arrow(3.4, 1.17, 3.4, 1.83)
    box(6.1, 2.2, "w_img <f_keep(q), f_keep(c)>\n+ w_txt <g(t), f_change(c)>", "#eeeeee", w=3.2, h=0.9)
    arrow(4.22, 3.6, 4.9, 2.68)
    arrow(4.28, 0.8, 4.9, 1.72)
    arrow(4.37, 2.2, 4.48, 2.2)
    box(8.9, 2.2, "rank the\ngallery", "white", w=1.3)
    arrow(7.72, 2.2, 8.23, 2.2)
    ax.text(6.1, 3.75, "EMA teacher of the router:\nKL(w_teacher || w) keeps routing stable", fontsize=7,
            ha="center", color="0.3")
    return ax
