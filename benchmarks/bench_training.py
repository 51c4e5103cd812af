"""Supernet training speed and memory of one configuration, in this process; prints one JSON line.

    python benchmarks/bench_training.py --impl mixpath --space fmnist-s1 --m 4
    python benchmarks/bench_training.py --impl reference --space cifar-s1 --m 1 --steps 2 --warmup 1
    python benchmarks/bench_training.py --space cifar-s1 --m 4 --steps 8 --multi-single
    python benchmarks/bench_training.py --space fmnist-s1 --m 4 --steps 20 --against-reference
    python benchmarks/bench_training.py --space fmnist-s1 --m 4 --steps 10 --bf16

Both implementations run the same loop on the same architectures (MixPath's sampling rule, seeded; see
``architectures``) and the same synthetic batch: zero_grad(set_to_none), forward, cross-entropy,
backward, gradient clipping at 5, SGD with momentum and weight decay (DESIGN.md section 4), the
parameter list taken once and a multi-tensor SGD step, as ``mixpath.training.trainer`` does. Data loading
and augmentation are left out (they are the same for both). Run each configuration in a fresh process
(``run_all.py`` does) so that the peak resident memory belongs to it alone.

Reported: ``images_per_s`` over the timed steps (wall clock) and ``step_s`` per timed step;
``cpu_images_per_s``, the same per second of this process's CPU time (steadier than the wall clock when
other jobs share the cores, but it counts threads spinning in OpenMP barriers as work); ``rss_mb`` once
the model, optimizer and batch exist; ``peak_rss_mb``, the process's maximum resident memory;
``train_mb`` = peak - rss, what training adds; ``saved_mb``, the largest total size of the tensors
autograd keeps for the backward pass (activations, each storage once) over the timed architectures:
what fusion and recomputation reduce, independent of the allocator.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_supernet import ReferenceSupernet  # noqa: E402

from mixpath.kernels import fused_branches  # noqa: E402
from mixpath.spaces import Architecture, LayerChoice, get_space  # noqa: E402
from mixpath.supernet import MBConvSupernet  # noqa: E402
from mixpath.training.seeding import step_rng  # noqa: E402

IMPLS = ("mixpath", "reference")


def rss_mb() -> float:
    """Current resident memory of this process, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Maximum resident memory of this process so far, in MiB (Linux reports kiB). At least the current
    resident memory: the kernel updates the high-water mark lazily, so it can read a little below statm."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_mb())


def architectures(space_name: str, m: int, seed: int, count: int) -> list[Architecture]:
    """``count`` architectures drawn by MixPath's rule for this ``m`` (per layer: expansion uniform, path
    count uniform in 1..m, a uniform subset of that size), with the expansions of step i the same for every
    m: a paired design, so that m=1 and m=4 differ only in their paths and not in which layers happened to
    draw the 2x wider expansion (which moves a step's cost more than the paths do)."""
    space = get_space(space_name)
    archs = []
    for step in range(count):
        shared, own = step_rng(seed, "expansion", step), step_rng(seed, "paths", m, step)
        layers = []
        for spec in space.layers:
            options = {key: shared.choice(values) for key, values in spec.options}
            paths = own.sample(spec.ops, own.randint(1, min(m, spec.n_ops)))
            layers.append(LayerChoice.of(paths, **options))
        archs.append(Architecture(tuple(layers)))
    return archs


