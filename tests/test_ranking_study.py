"""The ranking study's driver (experiments/ranking.py) carries out a protocol end to end, on a tiny one."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import ranking  # noqa: E402

from mixpath.ranking.groundtruth import GroundTruthRow  # noqa: E402

TINY_PROTOCOL = """
name = "tiny-study"
[data]
dataset = "digits"
val_size = 400
split_seed = 0
[space]
name = "tiny"
m = 4
[ground_truth]
archs = 8
sample_seed = 0
seeds = [0, 1]
threads_per_process = 1
lr = 0.05
batch_size = 96
epochs_ladder = [1, 2]
min_seed_tau = {min_tau}
[supernet]
strategy = "mixpath"
bn_policy = "shadow"
seed = 0
batch_size = 96
threads = 1
study_epochs = 2
checkpoints = [1, 2]
short_runs_epochs = [1]
[supernet.schedules.reference]
lr = 0.025
warmup_epochs = 0
[supernet.schedules.warm]
lr = 0.1
warmup_epochs = 1
[scoring]
calibrations = ["none", "exact"]
calib_size = 128
calib_batches = 2
[selection]
target = "val"
max_minutes = 30
tie_margin = 0.05
[ablation]
m4 = ["shadow", "shared"]
m1 = ["spos"]
bootstrap = 200
bootstrap_seed = 0
report_target = "test"
"""


def study(tmp_path: Path, min_tau: float) -> ranking.Study:
    protocol = tmp_path / "protocol.toml"
    protocol.write_text(TINY_PROTOCOL.replace("{min_tau}", str(min_tau)))
    return ranking.Study(protocol, root=tmp_path)


def test_sizing_ladder_moves_up_when_the_seeds_disagree(tmp_path):
    strict = study(tmp_path, min_tau=1.01)  # no chunk can pass: every rung is tried, the last one is kept
    assert strict.rung() == (1, False)
    ranking.stage_gt(strict, 0, 1)
    assert strict.seed_tau(1, strict.first_chunk()) is not None
    assert strict.seed_tau(2, strict.first_chunk()) is not None
    assert strict.rung() == (2, True)
    assert len(strict.gt_rows(2)) == 2 * 8  # the whole list at the last rung, both seeds
    assert len(strict.gt_rows(1)) == 2 * len(strict.first_chunk())  # the failed rung: the chunk only
    machines = [json.loads(line) for line in (strict.gt_dir(2) / "worker0of1.machines.jsonl").read_text().splitlines()]
    assert {(m["arch"], m["seed"]) for m in machines} == set(strict.gt_rows(2))  # each row's CPU is on record
    assert all(m["cpu"] and m["threads"] == 1 for m in machines)


def test_ground_truth_trains_in_bin_balanced_chunks(tmp_path):
    s = study(tmp_path, min_tau=0.0)
    archs = s.archs()
    assert [a for a, _ in s.gt_jobs(settled=False)[::2]] == archs[0::4]  # the first chunk alone
    order = [a for a, _ in s.gt_jobs(settled=True)[::2]]
    assert order == archs[0::4] + archs[1::4] + archs[2::4] + archs[3::4]
    assert [seed for _, seed in s.gt_jobs(settled=True)[:4]] == [0, 1, 0, 1]  # both seeds of an arch side by side


def test_a_worker_left_alone_trains_the_other_workers_jobs_and_skips_claimed_ones(tmp_path):
    s = study(tmp_path, min_tau=-1.0)
    first = s.gt_jobs(settled=False)[1]  # worker 1's first job: claimed by a "worker 1" that holds it
    lock = ranking.claim_file(s, 1, first)
    lock.parent.mkdir(parents=True)
    fd = os.open(lock.parent / f".{lock.name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: conflicts even in this process
    try:
        assert ranking.train_gt_job(s, 1, first, 0, 2) is False and not s.gt_rows(1)
    finally:
        os.close(fd)
    ranking.stage_gt(s, 0, 2)  # worker 1 never comes: worker 0 takes its jobs too, from the end of the list
    assert s.rung() == (1, True) and len(s.gt_rows(1)) == 16
    assert not (s.gt_dir(1) / "worker1of2.csv").exists()
    assert not any((s.gt_dir(1) / "checkpoints").iterdir())  # each deleted once its row was written


@pytest.mark.slow
def test_study_end_to_end_on_a_tiny_protocol(tmp_path, monkeypatch):
    s = study(tmp_path, min_tau=-1.0)
    ranking.stage_gt(s, 0, 1)
    assert s.rung() == (1, True) and len(s.gt_rows(1)) == 16
    ranking.stage_supernet(s, "shadow", "reference", 2)
    ranking.stage_supernet(s, "shadow", "warm", 2)
    ranking.stage_supernet(s, "shadow", "warm", 1)  # a complete shorter run
    ranking.stage_supernet(s, "shared", "warm", 1)
    snapshots = sorted(p.name for p in (s.results / "supernets").glob("*.json"))
    assert snapshots == [
        "shadow-reference-e2-epoch1.json",
        "shadow-reference-e2-epoch2.json",
        "shadow-warm-e1-epoch1.json",
        "shadow-warm-e2-epoch1.json",
        "shadow-warm-e2-epoch2.json",
        "shared-warm-e1-epoch1.json",
    ]
    saved = json.loads((s.results / "supernets" / "shadow-warm-e2-epoch1.json").read_text())
    assert saved["config"]["lr"] == 0.1 and saved["config"]["warmup_epochs"] == 1
    assert set(saved["scores"]) == {"none", "exact"} and len(saved["scores"]["exact"]) == 8
    ranking.stage_supernet(s, "shadow", "reference", 2)  # all done: a rerun changes nothing
    assert json.loads((s.results / "supernets" / "shadow-warm-e2-epoch1.json").read_text()) == saved
    shutil.rmtree(s.runs)  # another checkout: the run folders are not in git, the scores are
    with monkeypatch.context() as patched:
        patched.setattr(ranking, "train_supernet", lambda *a, **k: pytest.fail("a scored snapshot was trained again"))
        ranking.stage_supernet(s, "shadow", "reference", 2)

    timing = ranking.stage_timing(s, "shadow", "warm")
    assert timing["epoch_seconds"] > 0 and len(timing["load_average_before"]) == 3
    results = ranking.stage_rank(s)
    assert results["ground_truth"]["archs"] == 8
    choice = results["choice"]
    assert choice["idle_epoch_seconds"] == timing["epoch_seconds"]  # the time limit judges idle epochs
    assert choice["idle_train_seconds"] == round(int(choice["label"][-1]) * timing["epoch_seconds"], 1)
    assert choice["label"] in {"shadow-reference-e2", "shadow-warm-e2", "shadow-warm-e1"}
    assert not any(e["complete_run"] for e in results["snapshots"] if e["label"].endswith("e2") and e["epoch"] == 1)
    for name in ("ranking.json", "results.md", "tau_vs_images.png"):
        assert (s.results / name).is_file()
    equal = results["equal_flops_exploratory"]
    assert set(equal.pop("seed-to-seed")["concordance"]) == {"supernet"}  # the ceiling: seed 0 against seed 1
    assert equal and all(set(row["concordance"]) == {"supernet", "params", "flops"} for row in equal.values())
    assert "Exploratory" in (s.results / "results.md").read_text()
    rho = results["preferences_exploratory"]["rho"]
    assert set(rho) == {"paths per layer", "kernel size", "share of e6 layers", "params"}
    assert all("ground truth" in row and all(-1 <= v <= 1 for v in row.values()) for row in rho.values())
    if choice["label"].endswith("warm-e1"):
        assert set(results["ablation"]["rows"]) == {"shadow", "shared"}
        assert set(results["ablation"]["paired_exact"]) == {"shadow - params", "shadow - flops", "shadow - shared"}

    # `all` finds the ground truth and the study runs done, and trains only what is missing: the chosen
    # schedule's short run and the ablation's variants at the recipe the rule then picks
    ranking.stage_all(s, argparse.Namespace(protocol=tmp_path / "protocol.toml", root=tmp_path))
    final = json.loads((s.results / "ranking.json").read_text())
    recipe = final["choice"]["label"].split("-", 1)[1]
    length = int(recipe.rsplit("-e", 1)[1])
    for variant in ("shadow", "shared", "spos"):
        assert (s.results / "supernets" / f"{variant}-{recipe}-epoch{length}.json").is_file(), variant
    assert not (s.results / "supernets" / f"shared-{recipe}-epoch1.json").is_file() or length == 1  # no snapshots
    assert set(final["ablation"]["rows"]) == {"shadow", "shared", "spos"}
    assert (s.results / "ablation_tau.png").is_file()


def test_concordance_counts_pairs_ordered_as_the_truth_and_ties_as_half():
    truth = np.array([1.0, 2.0, 3.0, 3.0])
    pairs = np.array([[0, 1], [1, 2], [0, 2], [2, 3]])  # the last is tied in the truth: left out
    assert ranking.concordance(np.array([0.0, 1.0, 2.0, 9.0]), truth, pairs) == 1.0
    assert ranking.concordance(np.array([2.0, 1.0, 0.0, 9.0]), truth, pairs) == 0.0
    assert ranking.concordance(np.array([0.0, 0.0, 1.0, 9.0]), truth, pairs) == pytest.approx(2.5 / 3)


def test_equal_flops_concordance_pairs_only_architectures_of_equal_flops():
    rows = {  # two FLOPs groups; params order the 1-FLOPs pair right and the 5-FLOPs pair wrong
        name: GroundTruthRow(name, acc, acc, flops, params, 1.0, -1)
        for name, acc, flops, params in [("a", 80, 1.0, 1), ("b", 90, 1.05, 2), ("c", 70, 5.0, 4), ("d", 60, 5.2, 5)]
    }
    supernet = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.0}  # right on both pairs
    out = ranking.equal_flops_concordance(
        {"supernet": supernet, "params": {k: r.params for k, r in rows.items()}}, rows, "test", 200, 0
    )
    assert out["pairs"] == 2  # (a, b) and (c, d); the pairs across groups differ by far more than 10 %
    assert out["concordance"]["supernet"]["value"] == 1.0
    assert out["concordance"]["params"]["value"] == 0.5
    assert out["supernet - params"]["value"] == 0.5
