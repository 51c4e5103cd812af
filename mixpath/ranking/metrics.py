"""How well one score ranks architectures like another: Kendall tau, Spearman rho, top-k precision, with
seeded percentile-bootstrap 95% intervals.

Kendall tau is tau-b and Spearman rho uses average ranks (scipy.stats), so ties count correctly.
Top-k precision with ties: the true top-k is every architecture with fewer than k architectures strictly
better than it (a tie at the cut keeps the whole tie group), the predicted top-k likewise from the
scores; precision = |predicted top-k that is truly top-k| / |predicted top-k|. Without ties both sets
hold exactly k architectures. ``k`` is a count (5) or a fraction of the architectures (0.1 = top 10%,
rounded up).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mixpath.errors import MixPathError

Scores = Sequence[float] | np.ndarray
"""One score per architecture, in a fixed order of the architectures."""
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A batched statistic: ``(pred, truth)`` of shape R x n (R resamples of n architectures) -> R values."""
DEFAULT_KS: tuple[int | float, ...] = (5, 10, 0.1, 0.2)


def kendall_tau(pred: Scores, truth: Scores) -> float:
    """Kendall tau-b between two scorings of the same architectures (nan when either is constant)."""
    return float(stats.kendalltau(pred, truth).statistic)


def spearman_rho(pred: Scores, truth: Scores) -> float:
    """Spearman rank correlation with average ranks for ties (nan when either is constant)."""
    return float(stats.spearmanr(pred, truth).statistic)


