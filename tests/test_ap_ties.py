"""The AP on the CPU (metrics._ap_on_cpu, the compiled loops of rankloops) on equal scores:
a relevant and an irrelevant candidate with the same similarity are ordered by candidate
index, whether a query has a few such ties (the tie-break) or many (ranked in full). Also
its other paths: scores too large for the keys, non-finite inputs, no numba."""
import warnings

import numpy as np
import pytest
import torch

from mclfir_lite.core import metrics as M


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


def test_a_few_large_scores_among_small_ones_are_scaled_on_every_thread():
    """Scores below 0.5 except for one query (x64) and one candidate (x16): the loops
    notice the out-of-range scores wherever they are and the whole AP is scaled. (Powers
    of two: the scores stay exact, ties included.)"""
    q, c, ql, cl = _exact_data(37, 500, 8, 16, 4, seed=4, duplicates=8)
    q, c = q / 4, c / 4
    q[29] *= 64.0
    c[0] *= 16.0
    assert (q @ c.T).abs().max() >= 2 and ((q @ c.T).abs() >= 2).float().mean() < 0.05
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for chunk in (None, 5):
                np.testing.assert_allclose(M.average_precision_per_query(q, c, ql, cl, chunk_size=chunk),
                                           M.reference_average_precision(q, c, ql, cl), rtol=0, atol=1e-12)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("where", ["query", "candidate"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_single_non_finite_entry_is_named(where, value):
    """The CPU path checks finiteness from the similarities: one bad entry anywhere, in a
    query or in a candidate, still gives the error that names the argument."""
    q, c, ql, cl = _exact_data(40, 300, 8, 16, 4, seed=5)
    (q if where == "query" else c)[-1, 3] = value
    name = "query_emb" if where == "query" else "cand_emb"
    for chunk in (None, 7):
        with pytest.raises(ValueError, match=f"{name} must hold finite"):
            M.average_precision_per_query(q, c, ql, cl, chunk_size=chunk)
    with pytest.raises(ValueError, match="query_emb must hold finite"):   # no candidate to see it
        M.average_precision_per_query(torch.full((2, 3), value), torch.zeros(0, 3), [0, 1], torch.zeros(0, dtype=int))


def test_without_numba_the_full_ranking_gives_the_same_aps(monkeypatch):
    """Where numba cannot be imported the AP ranks every query in full with torch, says so
    once, and gives the same numbers."""
    from mclfir_lite.core import rankloops
    q, c, ql, cl = _exact_data(30, 400, 8, 16, 4, seed=6, duplicates=12)
    fast = M.average_precision_per_query(q, c, ql, cl)
    monkeypatch.setattr(rankloops, "available", lambda: False)
    monkeypatch.setattr(M, "_WARNED", [])
    with pytest.warns(RuntimeWarning, match="ranks every query in full"):
        slow = M.average_precision_per_query(q, c, ql, cl)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.average_precision_per_query(q, c, ql, cl)          # said once
    np.testing.assert_allclose(slow, fast, rtol=0, atol=1e-12)
    np.testing.assert_allclose(slow, M.reference_average_precision(q, c, ql, cl), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="cand_emb must hold finite"):
        M.average_precision_per_query(q, torch.full_like(c, float("nan")), ql, cl)


def test_strided_and_mixed_dtype_inputs_equal_the_reference():
    """Views (every other column, every other label), half/double embeddings, int32 and
    huge or negative labels: converted before the compiled loops, same APs."""
    q, c, ql, cl = _exact_data(24, 300, 8, 16, 3, seed=7, duplicates=10)
    labels = torch.cat([ql, cl]).repeat_interleave(2) * 1_000_000_007 - 5
    ql2, cl2 = labels[:48:2], labels[48::2]
    wide_q = torch.stack([q, torch.zeros_like(q)], dim=2).reshape(len(q), -1)[:, ::2]
    for args in ((wide_q, c, ql2, cl2), (q.half(), c.double(), ql.int(), cl.numpy())):
        np.testing.assert_allclose(M.average_precision_per_query(*args), M.reference_average_precision(*args),
                                   rtol=0, atol=1e-12)
