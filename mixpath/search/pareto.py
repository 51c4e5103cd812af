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
