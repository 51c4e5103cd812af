"""Is the image-folder loader or the training step the bottleneck? Images/s of each, on a synthetic folder.

    python benchmarks/bench_loader.py                  # 64x64 JPEGs, 10 classes x 120, workers 0, 1, 2: ~4 min
    python benchmarks/bench_loader.py --tiny           # a smoke run of every measurement (seconds)

It writes a folder of ``--classes`` x ``--per-class`` random JPEG images of ``--size`` pixels (quality 90,
like ImageNet's files; 10 % of them 1.5x larger, so resizing varies as it does on real data) and measures,
with the batch size and thread count of a training run:

- **loader**: images/s of ``FolderSource.training_batches`` (decode, random resized crop, flip, normalise,
  collate) alone, with 0, 1 and 2 DataLoader worker processes (``--workers``); the first batch (worker
  start-up) is outside the clock, as it is once per epoch;
- **step**: images/s of the training step alone (``train_step`` of a MixPath supernet, m=``--m``, on a batch
  already in memory, sampled architectures as in training) for every one of ``--spaces``, sized for the images;
- **together**: images/s of the trainer's loop over the loader's batches (loader and step sharing the cores,
  as in ``mixpath train --data imagefolder``), per space and worker count.

With 0 workers loading and stepping take turns (*together* is below both); with workers, loading overlaps the
step, and the loader is the bottleneck when *together* stays clearly below *step*, near *loader*. Each figure is
the median of ``--repeats`` runs, interleaved. Results go to ``--out`` (JSON) and print as a table. Training threads:
``torch.set_num_threads(--threads)``; workers are extra processes (each decodes on one thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mixpath.data import FolderSource, load_folder_dataset
from mixpath.spaces import get_space, mbconv_space
from mixpath.supernet import build_supernet
from mixpath.training import make_sampler
from mixpath.training.config import TrainConfig
from mixpath.training.seeding import step_rng, torch_generator
from mixpath.training.step import TrainState, train_step

SPACES = ("imagenet-s2", "rgb-small")
"""``rgb-small``: a 4-layer mbconv space declared here, so that a step as cheap as a small model's is measured too
(``cifar-s1``, whose stride-1 stem runs its first layers at full resolution, trains ~3 images/s at 64x64 on 2 cores:
pass it with ``--spaces`` to see a step that no loader slows down)."""


def write_folder(root: Path, classes: int, per_class: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c:03d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            side = size * 3 // 2 if i % 10 == 9 else size
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    return root


def space_for(name: str, classes: int, size: int):
    if name == "rgb-small":
        base = mbconv_space("rgb-small", "bench", (3, size, size), classes, [8, 12, 12, 24, 24], [2, 1, 2, 1], 128)
    else:
        base = get_space(name)
    return dataclasses.replace(base.with_input_size(size), num_classes=classes)


def with_workers(source: FolderSource, workers: int) -> FolderSource:
    return FolderSource(source.samples, source.transform, source.augment, workers=workers)


def loader_rate(data, batch: int, steps: int, workers: int) -> float:
    """Images/s of ``steps`` training batches after the first."""
    batches = with_workers(data.train, workers).training_batches(batch, 0, functools.partial(torch_generator, 0))
    next(batches)
    start = time.perf_counter()
    seen = sum(len(y) for _, (_, y) in zip(range(steps), batches, strict=False))
    return seen / (time.perf_counter() - start)


def trainer(space, m: int):
    config = TrainConfig(space="bench", m=m)
    torch.manual_seed(0)
    model = build_supernet(space, m, "shadow")
    return (
        TrainState.start(model, config, torch.amp.GradScaler("cpu", enabled=False)),
        make_sampler("mixpath", space, m),
        config,
    )


def step_rate(space, m: int, batch: int, steps: int, warmup: int = 2) -> float:
    """Images/s of ``steps`` training steps on one in-memory batch."""
    state, sampler, config = trainer(space, m)
    x = torch.randn(batch, *space.input_shape)
    y = torch.randint(0, space.num_classes, (batch,))
    times = []
    for step in range(warmup + steps):
        archs = sampler.step_architectures(step_rng(0, "arch", 0, step))
        start = time.perf_counter()
        train_step(state, x, y, archs, config, 0.01)
        times.append(time.perf_counter() - start)
    return batch * steps / sum(times[warmup:])


def together_rate(space, data, m: int, batch: int, steps: int, workers: int) -> float:
    """Images/s of the trainer's loop: the loader's batches, one training step each (after the first)."""
    state, sampler, config = trainer(space, m)
    batches = with_workers(data.train, workers).training_batches(batch, 0, functools.partial(torch_generator, 0))
    seen, start = 0, 0.0
    for step, (x, y) in zip(range(steps + 1), batches, strict=False):
        archs = sampler.step_architectures(step_rng(0, "arch", 0, step))
        train_step(state, x, y, archs, config, 0.01)
        if step == 0:
            start = time.perf_counter()
        else:
            seen += len(y)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="A smoke run: 2 classes x 16 images, 2 steps, 1 repeat.")
    parser.add_argument("--size", type=int, default=64, help="Side of the stored images and of the crops.")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--batch", type=int, default=96, help="Images per step (the trainer's default).")
    parser.add_argument("--steps", type=int, default=10, help="Timed batches per measurement.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES))
    parser.add_argument("--m", type=int, default=2, help="Most paths per layer of the supernets.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Training threads.")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results.")
    args = parser.parse_args()
    if args.tiny:
        args.classes, args.per_class, args.batch, args.steps, args.repeats = 2, 16, 4, 2, 1
        args.spaces = ["rgb-small"]
    torch.set_num_threads(args.threads)
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(Path(tmp) / "images", args.classes, args.per_class, args.size)
        data = load_folder_dataset(root, image_size=args.size, val_size=0)
        spaces = {name: space_for(name, args.classes, args.size) for name in args.spaces}
        for _ in range(args.repeats):
            for workers in args.workers:
                rows.setdefault(f"loader, {workers} workers", []).append(
                    loader_rate(data, args.batch, args.steps, workers)
                )
            for name, space in spaces.items():
                rows.setdefault(f"step, {name}", []).append(step_rate(space, args.m, args.batch, args.steps))
                for workers in args.workers:
                    rate = together_rate(space, data, args.m, args.batch, args.steps, workers)
                    rows.setdefault(f"together, {name}, {workers} workers", []).append(rate)
    load = os.getloadavg()[0]
    print(
        f"{args.classes}x{args.per_class} JPEGs of {args.size}x{args.size}, batch {args.batch}, {args.threads} "
        f"training threads, m={args.m}, median of {args.repeats}, load average {load:.1f}"
    )
    print(f"{'measurement':<40}{'images/s':>10}   runs")
    for name, rates in rows.items():
        print(f"{name:<40}{statistics.median(rates):>10.1f}   {', '.join(f'{r:.1f}' for r in rates)}")
    if args.out is not None:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.out.write_text(json.dumps({"settings": settings, "load_average": load, "images_per_s": rows}, indent=1))


if __name__ == "__main__":
    main()
