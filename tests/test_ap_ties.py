"""The AP without a full ranking (metrics._ap_by_groups) on equal scores: a relevant and an
irrelevant candidate with the same similarity are ordered by candidate index, whether a
query has a few such ties (the tie-break) or many (ranked in full)."""
import numpy as np
import torch

from mclfir_lite import metrics as M


def _exact_data(n_q, n_c, dim, grid, n_values, seed, duplicates=0):
    """Embeddings on a 1/grid lattice (dot products exact in float32 and float64), with
    ``duplicates`` candidates copied under another label (equal scores for every query)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-grid, grid + 1, (n_q, dim), generator=g).float() / grid
    c = torch.randint(-grid, grid + 1, (n_c, dim), generator=g).float() / grid
    ql = torch.randint(0, n_values, (n_q,), generator=g)
    cl = torch.randint(0, n_values, (n_c,), generator=g)
    if duplicates:
        src = torch.randint(0, n_c, (duplicates,), generator=g)
        dst = torch.randint(0, n_c, (duplicates,), generator=g)
        c[dst] = c[src]
        cl[dst] = (cl[src] + 1) % n_values
    return q, c, ql, cl


def _across_ties(q, c, ql, cl):
    s = (q @ c.T).numpy()
    out = []
    for i in range(len(q)):
        rel = (cl == ql[i]).numpy()
        out.append(len(np.intersect1d(s[i, rel], s[i, ~rel])))
    return np.array(out)


def test_a_few_ties_per_query_use_the_tie_break_and_equal_the_reference():
    q, c, ql, cl = _exact_data(40, 3000, 16, 1024, 4, seed=0, duplicates=6)
    ties = _across_ties(q, c, ql, cl)
    assert (ties > 0).sum() >= 20 and ties.max() <= M.MAX_TIES_PER_QUERY  # the tie-break path runs
    fast = M.average_precision_per_query(q, c, ql, cl, chunk_size=7)
    np.testing.assert_array_equal(np.round(fast, 12), np.round(M.reference_average_precision(q, c, ql, cl), 12))


def test_many_ties_per_query_are_ranked_in_full_and_equal_the_reference():
    q, c, ql, cl = _exact_data(30, 2000, 8, 2, 3, seed=1)
    assert (_across_ties(q, c, ql, cl) > M.MAX_TIES_PER_QUERY).all()
    fast = M.average_precision_per_query(q, c, ql, cl, chunk_size=16)
    np.testing.assert_allclose(fast, M.reference_average_precision(q, c, ql, cl), rtol=0, atol=1e-12)


def test_all_candidates_relevant_and_empty_label_groups():
    c = torch.eye(3)
    assert M.average_precision_per_query(torch.ones(2, 3), c, [1, 2], [1, 1, 1]).tolist()[0] == 1.0
    assert np.isnan(M.average_precision_per_query(torch.ones(2, 3), c, [1, 2], [1, 1, 1])[1])


def test_the_tie_break_alone_is_exact_on_heavy_ties(monkeypatch):
    """With the full-ranking fallback switched off, the tie-break handles every tie: runs of
    equal relevant scores next to equal irrelevant ones, whole rows of zeros (0 and -0)."""
    monkeypatch.setattr(M, "MAX_TIES_PER_QUERY", 10 ** 9)
    for seed in range(3):
        q, c, ql, cl = _exact_data(25, 400, 4, 2, 3, seed=seed, duplicates=40)
        q[0] = 0.0
        q[1] = -0.0
        assert (_across_ties(q, c, ql, cl) > 20).any()
        for chunk in (1, 7, 64):
            np.testing.assert_allclose(M.average_precision_per_query(q, c, ql, cl, chunk_size=chunk),
                                       M.reference_average_precision(q, c, ql, cl), rtol=0, atol=1e-12)


def test_large_scores_are_scaled_exactly():
    """Scores far above 1 (embeddings not normalised) rank exactly as the reference does."""
    q, c, ql, cl = _exact_data(20, 600, 8, 16, 4, seed=3, duplicates=10)
    for scale in (1.0, 7.0, 1e3):
        np.testing.assert_allclose(M.average_precision_per_query(q * scale, c, ql, cl),
                                   M.reference_average_precision(q * scale, c, ql, cl), rtol=0, atol=1e-12)
