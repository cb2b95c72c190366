"""Interactive views for notebooks: a neighbour browser and forgetting curves.

Each view is two plain functions, testable without a browser, plus a thin ipywidgets
class that calls them whenever a control changes:

* :func:`neighbour_view` ``(lab, runners, strategy, attribute, increment, query_index, k=8)``
  returns a dict (the *view*) describing the top-``k`` neighbours of one query for one
  attribute, with the model a strategy had after one increment;
  :func:`draw_neighbour_view` ``(view, lab, axes=None)`` draws it and returns the figure.
* :func:`forgetting_view` ``(results, attribute, strategies)`` returns a dict with the
  per-increment mAP curves, accuracy matrices, forgetting and BWT of some strategies;
  :func:`draw_forgetting_view` ``(view)`` draws curves and heatmaps side by side.
* :class:`NeighbourBrowser` ``(lab, runners)`` and :class:`ForgettingCurves` ``(results)``:
  the widgets. ``.widget`` is the container to display, ``.view`` the current view
  dict, ``.figure`` the current matplotlib figure (closed; shown through an
  ``ipywidgets.Image``, ``.image``, which needs no output capture and so runs the same under
  nbclient / nbmake), ``.update()`` recomputes all three.

Conventions (the same as the runner's):

* ``runners``: ``{strategy name: ContinualRunner}`` (e.g. ``{"finetune": lab.run("finetune")}``);
  ``results``: ``{strategy name: runner.result()}``.
* ``increment`` is 0-based, as in ``runner.model_after(increment)``; the widgets'
  slider shows it 1-based ("after increment 1, 2, ...") as the plots do.
* ``query_index`` is a position in ``lab.protocol[attribute].query`` (0 = its first
  query), not a dataset row.
* An attribute that has not arrived yet at the chosen increment is not an error: the
  view has ``available=False`` and a ``message`` saying when it arrives, and the
  drawing shows that message.

Neighbour view keys: ``available, message, strategy, attribute, increment, k,
query_index, query_row, query_label, query_value, rows, similarities, relevant, labels,
values, ap``. ``relevant[n]`` is ``labels[n] == query_label``; ``ap`` is the query's AP
over the full candidate ranking (:func:`mclfir_lite.metrics.average_precision_per_query`).

Forgetting view keys: ``attribute, strategies, attributes, message, curves ({strategy:
list of mAP per increment, None where not evaluated}), matrices ({strategy: map_matrix}),
forgetting, bwt, final`` (the last three ``{strategy: float or None}``).

In a notebook, assign a figure you draw (``fig = draw_neighbour_view(...)``): a figure
left as a cell's last value is shown twice by the inline backend.
"""
from __future__ import annotations

import numpy as np

from . import plots
from .index import GalleryIndex, neighbours

__all__ = ["neighbour_view", "draw_neighbour_view", "forgetting_view", "draw_forgetting_view",
           "NeighbourBrowser", "ForgettingCurves"]


# ---------------------------------------------------------------------------- neighbours

def _first_increment(increments: list[list[str]], attribute: str) -> int:
    for i, group in enumerate(increments):
        if attribute in group:
            return i
    raise ValueError(f"unknown attribute {attribute!r}; attributes of the plan: "
                     f"{[a for g in increments for a in g]}")


def neighbour_view(lab, runners: dict, strategy: str, attribute: str, increment: int, query_index: int,
                   k: int = 8, cache: dict | None = None) -> dict:
    """The top-``k`` neighbours of query ``query_index`` of ``attribute``, ranked by the model
    that ``strategy`` had after ``increment`` (0-based). See the module docstring for the keys.

    ``cache`` (any dict, optional) keeps models and gallery indexes between calls, so that
    browsing queries does not re-embed the gallery.
    """
    if strategy not in runners:
        raise ValueError(f"unknown strategy {strategy!r}; runners given: {list(runners)}")
    runner = runners[strategy]
    n_inc = len(runner.increments)
    if not 0 <= increment < n_inc:
        raise ValueError(f"increment {increment} out of range: the plan has {n_inc} increments (0..{n_inc - 1})")
    split = lab.protocol[attribute] if attribute in lab.protocol else None
    first = _first_increment(runner.increments, attribute)
    if split is None:
        raise ValueError(f"attribute {attribute!r} has no query/candidate split in the lab")
    if not 0 <= query_index < len(split.query):
        raise ValueError(f"query_index {query_index} out of range: {attribute!r} has {len(split.query)} queries")
    labels = lab.table.labels[attribute]
    names = lab.table.values[attribute]
    row = int(split.query[query_index])
    view = {"available": False, "message": None, "strategy": strategy, "attribute": attribute,
            "increment": increment, "k": k, "query_index": query_index, "query_row": row,
            "query_label": int(labels[row]), "query_value": names[labels[row]],
            "rows": np.zeros(0, dtype=np.int64), "similarities": np.zeros(0), "relevant": np.zeros(0, dtype=bool),
            "labels": np.zeros(0, dtype=np.int64), "values": [], "ap": None}
    if increment < first:
        view["message"] = (f"'{attribute}' arrives in increment {first + 1}: after increment {increment + 1} "
                           f"the {strategy} model has no head for it yet. Pick a later increment.")
        return view
    if runner.done <= increment:
        view["message"] = (f"the {strategy} run has finished {runner.done} increment(s); "
                           f"increment {increment + 1} is not available yet")
        return view
    cache = {} if cache is None else cache
    key = (strategy, increment)
    if ("model",) + key not in cache:
        cache[("model",) + key] = runner.model_after(increment)
    model = cache[("model",) + key]
    ikey = ("index",) + key + (attribute,)
    if ikey not in cache:
        cache[ikey] = GalleryIndex.build(model, lab.images, split.candidate, attribute)
    nb = neighbours(model, lab.images, labels, row, split.candidate, attribute, k=k, index=cache[ikey])
    view.update(available=True, rows=nb["rows"], similarities=nb["similarities"], relevant=nb["relevant"],
                labels=labels[nb["rows"]], values=[names[v] for v in labels[nb["rows"]]], ap=nb["ap"])
    return view


