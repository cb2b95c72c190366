"""Mechanism diagrams draw (every function returns a figure with something on it) and reject bad input."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mclfir_lite.lab import diagrams  # noqa: E402


@pytest.mark.parametrize("name", diagrams.__all__)
def test_each_diagram_draws(name):
    out = getattr(diagrams, name)()
    fig = out if isinstance(out, Figure) else out.figure      # draw_reindexing, draw_fusion return their Axes
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.patches or ax.images or ax.texts, f"{name} drew nothing"
    fig.canvas.draw()                      # renders without error
    matplotlib.pyplot.close(fig)


def test_model_diagram_marks_new_heads_and_teacher():
    fig = diagrams.model_diagram(["length", "colour"], new=["colour"], teacher=True)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "head: colour\n(new)" in texts and "EMA teacher" in texts
    no_teacher = diagrams.model_diagram(["length"], new=(), teacher=False)
    assert "EMA teacher" not in " ".join(t.get_text() for t in no_teacher.axes[0].texts)


def test_doublet_batch_counts_false_negatives():
    fig = diagrams.doublet_batch([0, 0, 1])
    kinds = fig.axes[0].images[0].get_array()
    # items: a0 a1 a2 p0 p1 p2 with values 0 0 1 0 0 1; a0's partner is p0, a1 and p1 are false negatives
    assert kinds[0, 3] == 3 and kinds[0, 1] == 2 and kinds[0, 4] == 2 and kinds[0, 2] == 1 and kinds[0, 0] == 0


def test_increment_timeline_accumulates_evaluated_attributes():
    fig = diagrams.increment_timeline([["a"], ["b", "c"]], new_images=False)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("a, b\nc\n→ row 2 of R" in t for t in texts)
    assert any("the same images, new labels" in t for t in texts)


def test_ap_ranking_title_has_the_ap():
    fig = diagrams.ap_ranking([1, 0, 1, 0])
    assert "0.833" in fig.axes[0].get_title()


def test_ema_memory_splits_the_teacher_into_snapshot_and_student():
    import numpy as np
    fig = diagrams.ema_memory(decays=(0.99, 0.999), steps=400)
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    snap = 0.999 ** 400                                    # 67% of the previous increment's model is left
    assert any(f"({snap:.0%})" in t for t in labels) and any(f"(sum {1 - snap:.2f})" in t for t in labels)
    heights = [p.get_height() for p in fig.axes[0].patches[:400]]
    assert np.allclose(heights, [0.01 * 0.99 ** k for k in range(400)])
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("call", [lambda: diagrams.model_diagram([]),
                                  lambda: diagrams.ema_memory(decays=(1.0,)),
                                  lambda: diagrams.ema_memory(steps=0),
                                  lambda: diagrams.model_diagram(["a"], new=["b"]),
                                  lambda: diagrams.doublet_batch([1]),
                                  lambda: diagrams.increment_timeline([["a"], []]),
                                  lambda: diagrams.ap_ranking([0, 0])])
def test_bad_input_is_named(call):
    with pytest.raises(ValueError):
        call()


def test_each_of_the_core_notebooks_draws_a_mechanism_diagram():
    from pathlib import Path

    import nbformat
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for prefix in ("00", "01", "02", "03", "04", "10", "11"):
        nb = nbformat.read(next(notebooks.glob(f"{prefix}_*.ipynb")), as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert any(f"diagrams.{name}(" in code for name in diagrams.__all__), f"notebook {prefix} has no mechanism diagram"
