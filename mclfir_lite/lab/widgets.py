"""Thin ipywidgets over the notebook views: each widget's controls choose the arguments of
a view of :mod:`mclfir_lite.lab.views`, and the widget shows the figure that
:mod:`mclfir_lite.lab.figures` draws of it (see the table in :mod:`mclfir_lite.lab.views`).

Widgets: ``.widget`` is the ipywidgets container, ``.view`` the current view dict,
``.figure`` the current matplotlib figure (closed; shown through ``ipywidgets.Image`` at
its natural size), ``.update()`` recomputes them, ``.seconds`` is how long that took.
Make a widget the last expression of a cell (or ``display(widget_object)``): where
widgets cannot render (an untrusted or static copy of the notebook) the cell shows the
figure as a PNG instead of the ``VBox(children=...)`` text.
"""
from __future__ import annotations

import io
import time

from . import plots
from .figures import (ap_text, draw_ap_histograms, draw_compare_view, draw_drift_view, draw_forgetting_view, draw_forgotten_view,
                      draw_neighbour_view)
from .views import (ALL_OLD, MEAN, check_results, compare_view, drift_projection, drift_view, first_increment,
                    forgetting_view, forgotten_queries, forgotten_view, neighbour_view, runner_for,
                    unavailable_reason, warm_up)

__all__ = ["NeighbourBrowser", "SideBySideBrowser", "ForgottenQueries", "EmbeddingDrift", "ForgettingCurves"]


# ---------------------------------------------------------------------------- widgets

def _png(fig) -> bytes:
    """``fig`` as PNG bytes at :data:`plots.DPI` (for an ``ipywidgets.Image``); the figure is closed.
    A figure of :func:`plots.plot_neighbour_rows` is encoded from its pixels (faster, identical)."""
    buf = io.BytesIO()
    pixels = getattr(fig, "pixels", None)
    if pixels is not None:
        from PIL import Image
        Image.fromarray(pixels).save(buf, format="png", compress_level=1)
    else:
        fig.savefig(buf, format="png", dpi=plots.DPI, facecolor="white")
    plots.pyplot().close(fig)
    return buf.getvalue()


class _Widget:
    """What every widget here shares: images at natural size, a status line, the timing,
    and a display that falls back to the figure where widgets cannot render."""

    def _images(self, n: int):
        import ipywidgets as w
        return [w.Image(format="png", layout=w.Layout(align_self="flex-start")) for _ in range(n)]

    def _box(self, rows, css: str):
        import ipywidgets as w
        self.widget = w.VBox(rows)
        self.widget.add_class(css)
        return self.widget

    def _query_controls(self, attribute: str, increment: int, n_inc: int, k: int, k_max: int) -> list:
        """The browsers' attribute, increment ("after inc.", 1-based), query and k controls, and
        their status line."""
        import ipywidgets as w
        self.attribute = w.Dropdown(options=self.lab.attributes, value=attribute, description="attribute")
        self.increment = w.IntSlider(value=increment, min=1, max=n_inc, description="after inc.")
        self.query = w.IntSlider(value=0, min=0, max=len(self.lab.protocol[attribute].query) - 1,
                                 description="query #")
        self.k = w.IntSlider(value=k, min=1, max=k_max, description="k")
        self.status = w.HTML()
        return [self.attribute, self.increment, self.query, self.k]

    def _watch(self, controls) -> None:
        """Update on any change of ``controls``, and once now."""
        for c in controls:
            c.observe(self._changed, names="value")
        self.update()

    def _changed(self, change):
        """A control changed (widgets with ``attribute`` and ``query`` controls): keep the query slider
        within the chosen attribute's queries, then update."""
        if change["owner"] is self.attribute:
            self.query.max = len(self.lab.protocol[self.attribute.value].query) - 1
        self.update()

    def update(self) -> dict:
        t0 = time.perf_counter()
        view = self._update()
        self.seconds = time.perf_counter() - t0
        return view

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        images = [i.value for i in getattr(self, "_all_images", []) if i.value]
        if images:   # what an untrusted or static copy of the notebook shows instead
            import base64
            bundle["image/png"] = base64.b64encode(images[0]).decode()
        bundle["text/plain"] = (f"<{type(self).__name__}: an interactive widget; run the notebook in "
                                "Jupyter to use it>")
        return bundle


