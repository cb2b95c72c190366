"""DER++ (issue 20's replay + distillation baseline): it stores each buffered row's embedding,
pulls the head back to it, resumes bit for bit, and counts what it forwards."""
import pytest
import torch

from test_continual import make, run_counting, tiny  # noqa: F401  (the module's tiny fixture)


def test_derpp_keeps_the_embeddings_of_its_buffer(tiny):  # noqa: F811
    r = make(tiny, "derpp")
    r.run(stop_after=1)
    strat = r.strat
    (attr, rows), = strat.buffer.items()
    z = strat.stored[attr]
    assert z.shape == (len(rows), r.model.heads.embed_dim)
    assert torch.isfinite(z).all()
    assert strat.stored_parameters() == z.numel()


def test_derpp_alpha_changes_the_run_and_counts_its_forwards(tiny):  # noqa: F811
    a = make(tiny, "derpp", derpp_alpha=0.0).run()
    b = make(tiny, "derpp", derpp_alpha=10.0).run()
    assert a["map_matrix"] != b["map_matrix"]
    replay = make(tiny, "replay").run()
    # per step of increment 2: the metric batch, a half batch pulled back, a half batch rehearsed
    assert b["train_samples"] > replay["train_samples"]
    assert b["teacher_samples"] > 0          # the embeddings stored after increment 1


def test_derpp_resumes_bit_for_bit(tiny, tmp_path):  # noqa: F811
    full = make(tiny, "derpp", tmp_path / "full").run()
    make(tiny, "derpp", tmp_path / "part").run(stop_after=1)
    resumed, trained = run_counting(make(tiny, "derpp", tmp_path / "part"))
    assert trained == [1]   # resumed, not restarted
    assert resumed["map_matrix"] == full["map_matrix"]


@pytest.mark.parametrize("field, value", [("derpp_alpha", -1.0), ("derpp_beta", float("nan"))])
def test_bad_weights_are_refused(field, value):
    from mclfir_lite.config import Config
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})
