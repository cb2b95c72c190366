"""Interactive views for notebooks: look at what a continual learner retrieves, and forgets.

Every view is a pair of plain functions, testable without a browser -- one computes a
dict (the *view*), one draws it -- plus a thin ipywidgets class that calls them whenever
a control changes:

==========================  ===========================================  =========================
view function               what it shows                                widget
==========================  ===========================================  =========================
:func:`neighbour_view`      top-k neighbours of one query, one model     :class:`NeighbourBrowser`
:func:`compare_view`        the same query answered by several           :class:`SideBySideBrowser`
                            strategies in linked rows, and each
                            strategy's histogram of per-query AP
:func:`forgotten_queries`   queries ranked by their AP drop since their  :class:`ForgottenQueries`
                            attribute was learnt; neighbours then / now
:func:`drift_view`          one head's gallery embeddings (PCA fitted    :class:`EmbeddingDrift`
                            once) after each increment, per strategy
:func:`forgetting_view`     mAP curves with chance and seeds' spread,    :class:`ForgettingCurves`
                            accuracy matrices
==========================  ===========================================  =========================

Conventions (the same as the runner's):

* ``runners``: ``{strategy name: ContinualRunner}`` (e.g. ``{"finetune": lab.run("finetune")}``);
  ``results``: ``{strategy name: runner.result()}``, or ``{strategy: [result of each seed]}``.
* ``increment`` is 0-based, as in ``runner.model_after(increment)``; the widgets' sliders
  show it 1-based ("after increment 1, 2, ...") as the plots do.
* ``query_index`` is a position in ``lab.protocol[attribute].query`` (0 = its first query),
  not a dataset row.
* An attribute that has not arrived yet at the chosen increment is not an error: the view
  has ``available=False`` and a ``message`` saying when it arrives, and the drawing shows it.
* ``cache`` (any dict, optional) keeps models, embeddings and per-query APs between calls,
  so that browsing does not re-embed the gallery. The widgets keep one each.

Neighbour view keys: ``available, message, strategy, attribute, increment, k, query_index,
query_row, query_label, query_value, rows, similarities, relevant, labels, values, ap``.
``relevant[n]`` is ``labels[n] == query_label``; ``ap`` is the query's AP over the full
candidate ranking (:func:`mclfir_lite.core.metrics.average_precision_per_query`).

Chance: the AP of a random ranking of ``N`` candidates of which ``R`` are relevant has the
expectation :func:`mclfir_lite.core.metrics.expected_random_ap` ``(R, N)``; an attribute's chance
mAP is its mean over the queries (:func:`chance_map`, the results' ``chance_map``).

Widgets: ``.widget`` is the ipywidgets container, ``.view`` the current view dict,
``.figure`` the current matplotlib figure (closed; shown through ``ipywidgets.Image`` at
its natural size), ``.update()`` recomputes them, ``.seconds`` is how long that took.
Make a widget the last expression of a cell (or ``display(widget_object)``): where
widgets cannot render (an untrusted or static copy of the notebook) the cell shows the
figure as a PNG instead of the ``VBox(children=...)`` text.

In a notebook, assign a figure you draw (``fig = draw_neighbour_view(...)``): a figure
left as a cell's last value is shown twice by the inline backend.
"""
from __future__ import annotations

import io
import math
import time

import numpy as np
import torch

from ..core import metrics
from . import plots
from ..training.continual import embed

__all__ = ["chance_map", "query_aps", "warm_up", "similarity_digits",
           "neighbour_view", "draw_neighbour_view", "compare_view", "draw_compare_view", "draw_ap_histograms",
           "forgotten_queries", "forgotten_view", "draw_forgotten_view", "drift_view", "draw_drift_view",
           "forgetting_view", "draw_forgetting_view",
           "NeighbourBrowser", "SideBySideBrowser", "ForgottenQueries", "EmbeddingDrift", "ForgettingCurves",
           "MEAN"]

MEAN = "mean over seen attributes"          # the attribute dropdowns' "all attributes" choice
ALL_OLD = "all attributes learnt earlier"


# ---------------------------------------------------------------------------- chance

