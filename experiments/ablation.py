"""The Shadow BN ablation at CPU scale: BN policies (m=4), SPOS and FairNAS, ranked against one ground truth.

Stages (each resumable; rerun the same command after a kill and it continues; results are written as each
piece finishes):

    python experiments/ablation.py gt --seed 0          # stand-alone ground truth (32 archs)
    python experiments/ablation.py gt --seed 1          # noise floor: 8 of them again with another seed
    python experiments/ablation.py supernets            # train 6 supernets, score the ground-truth archs
    python experiments/ablation.py rank                 # tau / rho / top-k with intervals, table, plots
    python experiments/ablation.py report               # feature analysis of the shadow supernet
    python experiments/ablation.py all                  # everything in order

``--only NAME,...`` restricts ``supernets`` to some of them (to run two chunks side by side).
Run folders (checkpoints) go to experiments/runs/ablation (ignored by git); committed outputs go to
experiments/results/. The protocol below is fixed before any result was seen; do not tune it to a result.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from mixpath.data import load_dataset
from mixpath.io import write_json
from mixpath.ranking import GroundTruthFile, build_ground_truth, stratified_sample
from mixpath.ranking.scoring import supernet_scores
from mixpath.spaces import get_space
from mixpath.training import TrainConfig, train_supernet
from mixpath.training.standalone import Recipe

ROOT = Path(__file__).resolve().parent
RUNS = ROOT / "runs" / "ablation"
RESULTS = ROOT / "results"
OUT = RESULTS / "ablation"

PROTOCOL = {
    # fmnist-s1 was the plan; at this machine's load (2 cores, load average ~15) one m=4 supernet epoch on
    # 4000 Fashion-MNIST images took 613 s and a 2-epoch ground-truth arch 10 min, so the whole ablation
    # runs on the tiny space with scikit-learn digits instead (see experiments/README.md).
    "space": "tiny",
    "data": "digits",
    "train_subset": None,  # all training images left after the validation split (~1,040)
    "val_size": 400,  # held-out validation images the supernets score on (from the training set)
    "split_seed": 0,
    "m": 4,
    "supernet_epochs": 80,  # batch 96: ~10 steps per epoch, ~800 steps
    "fairnas_epochs": 10,  # fairnas trains all 8 single-path choices per step: 10 epochs = the same number of
    # single-path forward/backward passes as 80 epochs of spos or mixpath (80 epochs took ~90 min here)
    "supernet_seed": 0,
    "gt_archs": 32,  # stratified: 8 single-path, 8 per mean-path-count bin (1,2], (2,3], (3,4]
    "gt_epochs": 30,  # batch 96, lr 0.05, SGD + cosine (mixpath.training.standalone.Recipe defaults)
    "gt_seed": 0,
    "noise_seed": 1,
    "noise_every": 4,  # the noise-floor set: every 4th ground-truth arch (2 per path-count bin), 8 archs
    "calibrations": ["none", "exact"],
    "calib_size": 512,  # training images for exact BN calibration
    "target": "test",  # stand-alone test accuracy (359 digits images) is the ground truth ranked against
    "bootstrap": 2000,
}
# name: (strategy, m, BN policy); spos and fairnas train single paths, their BN policy has nothing to act on
SUPERNETS = {
    "shadow": ("mixpath", 4, "shadow"),
    "shared": ("mixpath", 4, "shared"),
    "scaled": ("mixpath", 4, "scaled"),
    "exponential": ("mixpath", 4, "exponential"),
    "spos": ("spos", 1, "shadow"),
    "fairnas": ("fairnas", 1, "shadow"),
}

log = logging.getLogger("ablation")


def gt_path(seed: int) -> Path:
    """The merged ground truth of one training seed (written by ``merge_ground_truth``)."""
    return OUT / f"groundtruth_seed{seed}.csv"


def gt_part_path(seed: int, part: int, parts: int) -> Path:
    return OUT / "parts" / f"groundtruth_seed{seed}_part{part}of{parts}.csv"


def merge_ground_truth(seed: int) -> list:
    """Join the part files of ``seed`` into ``gt_path(seed)``, in the order of the architecture list."""
    order = {arch: i for i, arch in enumerate(get_space(PROTOCOL["space"]).format(a) for a in gt_archs())}
    rows = [
        row
        for part in sorted((OUT / "parts").glob(f"groundtruth_seed{seed}_part*.csv"))
        for row in GroundTruthFile(part).read()
    ]
    rows.sort(key=lambda row: order[row.arch])
    target = gt_path(seed)
    target.unlink(missing_ok=True)
    for row in rows:
        GroundTruthFile(target).append(row)
    return rows


def gt_archs() -> list:
    space = get_space(PROTOCOL["space"])
    return stratified_sample(space, PROTOCOL["gt_archs"], PROTOCOL["m"], PROTOCOL["gt_seed"])


def dataset():
    return load_dataset(
        PROTOCOL["data"],
        val_size=PROTOCOL["val_size"],
        split_seed=PROTOCOL["split_seed"],
        train_subset=PROTOCOL["train_subset"],
    )


def record_runtime(stage: str, seconds: float) -> None:
    """Append one line {stage, seconds, finished} to runtime.jsonl (chunks running side by side append too)."""
    OUT.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"stage": stage, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    with (OUT / "runtime.jsonl").open("a") as handle:
        handle.write(line + "\n")


def stage_gt(seed: int, part: int, parts: int) -> None:
    """Train part ``part`` (1-based) of ``parts`` of the ground-truth list (every parts-th architecture)."""
    archs = gt_archs()
    if seed != PROTOCOL["gt_seed"]:
        archs = archs[:: PROTOCOL["noise_every"]]
    recipe = Recipe(epochs=PROTOCOL["gt_epochs"])
    out = gt_part_path(seed, part, parts)
    build_ground_truth(get_space(PROTOCOL["space"]), dataset(), archs[part - 1 :: parts], recipe, out, seed=seed)


def train_config(name: str) -> TrainConfig:
    strategy, m, policy = SUPERNETS[name]
    return TrainConfig(
        space=PROTOCOL["space"],
        data=PROTOCOL["data"],
        strategy=strategy,
        m=m,
        bn_policy=policy,
        epochs=PROTOCOL["fairnas_epochs"] if strategy == "fairnas" else PROTOCOL["supernet_epochs"],
        seed=PROTOCOL["supernet_seed"],
        val_size=PROTOCOL["val_size"],
        train_subset=PROTOCOL["train_subset"],
    )


def stage_supernets(names: list[str]) -> None:
    space = get_space(PROTOCOL["space"])
    archs = [space.format(arch) for arch in gt_archs()]
    for name in names:
        run_dir = RUNS / name
        started = time.perf_counter()
        result = train_supernet(train_config(name), run_dir, resume=(run_dir / "config.json").exists(), progress=False)
        scores = {
            mode: supernet_scores(run_dir, archs, calibration=mode, calib_size=PROTOCOL["calib_size"])
            for mode in PROTOCOL["calibrations"]
        }
        write_json(
            OUT / f"scores_{name}.json",
            {"supernet": name, "config": train_config(name).to_json(), "training": result.metrics, "scores": scores},
        )
        record_runtime(f"supernet {name} (train + score)", time.perf_counter() - started)
        log.info("supernet %s done in %.0f s", name, time.perf_counter() - started)


def stage_rank() -> None:
    from experiments_ablation_tables import write_ablation_results

    write_ablation_results(PROTOCOL, SUPERNETS, RESULTS, gt_path(PROTOCOL["gt_seed"]), gt_path(PROTOCOL["noise_seed"]))


def stage_report() -> None:
    from mixpath.reporting import run_report

    run_report(RUNS / "shadow", RESULTS / "ablation_report")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["gt", "supernets", "rank", "report", "all"])
    parser.add_argument("--seed", type=int, default=PROTOCOL["gt_seed"], help="ground-truth training seed")
    parser.add_argument("--part", default="1/1", help="gt: train part i of n of the list (i/n), for parallel chunks")
    parser.add_argument("--only", default=",".join(SUPERNETS), help="comma-separated supernets to train")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: two stages side by side)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    write_json(OUT / "protocol.json", {"protocol": PROTOCOL, "supernets": SUPERNETS})
    part, parts = (int(v) for v in args.part.split("/"))
    stages = ["gt", "gt-noise", "supernets", "rank", "report"] if args.stage == "all" else [args.stage]
    for stage in stages:
        started = time.perf_counter()
        if stage == "gt":
            stage_gt(args.seed, part, parts)
        elif stage == "gt-noise":
            stage_gt(PROTOCOL["noise_seed"], part, parts)
        elif stage == "supernets":
            stage_supernets([name for name in args.only.split(",") if name])
        elif stage == "rank":
            stage_rank()
        elif stage == "report":
            stage_report()
        if stage.startswith("gt"):
            seed = args.seed if stage == "gt" else PROTOCOL["noise_seed"]
            record_runtime(f"ground truth seed {seed} part {part}/{parts}", time.perf_counter() - started)
        log.info("stage %s finished in %.0f s", stage, time.perf_counter() - started)


if __name__ == "__main__":
    main(sys.argv[1:])
