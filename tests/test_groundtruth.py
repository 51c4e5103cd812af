"""Ground truth: stratified sampling, resumable CSV (interrupted = uninterrupted), torn lines, tables."""

from __future__ import annotations

import dataclasses

import pytest

from mixpath.data import load_dataset
from mixpath.errors import MixPathError
from mixpath.ranking import (
    GroundTruthFile,
    GroundTruthRow,
    benchmark_ground_truth,
    build_ground_truth,
    load_ground_truth,
    path_bins,
    stratified_sample,
)
from mixpath.ranking.groundtruth import bin_of, mean_paths, training_checkpoint
from mixpath.supernet import build_standalone
from mixpath.training import Recipe
from mixpath.training.checkpoint import load_checkpoint, save_checkpoint
from mixpath.training.standalone import init_seed, train_standalone

RECIPE = Recipe(epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=128)


def _flops(arch):
    return float(sum(arch.path_counts)) + sum(choice.option("e") for choice in arch.layers) / 10


def test_stratified_sample_covers_every_path_count_bin(tiny):
    archs = stratified_sample(tiny, 8, 4, seed=0, flops=_flops)
    bins = path_bins(4)
    assert [bin_of(mean_paths(a), bins) for a in archs] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(max(a.path_counts) == 1 for a in archs[:2])  # the first bin is exactly single-path
    assert len(set(archs)) == 8
    for arch in archs:
        tiny.validate(arch, 4)
    assert stratified_sample(tiny, 8, 4, seed=0, flops=_flops) == archs
    assert stratified_sample(tiny, 8, 4, seed=1, flops=_flops) != archs


def test_stratified_sample_spans_flops_within_a_bin(tiny):
    archs = stratified_sample(tiny, 4, 1, seed=0)  # m=1: one bin, two FLOPs strata from the cost model
    assert all(max(a.path_counts) == 1 for a in archs)
    with pytest.raises(MixPathError):
        stratified_sample(tiny, 0, 4)


def _strip_seconds(rows):
    return [dataclasses.replace(row, seconds=0.0) for row in rows]


def test_interrupted_run_resumes_to_the_same_lines(tiny, digits, tmp_path):
    archs = stratified_sample(tiny, 3, 2, seed=0, flops=_flops)
    full = build_ground_truth(tiny, digits, archs, RECIPE, tmp_path / "full.csv")
    first = build_ground_truth(tiny, digits, archs, RECIPE, tmp_path / "resumed.csv", limit=1)
    assert len(first) == 1 and len(GroundTruthFile(tmp_path / "resumed.csv").read()) == 1
    resumed = build_ground_truth(tiny, digits, archs, RECIPE, tmp_path / "resumed.csv")
    assert len(full) == 3
    assert _strip_seconds(resumed) == _strip_seconds(full)
    assert [row.arch for row in full] == [str(a) for a in archs]
    assert all(0.0 <= row.test_acc <= 100.0 and row.flops > 0 and row.params > 0 for row in full)


def test_a_training_killed_mid_way_resumes_from_its_checkpoint_to_the_same_row(tiny, digits, tmp_path):
    archs = stratified_sample(tiny, 2, 2, seed=0, flops=_flops)
    recipe = dataclasses.replace(RECIPE, epochs=2)
    full = build_ground_truth(tiny, digits, archs[:1], recipe, tmp_path / "full.csv", seed=3)
    assert not any((tmp_path / "full.checkpoints").iterdir())  # deleted once the row is written
    out = tmp_path / "killed.csv"
    checkpoint = training_checkpoint(tmp_path / "killed.checkpoints", str(archs[0]), 3, recipe, digits)
    checkpoint.parent.mkdir()
    init_seed(3)  # the kill: the same training as build_ground_truth's, stopped after its first epoch
    model = build_standalone(tiny, archs[0])
    train_standalone(model, digits, recipe, seed=3, progress=False, checkpoint_path=checkpoint, stop_after_epochs=1)
    saved = load_checkpoint(checkpoint)
    save_checkpoint(checkpoint, {**saved, "seconds": 1000.0})  # a mark: a row that resumed counts these seconds
    resumed = build_ground_truth(tiny, digits, archs[:1], recipe, out, seed=3)
    assert _strip_seconds(resumed) == _strip_seconds(full)
    assert resumed[0].seconds > 1000.0 > full[0].seconds
    assert not checkpoint.exists()
    other = {
        training_checkpoint(checkpoint.parent, str(archs[0]), 4, recipe, digits),
        training_checkpoint(checkpoint.parent, str(archs[0]), 3, RECIPE, digits),
        training_checkpoint(checkpoint.parent, str(archs[1]), 3, recipe, digits),
    }
    assert checkpoint not in other and len(other) == 3  # another seed, recipe or arch never resumes it