def chance_map(lab, attributes: list[str] | None = None) -> dict[str, float]:
    """``{attribute: chance mAP}`` of the lab's protocol: the mean over the attribute's queries of
    the expected AP of a random ranking (:func:`mclfir_lite.core.metrics.expected_random_ap`), from
    the candidate label counts, with the lab's ``no_relevant`` policy (as the results'
    ``chance_map``)."""
    return metrics.chance_map_per_attribute(lab.table.labels, lab.protocol, attributes or lab.attributes,
                                            no_relevant=lab.config.no_relevant)


def _query_chance(lab, attribute: str, query_label: int) -> float:
    """Expected AP of a random ranking for one query of ``attribute`` (NaN: no relevant candidate)."""
    cand = lab.table.labels[attribute][lab.protocol[attribute].candidate]
    n_rel = int((cand == query_label).sum()) if query_label >= 0 else 0
    return float(metrics.expected_random_ap(n_rel, len(cand)))


# ---------------------------------------------------------------------------- cached model outputs

def _first_increment(increments: list[list[str]], attribute: str) -> int:
    for i, group in enumerate(increments):
        if attribute in group:
            return i
    raise ValueError(f"unknown attribute {attribute!r}; attributes of the plan: "
                     f"{[a for g in increments for a in g]}")


def _runner(runners: dict, strategy: str):
    if strategy not in runners:
        raise ValueError(f"unknown strategy {strategy!r}; runners given: {list(runners)}")
    return runners[strategy]


def _check_increment(runner, increment: int) -> None:
    n_inc = len(runner.increments)
    if not 0 <= increment < n_inc:
        raise ValueError(f"increment {increment} out of range: the plan has {n_inc} increments (0..{n_inc - 1})")


def _unavailable(runner, strategy: str, attribute: str, increment: int) -> str | None:
    """Why ``strategy`` has no ``attribute`` head after ``increment`` (None: it has one)."""
    first = _first_increment(runner.increments, attribute)
    if increment < first:
        return (f"'{attribute}' arrives in increment {first + 1}: after increment {increment + 1} "
                f"the {strategy} model has no head for it yet. Pick a later increment.")
    if runner.done <= increment:
        return (f"the {strategy} run has finished {runner.done} increment(s); "
                f"increment {increment + 1} is not available yet")
    snapshots = getattr(runner, "snapshots", None)
    if snapshots is not None and increment < len(snapshots) and snapshots[increment] is None:
        return (f"{strategy} has no model after increment {increment + 1}: it was trained after the last "
                "increment only (joint_last_only). Pick the last increment.")
    return None


def _model(runners: dict, strategy: str, increment: int, cache: dict):
    key = ("model", strategy, increment)
    if key not in cache:
        cache[key] = runners[strategy].model_after(increment)
    return cache[key]


def _shared_features(lab, runners: dict, strategy: str, increment: int, cache: dict):
    """``(rows, encoder outputs)`` of every query and candidate row of the attributes the model
    after ``increment`` has, computed once (as :func:`mclfir_lite.training.continual.evaluate` does);
    None for a model with one encoder per attribute."""
    key = ("features", strategy, increment)
    if key not in cache:
        runner, model = runners[strategy], _model(runners, strategy, increment, cache)
        if model.isolated and (runner.features is None or model.on_features):
            cache[key] = None
        else:
            seen = [a for g in runner.increments[: increment + 1] for a in g]
            rows = np.unique(np.concatenate([np.concatenate([lab.protocol[a].query, lab.protocol[a].candidate])
                                             for a in seen]))
            with torch.no_grad():
                inputs = lab.images if runner.features is None else runner.features
                dev = next(model.parameters()).device
                enc = runner.encoder_of(model, None)
                feats = torch.cat([enc(inputs[torch.as_tensor(rows[i:i + 512])].to(dev))
                                   for i in range(0, len(rows), 512)])
            cache[key] = (rows, feats)
    return cache[key]


