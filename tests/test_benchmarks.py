"""The speed suite's measurements run and measure what they say (tiny sizes; the suite itself is not a test)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_busy  # noqa: E402
import bench_loader  # noqa: E402
import bench_side_by_side  # noqa: E402
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


def test_bf16_measurement_times_both_precisions_on_the_same_architectures():
    row = bench_training.measure_bf16("tiny", 4, batch=8, steps=3)
    assert len(row["bf16_step_s"]) == len(row["float32_step_s"]) == 3
    assert row["ratio"] == pytest.approx(sum(row["bf16_step_s"]) / sum(row["float32_step_s"]))
    assert isinstance(row["amx_bf16"], bool)


@pytest.mark.slow
def test_busy_measurement_reads_the_second_epoch_of_the_command():
    args = argparse.Namespace(space="tiny", data="digits", m=4, train_subset=256)
    assert bench_busy.measure("command", "busy after the start", args) > 0


def test_busy_table_judges_each_share_of_idle_against_the_aim():
    speeds = {"idle": [100.0], "busy from the start": [45.0], "busy after the start": [30.0]}
    lines = bench_busy.table({name: speeds for name in bench_busy.INTERFACES})
    assert "| busy from the start | 45.0 | 45% (met) | 45.0 | 45% (met) |" in lines
    assert "| busy after the start | 30.0 | 30% (NOT met) | 30.0 | 30% (NOT met) |" in lines


def test_loader_benchmark_measures_the_loader_the_step_and_both_together(tmp_path):
    from mixpath.data import load_folder_dataset

    data = load_folder_dataset(bench_loader.write_folder(tmp_path / "images", 2, 6, 16), image_size=16, val_size=0)
    space = bench_loader.space_for("rgb-small", 2, 16)
    assert space.input_shape == (3, 16, 16) and space.num_classes == 2
    assert bench_loader.loader_rate(data, 4, 2, workers=0) > 0
    assert bench_loader.step_rate(space, 2, 4, 2, warmup=1) > 0
    assert bench_loader.together_rate(space, data, 2, 4, 2, workers=1) > 0


def test_side_by_side_measurement_times_both_ways_in_alternating_rounds():
    row = bench_side_by_side.measure("tiny", "digits", 2, 96, 32, 2)
    assert len(row["rounds"]) == 2 and all(min(r.values()) > 0 for r in row["rounds"])
    ratios = sorted(r["side_by_side_s"] / r["one_after_another_s"] for r in row["rounds"])
    assert row["ratio"] == pytest.approx(sum(ratios) / 2)
