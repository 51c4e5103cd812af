"""Ranking quality: stand-alone ground truth, rank correlation of supernet scores with it, and the ablation."""

from mixpath.ranking.groundtruth import (
    COLUMNS,
    GroundTruthFile,
    GroundTruthRow,
    benchmark_ground_truth,
    build_ground_truth,
    load_ground_truth,
    path_bins,
    stratified_sample,
)

__all__ = [
    "COLUMNS",
    "GroundTruthFile",
    "GroundTruthRow",
    "benchmark_ground_truth",
    "build_ground_truth",
    "load_ground_truth",
    "path_bins",
    "stratified_sample",
]