def _embeddings(lab, runners: dict, strategy: str, increment: int, attribute: str, cache: dict):
    """(query embeddings, candidate embeddings) of ``attribute`` by the model after ``increment``."""
    key = ("emb", strategy, increment, attribute)
    if key not in cache:
        model, split = _model(runners, strategy, increment, cache), lab.protocol[attribute]
        shared = _shared_features(lab, runners, strategy, increment, cache)
        if shared is None:
            inputs = lab.images if runners[strategy].features is None else runners[strategy].features
            cache[key] = (embed(model, inputs, split.query, attribute),
                          embed(model, inputs, split.candidate, attribute))
        else:
            rows, feats = shared
            with torch.no_grad():
                cache[key] = tuple(model.heads(feats[torch.as_tensor(np.searchsorted(rows, r))], attribute).cpu()
                                   for r in (split.query, split.candidate))
    return cache[key]


def warm_up(lab, runners: dict, strategies: list[str] | None = None, cache: dict | None = None) -> dict:
    """Compute (into ``cache``) the embeddings and per-query APs of every strategy, finished
    increment and attribute it has, so that no later control waits for an encoder pass.
    Returns the cache. The widgets call it when built (``warm=True``)."""
    cache = {} if cache is None else cache
    for s in strategies or runners:
        runner = runners[s]
        for t in range(runner.done):
            for a in [a for g in runner.increments[: t + 1] for a in g]:
                if _unavailable(runner, s, a, t) is None:
                    query_aps(lab, runners, s, t, a, cache)
    return cache


def query_aps(lab, runners: dict, strategy: str, increment: int, attribute: str,
              cache: dict | None = None) -> np.ndarray:
    """AP of every query of ``attribute`` (in ``lab.protocol[attribute].query`` order) with the
    model ``strategy`` had after ``increment``: :func:`metrics.average_precision_per_query`.
    Raises ValueError when that model has no head for ``attribute``."""
    runner = _runner(runners, strategy)
    _check_increment(runner, increment)
    why = _unavailable(runner, strategy, attribute, increment)
    if why:
        raise ValueError(why)
    cache = {} if cache is None else cache
    key = ("aps", strategy, increment, attribute)
    if key not in cache:
        q, c = _embeddings(lab, runners, strategy, increment, attribute, cache)
        split, labels = lab.protocol[attribute], lab.table.labels[attribute]
        cache[key] = metrics.average_precision_per_query(q, c, labels[split.query], labels[split.candidate])
    return cache[key]


# ---------------------------------------------------------------------------- neighbours

def _value_name(lab, attribute: str, label: int) -> str:
    names = lab.table.values[attribute]
    return names[label] if 0 <= label < len(names) else "(no value)"


def neighbour_view(lab, runners: dict, strategy: str, attribute: str, increment: int, query_index: int,
                   k: int = 8, cache: dict | None = None) -> dict:
    """The top-``k`` neighbours of query ``query_index`` of ``attribute``, ranked by the model
    that ``strategy`` had after ``increment`` (0-based). See the module docstring for the keys.

    The ranking is the one :class:`mclfir_lite.retrieval.index.GalleryIndex` gives (cosine similarity,
    ties by candidate order), and ``ap`` the one :func:`query_aps` gives.
    """
    runner = _runner(runners, strategy)
    _check_increment(runner, increment)
    if attribute not in lab.protocol:
        raise ValueError(f"attribute {attribute!r} has no query/candidate split in the lab; "
                         f"attributes: {list(lab.protocol)}")
    split = lab.protocol[attribute]
    if not 0 <= query_index < len(split.query):
        raise ValueError(f"query_index {query_index} out of range: {attribute!r} has {len(split.query)} queries")
    labels = lab.table.labels[attribute]
    row = int(split.query[query_index])
    view = {"available": False, "message": None, "strategy": strategy, "attribute": attribute,
            "increment": increment, "k": k, "query_index": query_index, "query_row": row,
            "query_label": int(labels[row]), "query_value": _value_name(lab, attribute, int(labels[row])),
            "rows": np.zeros(0, dtype=np.int64), "similarities": np.zeros(0), "relevant": np.zeros(0, dtype=bool),
            "labels": np.zeros(0, dtype=np.int64), "values": [], "ap": None}
    view["message"] = _unavailable(runner, strategy, attribute, increment)
    if view["message"]:
        return view
    cache = {} if cache is None else cache
    q, c = _embeddings(lab, runners, strategy, increment, attribute, cache)
    sims = (q[query_index:query_index + 1] @ c.T)[0]
    order = torch.sort(-sims, stable=True).indices[:k].numpy()
    rows = split.candidate[order]
    ap = query_aps(lab, runners, strategy, increment, attribute, cache)[query_index]
    view.update(available=True, rows=rows, similarities=sims[order].numpy(),
                relevant=(labels[rows] == labels[row]) & (labels[row] >= 0), labels=labels[rows],
                values=[_value_name(lab, attribute, int(v)) for v in labels[rows]],
                ap=None if np.isnan(ap) else float(ap))
    if view["ap"] is None:
        view["message"] = f"no candidate shares this query's {attribute}: it has no AP"
    return view


