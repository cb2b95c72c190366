"""Retrieval and continual-learning metrics, as ASEN and MCL-FIR report them.

Retrieval (one attribute, e.g. "sleeve length")
-----------------------------------------------
Each query image and each candidate image has a label: its value of the attribute.
A candidate is *relevant* to a query when the two labels are equal. The candidates are
ranked by their similarity to the query, the dot product ``q . c`` (pass L2-normalised
embeddings to rank by cosine similarity). Ranks start at 1; equal similarities are
ordered by candidate index (a stable sort), so the ranking, and every number below, is
fully determined by the inputs.

* ``average_precision_per_query``: the average precision (AP) of each query over the
  *full* ranking (the ASEN definition, no cut-off).
* ``mean_average_precision``: the mean of the AP over queries (the per-attribute "mAP").
* ``recall_at_k``: how often a relevant candidate appears in the top ``k``.
* ``reference_average_precision``: the same AP as a plain Python loop, in the style of
  the released ASEN / MCL-FIR code. It is slow; it is there to check the fast version.
* ``query_weighted_mean``: the dataset-level "MeanAP", the attributes' mAPs weighted by
  their numbers of queries.

The fast functions accept numpy arrays or torch tensors. A torch tensor is used on its
own device (CPU or GPU); the similarities are computed in float32 and the precisions
summed in float64 (float32 on Apple's ``mps``, which has no float64). Queries are
processed ``chunk_size`` at a time (the AP on the CPU: one chunk per thread at once), so
memory stays proportional to ``chunk_size * n_candidates``. Results come back as numpy
float64 / Python floats. On the CPU the AP packs each similarity and a "relevant" bit
into one int32 key and sorts the keys: one plain sort of the score matrix, plus the
similarities themselves and two compiled passes (numba, see ``rankloops``). Where the
candidates' indices are needed as well (recall@k, queries with many tied scores, every
query on a GPU or without numba), each similarity and its candidate index are packed
into one int64 key (see ``_ranking_keys``): exact, and on the CPU several times faster
than torch's stable ``argsort``.

Continual learning (the accuracy matrix ``R``, forgetting, backward transfer) is in
:mod:`mclfir_lite.core.forgetting`; its functions are importable from here as well.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

# the continual measures, defined in forgetting.py (notebooks read them as metrics.average_forgetting)
from .forgetting import accuracy_matrix, average_forgetting, backward_transfer, first_seen  # noqa: F401

# ------------------------------------------------------------------- input checking


def _as_tensor(x, name: str) -> torch.Tensor:
    """``x`` (numpy array, torch tensor or nested list) as a torch tensor, detached."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.ascontiguousarray(x))
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a numpy array or a torch tensor ({err})") from None


def _all_finite(x: torch.Tensor) -> bool:
    """No NaN or inf in ``x`` (numpy's check on the CPU: ~15x faster than torch's there)."""
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.float32, torch.float64):
        return bool(np.isfinite(x.numpy()).all())
    return bool(torch.isfinite(x).all())


def _check_finite(q: torch.Tensor, c: torch.Tensor) -> None:
    for name, emb in (("query_emb", q), ("cand_emb", c)):
        if not _all_finite(emb):
            raise ValueError(f"{name} must hold finite real numbers (no NaN or inf)")


