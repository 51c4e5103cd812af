"""Ranking metrics against scipy and hand-computed rankings, ties included; bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mixpath.errors import MixPathError
from mixpath.ranking.groundtruth import GroundTruthRow
from mixpath.ranking.metrics import (
    batched_kendall_tau,
    batched_spearman_rho,
    bootstrap_interval,
    kendall_tau,
    ranking_metrics,
    resolve_k,
    spearman_rho,
    tau_difference,
    top_k_precision,
)
from mixpath.ranking.rank import estimate_of, rank_scores


def test_kendall_and_spearman_on_hand_computed_rankings():
    truth = [1, 2, 3, 4, 5]
    assert kendall_tau(truth, truth) == pytest.approx(1.0)
    assert kendall_tau(truth[::-1], truth) == pytest.approx(-1.0)
    # one adjacent swap: 9 concordant, 1 discordant pair of 10 -> tau = 0.8
    assert kendall_tau([2, 1, 3, 4, 5], truth) == pytest.approx(0.8)
    # spearman with one adjacent swap: 1 - 6 * 2 / (5 * 24) = 0.9
    assert spearman_rho([2, 1, 3, 4, 5], truth) == pytest.approx(0.9)


def test_ties_match_scipy_tau_b_and_average_ranks():
    pred = [1.0, 1.0, 2.0, 3.0, 3.0, 4.0]
    truth = [1.0, 2.0, 2.0, 3.0, 5.0, 4.0]
    assert kendall_tau(pred, truth) == pytest.approx(stats.kendalltau(pred, truth, variant="b").statistic)
    assert spearman_rho(pred, truth) == pytest.approx(stats.spearmanr(pred, truth).statistic)
    # tau-b by hand: concordant 11, discordant 1, ties only in pred 2, only in truth 1 (n0 = 15)
    assert kendall_tau(pred, truth) == pytest.approx((11 - 1) / math.sqrt((15 - 2) * (15 - 1)))


def test_random_scores_match_scipy():
    rng = np.random.default_rng(1)
    pred, truth = rng.normal(size=40), rng.normal(size=40)
    assert kendall_tau(pred, truth) == pytest.approx(stats.kendalltau(pred, truth).statistic)
    assert spearman_rho(pred, truth) == pytest.approx(stats.spearmanr(pred, truth).statistic)


def test_batched_statistics_equal_scipy_row_by_row_with_ties():
    rng = np.random.default_rng(2)
    pred = rng.integers(0, 5, size=(6, 12)).astype(float)  # many ties, as in bootstrap resamples
    truth = rng.integers(0, 6, size=(6, 12)).astype(float)
    taus, rhos = batched_kendall_tau(pred, truth), batched_spearman_rho(pred, truth)
    for row in range(6):
        assert taus[row] == pytest.approx(stats.kendalltau(pred[row], truth[row]).statistic)
        assert rhos[row] == pytest.approx(stats.spearmanr(pred[row], truth[row]).statistic)
    assert np.isnan(batched_kendall_tau(np.ones((1, 4)), truth[:1, :4]))[0]  # constant: undefined


def test_top_k_precision_by_hand_and_with_ties():
    truth = [10, 9, 8, 7, 6, 5]
    assert top_k_precision([6, 5, 4, 3, 2, 1], truth, 2) == 1.0
    assert top_k_precision([5, 6, 1, 2, 3, 4], truth, 2) == 1.0  # order inside the top-k does not matter
    assert top_k_precision([1, 6, 5, 2, 3, 4], truth, 2) == 0.5  # predicted top-2 {1, 2}, true top-2 {0, 1}
    assert top_k_precision([1, 2, 3, 4, 5, 6], truth, 3) == 0.0
    # a tie at the cut of the truth keeps the whole tie group in the true top-2: {0, 1, 2}
    assert top_k_precision([6, 5, 4, 3, 2, 1], [10, 9, 9, 7, 6, 5], 2) == 1.0
    assert top_k_precision([6, 1, 4, 5, 3, 2], [10, 9, 9, 7, 6, 5], 2) == 0.5  # predicted {0, 3}: 3 is not
    # a tie at the cut of the prediction: predicted top-1 is {0, 1}, only 0 truly top-1
    assert top_k_precision([5, 5, 1, 1, 1, 1], truth, 1) == 0.5


def test_k_as_count_or_fraction():
    assert resolve_k(5, 30) == 5
    assert resolve_k(0.1, 30) == 3
    assert resolve_k(0.2, 31) == 7  # rounded up
    for bad in (0, -1, 1.5, 0.0, True):
        with pytest.raises(MixPathError):
            resolve_k(bad, 10)


def test_bootstrap_interval_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=30)
    pred = truth + rng.normal(scale=0.8, size=30)
    low, high = bootstrap_interval(pred, truth, batched_kendall_tau, resamples=2000, seed=3)
    assert low < kendall_tau(pred, truth) < high
    assert 0.0 < low < high < 1.0
    assert bootstrap_interval(pred, truth, batched_kendall_tau, resamples=2000, seed=3) == (low, high)
    assert bootstrap_interval(pred, truth, batched_kendall_tau, resamples=2000, seed=4) != (low, high)


def test_ranking_metrics_keys_and_small_sets():
    truth = list(range(12))
    result = ranking_metrics(truth, truth, resamples=500)
    assert set(result) == {"kendall_tau", "spearman_rho", "top5", "top10", "top10%", "top20%"}
    assert result["kendall_tau"].value == pytest.approx(1.0)
    assert result["top5"].value == 1.0
    assert "top10" not in ranking_metrics(truth[:8], truth[:8], resamples=50)  # k >= n says nothing
    with pytest.raises(MixPathError):
        ranking_metrics([1, 2], [1, 2])
    with pytest.raises(MixPathError):
        ranking_metrics([1, 2, 3], [1, 2])


def test_rank_scores_reports_trivial_predictors_on_the_same_archs():
    rows = {
        f"a{i}": GroundTruthRow(f"a{i}", 50.0 + i, 60.0 + i, flops=float(10 - i), params=float(i), seconds=1.0, seed=0)
        for i in range(8)
    }
    scores = {f"a{i}": float(i) for i in range(7)}  # a7 was not scored: left out of every predictor
    result = rank_scores(scores, rows, resamples=100)
    assert result["n_archs"] == 7
    assert estimate_of(result, "supernet", "kendall_tau").value == pytest.approx(1.0)
    assert estimate_of(result, "params", "kendall_tau").value == pytest.approx(1.0)
    assert estimate_of(result, "flops", "kendall_tau").value == pytest.approx(-1.0)
    assert result["archs"][0]["standalone_acc"] == 60.0  # target test accuracy by default
    with pytest.raises(MixPathError):
        rank_scores(scores, rows, target="train")


def test_tau_difference_is_paired_and_exact_at_the_extremes():
    truth = [float(i) for i in range(20)]
    same = tau_difference(truth, truth, truth)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    flipped = tau_difference(truth, truth[::-1], truth)
    assert flipped.value == pytest.approx(2.0)  # tau 1 against tau -1
    assert 1.5 < flipped.low <= flipped.high <= 2.0
    rng = np.random.default_rng(1)
    noisy = list(np.array(truth) + rng.normal(0, 3, 20))
    worse = list(np.array(truth) + rng.normal(0, 30, 20))
    diff = tau_difference(noisy, worse, truth, seed=3)
    assert diff.low < diff.value < diff.high
    assert diff == tau_difference(noisy, worse, truth, seed=3)  # seeded
