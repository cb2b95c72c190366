"""The average precision on the CPU: two compiled loops around numpy's sort.

``metrics.average_precision_per_query`` ranks a block of queries (one row of similarities
each) in three steps:

1. :func:`pack_keys` turns each similarity and a "relevant" bit into one int32 key,
   so that ascending keys are descending similarities;
2. numpy sorts each row of keys (its SIMD sort, the fastest sort numpy has);
3. :func:`ap_of_sorted` walks each sorted row once: the odd keys are the relevant
   candidates, in rank order, so the ``m``-th one at rank ``k_m`` adds ``m / k_m``.

Steps 1 and 3 are plain Python loops compiled by numba (``njit``): one pass over the keys
each, where the same in numpy takes about ten whole-array operations. They run without
Python's lock (``nogil``), so several blocks rank at once on several threads. The compiled
code is cached beside this file (or in numba's user cache folder when that is read-only):
the first call on a machine compiles for a few seconds, later processes load it.

Without numba (:func:`available` is False) ``metrics`` ranks every query in full with
torch instead: the same numbers, about five times slower (measured at 300 x 3k and
2k x 20k).
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError as err:  # pragma: no cover - depends on the environment
    numba, WHY_UNAVAILABLE = None, f"numba could not be imported ({err})"
else:
    WHY_UNAVAILABLE = ""


def available() -> bool:
    return numba is not None


def _jit(**options):
    """numba's ``njit`` with ``options`` (the function unchanged without numba). A function
    asked to be cached is compiled in every process instead when no cache folder is
    writable (numba refuses to cache then)."""
    def wrap(fn):
        if numba is None:
            return fn
        try:
            return numba.njit(**options)(fn)
        except RuntimeError:
            return numba.njit(**{k: v for k, v in options.items() if k != "cache"})(fn)
    return wrap


@_jit(inline="always")
def _key(bits):
    """The float32 whose bit pattern is ``bits`` (int32, ``|x| < 2``) as an int32 that
    sorts like the float, shifted left once: bit 0 is free.

    As int32, non-negative floats already sort by value. ``bits << 1`` drops the sign bit
    (the top exponent bit, 0 when ``|x| < 2``, takes its place); a negative float's
    magnitude is then negated: ``(y ^ -1) + 1 = -y``, so -0.0 and 0.0 both give 0."""
    sign = bits >> 31                           # 0 for x >= 0, -1 for x < 0
    return np.int32(((bits << 1) ^ sign) - sign)   # (numba computes in int64: wrap to int32)


@_jit(nogil=True, cache=True)
def pack_keys(neg_bits, query_labels, cand_labels, keys):
    """``keys[i, j]``: the key of ``neg_bits[i, j]`` (a negated similarity's float32 bit
    pattern, as int32), with bit 0 set when candidate ``j`` is relevant to query ``i``
    (equal labels). Sorting a row ascending ranks its candidates, best first; a relevant
    candidate comes right after the irrelevant ones with the same similarity.

    Returns True, and leaves the keys unusable, if some similarity is 2 or more in
    magnitude, or not finite: its bit 30, the exponent's top bit, is set."""
    seen = np.int32(0)                          # every bit pattern OR-ed together
    for i in range(neg_bits.shape[0]):
        label = query_labels[i]
        for j in range(neg_bits.shape[1]):
            seen |= neg_bits[i, j]
            keys[i, j] = _key(neg_bits[i, j]) | np.int32(cand_labels[j] == label)
    return (seen & 0x40000000) != 0


@_jit(nogil=True, cache=True)
def ap_of_sorted(keys, neg_bits, query_labels, cand_labels, max_ties, aps, many):
    """AP of each row of sorted ``keys`` (from :func:`pack_keys` on ``neg_bits``), into
    ``aps`` (NaN without a relevant candidate). ``many[i]`` is set, and ``aps[i]`` left
    to the caller, when row ``i`` has more than ``max_ties`` tied runs (below).

    A tie: a relevant candidate with the same similarity as an irrelevant one. The keys
    put the relevant one after it; the ranking (equal similarities in candidate-index
    order) may not. So the ranks of such a run are taken again from the similarities
    themselves, in index order: one pass over the row per run."""
    n = keys.shape[1]
    hits = np.empty(n, np.int64)                # positions of the relevant keys, best first
    same = np.empty(n, np.int64)                # candidates with a tied similarity
    for i in range(keys.shape[0]):
        row = keys[i]
        n_hits = 0
        for k in range(n):                      # (branch-free: the store always happens)
            hits[n_hits] = k
            n_hits += row[k] & 1
        many[i] = False
        if n_hits == 0:
            aps[i] = np.nan
            continue
        n_ties = 0
        for m in range(n_hits):                 # an irrelevant key with the same score just before
            k = hits[m]
            n_ties += (k > 0) & (row[k - 1] == row[k] - 1)
        if n_ties > max_ties:
            many[i] = True
            continue
        total = 0.0
        for m in range(n_hits):                 # the (m+1)-th relevant candidate is at rank k+1
            total += (m + 1) / (hits[m] + 1.0)
        for m in range(n_hits if n_ties else 0):
            k = hits[m]
            if k == 0 or row[k - 1] != row[k] - 1:
                continue
            # Relevant at sorted positions k.. (those with this key), irrelevant ones
            # at first..k-1: together they hold ranks first+1.. in candidate-index order.
            first = k - 1
            while first > 0 and row[first - 1] == row[k] - 1:
                first -= 1
            last = m
            while last < n_hits and row[hits[last]] == row[k]:
                total -= (last + 1) / (hits[last] + 1.0)
                last += 1
            n_same = 0
            for j in range(n):                  # (branch-free, as above)
                same[n_same] = j
                n_same += (_key(neg_bits[i, j]) >> 1) == (row[k] >> 1)
            label, counted = query_labels[i], m    # m relevant ones rank above the run
            for s in range(n_same):
                if cand_labels[same[s]] == label:
                    counted += 1
                    total += counted / (first + s + 1.0)
        aps[i] = total / n_hits
