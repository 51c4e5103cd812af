"""Supernet training throughput on 1 process against 2 torchrun processes on this machine.

    python benchmarks/bench_distributed.py                      # fmnist-s1, mixpath m=4, batch 96, 3 repeats
    python benchmarks/bench_distributed.py --space tiny --data digits --images 960

Every configuration trains the same global batches for one epoch of ``--images`` training images
through ``torchrun --standalone`` and reports the trainer's own images/s (training steps only: data
loading and the end-of-epoch evaluation are outside the clock):

- 1 process x 1 thread: the baseline;
- 1 process x P threads: what one process makes of the same P cores;
- P processes x 1 thread: the distributed trainer (gloo on the CPU).

Scaling efficiency = (P processes' images/s) / (P x 1 process's images/s). Each configuration runs
``--repeats`` times, interleaved, and the median is reported, because other programs share the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(args: argparse.Namespace) -> None:
    """One torchrun process: train one epoch, rank 0 writes the trainer's throughput to ``args.out``."""
    import torch

    from mixpath import distributed
    from mixpath.training import TrainConfig, train_supernet

    torch.set_num_threads(args.threads)
    config = TrainConfig(
        space=args.space,
        data=args.data,
        strategy="mixpath",
        m=args.m,
        batch_size=args.batch_size,
        train_subset=args.images,
        epochs=1,
        eval_archs=0,
    )
    result = train_supernet(config, Path(args.out).with_suffix(""), device="cpu", progress=False)
    if distributed.is_main():
        Path(args.out).write_text(json.dumps(result.last))


def measure(args: argparse.Namespace, processes: int, threads: int, folder: Path) -> float:
    """Images/s of one launch of ``processes`` x ``threads``."""
    out = folder / f"p{processes}t{threads}-{time.monotonic_ns()}.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command += ["--", __file__, "--worker", "--out", str(out), "--threads", str(threads), "--space", args.space]
    command += ["--data", args.data, "--m", str(args.m), "--batch-size", str(args.batch_size)]
    command += ["--images", str(args.images)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="fmnist-s1")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--m", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=96, help="global batch per optimizer step")
    parser.add_argument("--images", type=int, default=1920, help="training images in the epoch")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    p = args.processes
    configs = {"1 process x 1 thread": (1, 1), f"1 process x {p} threads": (1, p), f"{p} processes x 1 thread": (p, 1)}
    speeds: dict[str, list[float]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for name, (processes, threads) in configs.items():
                speeds[name].append(measure(args, processes, threads, Path(folder)))
    print(
        f"{args.space}, {args.data}, mixpath m={args.m}, global batch {args.batch_size}, {args.images} images, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, median of {args.repeats}"
    )
    print(f"{'configuration':<26}{'images/s':>10}   runs")
    for name, values in speeds.items():
        print(f"{name:<26}{statistics.median(values):>10.1f}   {', '.join(f'{v:.1f}' for v in values)}")
    base = statistics.median(speeds["1 process x 1 thread"])
    dist = statistics.median(speeds[f"{p} processes x 1 thread"])
    threaded = statistics.median(speeds[f"1 process x {p} threads"])
    print(f"speed-up of {p} processes over 1: {dist / base:.2f}x, scaling efficiency {dist / (p * base):.0%}")
    print(f"{p} processes against 1 process with {p} threads: {dist / threaded:.2f}x")


if __name__ == "__main__":
    main()
