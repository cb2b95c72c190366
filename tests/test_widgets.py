"""The widgets' callbacks are plain functions: test them, and the widgets, without a browser."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mclfir_lite import metrics
from mclfir_lite.continual import Config, embed
from mclfir_lite.datasets import synthfashion_table
from mclfir_lite.lab import Lab
from mclfir_lite.widgets import (ForgettingCurves, NeighbourBrowser, draw_forgetting_view, draw_neighbour_view,
                                 forgetting_view, neighbour_view)

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
    assert len(fig.axes) == 6


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
