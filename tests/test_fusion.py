"""Dynamic fusion: queries, relevance, the router, training, the parser's weights, name conditioning."""
import numpy as np
import pytest
import torch

from mclfir_lite.retrieval import fusion as fu
from mclfir_lite.core import metrics
from mclfir_lite.core.encoders import SmallCNN
from mclfir_lite.core.model import RetrievalModel

VALUES = ["red", "blue", "green"]


def _setup(n=60, seed=0):
    rng = np.random.default_rng(seed)
    keep = rng.integers(0, 3, n)
    change = rng.integers(0, 3, n)
    return keep, change


def test_make_queries_kinds_targets_and_words():
    keep, change = _setup()
    rows = np.arange(60)
    q = fu.make_queries(rows, change, "length", "colour", VALUES, "train", seed=0)
    assert len(q) == 60 and set(q.kind) == {0, 1, 2}
    assert (q.target[q.kind == 0] == -1).all() and (q.target[q.kind > 0] >= 0).all()
    both = q.kind == 2
    assert (q.target[both] != change[rows[both]]).all()          # "both" always changes the value
    new = fu.make_queries(rows, change, "length", "colour", VALUES, "train", fu.HELD_OUT_WORDS, seed=0)
    texts = " ".join(new.captions)
    assert "crimson" in texts or "ruby" in texts or "cobalt" in texts
    assert "how long it is" in texts
    with pytest.raises(ValueError, match="unknown templates"):
        fu.make_queries(rows, change, "length", "colour", VALUES, "nope")


def test_relevance_matches_query_labels_and_per_query_ap():
    keep, change = _setup()
    rows, cand = np.arange(20), np.arange(20, 60)
    q = fu.make_queries(rows, change, "length", "colour", VALUES, seed=1)
    rel = fu.relevance(q, keep, change, cand)
    for k in range(3):
        ql, cl = fu.query_labels(q, keep, change, cand, 3, k)
        assert torch.equal(rel[torch.as_tensor(q.kind == k)], torch.as_tensor(ql[:, None] == cl[None, :]))
    # a perfect fused query (one-hot of what is asked) gets AP 1 where a relevant candidate exists
    def onehot(x, n=3):
        return torch.nn.functional.one_hot(torch.as_tensor(x), n).float()
    cands = torch.cat([onehot(keep[cand]), onehot(change[cand])], 1)
    fq = torch.cat([onehot(keep[rows]) * torch.as_tensor(q.kind != 1)[:, None],
                    onehot(np.maximum(q.target, 0)) * torch.as_tensor(q.kind != 0)[:, None]], 1)
    ap = fu.per_query_ap(fq, cands, q, keep, change, cand, 3)
    assert np.allclose(ap[rel.any(1).numpy()], 1.0)
    ch = fu.chance_ap(q, keep, change, cand)
    n_rel = rel.sum(1).numpy()
    assert np.allclose(ch, metrics.expected_random_ap(n_rel, np.full(len(n_rel), len(cand))), equal_nan=True)
    assert (ch[n_rel > 0] >= n_rel[n_rel > 0] / len(cand) - 1e-12).all()     # never below the share of relevant ones


def test_static_weights_are_shared_and_dynamic_ones_depend_on_the_query():
    static = fu.FusionModel(4, 4, dynamic=False, seed=0)
    dyn = fu.FusionModel(4, 4, dynamic=True, seed=0)
    img = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    caps = ["in red", "same length as this", "keep the length, make it blue"]
    fq, w = static(img, caps)
    assert fq.shape == (3, 8) and torch.allclose(w, w[:1].expand(3, 2))
    _, w = dyn(img, caps)
    assert torch.allclose(w.sum(1), torch.ones(3)) and not torch.allclose(w, w[:1].expand(3, 2))