def similarity_digits(similarities, lo: int = 2, hi: int = 6) -> int:
    """The fewest decimals (``lo``..``hi``) that print consecutive different similarities of a
    ranking differently, so that the captions show the order."""
    s = np.sort(np.asarray(similarities, dtype=float))[::-1]
    for d in range(lo, hi + 1):
        printed = [f"{x:.{d}f}" for x in s]
        if all(a != b for a, b, x, y in zip(printed, printed[1:], s, s[1:]) if x != y):
            return d
    return hi


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


def _ap_text(ap) -> str:
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
             f"{view['query_value']}   ({_ap_text(view['ap'])} for this query)")
    row = _neighbour_row(view, lab, f"{view['strategy']}\n{_ap_text(view['ap'])}")
    if axes is not None:
        fig = plots.plot_neighbours(row["query"], row["images"], row["relevant"], title=view["query_value"],
                                    captions=row["captions"], axes=axes)
        fig.suptitle(title, fontsize=9)
        return fig
    return plots.plot_neighbour_rows([row], title=title)


# ---------------------------------------------------------------------------- side by side

def compare_view(lab, runners: dict, strategies: list[str], attribute: str, increment: int, query_index: int,
                 k: int = 8, cache: dict | None = None) -> dict:
    """The same query answered by several strategies after the same increment.

    Keys: ``strategies, attribute, increment, query_index, query_row, query_value, k``,
    ``views`` (``{strategy: neighbour_view}``), ``aps`` (``{strategy: AP of every query (NaN:
    no relevant candidate), or None where the model has no head for the attribute}``),
    ``chance`` (the attribute's chance mAP), ``query_chance`` (this query's chance AP),
    ``no_relevant`` (the lab's policy for queries without a relevant candidate: the
    histograms count them as AP 0 under ``"zero"``, as the mAP does).
    """
    if not strategies:
        raise ValueError("compare_view needs at least one strategy")
    cache = {} if cache is None else cache
    views = {s: neighbour_view(lab, runners, s, attribute, increment, query_index, k, cache) for s in strategies}
    aps = {s: (query_aps(lab, runners, s, increment, attribute, cache) if v["available"] else None)
           for s, v in views.items()}
    first = next(iter(views.values()))
    return {"strategies": list(strategies), "attribute": attribute, "increment": increment,
            "query_index": query_index, "query_row": first["query_row"], "query_value": first["query_value"],
            "k": k, "views": views, "aps": aps, "chance": chance_map(lab, [attribute])[attribute],
            "no_relevant": lab.config.no_relevant,
            "query_chance": _query_chance(lab, attribute, first["query_label"])}


def draw_compare_view(view: dict, lab):
    """The linked rows of a :func:`compare_view`: one row per strategy, the same query."""
    rows = [_neighbour_row(v, lab, f"{s}\n{_ap_text(v['ap'])}") for s, v in view["views"].items()]
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


# ---------------------------------------------------------------------------- forgotten queries