def build(impl: str, space_name: str, m: int, channels_last: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    space = get_space(space_name)
    if impl == "reference":
        return ReferenceSupernet(space, m)
    return MBConvSupernet(space, m, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def trainer(model: torch.nn.Module) -> tuple[torch.nn.Module, list[torch.nn.Parameter], torch.optim.SGD]:
    """``model`` in training mode, its parameter list and its optimizer (DESIGN.md section 4's SGD)."""
    params = list(model.parameters())
    return model.train(), params, torch.optim.SGD(params, lr=0.025, momentum=0.9, weight_decay=3e-4, foreach=True)


def train_step(
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    arch: Architecture,
) -> float:
    """One training step as the trainer takes it; returns its wall-clock seconds."""
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x, arch), y).backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    optimizer.step()
    return time.perf_counter() - start


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, arch: Architecture) -> int:
    """Total size of the tensors autograd saves for backward in one training forward pass (each storage once)."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x, arch), y)
    return sum(storages.values())


def measure(
    impl: str,
    space_name: str,
    m: int,
    *,
    batch: int = 96,
    steps: int = 8,
    warmup: int = 2,
    seed: int = 0,
    fused: bool = True,
    channels_last: bool = True,
    saved_archs: int | None = None,
) -> dict:
    """Time ``steps`` training steps after ``warmup`` untimed ones; see the module doc for the fields.
    ``fused`` and ``channels_last`` switch mixpath's fast paths off, to measure what each one brings.
    ``saved_mb`` is measured on the first ``saved_archs`` timed architectures (default: all of them)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    space = get_space(space_name)
    model, params, optimizer = trainer(build(impl, space_name, m, channels_last))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *space.input_shape, generator=generator)
    y = torch.randint(0, space.num_classes, (batch,), generator=generator)
    archs = architectures(space_name, m, seed, warmup + steps)
    rss = rss_mb()

    times, cpu_times = [], []
    with fused_branches(fused):
        for i, arch in enumerate(archs):
            cpu_start = time.process_time()
            seconds = train_step(model, params, optimizer, x, y, arch)
            if i >= warmup:
                times.append(seconds)
                cpu_times.append(time.process_time() - cpu_start)
        peak = peak_rss_mb()
        saved = max(saved_bytes(model, x, y, arch) for arch in archs[warmup:][:saved_archs]) / 2**20
    return {
        "impl": impl,
        "space": space_name,
        "m": m,
        "batch": batch,
        "fused": fused,
        "channels_last": channels_last,
        "threads": torch.get_num_threads(),
        "images_per_s": batch * len(times) / sum(times),
        "step_s": times,
        "cpu_images_per_s": batch * len(cpu_times) / sum(cpu_times),
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "train_mb": peak - rss,
        "saved_mb": saved,
    }


def measure_multi_single(space_name: str, m: int, *, batch: int = 96, steps: int = 8, seed: int = 0) -> dict:
    """m-path against single-path training time in one process: one ``m``-path mixpath supernet trains
    single-path and m-path architectures in alternation (step i of both shares its expansion ratios), so
    the machine's minute-scale speed swings fall on both alike. A single-path step on it computes what a
    step of an m=1 supernet computes (the unused shadow BNs get no gradient and no optimizer work).
    Reported: ``ratio`` = total m-path time over total single-path time, per-step times, and the mean
    number of active paths per layer of the timed m-path architectures (the sampler's mean is (m+1)/2)."""
    space = get_space(space_name)
    model, params, optimizer = trainer(build("mixpath", space_name, m))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *space.input_shape, generator=generator)
    y = torch.randint(0, space.num_classes, (batch,), generator=generator)
    singles, multis = architectures(space_name, 1, seed, steps + 1), architectures(space_name, m, seed, steps + 1)
    times: dict[int, list[float]] = {1: [], m: []}
    for i in range(steps + 1):  # step 0 of each: warm-up
        pairs = ((1, singles[i]), (m, multis[i]))
        for paths, arch in pairs if i % 2 else pairs[::-1]:
            seconds = train_step(model, params, optimizer, x, y, arch)
            if i:
                times[paths].append(seconds)
    mean_paths = sum(len(c.paths) for a in multis[1:] for c in a.layers) / (steps * len(space.layers))
    return {
        "space": space_name,
        "m": m,
        "batch": batch,
        "ratio": sum(times[m]) / sum(times[1]),
        "single_step_s": times[1],
        "multi_step_s": times[m],
        "mean_paths": mean_paths,
    }