def test_training_learns_to_route_and_distillation_runs():
    keep, change = _setup(200)
    rows = np.arange(200)
    emb_k = torch.nn.functional.one_hot(torch.as_tensor(keep), 3).float()
    emb_c = torch.nn.functional.one_hot(torch.as_tensor(change), 3).float()
    pool = fu.candidate_vectors(emb_k, emb_c)
    q = fu.make_queries(rows, change, "length", "colour", VALUES, seed=0)
    m = fu.FusionModel(3, 3, text_dim=16, dynamic=True, seed=0)
    log = fu.train_fusion(m, q, emb_k, pool, rows, keep, change, steps=150, pool_size=100, lr=0.03, seed=0)
    assert np.mean(log["loss"][-20:]) < np.mean(log["loss"][:20])
    _, w = fu.fused_queries(m, emb_k, q)
    assert w[torch.as_tensor(q.kind == 1)][:, 1].mean() > w[torch.as_tensor(q.kind == 0)][:, 1].mean() + 0.2
    m2 = fu.FusionModel(3, 3, text_dim=16, dynamic=True, seed=0)
    log2 = fu.train_fusion(m2, q, emb_k, pool, rows, keep, change, steps=20, pool_size=50, distill=1.0, seed=0)
    assert len(log2["distill"]) == 20 and all(np.isfinite(log2["distill"]))
    with pytest.raises(ValueError, match="image embeddings"):
        fu.train_fusion(m, q, emb_k[:5], pool, rows, keep, change, steps=1)


def test_multi_positive_nce_by_hand():
    s = torch.tensor([[1.0, 0.0, 0.0]])
    rel = torch.tensor([[True, True, False]])
    expected = -np.log((np.e + 1) / (np.e + 2))
    assert np.isclose(float(fu.multi_positive_nce(s, rel, 1.0)), expected)


class _FakeParser:
    def parse(self, text):
        from mclfir_lite.retrieval.textquery import ParsedQuery
        return ParsedQuery(keep=["length"] if "same" in text else [], change={"colour": "blue"} if "blue" in text else {})


def test_parse_weights_and_fixed_queries():
    wi, wt, val = fu.parse_weights(_FakeParser(), ["same length", "in blue", "same length in blue", "hm"],
                                   "length", "colour", VALUES)
    assert list(wi) == [1, 0, 1, 0] and list(wt) == [0, 1, 1, 0] and list(val) == [-1, 1, 1, -1]
    fq = fu.fixed_queries(torch.ones(4, 2), 2 * torch.ones(4, 2), wi, wt)
    assert torch.equal(fq[1], torch.tensor([0.0, 0.0, 2.0, 2.0]))


def test_name_conditioned_is_the_wrapped_model_at_start_and_gates_after():
    from mclfir_lite.retrieval.textquery import TextEncoder
    m = RetrievalModel(lambda: SmallCNN(width=8), embed_dim=8, seed=0)
    m.add_attribute("colour")
    m.eval()
    wrapped = fu.NameConditioned(m, TextEncoder(16))
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(wrapped(x, "colour"), m(x, "colour"))
        torch.nn.init.normal_(wrapped.gate.weight)
        assert not torch.allclose(wrapped(x, "colour"), m(x, "colour"))
    assert sum(p.numel() for p in wrapped.gate.parameters()) == 16 * m.out_channels


def test_clip_text_with_a_fake_tower():
    class Tower:
        def encode_text(self, tokens):
            return tokens.float()
    tok = lambda texts: torch.tensor([[len(t), 1.0, 0.0] for t in texts])
    ct = fu.ClipText((Tower(), tok, "fake"))
    out = ct(["ab", "abc", "ab"])
    assert ct.dim == 3 and out.shape == (3, 3) and torch.allclose(out[0], out[2])
    assert not list(ct.parameters())
    with pytest.raises(ValueError, match="no CLIP model"):
        fu.ClipText((None, None, "missing"))


def test_draw_fusion():
    import matplotlib
    matplotlib.use("Agg")
    from mclfir_lite.lab.diagrams import draw_fusion
    ax = draw_fusion()
    assert any("router" in t.get_text() for t in ax.texts)
