"""Tests for mclfir_lite.core.metrics: hand-worked rankings, ties, edge cases, and the
vectorised AP checked against the plain reference loop."""
import numpy as np
import pytest
import torch

from mclfir_lite.core import metrics as M

NAN = float("nan")


def both_ap(q, c, ql, cl, **kw):
    """AP from the vectorised and the reference implementation."""
    return M.average_precision_per_query(q, c, ql, cl, **kw), M.reference_average_precision(q, c, ql, cl)


# ---------------------------------------------------------------- hand-worked rankings

def test_ap_hand_worked():
    # 1-D embeddings, so the similarity is just the product q * c.
    # Candidates 0..3 have values 4, 3, 2, 1 and labels 7, 0, 7, 0.
    c = np.array([[4.0], [3.0], [2.0], [1.0]])
    cl = np.array([7, 0, 7, 0])
    # query 0: +1, label 7 -> ranking 0,1,2,3 -> relevance [1,0,1,0]
    #          AP = (1/1 + 2/3) / 2 = 5/6
    # query 1: +1, label 0 -> ranking 0,1,2,3 -> relevance [0,1,0,1]
    #          AP = (1/2 + 2/4) / 2 = 1/2
    # query 2: -1, label 7 -> ranking 3,2,1,0 -> relevance [0,1,0,1]
    #          AP = (1/2 + 2/4) / 2 = 1/2
    q = np.array([[1.0], [1.0], [-1.0]])
    ql = np.array([7, 0, 7])
    expected = [5 / 6, 1 / 2, 1 / 2]
    fast, ref = both_ap(q, c, ql, cl)
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ref, expected, rtol=0, atol=1e-12)
    assert fast.dtype == np.float64 and fast.shape == (3,)
    # mAP = (5/6 + 1/2 + 1/2) / 3 = 11/18
    assert M.mean_average_precision(q, c, ql, cl) == pytest.approx(11 / 18, abs=1e-12)


def test_ap_hand_worked_unsorted_candidates():
    # Candidate values 2, 4, 1, 3 with labels 1, 0, 0, 1; query +1 with label 1.
    # Ranking by similarity: cand 1 (4), cand 3 (3), cand 0 (2), cand 2 (1)
    # relevance [0, 1, 1, 0] -> AP = (1/2 + 2/3) / 2 = 7/12
    # (only the last relevant one at rank 4 instead: [0,0,0,1] -> 1/4, checked below)
    c = np.array([[2.0], [4.0], [1.0], [3.0]])
    fast, ref = both_ap(np.array([[1.0]]), c, [1], [1, 0, 0, 1])
    assert fast[0] == pytest.approx(7 / 12, abs=1e-12) and ref[0] == pytest.approx(7 / 12, abs=1e-12)
    # relevant = only cand 2 (value 1, rank 4): relevance [0,0,0,1] -> AP = (1/4) / 1
    fast, ref = both_ap(np.array([[1.0]]), c, [1], [0, 0, 1, 0])
    assert fast[0] == pytest.approx(1 / 4, abs=1e-12) and ref[0] == pytest.approx(1 / 4, abs=1e-12)


def test_ap_perfect_ranking_is_one():
    # one-hot embeddings of the label: relevant candidates score 1, all others 0,
    # so every relevant candidate comes before every irrelevant one.
    rng = np.random.default_rng(1)
    cl = rng.integers(0, 5, 40)
    ql = np.array([0, 1, 2, 3, 4, 2])
    eye = np.eye(5, dtype=np.float32)
    fast, ref = both_ap(eye[ql], eye[cl], ql, cl)
    assert np.all(fast == 1.0) and np.all(ref == 1.0)
    assert M.mean_average_precision(eye[ql], eye[cl], ql, cl) == 1.0
    # and flipping the sign of the queries ranks every relevant candidate last: AP < 1
    assert np.all(M.average_precision_per_query(-eye[ql], eye[cl], ql, cl) < 1.0)


# ---------------------------------------------------------------- ties

