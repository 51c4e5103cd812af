"""Retraining side by side or one after another: wall time of ``retrain_architectures`` both ways.

    python benchmarks/bench_side_by_side.py            # 2 fmnist-s1 archs of the pipeline's budget, 12,000 images
    python benchmarks/bench_side_by_side.py --tiny     # a smoke run (seconds; writes nothing)

The same architectures (random ones of the pipeline's median-FLOPs budget, as its random baseline draws them)
retrain one epoch each way: one after another in this process with every core's thread (``processes=1``), and
side by side, one process per core (``processes=None``, each with its share of the threads). The two ways
alternate over ``--repeats`` rounds (A/B, B/A, ...) so that a swing of the machine's speed falls on both; the
figure is the median over rounds of side-by-side time / one-after-another time (below 1: side by side is faster).
Run on idle cores; the load average is recorded. Results go to ``--out`` (JSON) and print as a line each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mixpath.baselines import median_flops, random_equal_flops
from mixpath.data import load_dataset
from mixpath.evaluation import CostModel
from mixpath.io import write_json
from mixpath.retraining import RetrainEntry, retrain_architectures
from mixpath.spaces import get_space
from mixpath.training import Recipe
from mixpath.training.side_by_side import usable_cores

HERE = Path(__file__).resolve().parent


def entries(space_name: str, count: int) -> list[RetrainEntry]:
    """``count`` architectures of the median-FLOPs budget (m=4), drawn with seeds 0, 1, ..."""
    space = get_space(space_name)
    cost = CostModel(space)
    budget = median_flops(space, 4, cost)
    return [RetrainEntry(f"a{seed}", random_equal_flops(space, 4, budget, cost, seed)) for seed in range(count)]


def wall_time(space_name: str, data, chosen: list[RetrainEntry], recipe: Recipe, processes: int | None) -> float:
    """Seconds ``retrain_architectures`` takes for ``chosen`` into a fresh folder."""
    with tempfile.TemporaryDirectory() as folder:
        tick = time.perf_counter()
        retrain_architectures(get_space(space_name), data, chosen, recipe, folder, progress=False, processes=processes)
        return time.perf_counter() - tick


def measure(space_name: str, data_name: str, archs: int, images: int, batch: int, repeats: int) -> dict:
    data = load_dataset(data_name, train_subset=images)
    chosen = entries(space_name, archs)
    recipe = Recipe(epochs=1, batch_size=batch, lr=0.1)
    rounds = []
    for round_ in range(repeats):
        order = (1, None) if round_ % 2 == 0 else (None, 1)
        seconds = {processes: wall_time(space_name, data, chosen, recipe, processes) for processes in order}
        rounds.append({"one_after_another_s": seconds[1], "side_by_side_s": seconds[None]})
    return {
        "space": space_name,
        "data": data_name,
        "archs": archs,
        "train_images": images,
        "cores": usable_cores(),
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "ratio": statistics.median(r["side_by_side_s"] / r["one_after_another_s"] for r in rounds),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny space, digits, one round: a smoke run")
    parser.add_argument("--archs", type=int, default=2)
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "side_by_side.json")
    args = parser.parse_args()
    if args.tiny:  # a smoke run leaves the results file alone
        row = measure("tiny", "digits", 2, 192, 32, 1)
    else:
        row = measure("fmnist-s1", "fashion-mnist", args.archs, args.images, 96, args.repeats)
        write_json(args.out, row)
    for r in row["rounds"]:
        print(f"one after another {r['one_after_another_s']:.1f} s, side by side {r['side_by_side_s']:.1f} s")
    print(json.dumps({k: row[k] for k in ("archs", "cores", "threads", "ratio", "load_average")}))


if __name__ == "__main__":
    main()
