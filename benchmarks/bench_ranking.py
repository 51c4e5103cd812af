"""Does the cheaper calibration rank as well? Exact calibration vs SPOS's 200-batch re-estimation.

    python benchmarks/bench_ranking.py --run experiments/runs/ablation/shadow \\
        --ground-truth experiments/results/ablation/groundtruth_seed0.csv

On a trained supernet (a run folder) and the architectures of a ground-truth CSV (stand-alone accuracies),
each architecture is scored twice on the run's validation split: after ``exact`` calibration (mixpath's
default: cumulative statistics over a fixed subset of up to 2,048 training images, batches of 100) and
after SPOS-style ``ema`` re-estimation over 200 batches of 100 images (the training images are cycled when
fewer than 20,000 exist). Prints one JSON line: Kendall tau of each against the ground truth's ``--target``
accuracy, of the two against each other, a paired bootstrap interval of the difference of the first two,
and the seconds each calibration took per architecture.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mixpath.evaluation import calibrate_bn, calibration_images, score
from mixpath.ranking.groundtruth import load_ground_truth
from mixpath.ranking.metrics import kendall_tau, tau_difference
from mixpath.training import load_run

SPOS_BATCHES, BATCH = 200, 100


def spos_images(images: torch.Tensor, count: int = SPOS_BATCHES * BATCH) -> torch.Tensor:
    """``count`` images: ``images`` repeated in order as often as needed (SPOS cycles its data loader)."""
    repeats = -(-count // len(images))
    return images.repeat(repeats, *([1] * (images.dim() - 1)))[:count]


def compare(run_dir: Path, ground_truth: Path, target: str = "test", exact_size: int = 2048) -> dict:
    run = load_run(run_dir, device="cpu")
    truth = load_ground_truth(ground_truth)
    archs = [run.space.parse(text, run.supernet.m) for text in truth]
    data = run.dataset
    exact_images = calibration_images(data, exact_size).x
    ema_images = spos_images(calibration_images(data, SPOS_BATCHES * BATCH).x)
    scores: dict[str, list[float]] = {"exact": [], "ema200": []}
    seconds = {"exact": 0.0, "ema200": 0.0}
    for arch in archs:
        for name, images, mode in (("exact", exact_images, "exact"), ("ema200", ema_images, "ema")):
            start = time.perf_counter()
            calibrate_bn(run.supernet, arch, images, BATCH, mode)
            scores[name].append(score(run.supernet, arch, data.val)["accuracy"])
            seconds[name] += time.perf_counter() - start
    gt = [truth[text].accuracy(target) for text in truth]
    difference = tau_difference(scores["exact"], scores["ema200"], gt)
    low, high = difference.low, difference.high
    return {
        "run": str(run_dir),
        "ground_truth": str(ground_truth),
        "target": target,
        "archs": len(archs),
        "calibration_images": {"exact": len(exact_images), "ema200": len(ema_images)},
        "tau_exact_vs_truth": kendall_tau(scores["exact"], gt),
        "tau_ema200_vs_truth": kendall_tau(scores["ema200"], gt),
        "tau_exact_vs_ema200": kendall_tau(scores["exact"], scores["ema200"]),
        "tau_difference_interval": [low, high],
        "seconds_per_arch": {name: s / len(archs) for name, s in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--ground-truth", type=Path, required=True)
    parser.add_argument("--target", choices=("test", "val"), default="test")
    args = parser.parse_args()
    print(json.dumps(compare(args.run, args.ground_truth, args.target)))


if __name__ == "__main__":
    main()