def draw_neighbour_view(view: dict, lab, axes=None):
    """Draw a :func:`neighbour_view`: the query, then its neighbours framed green (relevant)
    or red (not), captioned with value and similarity. An unavailable view draws its message."""
    plt = plots._plt()
    if not view["available"]:
        fig, ax = (axes[0].figure, axes[0]) if axes is not None else plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, view["message"], ha="center", va="center", fontsize=9, wrap=True)
        return fig
    captions = [f"{v}\n{s:.2f}" for v, s in zip(view["values"], view["similarities"])]
    fig = plots.plot_neighbours(lab.pixels(view["query_row"])[0], list(lab.pixels(view["rows"])),
                                list(view["relevant"]), title=view["query_value"], captions=captions, axes=axes)
    fig.suptitle(f"{view['strategy']}, after increment {view['increment'] + 1}: {view['attribute']} = "
                 f"{view['query_value']}   (AP of this query {view['ap']:.3f})", fontsize=9, y=1.08)
    return fig


# ---------------------------------------------------------------------------- forgetting

def forgetting_view(results: dict[str, dict], attribute: str | None, strategies: list[str]) -> dict:
    """Curves and accuracy matrices of ``strategies`` (keys of ``results``), for ``attribute``
    (``None``: the mean mAP over the attributes seen so far). See the module docstring."""
    unknown = [s for s in strategies if s not in results]
    if unknown:
        raise ValueError(f"unknown strategy(ies) {unknown}; results given: {list(results)}")
    view = {"attribute": attribute, "strategies": list(strategies), "attributes": [], "message": None,
            "curves": {}, "matrices": {}, "forgetting": {}, "bwt": {}, "final": {}}
    if not strategies:
        view["message"] = "choose at least one strategy"
        return view
    attrs = results[strategies[0]]["attributes"]
    view["attributes"] = list(attrs)
    if attribute is not None and attribute not in attrs:
        raise ValueError(f"unknown attribute {attribute!r}; attributes: {attrs}")
    for s in strategies:
        res = results[s]
        R = np.array([[np.nan if v is None else v for v in row] for row in res["map_matrix"]], dtype=float)
        if attribute is None:
            curve = [float(np.nanmean(r)) if not np.isnan(r).all() else None for r in R]
        else:
            curve = [None if np.isnan(v) else float(v) for v in R[:, res["attributes"].index(attribute)]]
        view["curves"][s] = curve
        view["matrices"][s] = res["map_matrix"]
        view["forgetting"][s] = res.get("forgetting")
        view["bwt"][s] = res.get("bwt")
        view["final"][s] = (res["final_map"].get(attribute) if attribute is not None else res.get("mean_final_map"))
    if attribute is not None:
        first = _first_increment(results[strategies[0]]["increments"], attribute)
        if first > 0:
            view["message"] = (f"'{attribute}' arrives in increment {first + 1}: "
                               f"it has no mAP after increments 1..{first}")
    return view


