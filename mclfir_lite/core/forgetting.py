"""Continual-learning measures, as MCL-FIR reports them (attributes arrive in increments).

After increment ``i`` every attribute seen so far is evaluated. The results form the
accuracy matrix ``R`` with ``R[i, j]`` = mAP of attribute ``j`` after increment ``i``
(NaN while ``j`` has not arrived yet). With ``T`` increments and ``first(j)`` the
increment at which attribute ``j`` was first evaluated:

* ``average_forgetting``: how far each old attribute fell from its best, on average.
* ``backward_transfer``: how its final mAP compares with its mAP when it was learnt.

The retrieval metrics that fill ``R`` (AP, mAP) are in :mod:`mclfir_lite.core.metrics`.
"""
from __future__ import annotations

import numpy as np


def accuracy_matrix(history: list[dict[str, float]], attributes: list[str]) -> np.ndarray:
    """The accuracy matrix ``R``: one row per increment, one column per attribute.

        R[i, j] = history[i][attributes[j]]   (mAP of attribute j after increment i)
        R[i, j] = NaN                          if attribute j was not evaluated then

    Returns float64 of shape ``(len(history), len(attributes))``. Raises ``ValueError``
    if ``attributes`` has duplicates or ``history`` names an attribute not listed.
    """
    column = {attr: j for j, attr in enumerate(attributes)}
    if len(column) != len(attributes):
        raise ValueError(f"attributes has duplicates: {list(attributes)}")
    R = np.full((len(history), len(attributes)), np.nan)
    for i, evaluated in enumerate(history):
        for attr, value in evaluated.items():
            if attr not in column:
                raise ValueError(f"history[{i}] has attribute {attr!r}, which is not in attributes")
            R[i, column[attr]] = float(value)
    return R


def _as_matrix(R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2:
        raise ValueError(f"R must be 2-D (n_increments, n_attributes), got shape {R.shape}")
    return R


def first_seen(R: np.ndarray) -> np.ndarray:
    """For each attribute (column of ``R``), the first increment at which it was evaluated.

        first(j) = min {i : R[i, j] is not NaN}     (-1 if the column is all NaN)

    Returns an int64 array of shape ``(n_attributes,)``.
    """
    R = _as_matrix(R)
    evaluated = ~np.isnan(R)
    if R.shape[0] == 0:
        return np.full(R.shape[1], -1, dtype=np.int64)
    first = np.argmax(evaluated, axis=0)            # index of the first True in each column
    return np.where(evaluated.any(axis=0), first, -1).astype(np.int64)


def _old_attributes(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of attributes first seen before the last increment, and ``first_seen(R)``.

    These are the attributes that could have been forgotten. Each must be evaluated at
    the last increment (else ``ValueError``).
    """
    T = R.shape[0]
    first = first_seen(R)
    old = np.flatnonzero((first >= 0) & (first < T - 1))
    if old.size:
        missing = old[np.isnan(R[T - 1, old])]
        if missing.size:
            raise ValueError(f"attribute column(s) {missing.tolist()} were evaluated earlier "
                             f"but not at the last increment")
    return old, first


def average_forgetting(R: np.ndarray) -> float:
    """Average forgetting: how far, on average, old attributes fell from their best mAP.

    With ``T`` increments and ``J`` the attributes first seen before the last one
    (``first(j) < T - 1``):

        f_j = max_{first(j) <= i < T-1} R[i, j]  -  R[T-1, j]
        F   = (1 / |J|) * sum_{j in J} f_j

    Positive = forgotten (it can be negative if an attribute ends above its best).
    NaN if ``J`` is empty, e.g. with a single increment.
    """
    R = _as_matrix(R)
    old, first = _old_attributes(R)
    if old.size == 0:
        return float("nan")
    T = R.shape[0]
    drops = [np.nanmax(R[first[j]:T - 1, j]) - R[T - 1, j] for j in old]
    return float(np.mean(drops))


def backward_transfer(R: np.ndarray) -> float:
    """Backward transfer (BWT): final mAP of the old attributes minus their mAP when learnt.

    Over the same attributes ``J`` as :func:`average_forgetting`:

        BWT = (1 / |J|) * sum_{j in J} (R[T-1, j] - R[first(j), j])

    Negative = forgetting, positive = later training helped old attributes.
    NaN if ``J`` is empty, e.g. with a single increment.
    """
    R = _as_matrix(R)
    old, first = _old_attributes(R)
    if old.size == 0:
        return float("nan")
    T = R.shape[0]
    return float(np.mean([R[T - 1, j] - R[first[j], j] for j in old]))