def forgotten_queries(lab, runners: dict, strategy: str, later: int, attribute: str | None = None,
                      cache: dict | None = None) -> list[dict]:
    """Queries ranked by how much their AP fell between the increment that learnt their
    attribute and increment ``later`` (0-based), largest drop first (ties: attribute, query).

    ``attribute=None``: every attribute learnt before ``later``. Each entry: ``{strategy,
    attribute, query_index, query_row, value, learnt (0-based increment), later, ap_then,
    ap_now, drop}`` with ``drop = ap_then - ap_now`` (negative: it got better). Queries with
    no relevant candidate (no AP) are left out. Empty when no attribute was learnt before
    ``later``, or the strategy kept no model from right after learning it (joint_last_only).
    """
    runner = _runner(runners, strategy)
    _check_increment(runner, later)
    cache = {} if cache is None else cache
    attrs = [attribute] if attribute is not None else lab.attributes
    out = []
    for a in attrs:
        learnt = _first_increment(runner.increments, a)
        if learnt >= later or _unavailable(runner, strategy, a, later) or _unavailable(runner, strategy, a, learnt):
            continue
        then = query_aps(lab, runners, strategy, learnt, a, cache)
        now = query_aps(lab, runners, strategy, later, a, cache)
        split, labels = lab.protocol[a], lab.table.labels[a]
        for qi in np.flatnonzero(~np.isnan(then) & ~np.isnan(now)):
            row = int(split.query[qi])
            out.append({"strategy": strategy, "attribute": a, "query_index": int(qi), "query_row": row,
                        "value": _value_name(lab, a, int(labels[row])), "learnt": learnt, "later": later,
                        "ap_then": float(then[qi]), "ap_now": float(now[qi]), "drop": float(then[qi] - now[qi])})
    order = {a: i for i, a in enumerate(lab.attributes)}
    out.sort(key=lambda e: (-e["drop"], order[e["attribute"]], e["query_index"]))
    return out


def forgotten_view(lab, runners: dict, entry: dict, k: int = 8, cache: dict | None = None) -> dict:
    """One entry of :func:`forgotten_queries`: ``{"entry", "then", "now"}``, the query's
    neighour views right after its attribute was learnt and at the later increment."""
    cache = {} if cache is None else cache
    args = (lab, runners, entry["strategy"], entry["attribute"])
    return {"entry": entry, "then": neighbour_view(*args, entry["learnt"], entry["query_index"], k, cache),
            "now": neighbour_view(*args, entry["later"], entry["query_index"], k, cache)}


def draw_forgotten_view(view: dict, lab):
    """Then and now, side by side (two linked rows) for a :func:`forgotten_view`."""
    e = view["entry"]
    rows = [_neighbour_row(view["then"], lab, f"after inc. {e['learnt'] + 1}\n(learnt)\n{_ap_text(e['ap_then'])}"),
            _neighbour_row(view["now"], lab, f"after inc. {e['later'] + 1}\n{_ap_text(e['ap_now'])}")]
    title = (f"{e['strategy']}: query #{e['query_index']}, {e['attribute']} = {e['value']}; "
             f"AP fell by {e['drop']:.3f}")
    return plots.plot_neighbour_rows(rows, title=title)


# ---------------------------------------------------------------------------- embedding drift

def _projection(lab, runners: dict, strategy: str, attribute: str, cache: dict, method: str) -> dict:
    """``{increment: (n_candidates, 2) coordinates}`` of the gallery for every finished
    increment that has ``attribute``'s head, plus ``"query"`` (same per increment, all
    queries) and ``"limits"``. PCA is fitted once, on the first of those snapshots;
    t-SNE (``method="tsne"``) is fitted once on all snapshots together."""
    key = ("projection", strategy, attribute, method)
    if key in cache:
        return cache[key]
    runner = runners[strategy]
    first = _first_increment(runner.increments, attribute)
    incs = [t for t in range(first, runner.done) if _unavailable(runner, strategy, attribute, t) is None]
    embs = {t: _embeddings(lab, runners, strategy, t, attribute, cache) for t in incs}
    coords, queries = {}, {}
    if method == "pca":
        from sklearn.decomposition import PCA
        q0, c0 = embs[incs[0]] if incs else (None, None)
        pca = PCA(n_components=2, random_state=0).fit(c0.numpy()) if incs else None
        for t, (q, c) in embs.items():
            coords[t], queries[t] = pca.transform(c.numpy()), pca.transform(q.numpy())
    elif method == "tsne":
        from sklearn.manifold import TSNE
        if incs:
            stacked = np.concatenate([np.concatenate([c.numpy(), q.numpy()]) for q, c in embs.values()])
            xy = TSNE(n_components=2, init="pca", random_state=0,
                      perplexity=min(30.0, max(2.0, (len(stacked) - 1) / 3))).fit_transform(stacked)
            start = 0
            for t, (q, c) in embs.items():
                coords[t], queries[t] = xy[start:start + len(c)], xy[start + len(c):start + len(c) + len(q)]
                start += len(c) + len(q)
    else:
        raise ValueError(f"unknown projection {method!r}; use 'pca' or 'tsne'")
    limits = (-1, 1, -1, 1)
    if coords:
        allxy = np.concatenate(list(coords.values()) + list(queries.values()))
        lo, hi = allxy.min(0), allxy.max(0)
        pad = 0.05 * (hi - lo + 1e-9)
        limits = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    cache[key] = {"coords": coords, "queries": queries, "limits": limits}
    return cache[key]


