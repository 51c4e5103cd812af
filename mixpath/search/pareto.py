"""Pareto utilities on minimisation vectors (one row per architecture, one column per objective)."""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (<= everywhere and < somewhere).

    Equal rows do not dominate each other, so duplicates of a front point are all on the front.
    """
    F = np.asarray(F, dtype=float)
    mask = np.ones(len(F), dtype=bool)
    for i, row in enumerate(F):
        dominators = np.all(F <= row, axis=1) & np.any(F < row, axis=1)
        mask[i] = not dominators.any()
    return mask


def hypervolume(F: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by the rows of ``F`` and bounded by ``reference`` (a minimisation point).

    Rows that do not strictly dominate the reference point add nothing; no rows gives 0.
    Units are the product of the objectives' units (e.g. percent x millions of multiply-adds).
    """
    F = np.asarray(F, dtype=float).reshape(-1, len(reference))
    inside = F[np.all(F < reference, axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(reference, dtype=float))(inside))


def weighted_crowding(F: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of the rows of one front with a weight per objective (MoGA).

    Per objective, the rows are sorted and each gets the gap between its two neighbours divided by the
    objective's range (0 when all rows are equal there); the two extreme rows get infinity. NSGA-II averages
    these terms over the objectives; here their weighted mean is taken, so an objective of weight 0 neither
    spreads the front nor protects its extremes, and equal weights give NSGA-II's own distance. Larger
    distances survive the truncation of the last front and win tournaments between equal ranks.
    """
    F = np.asarray(F, dtype=float)
    weights = np.asarray(weights, dtype=float)
    n, n_obj = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    distance = np.zeros(n)
    for j in np.flatnonzero(weights > 0):
        order = np.argsort(F[:, j], kind="mergesort")
        column = F[order, j]
        span = column[-1] - column[0]
        if span == 0:  # all rows equal here: this objective tells them apart nowhere
            continue
        gaps = np.full(n, np.inf)
        gaps[1:-1] = (column[2:] - column[:-2]) / span
        distance[order] += weights[j] * gaps
    return distance / weights.sum()
