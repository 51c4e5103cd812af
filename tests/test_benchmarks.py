"""The speed suite's measurements run and measure what they say (tiny sizes; the suite itself is not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_training  # noqa: E402


@pytest.mark.parametrize("impl", bench_training.IMPLS)
def test_training_measurement_times_every_step(impl):
    row = bench_training.measure(impl, "tiny", 4, batch=8, steps=3, warmup=1)
    assert len(row["step_s"]) == 3 and all(t > 0 for t in row["step_s"])
    assert row["images_per_s"] == pytest.approx(8 * 3 / sum(row["step_s"]))
    assert row["saved_mb"] > 0 and row["peak_rss_mb"] >= row["rss_mb"]


def test_multi_single_measurement_pairs_single_and_multi_path_steps():
    row = bench_training.measure_multi_single("tiny", 4, batch=8, steps=4)
    assert len(row["single_step_s"]) == len(row["multi_step_s"]) == 4
    assert row["ratio"] == pytest.approx(sum(row["multi_step_s"]) / sum(row["single_step_s"]))
    assert 1.0 <= row["mean_paths"] <= 4.0
    singles = bench_training.architectures("tiny", 1, 0, 5)
    multis = bench_training.architectures("tiny", 4, 0, 5)
    for one, four in zip(singles, multis, strict=True):  # paired: the same expansion ratios
        assert [c.option("e") for c in one.layers] == [c.option("e") for c in four.layers]
        assert all(len(c.paths) == 1 for c in one.layers)


def test_against_reference_measurement_alternates_both_implementations():
    row = bench_training.measure_against_reference("tiny", 4, batch=8, steps=3)
    assert len(row["reference_step_s"]) == len(row["mixpath_step_s"]) == 3
    assert row["speed_up"] == pytest.approx(sum(row["reference_step_s"]) / sum(row["mixpath_step_s"]))