def drift_view(lab, runners: dict, strategies: list[str], attribute: str, increment: int, query_index: int,
               k: int = 8, method: str = "pca", cache: dict | None = None) -> dict:
    """The gallery embeddings of ``attribute``'s head after ``increment``, projected to 2-d,
    one panel per strategy; the query and its top-``k`` marked.

    The projection of each (strategy, head) is fitted once, on the first snapshot that has
    the head, and reused for later increments (and the axis limits cover all of them), so
    that drift shows as points moving. Keys: ``strategies, attribute, increment,
    query_index, method, values`` (value names) and ``panels`` (``{strategy: {available,
    message, xy, labels, query_xy, top_xy, top_relevant, limits, xlabel, ylabel}}``).
    """
    cache = {} if cache is None else cache
    labels, split = lab.table.labels[attribute], lab.protocol[attribute]
    panels = {}
    for s in strategies:
        nv = neighbour_view(lab, runners, s, attribute, increment, query_index, k, cache)
        p = {"available": nv["available"], "message": nv["message"]}
        if nv["available"]:
            proj = _projection(lab, runners, s, attribute, cache, method)
            xy = proj["coords"][increment]
            pos = np.searchsorted(split.candidate, nv["rows"])
            first = min(proj["coords"]) + 1
            axis = "PC" if method == "pca" else "t-SNE"
            p.update(xy=xy, labels=labels[split.candidate], query_xy=proj["queries"][increment][query_index],
                     top_xy=xy[pos], top_relevant=list(nv["relevant"]), limits=proj["limits"], message=None,
                     xlabel=f"{axis} 1 (fitted after inc. {first})", ylabel=f"{axis} 2")
        panels[s] = p
    return {"strategies": list(strategies), "attribute": attribute, "increment": increment,
            "query_index": query_index, "method": method, "values": list(lab.table.values[attribute]),
            "panels": panels}


def draw_drift_view(view: dict):
    """One scatter per strategy of a :func:`drift_view`."""
    title = (f"'{view['attribute']}' head: gallery embeddings after increment {view['increment'] + 1} "
             f"(query #{view['query_index']} = star, its top neighbours ringed)")
    return plots.plot_embedding_scatter(view["panels"], view["values"], title=title)


# ---------------------------------------------------------------------------- forgetting curves

def _chance_from(results: dict, chance: dict | None) -> dict | None:
    if chance is not None:
        return chance
    for r in results.values():
        c = plots.aggregate(r).get("chance_map")
        if c:
            return c
    return None


def check_results(results: dict) -> None:
    """A ValueError saying what to do for a result that cannot be drawn: a runner instead of
    its result, or the result of a runner that has not finished an increment yet."""
    for s, r in results.items():
        for one in (r if isinstance(r, (list, tuple)) else [r]):
            if hasattr(one, "run") and hasattr(one, "result"):
                raise ValueError(f"results[{s!r}] is a runner, not its result: run it first (runner.run()), "
                                 "then pass runner.result()")
            if not isinstance(one, dict) or "map_matrix" not in one:
                raise ValueError(f"results[{s!r}] is not a result (a dict with a map_matrix, from runner.result())")
            if not one["map_matrix"]:
                raise ValueError(f"results[{s!r}] has no finished increment yet (its map_matrix is empty): run it "
                                 "first (runner.run()), then pass runner.result()")


