"""Candidate evaluation speed (BN calibration + validation) of one configuration; prints one JSON line.

    python benchmarks/bench_candidates.py --impl mixpath            # SupernetEvaluator, default settings
    python benchmarks/bench_candidates.py --impl mixpath-unfolded   # the same, validation without BN folding
    python benchmarks/bench_candidates.py --impl mixpath-ema        # the same, SPOS's 200-batch re-estimation
    python benchmarks/bench_candidates.py --impl reference          # reference supernet, SPOS re-estimation

fmnist-s1 at m=4 on Fashion-MNIST with the default split (54,000 training / 6,000 validation images) and
a freshly initialised supernet (speed does not depend on the weights). ``mixpath`` scores the way a search
does: exact calibration on a fixed 2,048-image subset, validation in batches of 512 of the extracted subnet
with its BNs folded into its convolutions (costs left out); ``mixpath-unfolded`` validates on the supernet.
``reference`` resets every BN, re-estimates on 200 batches of 100 images in train mode (20,000 images) and
validates in batches of 512, NCHW. ``mixpath-ema`` runs mixpath's code with the reference's protocol, which
separates what the implementation gains from what the cheaper calibration gains. Whether the cheaper
calibration ranks as well is ``bench_ranking.py``'s question.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import peak_rss_mb, rss_mb  # noqa: E402
from reference_supernet import ReferenceSupernet, spos_evaluate  # noqa: E402

from mixpath.data import load_dataset  # noqa: E402
from mixpath.evaluation import CalibrationSettings, SupernetEvaluator, calibration_images  # noqa: E402
from mixpath.spaces import get_space  # noqa: E402
from mixpath.supernet import build_supernet  # noqa: E402

IMPLS = ("mixpath", "mixpath-unfolded", "mixpath-ema", "reference")
SPACE, M = "fmnist-s1", 4


def measure(impl: str, archs: int = 3, seed: int = 0) -> dict:
    """Score ``archs`` random architectures after one untimed warm-up architecture."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    space = get_space(SPACE)
    dataset = load_dataset("fashion-mnist")
    rng = random.Random(seed)
    candidates = [space.random_architecture(rng, M) for _ in range(archs + 1)]
    torch.manual_seed(0)
    if impl == "reference":
        model = ReferenceSupernet(space, M)
        calib = calibration_images(dataset, 200 * 100, seed).x

        def evaluate(arch):
            spos_evaluate(model, arch, calib, dataset.val_x, dataset.val_y)

    else:
        evaluator = SupernetEvaluator(
            build_supernet(space, M),
            dataset,
            calibration=CalibrationSettings("ema" if impl == "mixpath-ema" else "exact"),
            cost_model=lambda arch: {},
            fold_bn=impl != "mixpath-unfolded",
        )

        def evaluate(arch):
            evaluator.evaluate([arch])

    rss = rss_mb()
    evaluate(candidates[0])
    start = time.perf_counter()
    for arch in candidates[1:]:
        evaluate(arch)
    seconds = time.perf_counter() - start
    return {
        "impl": impl,
        "space": SPACE,
        "m": M,
        "archs": archs,
        "threads": torch.get_num_threads(),
        "archs_per_min": 60.0 * archs / seconds,
        "seconds_per_arch": seconds / archs,
        "rss_mb": rss,
        "peak_rss_mb": peak_rss_mb(),
        "eval_mb": peak_rss_mb() - rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=IMPLS, default="mixpath")
    parser.add_argument("--archs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(measure(args.impl, args.archs, args.seed)))


if __name__ == "__main__":
    main()