def _checked_inputs(query_emb, cand_emb, query_labels, cand_labels, check_finite: bool = True):
    """Convert the four inputs to torch tensors on the query's device and check their shapes
    (and, with ``check_finite``, their values: no NaN or inf).

    Returns ``(query_emb, cand_emb, query_labels, cand_labels)``; the embeddings keep
    their dtype, the labels become int64. Raises ``ValueError`` naming the bad argument.
    """
    q = _as_tensor(query_emb, "query_emb")
    c = _as_tensor(cand_emb, "cand_emb")
    ql = _as_tensor(query_labels, "query_labels")
    cl = _as_tensor(cand_labels, "cand_labels")
    for name, emb in (("query_emb", q), ("cand_emb", c)):
        if emb.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n, d), got shape {tuple(emb.shape)}")
        if emb.is_complex():
            raise ValueError(f"{name} must hold finite real numbers, got dtype {emb.dtype}")
    for name, lab in (("query_labels", ql), ("cand_labels", cl)):
        if lab.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(lab.shape)}")
        if lab.is_floating_point() or lab.is_complex():
            raise ValueError(f"{name} must hold integers, got dtype {lab.dtype}")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"query_emb and cand_emb must have the same embedding dimension, "
                         f"got {q.shape[1]} and {c.shape[1]}")
    if len(ql) != len(q):
        raise ValueError(f"query_labels has {len(ql)} entries but query_emb has {len(q)} rows")
    if len(cl) != len(c):
        raise ValueError(f"cand_labels has {len(cl)} entries but cand_emb has {len(c)} rows")
    if check_finite:
        _check_finite(q, c)
    device = q.device
    return q, c.to(device), ql.to(device, torch.int64), cl.to(device, torch.int64)


# Queries ranked at a time by the full ranking (recall@k; the AP on a GPU). 64 queries x 20k
# candidates of int64 keys is ~10 MB, which stays near the CPU's caches: measured 1.4x faster
# than 512 on 2k x 20k (benchmarks/bench_map.py).
CHUNK_SIZE = 64


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


# ------------------------------------------------------------------- retrieval