def measure_bf16(space_name: str, m: int, *, batch: int = 96, steps: int = 8, seed: int = 0) -> dict:
    """bfloat16 autocast (``TrainConfig(amp="bf16")``) against full precision in one process: one mixpath
    supernet, each architecture trained once each way in alternating order, so that the machine's speed
    swings fall on both alike. Reported: ``ratio`` = total bf16 time over total float32 time, per-step times,
    and whether this CPU reports AMX bfloat16 units (/proc/cpuinfo's amx_bf16 flag)."""
    space = get_space(space_name)
    model, params, optimizer = trainer(build("mixpath", space_name, m))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *space.input_shape, generator=generator)
    y = torch.randint(0, space.num_classes, (batch,), generator=generator)
    archs = architectures(space_name, m, seed, steps + 1)
    times: dict[str, list[float]] = {"float32": [], "bf16": []}
    for i, arch in enumerate(archs):  # step 0 of each: warm-up
        for precision in ("float32", "bf16") if i % 2 else ("bf16", "float32"):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                seconds = train_step(model, params, optimizer, x, y, arch)
            if i:
                times[precision].append(seconds)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "space": space_name,
        "m": m,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "amx_bf16": "amx_bf16" in flags,
        "ratio": sum(times["bf16"]) / sum(times["float32"]),
        "float32_step_s": times["float32"],
        "bf16_step_s": times["bf16"],
    }


def measure_against_reference(space_name: str, m: int, *, batch: int = 96, steps: int = 20, seed: int = 0) -> dict:
    """mixpath against the reference in one process: both supernets built, training steps alternating
    (reference, mixpath, mixpath, reference, ...) on the same architectures and batch, so the machine's
    speed swings fall on both alike. Both run with this process's allocator: run it with the
    reference's (the system malloc), which leaves mixpath without tcmalloc, a conservative comparison.
    Reported: ``speed_up`` = total reference time over total mixpath time, and per-step times."""
    space = get_space(space_name)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *space.input_shape, generator=generator)
    y = torch.randint(0, space.num_classes, (batch,), generator=generator)
    trainers = {impl: trainer(build(impl, space_name, m)) for impl in IMPLS}
    archs = architectures(space_name, m, seed, steps + 1)
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for i, arch in enumerate(archs):  # step 0 of each: warm-up
        for impl in IMPLS if i % 2 else IMPLS[::-1]:
            seconds = train_step(*trainers[impl], x, y, arch)
            if i:
                times[impl].append(seconds)
    return {
        "space": space_name,
        "m": m,
        "batch": batch,
        "speed_up": sum(times["reference"]) / sum(times["mixpath"]),
        "reference_step_s": times["reference"],
        "mixpath_step_s": times["mixpath"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=IMPLS, default="mixpath")
    parser.add_argument("--space", default="fmnist-s1")
    parser.add_argument("--m", type=int, default=4)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="mixpath without fused branches")
    parser.add_argument("--nchw", action="store_true", help="mixpath without channels-last")
    parser.add_argument("--saved-archs", type=int, default=None, help="measure saved_mb on this many timed archs")
    parser.add_argument(
        "--multi-single", action="store_true", help="m-path vs single-path time, alternating in this process"
    )
    parser.add_argument(
        "--against-reference", action="store_true", help="mixpath vs the reference, alternating in this process"
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast vs float32, alternating in this process")
    args = parser.parse_args()
    if args.bf16:
        print(json.dumps(measure_bf16(args.space, args.m, batch=args.batch, steps=args.steps, seed=args.seed)))
        return
    if args.against_reference:
        row = measure_against_reference(args.space, args.m, batch=args.batch, steps=args.steps, seed=args.seed)
        print(json.dumps(row))
        return
    if args.multi_single:
        print(json.dumps(measure_multi_single(args.space, args.m, batch=args.batch, steps=args.steps, seed=args.seed)))
        return
    result = measure(
        args.impl,
        args.space,
        args.m,
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        seed=args.seed,
        fused=not args.plain,
        channels_last=not args.nchw,
        saved_archs=args.saved_archs,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
