"""Evaluation speed and cost-objective quality on fmnist-s1 (m = 4, a freshly initialised supernet).

Prints three markdown tables:

1. evaluation throughput (architectures per minute, calibration included) and the split between
   calibration and validation time, for exact calibration and for SPOS-style EMA re-estimation;
2. the cost model's speed: filling its per-layer tables, then 10^5 calls;
3. the latency lookup table: its build time, and its prediction error against the measured end-to-end
   latency of stand-alone models (mean absolute % error, Kendall tau of predicted vs measured).

Speed does not depend on the weights, so the supernet is not trained. Run from the repository root::

    python benchmarks/bench_evaluation.py                 # ~3-4 min on 2 idle cores
    python benchmarks/bench_evaluation.py --archs 2 --latency-archs 10   # quicker
    python benchmarks/bench_evaluation.py --threads 1     # steadier timings when other jobs share the CPU
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import time

import torch
from scipy.stats import kendalltau

from mixpath.data import load_dataset
from mixpath.evaluation import (
    CalibrationSettings,
    CostModel,
    SupernetEvaluator,
    build_latency_table,
    layer_choices,
    measure_latency,
)
from mixpath.spaces import Architecture, get_space
from mixpath.supernet import build_standalone, build_supernet

SPACE, M = "fmnist-s1", 4


def throughput(supernet, dataset, archs: list[Architecture], ema_batches: int) -> list[str]:
    rows = [
        "| calibration | images calibrated / arch | archs / min | calibration s / arch | validation s / arch "
        "| calibration share |",
        "|---|---|---|---|---|---|",
    ]
    for calibration in (
        CalibrationSettings("exact"),
        CalibrationSettings("ema", batches=ema_batches),
        CalibrationSettings("none"),
    ):
        mode = calibration.mode
        evaluator = SupernetEvaluator(supernet, dataset, calibration=calibration)
        started = time.perf_counter()
        evaluator.evaluate(archs)
        elapsed = time.perf_counter() - started
        calib, val = evaluator.seconds["calibration"], evaluator.seconds["validation"]
        label = {"exact": "exact (OFA)", "ema": f"ema, {ema_batches} batches (SPOS)", "none": "none"}[mode]
        rows.append(
            f"| {label} | {len(evaluator.calib_images)} | {60 * len(archs) / elapsed:.1f} | {calib / len(archs):.2f} "
            f"| {val / len(archs):.2f} | {100 * calib / (calib + val):.0f} % |"
        )
    return rows


def cost_model_speed(space, rng: random.Random) -> list[str]:
    started = time.perf_counter()
    costs = CostModel(space)
    base = space.largest_architecture(M).layers
    for index, spec in enumerate(space.layers):
        for choice in layer_choices(spec, M):
            costs(Architecture((*base[:index], choice, *base[index + 1 :])))
    fill = time.perf_counter() - started
    archs = [space.random_architecture(rng, M) for _ in range(1000)]
    started = time.perf_counter()
    for _ in range(100):
        for arch in archs:
            costs(arch)
    calls = time.perf_counter() - started
    entries = sum(spec.n_choices(M) for spec in space.layers)
    return [
        "| table entries | fill tables (s) | 10^5 calls (s) | per call (us) |",
        "|---|---|---|---|",
        f"| {entries} | {fill:.2f} | {calls:.2f} | {calls / 1e5 * 1e6:.1f} |",
    ]


def latency_error(space, rng: random.Random, n_archs: int, rounds: int = 3) -> list[str]:
    """Predicted vs measured latency. The table's entries and every architecture's end-to-end latency are
    measured the same way: in ``rounds`` rounds spread over time (median of 30 runs each), keeping the
    lowest round, so a burst of other jobs on a shared CPU does not decide a measurement. The table's
    scale is fitted on 5 other random architectures (seed 12345)."""
    started = time.perf_counter()
    table = build_latency_table(space, M, warmup=5, repeats=30, rounds=rounds, calibrate=5, seed=12345)
    build = time.perf_counter() - started
    archs = [space.random_architecture(rng, M) for _ in range(n_archs)]
    models = [build_standalone(space, arch) for arch in archs]
    rounds_ms = [
        [measure_latency(model, space.input_shape, warmup=5, repeats=30) for model in models] for _ in range(rounds)
    ]
    measured = [min(times) for times in zip(*rounds_ms, strict=True)]
    rows = [
        f"table: {sum(map(len, table.layers))} choices timed, built in {build:.1f} s (calibration included), "
        f"scale {table.scale:.3f}; {n_archs} architectures, measured median {statistics.median(measured):.2f} ms\n",
        "| prediction | predicted ms (median) | mean abs error | median signed error | Kendall tau |",
        "|---|---|---|---|---|",
    ]
    for label, predict in (("sum of parts", table.sum_of_parts), ("scaled sum", table.predict)):
        predicted = [predict(arch) for arch in archs]
        errors = [(p - m) / m * 100 for p, m in zip(predicted, measured, strict=True)]
        rows.append(
            f"| {label} | {statistics.median(predicted):.2f} | {statistics.mean(map(abs, errors)):.1f} % "
            f"| {statistics.median(errors):+.1f} % | {kendalltau(predicted, measured).statistic:.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=4, help="architectures scored per calibration mode")
    parser.add_argument("--ema-batches", type=int, default=200, help="EMA batches (of 100 images)")
    parser.add_argument("--latency-archs", type=int, default=20, help="architectures for the latency error")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 is steadier on a busy machine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    space = get_space(SPACE)
    torch.manual_seed(args.seed)
    supernet = build_supernet(space, M)
    dataset = load_dataset("fashion-mnist")
    rng = random.Random(args.seed)
    archs = [space.random_architecture(rng, M) for _ in range(args.archs)]
    print(
        f"# bench_evaluation {datetime.date.today()}: {SPACE}, m={M}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, validation {len(dataset.val_y)} images, batch 512; "
        f"calibration batches of 100; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    print("\n".join(throughput(supernet, dataset, archs, args.ema_batches)), "\n")
    print("\n".join(cost_model_speed(space, rng)), "\n")
    print("\n".join(latency_error(space, rng, args.latency_archs)), "\n")
    print(f"total {time.perf_counter() - started:.0f} s, load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
