"""Latency lookup table (FBNet / MoGA style): per-layer measurements summed to predict an architecture.

Every part of the stand-alone model (``mixpath.evaluation.layerwise``) is timed alone on the current
device at its input shape: the fixed parts once, and every searchable layer once per choice, i.e. per
(expansion ratio, set of active paths) for ``mbconv``. An architecture's predicted latency is the sum of
its parts. Timing whole choices rather than single ops with an additive model costs a few hundred
measurements for m = 4 (15 path sets x 2 ratios x layers) and keeps what does not add up: the
expansion output shared by the branches, the summation, cache effects of several branches.

Each time is the median of ``repeats`` runs after ``warmup`` runs, in eval and inference mode, at
``batch_size`` images (1 by default: latency per image as a deployed model sees it), in milliseconds
(with ``rounds`` > 1, the lowest of that many such medians taken at different times), with the
weights and input in the memory layout the model uses (channels-last for ``mbconv``).

A layer timed alone runs with its weights and activations warm in the caches; inside the network they
were evicted by the other layers, so the plain sum underestimates the whole model (by 15-40 % for
fmnist-s1 on a CPU, more for larger architectures). The table therefore stores one ``scale``: the median
ratio of measured end-to-end latency to the plain sum over ``calibrate`` seeded random architectures
(0 = no correction, scale 1). ``predict`` returns the scaled sum.
The table is JSON and records the device, batch size and thread count it was measured with.
"""

from __future__ import annotations

import itertools
import logging
import math
import platform
import random
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mixpath.checks import check_whole_number
from mixpath.device import resolve_device
from mixpath.errors import MixPathError
from mixpath.evaluation.layerwise import Part, layer_parts
from mixpath.evaluation.modules import model_device, restored_modes, synchronize
from mixpath.io import read_json, write_json
from mixpath.spaces import Architecture, LayerChoice, LayerSpec, SearchSpace
from mixpath.supernet import build_standalone

log = logging.getLogger(__name__)

_VERSION = 1


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 30,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """Median milliseconds of one forward pass of ``batch_size`` random inputs (laid out in
    ``memory_format``) on the model's device."""
    check_whole_number("latency batch_size", batch_size)
    check_whole_number("latency repeats", repeats)
    device = model_device(model)
    x = torch.randn((batch_size, *input_shape), device=device).contiguous(memory_format=memory_format)
    times = []
    with restored_modes(model), torch.inference_mode():
        model.eval()
        for i in range(warmup + repeats):
            synchronize(device)
            started = time.perf_counter()
            model(x)
            synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def layer_choices(spec: LayerSpec, m: int) -> list[LayerChoice]:
    """Every choice of a layer with 1..m active paths: path subsets crossed with option values."""
    keys = [key for key, _ in spec.options]
    return [
        LayerChoice.of(paths, **dict(zip(keys, values, strict=True)))
        for k in range(1, min(m, spec.n_ops) + 1)
        for paths in itertools.combinations(spec.ops, k)
        for values in itertools.product(*(values for _, values in spec.options))
    ]


RUN_FILE = "latency_table.json"
"""A run folder's latency table: measured there by the first search with a latency objective, or the table an
fbnet run was given, copied in so the run resumes (and is searched) with it wherever the folder goes."""