def draw_forgetting_view(view: dict, results: dict[str, dict]):
    """The curves of a :func:`forgetting_view` next to one accuracy-matrix heatmap per strategy."""
    plt = plots._plt()
    n = len(view["strategies"])
    if n == 0:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, view["message"], ha="center", va="center", fontsize=9)
        return fig
    n_attr = len(view["attributes"])
    widths = [4] + [1 + 0.7 * n_attr] * n
    fig, axes = plt.subplots(1, n + 1, figsize=(sum(widths) * 0.8, 3.0), gridspec_kw={"width_ratios": widths})
    subset = {s: results[s] for s in view["strategies"]}
    plots.plot_forgetting_curves(subset, view["attribute"], ax=axes[0])
    if view["message"]:
        axes[0].set_title(view["message"], fontsize=7)
    for ax, s in zip(axes[1:], view["strategies"]):
        f = view["forgetting"][s]
        plots.plot_accuracy_matrix(results[s], ax=ax, title=s + ("" if f is None else f"  (forgetting {f:.2f})"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- widgets

def _png(fig) -> bytes:
    """``fig`` as PNG bytes (for an ``ipywidgets.Image``); the figure is closed afterwards."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plots._plt().close(fig)
    return buf.getvalue()


class NeighbourBrowser:
    """Pick a strategy, an attribute, an increment and a query; see its top-k neighbours.

    ``browser = NeighbourBrowser(lab, {"finetune": r1, "mclfir": r2}); browser.widget``.
    """

    def __init__(self, lab, runners: dict, strategy: str | None = None, attribute: str | None = None,
                 increment: int | None = None, k: int = 8):
        import ipywidgets as w
        if not runners:
            raise ValueError("NeighbourBrowser needs at least one runner")
        self.lab, self.runners, self.cache = lab, runners, {}
        n_inc = len(next(iter(runners.values())).increments)
        attribute = attribute or lab.attributes[0]
        self.strategy = w.Dropdown(options=list(runners), value=strategy or next(iter(runners)), description="strategy")
        self.attribute = w.Dropdown(options=lab.attributes, value=attribute, description="attribute")
        self.increment = w.IntSlider(value=n_inc if increment is None else increment + 1, min=1, max=n_inc,
                                     description="after inc.")
        self.query = w.IntSlider(value=0, min=0, max=len(lab.protocol[attribute].query) - 1, description="query #")
        self.k = w.IntSlider(value=k, min=1, max=16, description="k")
        self.status = w.HTML()
        self.image = w.Image(format="png")
        controls = [self.strategy, self.attribute, self.increment, self.query, self.k]
        self.widget = w.VBox([w.HBox(controls[:3]), w.HBox(controls[3:]), self.status, self.image])
        self.view, self.figure = None, None
        for c in controls:
            c.observe(self._changed, names="value")
        self.update()

    def _changed(self, change):
        if change["owner"] is self.attribute:
            self.query.max = len(self.lab.protocol[self.attribute.value].query) - 1
        self.update()

    def update(self) -> dict:
        """Recompute the view from the controls, redraw, and return the view."""
        self.view = neighbour_view(self.lab, self.runners, self.strategy.value, self.attribute.value,
                                   self.increment.value - 1, self.query.value, self.k.value, cache=self.cache)
        v = self.view
        self.status.value = (f"<b>{v['message']}</b>" if not v["available"] else
                             f"query value <b>{v['query_value']}</b>: {int(v['relevant'].sum())}/{v['k']} "
                             f"neighbours relevant, AP = <b>{v['ap']:.3f}</b>")
        self.figure = draw_neighbour_view(v, self.lab)
        self.image.value = _png(self.figure)
        return v


class ForgettingCurves:
    """Pick an attribute (or the mean) and strategies; see mAP curves and accuracy matrices.

    ``ForgettingCurves({"finetune": r1.result(), "mclfir": r2.result()}).widget``.
    """

    def __init__(self, results: dict[str, dict], attribute: str | None = None, strategies: list[str] | None = None):
        import ipywidgets as w
        if not results:
            raise ValueError("ForgettingCurves needs at least one result")
        self.results = results
        attrs = next(iter(results.values()))["attributes"]
        self.attribute = w.Dropdown(options=[("mean over seen attributes", None)] + [(a, a) for a in attrs],
                                    value=attribute, description="attribute")
        self.strategies = w.SelectMultiple(options=list(results), value=tuple(strategies or results),
                                           description="strategies", rows=min(len(results), 8))
        self.image = w.Image(format="png")
        self.widget = w.VBox([w.HBox([self.attribute, self.strategies]), self.image])
        self.view, self.figure = None, None
        self.attribute.observe(lambda _: self.update(), names="value")
        self.strategies.observe(lambda _: self.update(), names="value")
        self.update()

    def update(self) -> dict:
        """Recompute the view from the controls, redraw, and return the view."""
        self.view = forgetting_view(self.results, self.attribute.value, list(self.strategies.value))
        self.figure = draw_forgetting_view(self.view, self.results)
        self.image.value = _png(self.figure)
        return self.view