def _warm(lab, runners, strategies, cache, warm: bool) -> dict:
    cache = {} if cache is None else cache
    return warm_up(lab, runners, strategies, cache) if warm else cache


def _status(html: str) -> str:
    return f"<span style='font-size: 13px'>{html}</span>"


class NeighbourBrowser(_Widget):
    """Pick a strategy, an attribute, an increment and a query; see its top-k neighbours.

    ``NeighbourBrowser(lab, {"finetune": r1, "mclfir": r2})`` (last expression of a cell).
    """

    def __init__(self, lab, runners: dict, strategy: str | None = None, attribute: str | None = None,
                 increment: int | None = None, k: int = 8, cache: dict | None = None, warm: bool = True):
        import ipywidgets as w
        if not runners:
            raise ValueError("NeighbourBrowser needs at least one runner")
        self.lab, self.runners, self.cache = lab, runners, _warm(lab, runners, None, cache, warm)
        n_inc = len(next(iter(runners.values())).increments)
        attribute = attribute or lab.attributes[0]
        self.strategy = w.Dropdown(options=list(runners), value=strategy or next(iter(runners)), description="strategy")
        controls = [self.strategy] + self._query_controls(
            attribute, n_inc if increment is None else increment + 1, n_inc, k, k_max=10)
        self.image, = self._all_images = self._images(1)
        self._box([w.HBox(controls[:3]), w.HBox(controls[3:]), self.status, self.image], "mclfir-neighbours")
        self.view, self.figure = None, None
        self._watch(controls)

    def _update(self) -> dict:
        self.view = v = neighbour_view(self.lab, self.runners, self.strategy.value, self.attribute.value,
                                       self.increment.value - 1, self.query.value, self.k.value, cache=self.cache)
        self.status.value = _status(f"<b>{v['message']}</b>" if not v["available"] else
                                    f"query value <b>{v['query_value']}</b>: {int(v['relevant'].sum())}/{v['k']} "
                                    f"neighbours relevant, {ap_text(v['ap'])}")
        self.figure = draw_neighbour_view(v, self.lab)
        self.image.value = _png(self.figure)
        return v


class SideBySideBrowser(_Widget):
    """Several strategies answer the same query, after the same increment, in linked rows;
    below, each strategy's histogram of per-query AP with the query marked and chance dashed.

    ``SideBySideBrowser(lab, {"finetune": r1, "mclfir": r2})``; ``strategies`` picks and
    orders rows (default: all runners).
    """

    def __init__(self, lab, runners: dict, strategies: list[str] | None = None, attribute: str | None = None,
                 increment: int | None = None, k: int = 8, cache: dict | None = None, warm: bool = True):
        import ipywidgets as w
        if not runners:
            raise ValueError("SideBySideBrowser needs at least one runner")
        self.strategies = list(strategies or runners)
        for s in self.strategies:
            runner_for(runners, s)
        self.lab, self.runners, self.cache = lab, runners, _warm(lab, runners, self.strategies, cache, warm)
        n_inc = len(runners[self.strategies[0]].increments)
        attribute = attribute or lab.attributes[0]
        controls = self._query_controls(attribute, n_inc if increment is None else increment + 1, n_inc, k, k_max=10)
        self.image, self.histogram = self._all_images = self._images(2)
        self._box([w.HBox(controls[:2]), w.HBox(controls[2:]), self.status, self.image, self.histogram],
                  "mclfir-side-by-side")
        self.view, self.figure, self.histogram_figure = None, None, None
        self._watch(controls)

    def _update(self) -> dict:
        self.view = v = compare_view(self.lab, self.runners, self.strategies, self.attribute.value,
                                     self.increment.value - 1, self.query.value, self.k.value, cache=self.cache)
        parts = [f"{s}: <b>{ap_text(nv['ap'])}</b>, {int(nv['relevant'].sum())}/{len(nv['rows'])} relevant"
                 if nv["available"] else f"{s}: not available" for s, nv in v["views"].items()]
        self.status.value = _status(f"{v['attribute']} = <b>{v['query_value']}</b> after increment "
                                    f"{v['increment'] + 1} &mdash; " + "; ".join(parts)
                                    + f" (chance mAP {v['chance']:.3f})")
        self.figure = draw_compare_view(v, self.lab)
        self.image.value = _png(self.figure)
        key = (v["attribute"], v["increment"], v["query_index"])   # k does not change the histograms
        if key != getattr(self, "_histogram_key", None):
            self.histogram_figure = draw_ap_histograms(v)
            self.histogram.value = _png(self.histogram_figure)
            self._histogram_key = key
        return v