def test_ties_broken_by_candidate_index():
    # Query +1, label 1. Candidates 0,1,2 all have value 1 (a three-way tie), candidate 3
    # has value 0. Labels 0, 1, 1, 0.
    # Tie broken by index (lower first): ranking 0,1,2,3 -> relevance [0,1,1,0]
    #     AP = (1/2 + 2/3) / 2 = 7/12
    # Had the tie been broken the other way (2,1,0,3): relevance [1,1,0,0] -> AP = 1.
    q = np.array([[1.0]])
    c = np.array([[1.0], [1.0], [1.0], [0.0]])
    fast, ref = both_ap(q, c, [1], [0, 1, 1, 0])
    assert fast[0] == pytest.approx(7 / 12, abs=1e-12)
    assert ref[0] == pytest.approx(7 / 12, abs=1e-12)
    # Same candidates, labels listed so that the relevant ones have the lowest indexes:
    # ranking 0,1,2,3 -> relevance [1,1,0,0] -> AP = 1. So the index order matters.
    fast, ref = both_ap(q, c, [1], [1, 1, 0, 0])
    assert fast[0] == 1.0 and ref[0] == 1.0
    # recall@1 follows the same tie-break: the top-1 is candidate 0 (irrelevant).
    assert M.recall_at_k(q, c, [1], [0, 1, 1, 0], k=1) == 0.0
    assert M.recall_at_k(q, c, [1], [1, 0, 1, 0], k=1) == 1.0


def test_ranking_keys_order_is_stable_descending():
    # The vectorised ranking sorts int64 keys; it must equal a stable descending sort of
    # the similarities, including -0.0 vs 0.0 (equal, so a tie), negatives, inf, duplicates.
    scores = torch.tensor([[0.5, -0.0, 0.0, -2.0, 0.5, float("inf"), -float("inf"), 1e-40, -1e-40, -2.0]])
    relevant = torch.zeros_like(scores, dtype=torch.bool)
    keys = M._sort_rows(M._ranking_keys(scores, relevant))
    order = (keys >> 1) & 0x7FFFFFFF                         # candidate index of each key
    expected = np.argsort(-scores.numpy()[0], kind="stable")
    assert order[0].tolist() == expected.tolist()
    # -0.0 (index 1) and 0.0 (index 2) tie, so index 1 comes first; -2.0 at 3 before 9
    assert order[0].tolist() == [5, 0, 4, 7, 1, 2, 8, 3, 9, 6]


# ---------------------------------------------------------------- no relevant candidate

def test_query_without_relevant_candidate():
    c = np.array([[4.0], [3.0], [2.0], [1.0]])
    cl = np.array([7, 0, 7, 0])
    q = np.array([[1.0], [1.0]])
    ql = np.array([7, 5])                          # label 5: no candidate has it
    fast, ref = both_ap(q, c, ql, cl)
    assert fast[0] == pytest.approx(5 / 6) and np.isnan(fast[1])
    assert ref[0] == pytest.approx(5 / 6) and np.isnan(ref[1])
    # by default (as the released scorer) the query counts as AP 0: mAP = (5/6 + 0) / 2
    assert M.mean_average_precision(q, c, ql, cl) == pytest.approx(5 / 12)
    # no_relevant="skip" leaves it out of the mean: mAP = 5/6
    assert M.mean_average_precision(q, c, ql, cl, no_relevant="skip") == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="no_relevant"):
        M.mean_average_precision(q, c, ql, cl, no_relevant="nan")
    # and out of recall@k: query 0's top-1 is relevant -> 1/1
    assert M.recall_at_k(q, c, ql, cl, k=1) == 1.0