def _ranking_keys(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """One int64 key per (query, candidate); sorting a row's keys ascending ranks its candidates.

    The 64 bits of a key hold, from the highest:

    * bits 63..32: the similarity, as an int32 that *decreases* as the similarity
      grows (the float32 bit pattern, reordered so that integer order = float order,
      then inverted), so ascending keys = descending similarity;
    * bits 31..1: the candidate index, so equal similarities put the lower index first;
    * bit 0: 1 if the candidate is relevant to the query (it never decides the order,
      because no two candidates share an index).

    All keys of a row are distinct, so any sort, stable or not, gives the same ranking,
    and ``key & 1`` read in sorted order is the relevance in ranking order.
    """
    # (The operations below are in place: these tensors are large, fresh ones are slow.)
    scores = scores + 0.0                      # -0.0 + 0.0 = 0.0: the two zeros must tie
    bits = scores.view(torch.int32)            # the float32 bit patterns, as int32
    # As int32, positive floats already sort by value; for negative floats, flipping the
    # 31 bits below the sign makes a larger magnitude give a smaller int. ~ then reverses
    # the order, so that the largest similarity gets the smallest key.
    bits ^= (bits >> 31) & 0x7FFFFFFF
    bits.bitwise_not_()
    keys = bits.to(torch.int64)
    keys <<= 32
    keys |= torch.arange(scores.shape[1], device=scores.device) << 1
    keys |= relevant
    return keys


def _sort_rows(keys: torch.Tensor) -> torch.Tensor:
    """Sort each row of an int64 tensor in ascending order (on the CPU, in place).

    On the CPU numpy's (SIMD) sort is used: about 10x faster than torch's there.
    The keys are distinct, so both give exactly the same result.
    """
    if keys.device.type == "cpu":
        keys.numpy().sort(axis=1)              # in place: the numpy array shares the memory
        return keys
    return torch.sort(keys, dim=1).values


def _ranked_relevance(q, c, ql, cl, chunk_size: int):
    """Yield, for each chunk of queries, the relevance of the candidates in ranking order.

    For the queries ``q[s:s + chunk_size]`` it yields a bool tensor ``rel`` of shape
    ``(chunk, n_candidates)`` with ``rel[i, k - 1]`` = "the candidate at rank ``k`` for
    query ``s + i`` has the query's label". The ranking sorts the similarities
    ``q @ c.T`` (float32) in descending order, ties by candidate index (lower first).
    """
    if len(c) >= 2 ** 31:
        raise ValueError(f"at most 2**31 - 1 candidates are supported, got {len(c)}")
    q = q.float()
    c = c.float()
    for start in range(0, len(q), chunk_size):
        scores = q[start:start + chunk_size] @ c.T                       # (chunk, n_cand)
        relevant = ql[start:start + chunk_size, None] == cl[None, :]     # (chunk, n_cand)
        keys = _sort_rows(_ranking_keys(scores, relevant))
        yield keys.bitwise_and_(1).bool()


def average_precision_per_query(query_emb, cand_emb, query_labels, cand_labels,
                                chunk_size: int | None = None) -> np.ndarray:
    """Average precision of every query over the full ranking of the candidates.

    For a query, let ``rel_k`` be 1 if the candidate at rank ``k`` is relevant (same
    label as the query) and 0 otherwise, ``k = 1..N``. Then

        precision@k = (rel_1 + ... + rel_k) / k
        R           = rel_1 + ... + rel_N          (number of relevant candidates)
        AP          = (1 / R) * sum_{k : rel_k = 1} precision@k

    For example relevance ``[1, 0, 1, 0]`` gives ``AP = (1/1 + 2/3) / 2 = 0.8333``.
    ``AP = 1`` exactly when all relevant candidates come first. A query with ``R = 0``
    has no AP: its entry is NaN.

    At the ``m``-th relevant candidate, ``rel_1 + ... + rel_k = m``, so with ``k_m`` its
    rank the sum is ``sum_{m=1..R} m / k_m``: only the ranks of the relevant candidates
    are needed. On the CPU (:func:`_ap_on_cpu`) each score and a "relevant" bit are
    packed into one int32 key, one plain int32 sort of the keys (numpy's SIMD sort) ranks
    the candidates, and one walk over the sorted keys finds the odd ones, the ``k_m``:
    two compiled loops around the sort (:mod:`mclfir_lite.core.rankloops`). Equal scores are
    rare but real in float32 (about one per query at 20k candidates); the keys put the
    relevant candidate after the irrelevant ones with its score, the ranking orders them
    by candidate index, so their ranks are taken again from the scores in index order. A
    query with many such ties (quantised or duplicated embeddings) is ranked in full
    instead (:func:`_ap_by_full_ranking`), as every query is on a GPU, where sorting int64
    keys is cheap, and on a CPU without numba (about 5x slower).

    ``chunk_size`` queries have their similarities computed at a time (default: about 128
    queries or ``SCORES_PER_PASS`` scores, whichever is more, at most
    ``MAX_SCORES_PER_CHUNK`` scores, in chunks of equal size, as many for every thread),
    then ranked about ``SCORES_PER_PASS`` scores at a time; on the CPU, chunks run on the
    caller's ``torch.get_num_threads()`` threads at once, each with one torch thread.

    Returns a float64 numpy array of shape ``(n_queries,)``.
    """
    if chunk_size is not None:
        _check_chunk_size(chunk_size)
    with _one_torch_thread(query_emb) as threads:
        q, c, ql, cl = _checked_inputs(query_emb, cand_emb, query_labels, cand_labels, check_finite=False)
        if q.device.type == "cpu" and _rankloops() is not None:
            # (contiguous labels: numba compiles its loops once per memory layout)
            labels = (np.ascontiguousarray(ql.numpy()), np.ascontiguousarray(cl.numpy()))
            return _ap_on_cpu(q.float(), c.float(), *labels, chunk_size, threads)
        _check_finite(q, c)
        acc = torch.float32 if q.device.type == "mps" else torch.float64
        return _ap_by_full_ranking(q, c, ql, cl, chunk_size or CHUNK_SIZE, acc).cpu().numpy().astype(np.float64)


def _rankloops():
    """The compiled loops of the AP on the CPU (:mod:`mclfir_lite.core.rankloops`, imported on
    first use: numba takes about half a second to import), or None without numba, said
    once: the AP then ranks every query in full (exact, slower)."""
    from . import rankloops
    if rankloops.available():
        return rankloops
    if not _WARNED:
        _WARNED.append(True)
        warnings.warn(f"{rankloops.WHY_UNAVAILABLE}: the AP ranks every query in full with torch "
                      "instead (the same numbers, about 5x slower). pip install numba to speed it up.",
                      RuntimeWarning, stacklevel=3)
    return None


_WARNED: list = []


# A query with more relevant/irrelevant score ties than this is ranked in full instead: the
# tie-break scans all candidates once per tie, a full ranking costs about as much as 8 scans.
MAX_TIES_PER_QUERY = 8
# Default chunk: about 128 queries (a smaller matrix product is slower per score), in chunks
# of equal size, as many for every thread. The keys of a chunk are then packed, sorted and
# walked about SCORES_PER_PASS at a time (2 MiB of int32 keys, a core's L2 cache here).
# Measured with 2 threads, interleaved against 2^18 scores per pass: 1.32x against 1.38x a
# bare sort at 300 x 3k, 1.08x against 1.05x at 2k x 20k (medians of 12 and 3 runs).
MIN_CHUNK = 128
SCORES_PER_PASS = 2 ** 19
MAX_SCORES_PER_CHUNK = 2 ** 23   # 32 MiB of float32 scores per thread, however many candidates


def _ap_on_cpu(q, c, ql, cl, chunk_size, threads: int) -> np.ndarray:
    """AP per query (NaN without a relevant candidate), ranked by packed keys a chunk of
    queries at a time, on ``threads`` threads (numba, numpy and torch release the GIL).
    Also checks that the embeddings are finite: from the similarities (below), which
    saves two passes over them."""
    if not (len(q) and len(c)):
        _check_finite(q, c)
        return np.full(len(q), np.nan)
    aps = _ranked_on_cpu(-q, c, ql, cl, chunk_size, threads)
    if aps is None:
        # Some similarity is 2 or more in magnitude, or NaN, or infinite (the keys need
        # |score| < 2, see rankloops). Non-finite embeddings give non-finite similarities
        # for every candidate, so a NaN or inf among the inputs is always seen here.
        _check_finite(q, c)
        # Large ones: scale the queries by a power of two, which scales every score
        # exactly and so keeps the ranking.
        bound = float(q.double().norm(dim=1).max() * c.double().norm(dim=1).max())
        scale = 2.0 ** -max(0, int(np.ceil(np.log2(bound / 1.5))))   # every |score| <= 1.5 now
        aps = _ranked_on_cpu(-q * scale, c, ql, cl, chunk_size, threads)
        if aps is None:
            raise RuntimeError(f"scores out of range after scaling by {scale} (bound {bound}): a bug")
    return aps


def _ranked_on_cpu(neg_q, c, ql, cl, chunk_size, threads: int):
    """The APs from the similarities ``neg_q @ c.T`` (negated), or None as soon as one
    of them is not below 2 in magnitude."""
    rankloops = _rankloops()
    aps = np.full(len(neg_q), np.nan)
    out_of_range = []
    per_pass = max(1, SCORES_PER_PASS // len(c))
    rows = chunk_size
    if rows is None:  # chunks of equal size, as many for every thread
        target = max(1, min(max(MIN_CHUNK, per_pass), MAX_SCORES_PER_CHUNK // len(c)))
        n_chunks = _ceil_div(len(neg_q), target)
        rows = _ceil_div(len(neg_q), _ceil_div(n_chunks, threads) * threads)

    def rank(start):
        neg_bits = (neg_q[start:start + rows] @ c.T).numpy().view(np.int32)
        keys = np.empty_like(neg_bits)
        labels = ql[start:start + rows]
        for s in range(0, len(keys), per_pass):
            if out_of_range:
                return
            part, block = slice(s, s + per_pass), slice(start + s, start + min(s + per_pass, len(keys)))
            if rankloops.pack_keys(neg_bits[part], labels[part], cl, keys[part]):
                out_of_range.append(block)
                return
            keys[part].sort(axis=1)
            many = np.empty(len(keys[part]), dtype=np.bool_)   # (set for every row by the loop)
            rankloops.ap_of_sorted(keys[part], neg_bits[part], labels[part], cl, MAX_TIES_PER_QUERY, aps[block], many)
            if many.any():  # quantised or duplicated embeddings: rank those queries in full
                full = np.arange(block.start, block.stop)[many]
                aps[full] = _ap_by_full_ranking(-neg_q[full], c, torch.from_numpy(ql[full]),
                                                torch.from_numpy(cl), per_pass, torch.float64).numpy()

    starts = iter(range(0, len(neg_q), rows))

    def take_chunks():  # until none is left (next() on a shared range iterator is atomic)
        for start in starts:
            rank(start)

    n_helpers = min(threads, _ceil_div(len(neg_q), rows)) - 1
    helpers = [_thread_pool(threads - 1).submit(take_chunks) for _ in range(n_helpers)]
    take_chunks()                       # this thread takes chunks too (no wake-up to wait for)
    for helper in helpers:
        helper.result()
    return None if out_of_range else aps


_POOLS: dict = {}


def _thread_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads, kept for the next call: starting threads took about 1 ms
    each, a tenth of a 300 x 3k mAP. Per process: a forked child (a DataLoader worker) does
    not inherit the parent's threads, so it starts its own pool."""
    key = (os.getpid(), threads)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="mclfir-map")
    return _POOLS[key]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@contextlib.contextmanager
def _one_torch_thread(x):
    """Unless ``x`` is a tensor on a GPU, torch's intra-op threads set to 1 meanwhile (and
    how many there were given to the caller): its element-wise operations took 3-6x longer
    with 2 threads than with 1 on an idle 2-core machine (and more on a busy one), while
    whole chunks on separate Python threads scale."""
    before = torch.get_num_threads()
    if not (isinstance(x, torch.Tensor) and x.device.type != "cpu"):
        torch.set_num_threads(1)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def _ap_by_full_ranking(q, c, ql, cl, chunk_size: int, acc) -> torch.Tensor:
    """AP per query from the full ranking (:func:`_ranked_relevance`, ties broken by
    candidate index): the ranks ``k_m`` of the hits and their numbers ``m = 1..R``."""
    aps = [torch.zeros(0, dtype=acc, device=q.device)]   # (so that no query gives shape (0,))
    for rel in _ranked_relevance(q, c, ql, cl, chunk_size):
        query, col = rel.nonzero(as_tuple=True)        # the hits, query by query; col = rank - 1
        n_relevant = torch.bincount(query, minlength=len(rel))                  # R
        first_hit = torch.cumsum(n_relevant, dim=0) - n_relevant   # where each query's hits start
        m = torch.arange(1, len(query) + 1, device=q.device) - first_hit[query]  # 1..R per query
        precision_sum = torch.zeros(len(rel), dtype=acc, device=q.device)
        precision_sum.index_add_(0, query, m.to(acc) / (col + 1).to(acc))      # sum of m / k_m
        aps.append(torch.where(n_relevant > 0, precision_sum / n_relevant.clamp(min=1), torch.nan))
    return torch.cat(aps)


NO_RELEVANT = ("zero", "skip")


def mean_average_precision(query_emb, cand_emb, query_labels, cand_labels,
                           chunk_size: int | None = None, no_relevant: str = "zero") -> float:
    """mAP: the mean of the per-query AP.

        mAP = (1 / |Q|) * sum_{q in Q} AP(q)

    A query with no relevant candidate has no AP. ``no_relevant="zero"`` (the default, as
    the released ASEN / MCL-FIR scorer does) counts it as AP 0; ``"skip"`` leaves it out
    (the mean over ``Q' = {queries with R >= 1}``; NaN if ``Q'`` is empty).
    """
    _check_no_relevant(no_relevant)
    aps = average_precision_per_query(query_emb, cand_emb, query_labels, cand_labels, chunk_size)
    return _mean_ap(aps, no_relevant)


def _check_no_relevant(no_relevant: str) -> None:
    if no_relevant not in NO_RELEVANT:
        raise ValueError(f"no_relevant must be one of {NO_RELEVANT}, got {no_relevant!r}")


def _mean_ap(aps: np.ndarray, no_relevant: str) -> float:
    if no_relevant == "zero":
        return float(np.nan_to_num(aps, nan=0.0).mean()) if aps.size else float("nan")
    defined = aps[~np.isnan(aps)]
    return float(defined.mean()) if defined.size else float("nan")


def recall_at_k(query_emb, cand_emb, query_labels, cand_labels, k: int,
                chunk_size: int = CHUNK_SIZE) -> float:
    """Recall@k: the fraction of queries with a relevant candidate among their top ``k``.

        Recall@k = |{q in Q' : rel_1 + ... + rel_k >= 1}| / |Q'|,   Q' = {queries with R >= 1}

    Same ranking (and tie-break) as the AP. Queries with no relevant candidate at all are
    left out; NaN if no query has one. ``k`` larger than the number of candidates counts
    the whole ranking.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    _check_chunk_size(chunk_size)
    q, c, ql, cl = _checked_inputs(query_emb, cand_emb, query_labels, cand_labels)
    n_with_relevant = 0
    n_hit = 0
    for rel in _ranked_relevance(q, c, ql, cl, chunk_size):
        has_relevant = rel.any(dim=1)
        n_with_relevant += int(has_relevant.sum())
        n_hit += int(rel[:, :k].any(dim=1).sum())   # a hit in the top k implies has_relevant
    return n_hit / n_with_relevant if n_with_relevant else float("nan")


def reference_average_precision(query_emb, cand_emb, query_labels, cand_labels) -> np.ndarray:
    """The same AP as :func:`average_precision_per_query`, one query and one rank at a time.

    In the style of the released ASEN / MCL-FIR evaluation code: for each query, rank
    the candidates, walk down the ranking counting the hits, add ``hits / rank`` at
    every hit, and divide by the number of relevant candidates. Slow (a Python loop
    over queries x candidates); it exists to check the vectorised version.

    Similarities are computed here in float64 with numpy (in float32 in the vectorised
    version). When the dot products are exact in float32 (e.g. small integers or
    multiples of 1/8 as embeddings) the two rankings, and so the APs, are identical;
    on general data two candidates whose similarities differ by less than float32
    rounding (~1e-7 relative) may swap places.
    """
    q, c, ql, cl = _checked_inputs(query_emb, cand_emb, query_labels, cand_labels)
    q = q.cpu().double().numpy()
    c = c.cpu().double().numpy()
    ql = ql.cpu().numpy()
    cl = cl.cpu().numpy()
    aps = np.full(len(q), np.nan)
    for i in range(len(q)):
        scores = c @ q[i]
        ranking = np.argsort(-scores, kind="stable")   # descending; ties: lower index first
        hits = 0
        precision_sum = 0.0
        for rank, j in enumerate(ranking, start=1):
            if cl[j] == ql[i]:
                hits += 1
                precision_sum += hits / rank
        if hits > 0:                                    # hits ends as R, the number relevant
            aps[i] = precision_sum / hits
    return aps


def query_weighted_mean(values: dict[str, float], n_queries: dict[str, int]) -> float:
    """The dataset-level "MeanAP" of ASEN / MCL-FIR: mAPs weighted by query counts.

        MeanAP = sum_a mAP_a * nq_a / sum_a nq_a

    over the attributes ``a`` in ``values``; ``nq_a = n_queries[a]`` is the number of
    queries of attribute ``a``. Equivalently, the mean AP over the queries of all the
    attributes pooled together. Raises ``ValueError`` naming an attribute of ``values``
    that ``n_queries`` lacks, or one with a negative count.
    """
    if not values:
        raise ValueError("values is empty: there is no attribute to average")
    for attr in values:
        if attr not in n_queries:
            raise ValueError(f"n_queries has no entry for attribute {attr!r}")
        if n_queries[attr] < 0:
            raise ValueError(f"n_queries[{attr!r}] is negative ({n_queries[attr]})")
    total = sum(n_queries[attr] for attr in values)
    if total == 0:
        raise ValueError("the attributes in values have no queries in total")
    return float(sum(values[attr] * n_queries[attr] for attr in values) / total)


# ------------------------------------------------------------------- chance


AT_CHANCE_MARGIN = 0.05  # an attribute whose mAP is below chance + this is flagged "at chance"


def expected_random_ap(n_relevant, n_candidates):
    """The expected AP of a uniformly random ranking of ``N`` candidates, ``R`` of them relevant.

    With ``rel_k`` the relevance at rank ``k``, ``E[rel_k] = R/N`` and, for ``j != k``,
    ``E[rel_j rel_k] = R(R-1) / (N(N-1))``; so ``E[rel_k * (rel_1 + ... + rel_k)] =
    R/N + (k-1) R(R-1)/(N(N-1))``, and summing ``1/(R k)`` times that over ``k``:

        E[AP] = H_N / N + (R - 1) (N - H_N) / (N (N - 1)),   H_N = 1 + 1/2 + ... + 1/N

    ``R = N`` gives 1, ``R = 1`` gives ``H_N / N`` (the mean of ``1/k``). ``R = 0`` has no AP
    (NaN). Works elementwise on arrays.
    """
    r = np.asarray(n_relevant, dtype=np.float64)
    n = np.asarray(n_candidates, dtype=np.float64)
    if np.any(n < 1) or np.any(r > n) or np.any(r < 0):
        raise ValueError(f"need 0 <= n_relevant <= n_candidates and n_candidates >= 1, got {n_relevant}, {n_candidates}")
    sizes, where = np.unique(n, return_inverse=True)   # H_N once per distinct N, not once per query
    h = np.array([np.sum(1.0 / np.arange(1, int(k) + 1)) for k in sizes.ravel()])[where].reshape(n.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = h / n + np.where(n > 1, (r - 1) * (n - h) / (n * np.maximum(n - 1, 1)), 0.0)
    return np.where(r > 0, out, np.nan)


def chance_map(query_labels, cand_labels, no_relevant: str = "zero") -> float:
    """The mAP of a random ranking: the mean over queries of :func:`expected_random_ap`,
    from the candidate label counts (queries with no relevant candidate as in
    :func:`mean_average_precision`)."""
    _check_no_relevant(no_relevant)
    ql = np.asarray(query_labels).ravel()
    cl = np.asarray(cand_labels).ravel()
    if cl.size == 0:
        raise ValueError("no candidates: chance mAP is undefined")
    values, counts = np.unique(cl, return_counts=True)
    per_value = dict(zip(values.tolist(), counts.tolist()))
    r = np.array([per_value.get(v, 0) for v in ql.tolist()])
    return _mean_ap(expected_random_ap(r, np.full(len(r), cl.size)), no_relevant)


def chance_map_per_attribute(labels: dict, protocol: dict, attributes, no_relevant: str = "zero") -> dict[str, float]:
    """``{attribute: chance mAP}`` on each attribute's query and candidate rows."""
    return {a: chance_map(labels[a][protocol[a].query], labels[a][protocol[a].candidate], no_relevant)
            for a in attributes}