def test_side_by_side_rows_equal_one_after_another_and_a_repeated_arch_trains_once(tiny, digits, tmp_path):
    archs = stratified_sample(tiny, 3, 2, seed=0, flops=_flops)
    alone = build_ground_truth(tiny, digits, archs, RECIPE, tmp_path / "alone.csv", processes=1)
    paired = build_ground_truth(tiny, digits, [*archs, archs[0]], RECIPE, tmp_path / "paired.csv", processes=2)
    assert _strip_seconds(paired) == _strip_seconds(alone)
    assert len(GroundTruthFile(tmp_path / "paired.csv").read()) == 3


def test_torn_last_line_is_dropped_and_the_file_stays_appendable(tmp_path):
    path = tmp_path / "gt.csv"
    file = GroundTruthFile(path)
    rows = [GroundTruthRow(f"e3:k{k}-e3:k3-e3:k3", 50.0, 51.0, 0.1, 0.01, 1.0, 0) for k in (3, 5)]
    for row in rows:
        file.append(row)
    with path.open("a") as handle:
        handle.write("e3:k7-e3:k3-e3:k3,50.0,5")  # a kill in the middle of a write
    assert file.read() == rows
    file.append(rows[0])
    assert file.read() == [*rows, rows[0]]
    assert path.read_text().count("\n") == 4  # the header and three rows: the torn line is gone


def test_foreign_or_malformed_csv_is_a_one_line_error(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(MixPathError, match="columns"):
        GroundTruthFile(path).read()
    path.write_text("arch,val_acc,test_acc,flops,params,seconds,seed\nx,1,2,3,4,5,not-a-seed\n")
    with pytest.raises(MixPathError, match="line 2"):
        GroundTruthFile(path).read()
    with pytest.raises(MixPathError):
        load_ground_truth(tmp_path / "missing.csv")


def test_rows_of_several_seeds_are_averaged(tmp_path):
    file = GroundTruthFile(tmp_path / "gt.csv")
    file.append(GroundTruthRow("a", 50.0, 60.0, 1.0, 0.1, 1.0, 0))
    file.append(GroundTruthRow("a", 52.0, 64.0, 1.0, 0.1, 1.0, 1))
    file.append(GroundTruthRow("b", 40.0, 41.0, 2.0, 0.2, 1.0, 0))
    rows = load_ground_truth(tmp_path / "gt.csv")
    assert rows["a"].val_acc == 51.0 and rows["a"].test_acc == 62.0
    assert rows["b"].test_acc == 41.0


def test_benchmark_table_ground_truth(tmp_path):
    rows = benchmark_ground_truth("nb201", 6, tmp_path / "nb201.csv", seed=0)
    assert len(rows) == 6 and len({row.arch for row in rows}) == 6
    assert all(row.seed == -1 and 0 < row.test_acc <= 100 and row.seconds > 0 for row in rows)
    assert benchmark_ground_truth("nb201", 6, tmp_path / "nb201.csv", seed=0) == rows  # rerun: nothing added
    with pytest.raises(MixPathError):
        benchmark_ground_truth("nb999", 3, tmp_path / "x.csv")