def test_all_queries_without_relevant_candidate():
    c = np.array([[4.0], [3.0]])
    q = np.array([[1.0], [-1.0]])
    ql, cl = [5, 6], [1, 2]
    assert np.all(np.isnan(M.average_precision_per_query(q, c, ql, cl)))
    assert M.mean_average_precision(q, c, ql, cl) == 0.0
    assert np.isnan(M.mean_average_precision(q, c, ql, cl, no_relevant="skip"))
    assert np.isnan(M.recall_at_k(q, c, ql, cl, k=1))
    # no candidates at all, or no queries at all
    empty_c = np.zeros((0, 1))
    assert np.all(np.isnan(M.average_precision_per_query(q, empty_c, ql, np.zeros(0, int))))
    assert M.average_precision_per_query(np.zeros((0, 1)), c, np.zeros(0, int), cl).shape == (0,)
    assert np.isnan(M.mean_average_precision(np.zeros((0, 1)), c, np.zeros(0, int), cl))


# ---------------------------------------------------------------- vectorised == reference

def exact_random_data(seed, n_q, n_c, d, n_labels, levels):
    """Embeddings on the grid {-1, ..., 1} step 1/levels: their dot products are exact
    in float32 and float64, so both implementations rank on identical numbers (many
    ties included when ``levels`` is small)."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-levels, levels + 1, (n_q, d)) / levels
    c = rng.integers(-levels, levels + 1, (n_c, d)) / levels
    # labels up to n_labels: label n_labels never appears among candidates -> some NaN APs
    return q, c, rng.integers(0, n_labels + 1, n_q), rng.integers(0, n_labels, n_c)


@pytest.mark.parametrize("levels", [1, 8])            # 1: heavy ties, 8: few ties
@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_vectorised_equals_reference(levels, chunk_size):
    q, c, ql, cl = exact_random_data(levels, n_q=60, n_c=300, d=6, n_labels=4, levels=levels)
    fast, ref = both_ap(q, c, ql, cl, chunk_size=chunk_size)
    assert np.isnan(ref).any() and not np.isnan(ref).all()   # the case is exercised
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-9, equal_nan=True)


def test_torch_input_equals_numpy_input():
    q, c, ql, cl = exact_random_data(3, n_q=30, n_c=200, d=5, n_labels=3, levels=4)
    expected = M.average_precision_per_query(q, c, ql, cl)
    qt = torch.tensor(q, dtype=torch.float32, requires_grad=True)   # grad-tracking is fine
    ct = torch.tensor(c, dtype=torch.float64)
    got = M.average_precision_per_query(qt, ct, torch.tensor(ql), torch.tensor(cl, dtype=torch.int32))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    assert M.mean_average_precision(qt, ct, torch.tensor(ql), torch.tensor(cl)) == \
        M.mean_average_precision(q, c, ql, cl)
    assert M.recall_at_k(qt, ct, torch.tensor(ql), torch.tensor(cl), k=3) == M.recall_at_k(q, c, ql, cl, k=3)
    np.testing.assert_array_equal(M.reference_average_precision(qt, ct, torch.tensor(ql), torch.tensor(cl)),
                                  M.reference_average_precision(q, c, ql, cl))


@pytest.mark.parametrize("levels", [1, 8])
def test_full_ranking_that_gpus_use_equals_reference(levels):
    """On a GPU every query is ranked in full (int64 keys); the same code runs here on the CPU."""
    q, c, ql, cl = exact_random_data(5 + levels, n_q=40, n_c=300, d=6, n_labels=4, levels=levels)
    qt, ct, qlt, clt = M._checked_inputs(q, c, ql, cl)
    got = M._ap_by_full_ranking(qt.float(), ct.float(), qlt, clt, 16, torch.float64).numpy()
    np.testing.assert_allclose(got, M.reference_average_precision(q, c, ql, cl), rtol=0, atol=1e-9, equal_nan=True)


def test_threads_and_chunks_give_identical_aps():
    """Chunks of queries run on the caller's torch threads at once: the APs do not depend on
    how many threads or how large the chunks, and the caller's thread count is restored."""
    g = torch.Generator().manual_seed(0)
    q, c = torch.randn(130, 16, generator=g), torch.randn(2500, 16, generator=g)
    ql, cl = torch.randint(0, 5, (130,), generator=g), torch.randint(0, 4, (2500,), generator=g)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for chunk in (None, 7, 64):
                results.append(M.average_precision_per_query(q, c, ql, cl, chunk_size=chunk))
                assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert np.isnan(results[0]).sum() == (ql == 4).sum()          # label 4: no candidate, NaN
    np.testing.assert_allclose(results[0][:20], M.reference_average_precision(q[:20], c, ql[:20], cl),
                               rtol=0, atol=1e-6, equal_nan=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_input_equals_numpy_input():
    q, c, ql, cl = exact_random_data(4, n_q=50, n_c=400, d=6, n_labels=4, levels=1)
    expected = M.reference_average_precision(q, c, ql, cl)
    got = M.average_precision_per_query(torch.tensor(q, device="cuda"), torch.tensor(c, device="cuda"),
                                        torch.tensor(ql, device="cuda"), torch.tensor(cl, device="cuda"),
                                        chunk_size=16)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)