def batched_kendall_tau(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Kendall tau-b of every row pair at once (the bootstrap's inner loop; equals scipy's per row)."""
    upper = np.triu(np.ones((pred.shape[1], pred.shape[1]), dtype=bool), 1)
    dp = np.sign(pred[:, :, None] - pred[:, None, :])[:, upper]
    dt = np.sign(truth[:, :, None] - truth[:, None, :])[:, upper]
    pairs = upper.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dp * dt).sum(1) / np.sqrt((pairs - (dp == 0).sum(1)) * (pairs - (dt == 0).sum(1)))


def batched_spearman_rho(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Spearman rho (average ranks) of every row pair at once."""
    rp = stats.rankdata(pred, axis=1) - (pred.shape[1] + 1) / 2
    rt = stats.rankdata(truth, axis=1) - (truth.shape[1] + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rp * rt).sum(1) / np.sqrt((rp * rp).sum(1) * (rt * rt).sum(1))


def resolve_k(k: int | float, n: int) -> int:
    """A top-k size: an int is a count, a float in (0, 1) a fraction of ``n`` rounded up."""
    if isinstance(k, bool):
        raise MixPathError(f"top-k {k!r} must be a count >= 1 or a fraction in (0, 1)")
    if isinstance(k, float):
        if not 0.0 < k < 1.0:
            raise MixPathError(f"top-k fraction {k} must be in (0, 1)")
        return max(1, math.ceil(k * n))
    if not isinstance(k, int) or k < 1:
        raise MixPathError(f"top-k {k!r} must be a count >= 1 or a fraction in (0, 1)")
    return k


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Mask (R x n) of entries with fewer than ``k`` entries of their row strictly greater."""
    better = (values[:, None, :] > values[:, :, None]).sum(axis=2)
    return better < k


def batched_top_k_precision(pred: np.ndarray, truth: np.ndarray, k: int | float) -> np.ndarray:
    size = resolve_k(k, pred.shape[1])
    predicted, actual = _top(pred, size), _top(truth, size)
    return (predicted & actual).sum(1) / predicted.sum(1)


def top_k_precision(pred: Sequence[float], truth: Sequence[float], k: int | float) -> float:
    """Share of the predicted top-k that is in the true top-k (see the module docstring for ties)."""
    return float(
        batched_top_k_precision(np.asarray(pred, dtype=float)[None], np.asarray(truth, dtype=float)[None], k)[0]
    )


def k_label(k: int | float) -> str:
    return f"top{k}" if isinstance(k, int) else f"top{round(100 * k)}%"


def bootstrap_interval(
    pred: Sequence[float],
    truth: Sequence[float],
    statistic: Statistic,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a batched ``statistic`` over architectures drawn with
    replacement (pairs kept together). Resamples where the statistic is undefined (nan: e.g. all one
    architecture) are left out; the same seed gives the same interval."""
    p, t = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(p), size=(resamples, len(p)))
    values = np.concatenate(
        [statistic(p[chunk], t[chunk]) for chunk in np.array_split(index, max(1, resamples // 250))]
    )
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(low), float(high))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval."""

    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float | None]:
        return {key: _finite(getattr(self, key)) for key in ("value", "low", "high")}

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def tau_difference(
    a: Sequence[float], b: Sequence[float], truth: Sequence[float], *, resamples: int = 2000, seed: int = 0
) -> Estimate:
    """tau(a, truth) - tau(b, truth) with its 95 % paired bootstrap interval: architectures drawn with
    replacement, the same draw for both predictors, so what the two share cancels. An interval holding 0
    means the two rank equally well as far as these architectures can tell."""
    a_, b_, t_ = (np.asarray(v, dtype=float) for v in (a, b, truth))
    index = np.random.default_rng(seed).integers(0, len(t_), size=(resamples, len(t_)))
    diffs = []
    for chunk in np.array_split(index, max(1, resamples // 250)):
        diffs.append(batched_kendall_tau(a_[chunk], t_[chunk]) - batched_kendall_tau(b_[chunk], t_[chunk]))
    diff = np.concatenate(diffs)
    low, high = np.quantile(diff[np.isfinite(diff)], [0.025, 0.975])
    return Estimate(kendall_tau(a_, t_) - kendall_tau(b_, t_), float(low), float(high))


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def estimate(
    pred: Sequence[float],
    truth: Sequence[float],
    point: Callable[[Sequence[float], Sequence[float]], float],
    statistic: Statistic,
    resamples: int,
    seed: int,
) -> Estimate:
    """``point(pred, truth)`` with the bootstrap interval of the batched ``statistic`` (the same measure)."""
    low, high = bootstrap_interval(pred, truth, statistic, resamples=resamples, seed=seed)
    return Estimate(point(pred, truth), low, high)


def ranking_metrics(
    pred: Sequence[float],
    truth: Sequence[float],
    *,
    ks: Sequence[int | float] = DEFAULT_KS,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Kendall tau, Spearman rho (point estimates from scipy.stats) and top-k precision (each k of ``ks``
    below the number of architectures), each with a 95% bootstrap interval."""
    if len(pred) != len(truth):
        raise MixPathError(f"{len(pred)} scores but {len(truth)} ground-truth values")
    if len(pred) < 3:
        raise MixPathError(f"ranking needs at least 3 architectures, got {len(pred)}")
    metrics = {
        "kendall_tau": estimate(pred, truth, kendall_tau, batched_kendall_tau, resamples, seed),
        "spearman_rho": estimate(pred, truth, spearman_rho, batched_spearman_rho, resamples, seed),
    }
    for k in ks:
        if resolve_k(k, len(pred)) < len(pred):
            metrics[k_label(k)] = estimate(
                pred,
                truth,
                functools.partial(top_k_precision, k=k),
                functools.partial(batched_top_k_precision, k=k),
                resamples,
                seed,
            )
    return metrics


def predictor_metrics(
    predictors: Mapping[str, Mapping[str, float]],
    truth: Mapping[str, float],
    **options: Any,
) -> dict[str, dict[str, Estimate]]:
    """``ranking_metrics`` of several predictors (name -> arch -> score) on the architectures every
    predictor and the ground truth share, so their figures are comparable."""
    common = sorted(set(truth).intersection(*(set(scores) for scores in predictors.values())))
    return {
        name: ranking_metrics([scores[a] for a in common], [truth[a] for a in common], **options)
        for name, scores in predictors.items()
    }