def _entry_label(e: dict) -> str:
    return (f"{e['drop']:+.3f}  {e['attribute']}={e['value']}  q#{e['query_index']}  "
            f"{e['ap_then']:.2f} -> {e['ap_now']:.2f}")


class ForgottenQueries(_Widget):
    """Queries ranked by how much their AP fell since their attribute was learnt; pick one to
    see its neighbours then and now. Filter by strategy and attribute; ``top`` rows listed.

    ``ForgottenQueries(lab, {"finetune": r1, "mclfir": r2})``.
    """

    def __init__(self, lab, runners: dict, strategy: str | None = None, attribute: str | None = None,
                 later: int | None = None, k: int = 8, top: int = 30, cache: dict | None = None, warm: bool = True):
        import ipywidgets as w
        if not runners:
            raise ValueError("ForgottenQueries needs at least one runner")
        self.lab, self.runners, self.k, self.top = lab, runners, k, top
        self.cache = _warm(lab, runners, None, cache, warm)
        n_inc = len(next(iter(runners.values())).increments)
        if n_inc < 2:
            raise ValueError("ForgottenQueries needs a plan with at least two increments")
        old = [a for a in lab.attributes if first_increment(next(iter(runners.values())).increments, a) < n_inc - 1]
        self.strategy = w.Dropdown(options=list(runners), value=strategy or next(iter(runners)),
                                   description="strategy")
        self.attribute = w.Dropdown(options=[ALL_OLD] + old, value=attribute or ALL_OLD, description="attribute")
        self.later = w.IntSlider(value=n_inc if later is None else later + 1, min=2, max=n_inc,
                                 description="after inc.")
        self.queries = w.Select(options=[("(none)", -1)], value=-1, rows=8, description="AP drop",
                                layout=w.Layout(width="560px"))
        self.status = w.HTML()
        self.image, = self._all_images = self._images(1)
        self._box([w.HBox([self.strategy, self.attribute, self.later]), self.queries, self.status, self.image],
                  "mclfir-forgotten")
        self.entries, self.view, self.figure = [], None, None
        for c in (self.strategy, self.attribute, self.later):
            c.observe(lambda _: self.update(), names="value")
        self._silent = False
        self.queries.observe(lambda _: None if self._silent else self.update_query(), names="value")
        self.update()

    def update_query(self) -> dict | None:
        """Show the chosen query (the list stays as it is)."""
        t0 = time.perf_counter()
        view = self._show()
        self.seconds = time.perf_counter() - t0
        return view

    def _update(self) -> dict | None:
        attr = None if self.attribute.value == ALL_OLD else self.attribute.value
        self.entries = forgotten_queries(self.lab, self.runners, self.strategy.value, self.later.value - 1, attr,
                                         cache=self.cache)
        options = [(_entry_label(e), i) for i, e in enumerate(self.entries[: self.top])] or [("(none)", -1)]
        self._silent = True             # new options: show the top entry once, not on every change
        try:
            self.queries.options = options
            self.queries.value = options[0][1]
        finally:
            self._silent = False
        return self._show()

    def _show(self) -> dict | None:
        i = self.queries.value
        if i is None or i < 0:
            self.view = None
            self.status.value = _status(f"<b>no attribute of {self.strategy.value} was learnt before increment "
                                        f"{self.later.value}</b>" if not self.entries else "pick a query")
            fig = plots.pyplot().figure(figsize=(4, 0.5), dpi=plots.DPI)
            self.figure = fig
            self.image.value = _png(fig)
            return None
        e = self.entries[i]
        n_drop = sum(x["drop"] > 0 for x in self.entries)
        self.view = forgotten_view(self.lab, self.runners, e, self.k, cache=self.cache)
        self.status.value = _status(f"{self.strategy.value}: {n_drop} of {len(self.entries)} queries lost AP by "
                                    f"increment {e['later'] + 1}; query #{e['query_index']} ({e['attribute']} = "
                                    f"<b>{e['value']}</b>): AP {e['ap_then']:.3f} &rarr; <b>{e['ap_now']:.3f}</b>")
        self.figure = draw_forgotten_view(self.view, self.lab)
        self.image.value = _png(self.figure)
        return self.view