# ---------------------------------------------------------------- recall@k

def test_recall_at_k_hand_worked():
    # Same candidates as test_ap_hand_worked: values 4, 3, 2, 1, labels 7, 0, 7, 0.
    # query 0 (label 7): relevance in ranking order [1,0,1,0] -> first hit at rank 1
    # query 1 (label 0): relevance [0,1,0,1]                 -> first hit at rank 2
    # query 2 (label 5): no relevant candidate               -> left out
    # Recall@1 = 1/2 (only query 0), Recall@2 = 2/2, Recall@10 (k > N) = 2/2
    c = np.array([[4.0], [3.0], [2.0], [1.0]])
    cl = [7, 0, 7, 0]
    q = np.ones((3, 1))
    ql = [7, 0, 5]
    assert M.recall_at_k(q, c, ql, cl, k=1) == 0.5
    assert M.recall_at_k(q, c, ql, cl, k=2) == 1.0
    assert M.recall_at_k(q, c, ql, cl, k=10) == 1.0
    assert M.recall_at_k(q, c, ql, cl, k=1, chunk_size=1) == 0.5
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="k must be"):
            M.recall_at_k(q, c, ql, cl, k=bad)


# ---------------------------------------------------------------- query-weighted MeanAP

def test_query_weighted_mean_hand_worked():
    # MeanAP = (0.5 * 100 + 0.8 * 300) / (100 + 300) = (50 + 240) / 400 = 0.725
    # (the unweighted mean would be 0.65); extra entries of n_queries are ignored.
    got = M.query_weighted_mean({"collar": 0.5, "sleeve": 0.8}, {"collar": 100, "sleeve": 300, "x": 7})
    assert got == pytest.approx(0.725, abs=1e-12)


def test_query_weighted_mean_is_pooled_mean_over_queries():
    # Weighting by query counts = averaging the APs of all queries pooled together.
    rng = np.random.default_rng(5)
    aps, values, counts = [], {}, {}
    for attr, n_q in (("a", 10), ("b", 25), ("c", 4)):
        q, c = rng.standard_normal((n_q, 8)), rng.standard_normal((50, 8))
        ql, cl = rng.integers(0, 3, n_q), np.arange(50) % 3      # every label present
        ap = M.average_precision_per_query(q, c, ql, cl)
        aps.append(ap)
        values[attr], counts[attr] = M.mean_average_precision(q, c, ql, cl), n_q
    assert M.query_weighted_mean(values, counts) == pytest.approx(np.concatenate(aps).mean(), abs=1e-12)


def test_query_weighted_mean_errors():
    with pytest.raises(ValueError, match="'sleeve'"):
        M.query_weighted_mean({"collar": 0.5, "sleeve": 0.8}, {"collar": 100})
    with pytest.raises(ValueError, match="empty"):
        M.query_weighted_mean({}, {"collar": 100})
    with pytest.raises(ValueError, match="negative"):
        M.query_weighted_mean({"collar": 0.5}, {"collar": -1})
    with pytest.raises(ValueError, match="no queries"):
        M.query_weighted_mean({"collar": 0.5}, {"collar": 0})


# ---------------------------------------------------------------- continual learning

