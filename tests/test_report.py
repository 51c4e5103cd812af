"""Feature analysis and ranking of a tiny trained supernet: finite numbers, files, cached scores."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings
from mixpath.ranking import GroundTruthFile, GroundTruthRow, stratified_sample
from mixpath.ranking.rank import rank_run
from mixpath.reporting import path_similarity, ranking_scatter, run_report, sbn_summary, shadow_bn_statistics
from mixpath.reporting.features import layer_inputs, multipath_layers, path_sets
from mixpath.training import TrainConfig, load_run, train_supernet


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny shadow-BN supernet trained for 8 steps on 512 digits images."""
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    config = TrainConfig(space="tiny", data="digits", epochs=1, batch_size=64, train_subset=512, eval_archs=1)
    train_supernet(config, run_dir, progress=False, device="cpu")
    return run_dir


def _finite(value):
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def test_path_similarity_matrix(tiny_run):
    run = load_run(tiny_run, "cpu")
    x = run.dataset.val_x[:16]
    arch = run.space.random_architecture(random.Random(0), 4)
    inputs = layer_inputs(run.supernet, arch, x)
    assert len(inputs) == run.space.n_layers
    labels, matrix = path_similarity(multipath_layers(run.supernet)[0], inputs[0], 4)
    assert len(labels) == len(path_sets(4, 4)) == 15 and labels[0] == "k3" and labels[-1] == "k3+k5+k7+k9"
    assert np.allclose(np.diag(matrix), 1.0, atol=1e-5)
    assert np.allclose(matrix, matrix.T, atol=1e-6)
    assert np.all(np.abs(matrix) <= 1.0 + 1e-6)


def test_shadow_bn_statistics_are_finite(tiny_run):
    run = load_run(tiny_run, "cpu")
    entries = shadow_bn_statistics(run.supernet)
    assert len(entries) == run.space.n_layers * 2  # one per (layer, expansion ratio)
    summary = sbn_summary(entries)
    assert summary, "some SBN pair trained in 8 steps"
    for stats in summary.values():
        assert stats["entries"] >= 1
        assert _finite(stats)
        assert stats["gamma_cosine"] is None or -1.0 <= stats["gamma_cosine"] <= 1.0 + 1e-9


def test_run_report_writes_json_and_plots(tiny_run, tmp_path):
    out = tmp_path / "report"
    report = run_report(tiny_run, out, images=16, n_archs=2, calibration=CalibrationSettings(size=64))
    for name in ("report.json", "cosine_by_layer.png", "cosine_layer0.png", "oneshot_accuracy_hist.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["oneshot"]["by_m"]) == {"1", "2", "3", "4"}
    assert all(len(v["accuracies"]) == 2 for v in saved["oneshot"]["by_m"].values())
    assert _finite(saved["sbn"]["summary"]) and _finite(saved["similarity"]["layers"][0]["matrix"])
    assert report["similarity"]["layers"][0]["mean_single_path_cosine"] <= 1.0


def test_report_needs_shadow_bn_for_sbn_statistics(tmp_path):
    run_dir = tmp_path / "shared"
    config = TrainConfig(
        space="tiny", data="digits", bn_policy="shared", epochs=1, batch_size=64, train_subset=128, eval_archs=1
    )
    train_supernet(config, run_dir, progress=False, device="cpu")
    with pytest.raises(MixPathError, match="shadow"):
        shadow_bn_statistics(load_run(run_dir, "cpu").supernet)


def test_rank_run_scores_once_and_writes_results(tiny_run, tmp_path):
    run = load_run(tiny_run, "cpu")
    archs = stratified_sample(run.space, 6, 4, seed=0, flops=lambda a: float(sum(a.path_counts)))
    gt = tmp_path / "gt.csv"
    for i, arch in enumerate(archs):
        GroundTruthFile(gt).append(GroundTruthRow(str(arch), 80.0 + i, 70.0 + i, 0.1 * (i + 1), 0.01 * i, 1.0, 0))
    result = rank_run(tiny_run, gt, calibration=CalibrationSettings("exact", size=64), resamples=200)
    assert result["n_archs"] == 6
    assert set(result["metrics"]) == {"supernet", "params", "flops"}
    assert result["metrics"]["flops"]["kendall_tau"]["value"] == pytest.approx(1.0)
    assert (tiny_run / "ranking" / "ranking_exact.json").exists()
    cache = tiny_run / "ranking" / "scores.jsonl"
    lines = cache.read_text().count("\n")
    assert lines == 6
    again = rank_run(tiny_run, gt, calibration=CalibrationSettings("exact", size=64), resamples=200)
    assert cache.read_text().count("\n") == lines  # every score came from the cache
    assert again["archs"] == result["archs"]
    assert ranking_scatter(result, tmp_path / "scatter.png").stat().st_size > 0