class EmbeddingDrift(_Widget):
    """One attribute head's gallery embeddings after each increment, strategies side by side,
    coloured by value, with the query and its top-k. The projection (PCA; ``method="tsne"``
    optional, slower) is fitted once per head, so that drift shows as moving points.

    ``EmbeddingDrift(lab, {"finetune": r1, "mclfir": r2})``.
    """

    def __init__(self, lab, runners: dict, strategies: list[str] | None = None, attribute: str | None = None,
                 k: int = 8, method: str = "pca", cache: dict | None = None, warm: bool = True):
        import ipywidgets as w
        if not runners:
            raise ValueError("EmbeddingDrift needs at least one runner")
        self.strategies = list(strategies or runners)
        for s in self.strategies:
            runner_for(runners, s)
        self.lab, self.runners, self.method = lab, runners, method
        self.cache = _warm(lab, runners, self.strategies, cache, warm)
        if warm:
            for a in lab.attributes:
                for s in self.strategies:
                    if any(unavailable_reason(runners[s], s, a, t) is None for t in range(runners[s].done)):
                        drift_projection(lab, runners, s, a, self.cache, method)
        n_inc = len(runners[self.strategies[0]].increments)
        attribute = attribute or lab.attributes[0]
        first = first_increment(runners[self.strategies[0]].increments, attribute)
        controls = self._query_controls(attribute, first + 1, n_inc, k, k_max=16)
        self.image, = self._all_images = self._images(1)
        self._box([w.HBox(controls[:2]), w.HBox(controls[2:]), self.status, self.image], "mclfir-drift")
        self.view, self.figure = None, None
        self._watch(controls)

    def _update(self) -> dict:
        self.view = v = drift_view(self.lab, self.runners, self.strategies, self.attribute.value,
                                   self.increment.value - 1, self.query.value, self.k.value, self.method,
                                   cache=self.cache)
        parts = [f"{s}: {int(sum(p['top_relevant']))}/{len(p['top_relevant'])} of the top {self.k.value} relevant"
                 if p["available"] else f"{s}: {p['message']}" for s, p in v["panels"].items()]
        self.status.value = _status(f"<b>{v['attribute']}</b> after increment {v['increment'] + 1}: "
                                    + "; ".join(parts))
        self.figure = draw_drift_view(v)
        self.image.value = _png(self.figure)
        return v


class ForgettingCurves(_Widget):
    """Pick an attribute (or the mean over seen attributes) and strategies; see mAP curves with
    chance and the seeds' spread, and accuracy matrices.

    ``ForgettingCurves({"finetune": r1.result(), "mclfir": [seed0, seed1, seed2]})``;
    ``chance={attribute: chance mAP}`` (e.g. :func:`~mclfir_lite.lab.views.lab_chance_map` ``(lab)``) when the results
    carry no ``chance_map``.
    """

    def __init__(self, results: dict, attribute: str | None = None, strategies: list[str] | None = None,
                 chance: dict | None = None):
        import ipywidgets as w
        if not results:
            raise ValueError("ForgettingCurves needs at least one result")
        check_results(results)
        self.results, self.chance = results, chance
        attrs = plots.aggregate(next(iter(results.values())))["attributes"]
        if attribute is not None and attribute != MEAN and attribute not in attrs:
            raise ValueError(f"unknown attribute {attribute!r}; attributes: {attrs}")
        self.attribute = w.Dropdown(options=[MEAN] + list(attrs), value=attribute or MEAN, description="attribute")
        self.strategies = w.SelectMultiple(options=list(results), value=tuple(strategies or results),
                                           description="strategies", rows=min(len(results), 8))
        self.image, = self._all_images = self._images(1)
        self._box([w.HBox([self.attribute, self.strategies]), self.image], "mclfir-curves")
        self.view, self.figure = None, None
        self.attribute.observe(lambda _: self.update(), names="value")
        self.strategies.observe(lambda _: self.update(), names="value")
        self.update()

    def _update(self) -> dict:
        self.view = forgetting_view(self.results, self.attribute.value, list(self.strategies.value), self.chance)
        self.figure = draw_forgetting_view(self.view, self.results, self.chance)
        self.image.value = _png(self.figure)
        return self.view