def test_accuracy_matrix_attributes_arrive_over_three_increments():
    # increment 0 learns "collar"; increment 1 adds "sleeve"; increment 2 adds "length".
    history = [{"collar": 0.6},
               {"collar": 0.5, "sleeve": 0.7},
               {"collar": 0.4, "sleeve": 0.6, "length": 0.8}]
    R = M.accuracy_matrix(history, ["collar", "sleeve", "length"])
    expected = np.array([[0.6, NAN, NAN],
                         [0.5, 0.7, NAN],
                         [0.4, 0.6, 0.8]])
    assert R.dtype == np.float64
    np.testing.assert_array_equal(R, expected)
    assert M.first_seen(R).tolist() == [0, 1, 2]
    # column order follows `attributes`, not the history's key order
    R2 = M.accuracy_matrix(history, ["length", "collar", "sleeve"])
    np.testing.assert_array_equal(R2, expected[:, [2, 0, 1]])
    # an attribute never evaluated: all-NaN column, first_seen -1
    R3 = M.accuracy_matrix(history, ["collar", "sleeve", "length", "neckline"])
    assert np.isnan(R3[:, 3]).all() and M.first_seen(R3).tolist() == [0, 1, 2, -1]
    assert M.accuracy_matrix([], ["collar"]).shape == (0, 1)


def test_accuracy_matrix_errors():
    with pytest.raises(ValueError, match="'sleeve'"):
        M.accuracy_matrix([{"collar": 0.5}, {"sleeve": 0.1}], ["collar"])
    with pytest.raises(ValueError, match="duplicates"):
        M.accuracy_matrix([{"collar": 0.5}], ["collar", "collar"])


# T = 3 increments, 4 attributes: a and b from increment 0, c from 1, d from 2.
R_3x4 = np.array([[0.60, 0.50, NAN, NAN],
                  [0.70, 0.40, 0.80, NAN],
                  [0.55, 0.45, 0.60, 0.90]])


def test_forgetting_and_bwt_hand_worked():
    # first_seen = [0, 0, 1, 2]; the last increment is T-1 = 2, so the old attributes
    # are a, b, c (d arrives at the last increment and cannot have been forgotten).
    assert M.first_seen(R_3x4).tolist() == [0, 0, 1, 2]
    # forgetting f_j = max_{first(j) <= i < 2} R[i, j] - R[2, j]
    #   a: max(0.60, 0.70) - 0.55 = 0.15
    #   b: max(0.50, 0.40) - 0.45 = 0.05
    #   c: max(0.80)       - 0.60 = 0.20
    #   F = (0.15 + 0.05 + 0.20) / 3 = 0.40 / 3 = 0.1333...
    assert M.average_forgetting(R_3x4) == pytest.approx(0.4 / 3, abs=1e-12)
    # BWT_j = R[2, j] - R[first(j), j]
    #   a: 0.55 - 0.60 = -0.05
    #   b: 0.45 - 0.50 = -0.05
    #   c: 0.60 - 0.80 = -0.20
    #   BWT = (-0.05 - 0.05 - 0.20) / 3 = -0.10
    # (for a, forgetting uses its best, 0.70, so F != -BWT)
    assert M.backward_transfer(R_3x4) == pytest.approx(-0.10, abs=1e-12)


def test_forgetting_and_bwt_nan_without_old_attributes():
    one_increment = np.array([[0.6, 0.7]])
    assert np.isnan(M.average_forgetting(one_increment))
    assert np.isnan(M.backward_transfer(one_increment))
    empty = np.zeros((0, 3))
    assert np.isnan(M.average_forgetting(empty)) and np.isnan(M.backward_transfer(empty))
    assert M.first_seen(empty).tolist() == [-1, -1, -1]
    # two increments but every attribute arrives in the last one: nothing to forget
    late = np.array([[NAN, NAN], [0.5, 0.6]])
    assert np.isnan(M.average_forgetting(late)) and np.isnan(M.backward_transfer(late))


