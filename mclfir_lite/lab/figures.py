"""The figures of the notebook views (:mod:`mclfir_lite.lab.views`: ``draw_<view>(view, ...)``
returns a matplotlib figure of what the view computed), and :func:`write_figures`, the PNG
files of ``python -m mclfir_lite demo``. All figure code of the package is in the lab
layer: here, :mod:`mclfir_lite.lab.plots` (curves, matrices, neighbour rows, histograms,
scatters) and :mod:`mclfir_lite.lab.diagrams` (schematic drawings).

In a notebook, assign a figure you draw (``fig = draw_neighbour_view(...)``): a figure
left as a cell's last value is shown twice by the inline backend.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import atomic_write_file
from . import plots
from .views import results_chance, similarity_digits

__all__ = ["draw_neighbour_view", "draw_compare_view", "draw_ap_histograms", "draw_forgotten_view",
           "draw_drift_view", "draw_forgetting_view", "ap_text", "write_figures", "save_figure"]


def _thumbnails(lab, rows) -> list[np.ndarray]:
    """Images of ``rows`` for display: read from the dataset at a larger size when it has image
    files (real data), else the lab's pixels; :func:`plots.plot_neighbour_rows` upscales."""
    rows = np.atleast_1d(rows)
    paths = lab.table.images
    if isinstance(paths, list) and lab.images.shape[-1] < plots.MIN_THUMB_PX:
        from ..data.table import load_image
        try:
            return [load_image(paths[int(r)], 2 * plots.MIN_THUMB_PX) for r in rows]
        except ValueError:          # a file moved since the lab was built: use the lab's pixels
            pass
    return list(lab.pixels(rows))


def _neighbour_row(view: dict, lab, label: str) -> dict:
    if not view["available"]:
        return {"label": label, "message": view["message"]}
    d = similarity_digits(view["similarities"])
    return {"label": label, "query": _thumbnails(lab, view["query_row"])[0], "images": _thumbnails(lab, view["rows"]),
            "relevant": list(view["relevant"]),
            "captions": [f"{v}\n{s:.{d}f}" for v, s in zip(view["values"], view["similarities"])]}


def ap_text(ap) -> str:
    return "AP n/a" if ap is None else f"AP {ap:.3f}"


def draw_neighbour_view(view: dict, lab, axes=None):
    """Draw a :func:`neighbour_view`: the query, then its neighbours framed green (relevant)
    or red (not), captioned with value and similarity (enough decimals to show the order).
    An unavailable view draws its message. ``axes`` (k + 1 axes) draws into a figure of yours."""
    plt = plots.pyplot()
    if not view["available"]:
        fig, ax = (axes[0].figure, axes[0]) if axes is not None else plt.subplots(figsize=(6, 0.8), dpi=plots.DPI)
        ax.axis("off")
        ax.text(0.5, 0.5, view["message"], ha="center", va="center", fontsize=9, wrap=True)
        return fig
    title = (f"{view['strategy']}, after increment {view['increment'] + 1}: {view['attribute']} = "
             f"{view['query_value']}   ({ap_text(view['ap'])} for this query)")
    row = _neighbour_row(view, lab, f"{view['strategy']}\n{ap_text(view['ap'])}")
    if axes is not None:
        fig = plots.plot_neighbours(row["query"], row["images"], row["relevant"], title=view["query_value"],
                                    captions=row["captions"], axes=axes)
        fig.suptitle(title, fontsize=9)
        return fig
    return plots.plot_neighbour_rows([row], title=title)


def draw_compare_view(view: dict, lab):
    """The linked rows of a :func:`compare_view`: one row per strategy, the same query."""
    rows = [_neighbour_row(v, lab, f"{s}\n{ap_text(v['ap'])}") for s, v in view["views"].items()]
    title = (f"query #{view['query_index']}: {view['attribute']} = {view['query_value']}, after increment "
             f"{view['increment'] + 1}   (chance AP of this query {view['query_chance']:.3f})")
    return plots.plot_neighbour_rows(rows, title=title)


def draw_ap_histograms(view: dict):
    """Each strategy's histogram of per-query AP (:func:`compare_view`), the query marked, chance dashed."""
    aps = {s: (a if a is not None else np.zeros(0)) for s, a in view["aps"].items()}
    if view.get("no_relevant", "zero") == "zero":   # as the mAP counts them: AP 0
        aps = {s: np.nan_to_num(a, nan=0.0) for s, a in aps.items()}
    marked = {s: v["ap"] for s, v in view["views"].items()}
    return plots.plot_ap_histograms(aps, marked, chance=view["chance"])


