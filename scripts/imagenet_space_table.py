"""Tables of docs/imagenet.md: multiply-adds, parameters and CPU latency of the ImageNet spaces' extremes
(smallest, largest, random architectures) and of the published models next to their published figures.

    python scripts/imagenet_space_table.py                  # markdown on stdout, about a minute on 2 cores
    python scripts/imagenet_space_table.py --repeats 5      # fewer latency runs

MACs count conv and linear multiply-adds of one 3 x 224 x 224 image (mixpath.evaluation.count_macs);
params are every parameter of the stand-alone model (BN included); latency is the median of ``--repeats``
forward passes of one image on this CPU (mixpath.evaluation.measure_latency) with ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import platform
import random
from collections.abc import Callable

import torch

from mixpath.evaluation import CostModel, count_macs, count_params, layer_choices, measure_latency
from mixpath.models import PUBLISHED, shufflenet_macs
from mixpath.spaces import Architecture, SearchSpace, get_space
from mixpath.supernet import build_standalone

SPACES = ("imagenet-s2", "imagenet-s3", "imagenet-moga", "spos-shufflenet")
RANDOM_SEEDS = (0, 1, 2)


def macs_function(space: SearchSpace) -> Callable[[Architecture], int]:
    """Fast multiply-adds of an architecture: per-layer tables (mbconv) or the analytic count (shufflenet)."""
    if space.family == "shufflenet":
        return lambda arch: shufflenet_macs(space, arch)
    costs = CostModel(space)
    return lambda arch: costs.counts(arch)[0]


def extreme(space: SearchSpace, m: int, macs: Callable[[Architecture], int], pick: Callable) -> Architecture:
    """Per layer the choice with the fewest (``pick=min``) or most (``max``) multiply-adds; exact because a
    layer's cost depends only on its own choice."""
    arch = space.random_architecture(random.Random(0), 1)
    layers = list(arch.layers)
    for i, spec in enumerate(space.layers):

        def with_choice(choice, i=i):
            return macs(Architecture(tuple(layers[:i] + [choice] + layers[i + 1 :])))

        layers[i] = pick(layer_choices(spec, m), key=with_choice)
    return Architecture(tuple(layers))


def measure(space: SearchSpace, arch: Architecture, repeats: int) -> tuple[float, float, float]:
    """(M multiply-adds, M parameters, ms per image on the CPU) of the stand-alone model of ``arch``."""
    model = build_standalone(space, arch)
    latency = measure_latency(model, space.input_shape, warmup=2, repeats=repeats)
    return count_macs(model, space.input_shape) / 1e6, count_params(model) / 1e6, latency


def space_rows(name: str, repeats: int) -> list[str]:
    space = get_space(name)
    m = space.default_m
    macs = macs_function(space)
    cases = [("smallest", extreme(space, m, macs, min)), (f"largest, m={m}", extreme(space, m, macs, max))]
    if space.max_m() > m:
        cases.append((f"largest, m={space.max_m()}", extreme(space, space.max_m(), macs, max)))
    cases += [(f"random (seed {s}), m={m}", space.random_architecture(random.Random(s), m)) for s in RANDOM_SEEDS]
    rows = []
    for label, arch in cases:
        flops, params, latency = measure(space, arch, repeats)
        rows.append(f"| {name} | {label} | {flops:.1f} | {params:.2f} | {latency:.1f} |")
    return rows


def published_rows() -> list[str]:
    rows = []
    for model in PUBLISHED.values():
        space = get_space(model.space)
        with torch.device("meta"):
            net = build_standalone(space, model.architecture())
        ours = count_macs(net, space.input_shape) / 1e6, count_params(net) / 1e6

        def show(value, digits):
            return "-" if value is None else f"{value:.{digits}f}"

        rows.append(
            f"| {model.name} | {model.space} | {show(model.flops_m, 0)} | {ours[0]:.1f} | {show(model.params_m, 1)} "
            f"| {ours[1]:.2f} | {show(model.top1, 2)} | {'yes' if model.exact else 'no'} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="latency runs per model (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the latency runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
        f"batch 1, median of {args.repeats}\n"
    )
    print("| space | architecture | MACs (M) | params (M) | latency (ms) |")
    print("|---|---|---:|---:|---:|")
    for name in SPACES:
        for row in space_rows(name, args.repeats):
            print(row)
    print(
        "\n| model | space | published MACs (M) | mixpath MACs (M) | published params (M) | mixpath params (M) "
        "| published top-1 (%) | exact |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for row in published_rows():
        print(row)


if __name__ == "__main__":
    main()