def test_forgetting_needs_the_last_row_for_old_attributes():
    R = R_3x4.copy()
    R[2, 1] = NAN                        # b seen at increment 0 but not evaluated at the end
    with pytest.raises(ValueError, match=r"\[1\]"):
        M.average_forgetting(R)
    with pytest.raises(ValueError, match="2-D"):
        M.backward_transfer(np.array([0.5, 0.6]))


# ---------------------------------------------------------------- input validation

def test_shape_validation_names_the_argument():
    q, c = np.ones((3, 4)), np.ones((5, 4))
    ql, cl = np.zeros(3, int), np.zeros(5, int)
    cases = [
        ((np.ones(4), c, ql, cl), "query_emb"),                   # 1-D embeddings
        ((q, np.ones((5, 4, 1)), ql, cl), "cand_emb"),             # 3-D embeddings
        ((q, np.ones((5, 3)), ql, cl), "embedding dimension"),     # d mismatch
        ((q, c, np.zeros(2, int), cl), "query_labels"),            # wrong length
        ((q, c, ql, np.zeros(6, int)), "cand_labels"),             # wrong length
        ((q, c, np.zeros((3, 1), int), cl), "query_labels"),       # 2-D labels
        ((q, c, ql, np.zeros(5)), "cand_labels"),                  # float labels
        ((np.full((3, 4), np.nan), c, ql, cl), "query_emb"),       # NaN embedding
    ]
    for fn in (M.average_precision_per_query, M.mean_average_precision, M.reference_average_precision):
        for args, name in cases:
            with pytest.raises(ValueError, match=name):
                fn(*args)
    for args, name in cases:
        with pytest.raises(ValueError, match=name):
            M.recall_at_k(*args, k=1)
    for bad in (0, -3, 2.0):
        with pytest.raises(ValueError, match="chunk_size"):
            M.average_precision_per_query(q, c, ql, cl, chunk_size=bad)


# ---------------------------------------------------------------- chance


def test_expected_random_ap_by_hand():
    # N = 2, R = 1: the relevant item is first (AP 1) or second (AP 1/2) -> 3/4
    assert M.expected_random_ap(1, 2) == pytest.approx(0.75)
    # N = 3, R = 2: orderings of 110, 101, 011 equally likely -> (1 + (1 + 2/3)/2 + (1/2 + 2/3)/2) / 3
    assert M.expected_random_ap(2, 3) == pytest.approx((1 + 5 / 6 + 7 / 12) / 3)
    assert M.expected_random_ap(4, 4) == pytest.approx(1.0)
    assert np.isnan(M.expected_random_ap(0, 4))
    with pytest.raises(ValueError):
        M.expected_random_ap(5, 4)


def test_expected_random_ap_matches_simulation():
    rng = np.random.default_rng(0)
    n, r = 12, 4
    rel = np.array([1] * r + [0] * (n - r))
    aps = []
    for _ in range(20000):
        order = rng.permutation(rel)
        hits = np.cumsum(order)
        aps.append((hits / np.arange(1, n + 1))[order == 1].mean())
    assert M.expected_random_ap(r, n) == pytest.approx(np.mean(aps), abs=0.005)


def test_chance_map_from_candidate_label_counts():
    cl = np.array([0, 0, 1, 2])            # N = 4: value 0 twice, 1 once, 2 once
    ql = np.array([0, 1, 3])               # R = 2, 1 and 0
    h4 = 1 + 1 / 2 + 1 / 3 + 1 / 4
    e2 = h4 / 4 + (2 - 1) * (4 - h4) / (4 * 3)
    e1 = h4 / 4
    assert M.chance_map(ql, cl) == pytest.approx((e2 + e1 + 0) / 3)             # AP 0 for the query with R = 0
    assert M.chance_map(ql, cl, no_relevant="skip") == pytest.approx((e2 + e1) / 2)
    # a random embedding's mAP is close to chance
    rng = np.random.default_rng(1)
    ql, cl = rng.integers(0, 4, 300), rng.integers(0, 4, 400)
    got = M.mean_average_precision(rng.normal(size=(300, 8)), rng.normal(size=(400, 8)), ql, cl)
    assert got == pytest.approx(M.chance_map(ql, cl), abs=0.02)
