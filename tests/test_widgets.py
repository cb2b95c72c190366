"""The widgets' callbacks are plain functions: test them, and the widgets, without a browser."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mclfir_lite.core import metrics
from mclfir_lite.config import Config
from mclfir_lite.training.evaluate import embed
from mclfir_lite.data.datasets import synthfashion_table
from mclfir_lite.lab.lab import Lab
import torch

from mclfir_lite.lab.figures import (draw_ap_histograms, draw_compare_view, draw_drift_view, draw_forgetting_view,
                                     draw_forgotten_view, draw_neighbour_view)
from mclfir_lite.lab.views import (MEAN, compare_view, drift_view, forgetting_view, forgotten_queries, forgotten_view,
                                   lab_chance_map, neighbour_view, query_aps, similarity_digits)
from mclfir_lite.lab.widgets import EmbeddingDrift, ForgettingCurves, ForgottenQueries, NeighbourBrowser, SideBySideBrowser

PLAN = [["sleeve_length"], ["colour"]]


@pytest.fixture(scope="module")
def lab():
    table = synthfashion_table(n=360, size=32, seed=0).select(["sleeve_length", "colour"])
    cfg = Config(steps_per_attribute=4, batch_size=16)
    return Lab.from_table(table, PLAN, cfg, quick=True, image_size=32, max_queries=20, max_candidates=60)


@pytest.fixture(scope="module")
def runners(lab):
    return {s: lab.run(s, cache=False, progress=False) for s in ("finetune", "frozen")}


def test_neighbour_view_marks_relevance_and_ap(lab, runners):
    v = neighbour_view(lab, runners, "finetune", "colour", increment=1, query_index=3, k=6)
    assert v["available"] and v["message"] is None
    assert len(v["rows"]) == 6 and len(v["values"]) == 6
    labels = lab.table.labels["colour"]
    np.testing.assert_array_equal(v["relevant"], labels[v["rows"]] == labels[v["query_row"]])
    assert v["query_row"] == lab.protocol["colour"].query[3]
    assert set(v["rows"]) <= set(lab.protocol["colour"].candidate)
    assert np.all(np.diff(v["similarities"]) <= 1e-6)  # ranked, most similar first
    model = runners["finetune"].model_after(1)
    split = lab.protocol["colour"]
    q = embed(model, lab.images, np.array([v["query_row"]]), "colour")
    c = embed(model, lab.images, split.candidate, "colour")
    ap = metrics.average_precision_per_query(q, c, labels[[v["query_row"]]], labels[split.candidate])[0]
    assert v["ap"] == pytest.approx(ap)


def test_changing_attribute_changes_neighbours_and_marks(lab, runners):
    a = neighbour_view(lab, runners, "finetune", "sleeve_length", 1, 0)
    b = neighbour_view(lab, runners, "finetune", "colour", 1, 0)
    assert not np.array_equal(a["rows"], b["rows"])
    assert a["values"] != b["values"]  # value names of another attribute
    for v in (a, b):  # each marked against its own attribute's labels
        labels = lab.table.labels[v["attribute"]]
        np.testing.assert_array_equal(v["relevant"], labels[v["rows"]] == v["query_label"])


def test_attribute_not_arrived_gives_a_message(lab, runners):
    v = neighbour_view(lab, runners, "frozen", "colour", increment=0, query_index=0)
    assert not v["available"] and "arrives in increment 2" in v["message"]
    assert len(v["rows"]) == 0
    fig = draw_neighbour_view(v, lab)
    assert v["message"] in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(ValueError, match="unknown strategy"):
        neighbour_view(lab, runners, "mclfir", "colour", 1, 0)
    with pytest.raises(ValueError, match="query_index"):
        neighbour_view(lab, runners, "frozen", "colour", 1, 10_000)


def test_draw_neighbour_view(lab, runners):
    v = neighbour_view(lab, runners, "frozen", "sleeve_length", 1, 2, k=5)
    fig = draw_neighbour_view(v, lab)
    assert len(fig.boxes) == 6                          # the query and 5 neighbours
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 6)
    assert draw_neighbour_view(v, lab, axes=axes) is fig  # into axes of your own


def test_forgetting_view(runners):
    results = {s: r.result() for s, r in runners.items()}
    v = forgetting_view(results, "sleeve_length", ["finetune", "frozen"])
    for s in ("finetune", "frozen"):
        assert v["curves"][s] == [row[0] for row in results[s]["map_matrix"]]
        assert v["forgetting"][s] == results[s]["forgetting"]
    late = forgetting_view(results, "colour", ["finetune"])
    assert late["curves"]["finetune"][0] is None and "arrives in increment 2" in late["message"]
    mean = forgetting_view(results, None, ["frozen"])
    R = np.array([[np.nan if x is None else x for x in row] for row in results["frozen"]["map_matrix"]])
    np.testing.assert_allclose(mean["curves"]["frozen"], np.nanmean(R, axis=1))
    assert forgetting_view(results, None, [])["message"]
    fig = draw_forgetting_view(v, results)
    assert len(fig.axes) >= 3  # curves + two heatmaps


def test_widgets_follow_their_controls(lab, runners):
    b = NeighbourBrowser(lab, runners, strategy="finetune", attribute="sleeve_length")
    first = b.view
    assert first["attribute"] == "sleeve_length" and first["increment"] == 1
    b.attribute.value = "colour"
    assert b.view["attribute"] == "colour"
    assert b.query.max == len(lab.protocol["colour"].query) - 1
    b.query.value = 5
    assert b.view["query_row"] == lab.protocol["colour"].query[5]
    b.increment.value = 1  # the slider is 1-based: after increment 1 colour has not arrived
    assert not b.view["available"] and "arrives" in b.status.value
    b.k.value = 3
    b.increment.value = 2
    assert b.view["available"] and len(b.view["rows"]) == 3
    assert b.image.value[:8] == b"\x89PNG\r\n\x1a\n"   # the figure the browser shows

    results = {s: r.result() for s, r in runners.items()}
    fc = ForgettingCurves(results)
    assert fc.view["attribute"] is None and fc.view["strategies"] == ["finetune", "frozen"]
    fc.attribute.value = "sleeve_length"
    fc.strategies.value = ("frozen",)
    assert fc.view["attribute"] == "sleeve_length" and list(fc.view["curves"]) == ["frozen"]
    assert fc.image.value[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- issue 11: chance

chance_ap = metrics.expected_random_ap      # (the widgets' chance; checked here against brute force)


def test_chance_ap_is_the_mean_ap_of_all_rankings_exhaustively():
    import itertools
    for N, R in ((1, 1), (4, 1), (5, 2), (6, 3), (6, 6)):
        aps = []
        for hits in itertools.combinations(range(N), R):
            ranks = np.array(hits) + 1
            aps.append(np.mean(np.arange(1, R + 1) / ranks))
        assert chance_ap(R, N) == pytest.approx(np.mean(aps), abs=1e-12), (R, N)
    assert np.isnan(chance_ap(0, 5))


def test_chance_ap_matches_simulation_with_the_package_metric():
    """Random embeddings rank the candidates at random; fresh candidates every trial (the
    queries of one trial share candidates, so the standard error is taken over trials)."""
    torch.manual_seed(0)
    N, R, trials = 200, 17, 300
    cand_labels = np.array([1] * R + [0] * (N - R))
    means = [metrics.average_precision_per_query(torch.randn(8, 16), torch.randn(N, 16), np.ones(8, dtype=int),
                                                 cand_labels).mean() for _ in range(trials)]
    se = np.std(means) / np.sqrt(trials)
    assert abs(np.mean(means) - chance_ap(R, N)) < 4 * se


def test_chance_map_is_the_mean_chance_ap_of_the_queries(lab):
    ch = lab_chance_map(lab)
    assert set(ch) == set(lab.attributes)
    split, labels = lab.protocol["colour"], lab.table.labels["colour"]
    cand = labels[split.candidate]
    per_query = [chance_ap(int((cand == v).sum()), len(cand)) for v in labels[split.query]]
    assert lab.config.no_relevant == "zero"             # a query without a relevant candidate counts as 0
    expected = np.mean(np.nan_to_num(per_query, nan=0.0))
    assert ch["colour"] == pytest.approx(expected)
    assert 0 < ch["colour"] < 1


def test_similarity_digits_orders_close_similarities():
    assert similarity_digits([0.9, 0.5, 0.1]) == 2
    assert similarity_digits([0.9951, 0.9948, 0.99]) == 4
    assert similarity_digits([0.5, 0.5, 0.4]) == 2            # equal values need no extra digit
    assert similarity_digits([1e-9, 0.0]) == 6                # capped


# ---------------------------------------------------------------------------- side by side

def test_compare_view_answers_the_same_query_with_each_strategy(lab, runners):
    cache = {}
    v = compare_view(lab, runners, ["finetune", "frozen"], "sleeve_length", 1, 4, k=5, cache=cache)
    assert v["query_row"] == lab.protocol["sleeve_length"].query[4]
    for s in ("finetune", "frozen"):
        single = neighbour_view(lab, runners, s, "sleeve_length", 1, 4, k=5)
        np.testing.assert_array_equal(v["views"][s]["rows"], single["rows"])
        assert v["views"][s]["query_row"] == v["query_row"]
        assert v["aps"][s][4] == pytest.approx(v["views"][s]["ap"])
        np.testing.assert_allclose(v["aps"][s], query_aps(lab, runners, s, 1, "sleeve_length"))
    assert v["chance"] == pytest.approx(lab_chance_map(lab)["sleeve_length"])
    # different models rank differently
    assert not np.allclose(v["views"]["finetune"]["similarities"], v["views"]["frozen"]["similarities"])
    fig = draw_compare_view(v, lab)
    assert [(r, c) for r, c, *_ in fig.boxes] == [(r, c) for r in range(2) for c in range(6)]  # query + 5, twice
    hist = draw_ap_histograms(v)
    assert len(hist.axes) == 2
    late = compare_view(lab, runners, ["finetune", "frozen"], "colour", 0, 0, cache=cache)
    assert all(not x["available"] for x in late["views"].values()) and late["aps"]["frozen"] is None
    draw_compare_view(late, lab), draw_ap_histograms(late)


def test_neighbour_rows_are_at_natural_size_with_thumbnails_of_64_px(lab, runners):
    import io

    from PIL import Image

    from mclfir_lite.lab import plots
    from mclfir_lite.lab.widgets import _png
    v = compare_view(lab, runners, ["finetune", "frozen"], "sleeve_length", 1, 0, k=4)
    fig = draw_compare_view(v, lab)
    assert min(b[4] for b in fig.boxes) >= 64 and min(b[5] for b in fig.boxes) >= 64
    assert len({(b[4], b[5]) for b in fig.boxes}) == 1  # every thumbnail the same size
    png = Image.open(io.BytesIO(_png(fig)))
    h, w = fig.pixels.shape[:2]
    assert png.size == (w, h) and tuple(fig.get_size_inches() * plots.DPI) == pytest.approx((w, h))
    assert np.array_equal(np.asarray(png.convert("RGB")), fig.pixels)
    assert png.size[0] <= 1100                          # fits a notebook's output area
    # what the inline backend shows (IPython's print_figure returns nothing for a figure without
    # axes: the blank "<Figure ... with 0 Axes>" notebook 04 once showed)
    from IPython.core.pylabtools import print_figure
    shown = print_figure(fig, "png")
    assert shown, "the inline backend would show nothing"
    shown = np.asarray(Image.open(io.BytesIO(shown)).convert("RGB"))
    assert len(fig.axes) == 1 and shown.shape[0] >= 0.9 * h and shown.shape[1] >= 0.9 * w
    assert shown.std() > 10                              # thumbnails and frames, not one flat colour
    x, y = fig.boxes[1][2:4]                            # the first neighbour: framed, upscaled 2x, nearest
    thumb = fig.pixels[y:y + 64, x:x + 64]
    np.testing.assert_array_equal(thumb[::2, ::2], thumb[1::2, 1::2])
    for s, rows in (("finetune", 0), ("frozen", 1)):    # framed green when relevant, red when not
        rel = v["views"][s]["relevant"][0]
        x, y = next(b[2:4] for b in fig.boxes if b[:2] == (rows, 1))
        assert tuple(fig.pixels[y - 2, x + 10]) == (plots.GREEN if rel else plots.RED)
    up = plots.upscale(np.zeros((32, 32, 3), np.uint8))
    assert up.shape == (64, 64, 3)
    assert plots.upscale(np.zeros((100, 100, 3), np.uint8)).shape == (100, 100, 3)


def test_a_candidate_without_a_value_is_never_relevant(lab, runners):
    import dataclasses

    from mclfir_lite.data.table import FashionTable
    split = lab.protocol["colour"]
    v = neighbour_view(lab, runners, "finetune", "colour", 1, 0, k=3)
    labels = {a: l.copy() for a, l in lab.table.labels.items()}
    labels["colour"][v["rows"][0]] = -1                 # e.g. a row outside the attribute's image pool
    table = FashionTable(lab.table.images, labels, lab.table.values, lab.table.split)
    other = dataclasses.replace(lab, table=table)
    w = neighbour_view(other, runners, "finetune", "colour", 1, 0, k=3)
    assert w["values"][0] == "(no value)" and not w["relevant"][0]
    assert split is other.protocol["colour"]


# ---------------------------------------------------------------------------- forgotten queries

def test_forgotten_queries_are_sorted_by_ap_drop_computed_with_the_metric(lab, runners):
    entries = forgotten_queries(lab, runners, "finetune", later=1)
    assert entries and {e["attribute"] for e in entries} == {"sleeve_length"}   # colour is learnt at 1
    drops = [e["drop"] for e in entries]
    assert drops == sorted(drops, reverse=True)
    top = entries[0]
    split, labels = lab.protocol[top["attribute"]], lab.table.labels[top["attribute"]]
    ap = {}
    for t in (top["learnt"], top["later"]):
        model = runners["finetune"].model_after(t)
        q = embed(model, lab.images, split.query, top["attribute"])
        c = embed(model, lab.images, split.candidate, top["attribute"])
        ap[t] = metrics.average_precision_per_query(q, c, labels[split.query], labels[split.candidate])
    i = top["query_index"]
    assert top["drop"] == pytest.approx(ap[top["learnt"]][i] - ap[top["later"]][i])
    assert top["ap_then"] == pytest.approx(ap[0][i]) and top["ap_now"] == pytest.approx(ap[1][i])
    assert forgotten_queries(lab, runners, "finetune", later=1, attribute="colour") == []
    assert forgotten_queries(lab, runners, "finetune", later=0) == []
    view = forgotten_view(lab, runners, top, k=4)
    assert view["then"]["increment"] == 0 and view["now"]["increment"] == 1
    assert view["then"]["query_row"] == view["now"]["query_row"] == top["query_row"]
    assert view["now"]["ap"] == pytest.approx(top["ap_now"])
    assert len(draw_forgotten_view(view, lab).boxes) == 2 * 5


# ---------------------------------------------------------------------------- drift

def test_drift_view_projects_every_increment_with_the_pca_of_the_first(lab, runners):
    from sklearn.decomposition import PCA
    cache = {}
    split = lab.protocol["sleeve_length"]
    v0 = drift_view(lab, runners, ["finetune", "frozen"], "sleeve_length", 0, 2, k=4, cache=cache)
    v1 = drift_view(lab, runners, ["finetune", "frozen"], "sleeve_length", 1, 2, k=4, cache=cache)
    c0 = embed(runners["finetune"].model_after(0), lab.images, split.candidate, "sleeve_length").numpy()
    c1 = embed(runners["finetune"].model_after(1), lab.images, split.candidate, "sleeve_length").numpy()
    pca = PCA(n_components=2, random_state=0).fit(c0)
    p0, p1 = v0["panels"]["finetune"], v1["panels"]["finetune"]
    np.testing.assert_allclose(p0["xy"], pca.transform(c0), atol=1e-5)
    np.testing.assert_allclose(p1["xy"], pca.transform(c1), atol=1e-5)   # not re-fitted: drift stays visible
    assert not np.allclose(p0["xy"], p1["xy"], atol=1e-3)                 # finetune moved the embeddings
    np.testing.assert_allclose(v1["panels"]["frozen"]["xy"], v0["panels"]["frozen"]["xy"], atol=1e-5)
    x0, x1, y0, y1 = p1["limits"]
    for p in (p0, p1):
        assert (p["xy"][:, 0] >= x0).all() and (p["xy"][:, 0] <= x1).all()
        assert (p["xy"][:, 1] >= y0).all() and (p["xy"][:, 1] <= y1).all()
    nb = neighbour_view(lab, runners, "finetune", "sleeve_length", 1, 2, k=4)
    np.testing.assert_allclose(p1["top_xy"], p1["xy"][np.searchsorted(split.candidate, nb["rows"])])
    np.testing.assert_array_equal(p1["labels"], lab.table.labels["sleeve_length"][split.candidate])
    late = drift_view(lab, runners, ["finetune"], "colour", 0, 0, cache=cache)
    assert not late["panels"]["finetune"]["available"] and "arrives" in late["panels"]["finetune"]["message"]
    assert len(draw_drift_view(v1).axes) == 2
    draw_drift_view(late)


# ---------------------------------------------------------------------------- curves with chance and seeds

def test_forgetting_view_with_seeds_chance_and_no_forgetting(runners):
    from mclfir_lite.lab import plots
    seeds = [r.result() for r in runners.values()]          # two "seeds" of one strategy
    joint = dict(seeds[1], forgetting=None, bwt=None)        # retrained from scratch: no forgetting
    chance = {"sleeve_length": 0.2, "colour": 0.15}
    results = {"several": seeds, "scratch": joint}
    v = forgetting_view(results, "sleeve_length", ["several", "scratch"], chance=chance)
    col = np.array([[row[0] for row in s["map_matrix"]] for s in seeds])
    np.testing.assert_allclose(v["curves"]["several"], col.mean(0))
    np.testing.assert_allclose(v["spread"]["several"], col.std(0))
    assert v["n_seeds"]["several"] == 2 and v["spread"]["scratch"] is None
    assert v["chance"] == [0.2, 0.2]
    assert v["forgetting"]["scratch"] is None
    mean = forgetting_view(results, MEAN, ["scratch"], chance=chance)
    assert mean["attribute"] is None and mean["chance"] == [0.2, pytest.approx(0.175)]
    fig = draw_forgetting_view(v, results, chance)
    titles = [a.get_title() for a in fig.axes]
    assert any("forgetting n/a" in t for t in titles)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "chance" in labels and "several (2 seeds)" in labels
    agg = plots.aggregate(seeds)
    assert agg["map_matrix"][0][1] is None and agg["n_seeds"] == 2
    with pytest.raises(ValueError, match="different attributes"):
        plots.aggregate([seeds[0], dict(seeds[0], attributes=["a", "b"])])


def _controls(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _controls(child)


def test_widgets_show_images_at_natural_size_and_no_blank_dropdowns(lab, runners):
    import ipywidgets as ipw

    results = {s: r.result() for s, r in runners.items()}
    shared = {}                                         # one cache for all: each snapshot embedded once
    made = [NeighbourBrowser(lab, runners, cache=shared), SideBySideBrowser(lab, runners, cache=shared),
            ForgottenQueries(lab, runners, cache=shared), EmbeddingDrift(lab, runners, cache=shared),
            ForgettingCurves(results, chance=lab_chance_map(lab))]
    for obj in made:
        for img in obj._all_images:
            assert img.layout.align_self == "flex-start" and img.value[:4] == b"\x89PNG"
        for c in _controls(obj.widget):
            if isinstance(c, ipw.Dropdown):    # ipywidgets shows an option whose value is None as blank
                assert c.value is not None and c.label, (type(obj).__name__, c.description)
                assert all(v is not None for v in c.options), (type(obj).__name__, c.description)
        bundle = obj._repr_mimebundle_()
        assert "VBox(" not in bundle["text/plain"] and "image/png" in bundle
        assert "application/vnd.jupyter.widget-view+json" in bundle
    fc = made[-1]
    assert fc.attribute.value == MEAN and None not in fc.attribute.options


def test_new_widgets_follow_their_controls(lab, runners):
    s = SideBySideBrowser(lab, runners, attribute="sleeve_length")
    png = s.image.value
    s.query.value = 3
    assert s.view["query_index"] == 3 and s.image.value != png
    assert all(v["query_index"] == 3 for v in s.view["views"].values())
    s.attribute.value = "colour"
    assert s.query.max == len(lab.protocol["colour"].query) - 1 and s.view["attribute"] == "colour"
    s.increment.value = 1
    assert "not available" in s.status.value
    s.k.value = 3
    assert s.view["k"] == 3

    f = ForgottenQueries(lab, runners, strategy="finetune")
    assert f.entries and f.queries.value == 0 and f.view["entry"] is f.entries[0]
    png = f.image.value
    f.queries.value = 1
    assert f.view["entry"] is f.entries[1] and f.image.value != png
    f.strategy.value = "frozen"
    assert f.entries[0]["strategy"] == "frozen" and f.queries.value == 0
    f.attribute.value = "sleeve_length"
    assert {e["attribute"] for e in f.entries} == {"sleeve_length"}
    assert f.queries.options[0][0].startswith(f"{f.entries[0]['drop']:+.3f}")

    d = EmbeddingDrift(lab, runners)
    assert d.view["increment"] == 0
    png = d.image.value
    d.increment.value = 2
    assert d.view["increment"] == 1 and d.image.value != png
    d.attribute.value = "colour"
    d.increment.value = 1
    assert not d.view["panels"]["finetune"]["available"]
    d.increment.value = 2
    d.query.value = 2
    d.k.value = 2
    assert len(d.view["panels"]["frozen"]["top_xy"]) == 2