def forgetting_view(results: dict, attribute: str | None, strategies: list[str],
                    chance: dict | None = None) -> dict:
    """Curves and accuracy matrices of ``strategies`` (keys of ``results``), for ``attribute``
    (``None`` or :data:`MEAN`: the mean mAP over the attributes seen so far).

    ``results[s]`` is a result dict or a list of them (seeds; see :func:`plots.aggregate`).
    ``chance``: ``{attribute: chance mAP}`` (default: the results' ``chance_map``, if any).
    Keys: ``attribute`` (None for the mean), ``strategies, attributes, message, curves
    ({strategy: mAP per increment, None where not evaluated}), spread ({strategy: std per
    increment or None}), chance (per increment, or None), n_seeds, matrices, forgetting,
    bwt, final`` (the last three ``{strategy: float or None}``; forgetting is None for a
    strategy retrained from scratch).
    """
    attribute = None if attribute == MEAN else attribute
    unknown = [s for s in strategies if s not in results]
    if unknown:
        raise ValueError(f"unknown strategy(ies) {unknown}; results given: {list(results)}")
    check_results({s: results[s] for s in strategies})
    view = {"attribute": attribute, "strategies": list(strategies), "attributes": [], "message": None,
            "curves": {}, "spread": {}, "chance": None, "n_seeds": {}, "matrices": {}, "forgetting": {},
            "bwt": {}, "final": {}}
    if not strategies:
        view["message"] = "choose at least one strategy"
        return view
    agg = {s: plots.aggregate(results[s]) for s in strategies}
    attrs = agg[strategies[0]]["attributes"]
    view["attributes"] = list(attrs)
    if attribute is not None and attribute not in attrs:
        raise ValueError(f"unknown attribute {attribute!r}; attributes: {attrs}")

    def curve(matrix):
        M = plots._matrix(matrix)
        y = M[:, attrs.index(attribute)] if attribute is not None else plots._row_means(M)
        return [None if np.isnan(v) else float(v) for v in y]

    for s, res in agg.items():
        view["curves"][s] = curve(res["map_matrix"])
        view["spread"][s] = curve(res["map_matrix_std"]) if res.get("map_matrix_std") is not None else None
        view["n_seeds"][s] = res.get("n_seeds", 1)
        view["matrices"][s] = res["map_matrix"]
        view["forgetting"][s] = res.get("forgetting")
        view["bwt"][s] = res.get("bwt")
        view["final"][s] = (res["final_map"].get(attribute) if attribute is not None else res.get("mean_final_map"))
    ch = _chance_from(results, chance)
    if ch:
        view["chance"] = [None if np.isnan(v) else float(v)
                          for v in plots.chance_curve(agg[strategies[0]], attribute, ch)]
    if attribute is not None:
        first = _first_increment(agg[strategies[0]]["increments"], attribute)
        if first > 0:
            view["message"] = (f"'{attribute}' arrives in increment {first + 1}: "
                               f"it has no mAP after increments 1..{first}")
    return view


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
    plots.plot_forgetting_curves(subset, view["attribute"], ax=ax, chance=_chance_from(results, chance))
    if ax.get_legend() is not None:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    if view["message"]:
        ax.set_title(view["message"], fontsize=8)
    titles = {s: s + ("  (forgetting n/a)" if f is None else f"  (forgetting {f:.2f})")
              for s, f in view["forgetting"].items()}
    plots.matrix_grid(fig, subset, titles, top=0.3 + curve_h + 0.4)
    return fig


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
                                    f"neighbours relevant, {_ap_text(v['ap'])}")
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
            _runner(runners, s)
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
        parts = [f"{s}: <b>{_ap_text(nv['ap'])}</b>, {int(nv['relevant'].sum())}/{len(nv['rows'])} relevant"
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
        old = [a for a in lab.attributes if _first_increment(next(iter(runners.values())).increments, a) < n_inc - 1]
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
            _runner(runners, s)
        self.lab, self.runners, self.method = lab, runners, method
        self.cache = _warm(lab, runners, self.strategies, cache, warm)
        if warm:
            for a in lab.attributes:
                for s in self.strategies:
                    if any(_unavailable(runners[s], s, a, t) is None for t in range(runners[s].done)):
                        _projection(lab, runners, s, a, self.cache, method)
        n_inc = len(runners[self.strategies[0]].increments)
        attribute = attribute or lab.attributes[0]
        first = _first_increment(runners[self.strategies[0]].increments, attribute)
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
    ``chance={attribute: chance mAP}`` (e.g. :func:`chance_map` ``(lab)``) when the results
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
