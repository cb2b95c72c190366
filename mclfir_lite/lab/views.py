"""Views for notebooks: look at what a continual learner retrieves, and forgets.

Every view is three pieces, each testable without a browser: a pure function here that
computes a dict (the *view*), a function of :mod:`mclfir_lite.lab.figures` that draws it
(``draw_<view>``), and a thin ipywidgets class of :mod:`mclfir_lite.lab.widgets` that calls
both whenever a control changes:

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
mAP is its mean over the queries (:func:`~mclfir_lite.lab.views.lab_chance_map`, the results' ``chance_map``).
"""
from __future__ import annotations


import numpy as np
import torch

from ..core import metrics
from . import plots
from ..training.evaluate import embed

__all__ = ["lab_chance_map", "query_aps", "warm_up", "similarity_digits", "neighbour_view", "compare_view",
           "forgotten_queries", "forgotten_view", "drift_view", "forgetting_view", "check_results",
           "first_increment", "runner_for", "unavailable_reason", "drift_projection", "results_chance",
           "MEAN", "ALL_OLD"]

MEAN = "mean over seen attributes"          # the attribute dropdowns' "all attributes" choice
ALL_OLD = "all attributes learnt earlier"


# ---------------------------------------------------------------------------- chance

def lab_chance_map(lab, attributes: list[str] | None = None) -> dict[str, float]:
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

def first_increment(increments: list[list[str]], attribute: str) -> int:
    for i, group in enumerate(increments):
        if attribute in group:
            return i
    raise ValueError(f"unknown attribute {attribute!r}; attributes of the plan: "
                     f"{[a for g in increments for a in g]}")


def runner_for(runners: dict, strategy: str):
    if strategy not in runners:
        raise ValueError(f"unknown strategy {strategy!r}; runners given: {list(runners)}")
    return runners[strategy]


def _check_increment(runner, increment: int) -> None:
    n_inc = len(runner.increments)
    if not 0 <= increment < n_inc:
        raise ValueError(f"increment {increment} out of range: the plan has {n_inc} increments (0..{n_inc - 1})")


def unavailable_reason(runner, strategy: str, attribute: str, increment: int) -> str | None:
    """Why ``strategy`` has no ``attribute`` head after ``increment`` (None: it has one)."""
    first = first_increment(runner.increments, attribute)
    if increment < first:
        return (f"'{attribute}' arrives in increment {first + 1}: after increment {increment + 1} "
                f"the {strategy} model has no head for it yet. Pick a later increment.")
    if runner.done <= increment:
        return (f"the {strategy} run has finished {runner.done} increment(s); "
                f"increment {increment + 1} is not available yet")
    return None


def _model(runners: dict, strategy: str, increment: int, cache: dict):
    key = ("model", strategy, increment)
    if key not in cache:
        cache[key] = runners[strategy].model_after(increment)
    return cache[key]


def _shared_features(lab, runners: dict, strategy: str, increment: int, cache: dict):
    """``(rows, encoder outputs)`` of every query and candidate row of the attributes the model
    after ``increment`` has, computed once (as :func:`mclfir_lite.training.evaluate.evaluate` does);
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
                if unavailable_reason(runner, s, a, t) is None:
                    query_aps(lab, runners, s, t, a, cache)
    return cache


def query_aps(lab, runners: dict, strategy: str, increment: int, attribute: str,
              cache: dict | None = None) -> np.ndarray:
    """AP of every query of ``attribute`` (in ``lab.protocol[attribute].query`` order) with the
    model ``strategy`` had after ``increment``: :func:`metrics.average_precision_per_query`.
    Raises ValueError when that model has no head for ``attribute``."""
    runner = runner_for(runners, strategy)
    _check_increment(runner, increment)
    why = unavailable_reason(runner, strategy, attribute, increment)
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
    runner = runner_for(runners, strategy)
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
    view["message"] = unavailable_reason(runner, strategy, attribute, increment)
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
            "k": k, "views": views, "aps": aps, "chance": lab_chance_map(lab, [attribute])[attribute],
            "no_relevant": lab.config.no_relevant,
            "query_chance": _query_chance(lab, attribute, first["query_label"])}


# ---------------------------------------------------------------------------- forgotten queries

def forgotten_queries(lab, runners: dict, strategy: str, later: int, attribute: str | None = None,
                      cache: dict | None = None) -> list[dict]:
    """Queries ranked by how much their AP fell between the increment that learnt their
    attribute and increment ``later`` (0-based), largest drop first (ties: attribute, query).

    ``attribute=None``: every attribute learnt before ``later``. Each entry: ``{strategy,
    attribute, query_index, query_row, value, learnt (0-based increment), later, ap_then,
    ap_now, drop}`` with ``drop = ap_then - ap_now`` (negative: it got better). Queries with
    no relevant candidate (no AP) are left out. Empty when no attribute was learnt before
    ``later``.
    """
    runner = runner_for(runners, strategy)
    _check_increment(runner, later)
    cache = {} if cache is None else cache
    attrs = [attribute] if attribute is not None else lab.attributes
    out = []
    for a in attrs:
        learnt = first_increment(runner.increments, a)
        if learnt >= later or unavailable_reason(runner, strategy, a, later) or unavailable_reason(runner, strategy, a, learnt):
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


# ---------------------------------------------------------------------------- embedding drift

def drift_projection(lab, runners: dict, strategy: str, attribute: str, cache: dict, method: str) -> dict:
    """``{increment: (n_candidates, 2) coordinates}`` of the gallery for every finished
    increment that has ``attribute``'s head, plus ``"query"`` (same per increment, all
    queries) and ``"limits"``. PCA is fitted once, on the first of those snapshots;
    t-SNE (``method="tsne"``) is fitted once on all snapshots together."""
    key = ("projection", strategy, attribute, method)
    if key in cache:
        return cache[key]
    runner = runners[strategy]
    first = first_increment(runner.increments, attribute)
    incs = [t for t in range(first, runner.done) if unavailable_reason(runner, strategy, attribute, t) is None]
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
            proj = drift_projection(lab, runners, s, attribute, cache, method)
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


# ---------------------------------------------------------------------------- forgetting curves

def results_chance(results: dict, chance: dict | None) -> dict | None:
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
        M = plots.nan_matrix(matrix)
        y = M[:, attrs.index(attribute)] if attribute is not None else plots.row_means(M)
        return [None if np.isnan(v) else float(v) for v in y]

    for s, res in agg.items():
        view["curves"][s] = curve(res["map_matrix"])
        view["spread"][s] = curve(res["map_matrix_std"]) if res.get("map_matrix_std") is not None else None
        view["n_seeds"][s] = res.get("n_seeds", 1)
        view["matrices"][s] = res["map_matrix"]
        view["forgetting"][s] = res.get("forgetting")
        view["bwt"][s] = res.get("bwt")
        view["final"][s] = (res["final_map"].get(attribute) if attribute is not None else res.get("mean_final_map"))
    ch = results_chance(results, chance)
    if ch:
        view["chance"] = [None if np.isnan(v) else float(v)
                          for v in plots.chance_curve(agg[strategies[0]], attribute, ch)]
    if attribute is not None:
        first = first_increment(agg[strategies[0]]["increments"], attribute)
        if first > 0:
            view["message"] = (f"'{attribute}' arrives in increment {first + 1}: "
                               f"it has no mAP after increments 1..{first}")
    return view