@dataclass(frozen=True)
class LatencyTable:
    """Measured milliseconds: ``fixed`` for the parts every architecture has, ``layers[i][choice string]``."""

    space: str
    m: int
    device: str
    batch_size: int
    threads: int
    machine: str
    fixed: float
    layers: tuple[dict[str, float], ...]
    scale: float = 1.0

    def predict(self, arch: Architecture) -> float:
        """Predicted milliseconds for ``batch_size`` images of ``arch``: ``scale`` x the sum of its parts."""
        return self.scale * self.sum_of_parts(arch)

    def sum_of_parts(self, arch: Architecture) -> float:
        """Milliseconds of ``arch``'s parts, each timed alone, added up (no scale)."""
        if len(arch.layers) != len(self.layers):
            raise MixPathError(f"architecture has {len(arch.layers)} layers, the latency table {len(self.layers)}")
        total = self.fixed
        for index, (table, choice) in enumerate(zip(self.layers, arch.layers, strict=True)):
            ms = table.get(str(choice))
            if ms is None:
                raise MixPathError(
                    f"layer {index} choice {choice} is not in the latency table of {self.space!r} "
                    f"(measured for m={self.m})"
                )
            total += ms
        return total

    def check_space(self, space: SearchSpace) -> None:
        if space.name != self.space or len(space.layers) != len(self.layers):
            raise MixPathError(f"the latency table was measured for space {self.space!r}, not {space.name!r}")

    def save(self, path: Path | str) -> None:
        write_json(path, {"version": _VERSION, "unit": "ms", **asdict(self), "layers": list(self.layers)})

    @classmethod
    def load(cls, path: Path | str) -> LatencyTable:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise MixPathError(f"{path} is not a mixpath latency table (version {_VERSION})")
        try:
            return cls(
                space=str(data["space"]),
                m=int(data["m"]),
                device=str(data["device"]),
                batch_size=int(data["batch_size"]),
                threads=int(data["threads"]),
                machine=str(data["machine"]),
                fixed=float(data["fixed"]),
                layers=tuple({str(k): float(v) for k, v in layer.items()} for layer in data["layers"]),
                scale=float(data.get("scale", 1.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise MixPathError(f"{path}: malformed latency table ({err!r})") from None


def build_latency_table(
    space: SearchSpace,
    m: int,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 30,
    rounds: int = 1,
    calibrate: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> LatencyTable:
    """Time every part of ``space`` with up to ``m`` paths per layer on ``device``.

    Needs the family's layer parts (``mbconv`` and ``shufflenet`` have them). With ``rounds`` > 1 every
    part is timed once per round, the rounds one after the other, and keeps its lowest round: a burst of
    other jobs on a shared machine then inflates no entry unless it lasts the whole table. About
    (choices) x (warmup + repeats) x rounds forward passes of one layer: ~6 s per round for fmnist-s1 at
    m = 4 on one CPU thread. ``calibrate`` random architectures (seeded by ``seed``) are then built and
    timed whole, ``rounds`` times each, to fit ``scale``.
    """
    space.check_m(m)
    check_whole_number("latency rounds", rounds)
    check_whole_number("latency calibrate", calibrate, smallest=0, meaning="architectures timed whole")
    parts = layer_parts(space)
    if parts is None:
        raise MixPathError(f"no latency table for family {space.family!r}: it declares no layer parts")
    device = resolve_device(device)
    options: dict[str, Any] = {"batch_size": batch_size, "warmup": warmup, "repeats": repeats}

    def time_part(part: Part) -> float:
        module = part.module.to(device, memory_format=part.memory_format)  # type: ignore[call-overload]  # torch's stub lacks it
        return measure_latency(module, part.input_shape, memory_format=part.memory_format, **options)

    choices = [layer_choices(spec, m) for spec in space.layers]
    bar = tqdm(total=rounds * sum(map(len, choices)), desc="latency table", unit="choice", disable=not progress)
    fixed = math.inf
    layers: list[dict[str, float]] = [{str(choice): math.inf for choice in layer} for layer in choices]
    for _ in range(rounds):
        fixed = min(fixed, sum(time_part(part) for part in parts.fixed()))
        for index, layer in enumerate(choices):
            for choice in layer:
                key = str(choice)
                layers[index][key] = min(layers[index][key], time_part(parts.layer(index, choice)))
            bar.update(len(layer))
    bar.close()
    table = LatencyTable(
        space=space.name,
        m=m,
        device=str(device),
        batch_size=batch_size,
        threads=torch.get_num_threads(),
        machine=platform.processor() or platform.machine(),
        fixed=fixed,
        layers=tuple(layers),
    )
    if calibrate:
        rng = random.Random(seed)
        ratios = []
        for _ in range(calibrate):
            arch = space.random_architecture(rng, m)
            model = build_standalone(space, arch).to(device)
            measured = min(measure_latency(model, space.input_shape, **options) for _ in range(rounds))
            ratios.append(measured / table.sum_of_parts(arch))
        table = replace(table, scale=statistics.median(ratios))
    log.info("latency table of %s (m=%d) measured on %s, scale %.3f", space.name, m, device, table.scale)
    return table