def draw_forgotten_view(view: dict, lab):
    """Then and now, side by side (two linked rows) for a :func:`forgotten_view`."""
    e = view["entry"]
    rows = [_neighbour_row(view["then"], lab, f"after inc. {e['learnt'] + 1}\n(learnt)\n{ap_text(e['ap_then'])}"),
            _neighbour_row(view["now"], lab, f"after inc. {e['later'] + 1}\n{ap_text(e['ap_now'])}")]
    title = (f"{e['strategy']}: query #{e['query_index']}, {e['attribute']} = {e['value']}; "
             f"AP fell by {e['drop']:.3f}")
    return plots.plot_neighbour_rows(rows, title=title)


def draw_drift_view(view: dict):
    """One scatter per strategy of a :func:`drift_view`."""
    title = (f"'{view['attribute']}' head: gallery embeddings after increment {view['increment'] + 1} "
             f"(query #{view['query_index']} = star, its top neighbours ringed)")
    return plots.plot_embedding_scatter(view["panels"], view["values"], title=title)


def draw_forgetting_view(view: dict, results: dict, chance: dict | None = None):
    """The curves of a :func:`forgetting_view` (chance dashed, seeds' spread as a band) above
    one accuracy-matrix heatmap per strategy (at most four per row)."""
    plt = plots.pyplot()
    n = len(view["strategies"])
    if n == 0:
        fig, ax = plt.subplots(figsize=(6, 0.8), dpi=plots.DPI)
        ax.axis("off")
        ax.text(0.5, 0.5, view["message"], ha="center", va="center", fontsize=9)
        return fig
    subset = {s: results[s] for s in view["strategies"]}
    g = plots.matrix_grid_size(subset)
    curve_h = 2.6
    width, height = max(6.5, g["width"]), 0.3 + curve_h + 0.4 + g["height"]
    fig = plt.figure(figsize=(width, height), dpi=plots.DPI)
    ax = fig.add_axes([0.65 / width, 1 - (0.3 + curve_h) / height, (width - 2.9) / width, curve_h / height])
    plots.plot_forgetting_curves(subset, view["attribute"], ax=ax, chance=results_chance(results, chance))
    if ax.get_legend() is not None:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    if view["message"]:
        ax.set_title(view["message"], fontsize=8)
    titles = {s: s + ("  (forgetting n/a)" if f is None else f"  (forgetting {f:.2f})")
              for s, f in view["forgetting"].items()}
    plots.matrix_grid(fig, subset, titles, top=0.3 + curve_h + 0.4)
    return fig


# ---------------------------------------------------------------------------- a demo run's figure files

def write_figures(report, runners, images, table, protocol, out: Path) -> None:
    """forgetting.png (curves), accuracy_matrices.png, neighbours.png."""
    from ..retrieval.index import neighbours
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["strategies"]
    first = report["increments"][0][0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    plots.plot_forgetting_curves(results, attribute=first, ax=axes[0])
    plots.plot_forgetting_curves(results, ax=axes[1])
    fig.tight_layout()
    save_figure(fig, out / "forgetting.png")
    save_figure(plots.plot_strategies(results), out / "accuracy_matrices.png")
    plt.close("all")
    shown = [s for s in ("finetune", "mclfir", "joint") if s in runners] or list(runners)[:2]
    split = protocol[first]
    queries = split.query[:3]
    k = 8
    fig, axes = plt.subplots(len(shown) * len(queries), k + 1, figsize=(1.2 * (k + 1), 1.35 * len(shown) * len(queries)),
                             squeeze=False)
    pics = lambda rows: images[np.asarray(rows)].permute(0, 2, 3, 1).numpy()  # works for lazy images too
    names = table.values[first]
    for si, s in enumerate(shown):
        for qi, q in enumerate(queries):
            r = runners[s]   # a trainable tail reads the trunk's cached features, not images
            nb = neighbours(r.model, r.features if r.model.on_features else images, table.labels[first], int(q),
                            split.candidate, first, k=k)
            caps = [names[table.labels[first][r]] for r in nb["rows"]]
            plots.plot_neighbours(pics([q])[0], list(pics(nb["rows"])), list(nb["relevant"]),
                                  title=f"{s}\n{names[nb['query_label']]}\nAP {nb['ap']:.2f}", captions=caps,
                                  axes=axes[si * len(queries) + qi])
    fig.suptitle(f"top-{k} neighbours by '{first}' after the last increment (green: same value)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "neighbours.png")
    plt.close("all")


def save_figure(fig, path: Path) -> None:
    """A PNG written like every other output: a temp file made without following links, then a rename."""
    atomic_write_file(path, lambda f: fig.savefig(f, format="png", dpi=90))
