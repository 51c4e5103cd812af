"""A closed-form evaluator for tests, benchmarks and smoke runs: no network, no data, instant.

- ``flops`` / ``params``: multiply-adds and weights (millions) of the searchable inverted-bottleneck
  layers only (1x1 expansion at the input resolution, one k x k depthwise conv per active path and the
  1x1 projection at the output resolution); stem and head are left out. Op names carry the kernel
  size (``k5`` = 5x5); an op name without digits counts as 3x3.
- ``accuracy`` (percent): saturating in a capacity score. Each (layer, op) pair has a seeded random
  quality in [0.5, 1.5] unrelated to its cost, a layer contributes (sum of its paths' qualities)^0.7
  scaled by its expansion ratio, and a small deterministic per-architecture term breaks ties. Costlier
  architectures tend to score higher but with op-dependent efficiency, so the Pareto front is not trivial.
- ``cost_seconds``: 0.

``costs`` is a cost function (``mixpath.interfaces.CostFunction``). With ``strict=True`` every evaluated
architecture is validated against the space, so a test notices a searcher that proposes invalid ones.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence

import numpy as np

from mixpath.spaces import Architecture, SearchSpace


class SyntheticEvaluator:
    def __init__(self, space: SearchSpace, m: int, seed: int = 0, strict: bool = True) -> None:
        self.space, self.m, self.strict = space, space.check_m(m), strict
        rng = np.random.default_rng(seed)
        self.quality = [dict(zip(spec.ops, rng.uniform(0.5, 1.5, spec.n_ops), strict=True)) for spec in space.layers]
        self._kernel = {op: _kernel(op) for spec in space.layers for op in spec.ops}
        self.evaluated: list[Architecture] = []
        self.batches: list[int] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        if self.strict:
            for arch in archs:
                self.space.validate(arch, self.m)
        self.evaluated.extend(archs)
        self.batches.append(len(archs))
        return [{"accuracy": self.accuracy(arch), **self.costs(arch), "cost_seconds": 0.0} for arch in archs]

    def accuracy(self, arch: Architecture) -> float:
        score = 0.0
        for choice, quality in zip(arch.layers, self.quality, strict=True):
            expansion = dict(choice.options).get("e", 6)
            score += sum(quality[op] for op in choice.paths) ** 0.7 * (expansion / 6) ** 0.5
        tie_break = zlib.crc32(str(arch).encode()) / 2**32
        return 50.0 + 45.0 * (1.0 - math.exp(-score / len(arch))) + 0.2 * tie_break

    def costs(self, arch: Architecture) -> dict[str, float]:
        _, height, width = self.space.input_shape
        stride = int(self.space.skeleton.get("stem_stride", 1))
        height, width = -(-height // stride), -(-width // stride)
        flops = params = 0.0
        for choice, spec in zip(arch.layers, self.space.layers, strict=True):
            hidden = spec.in_channels * dict(choice.options).get("e", 1)
            depthwise = sum(self._kernel[op] ** 2 for op in choice.paths)
            out_height, out_width = -(-height // spec.stride), -(-width // spec.stride)
            flops += height * width * spec.in_channels * hidden
            flops += out_height * out_width * hidden * (depthwise + spec.out_channels)
            params += hidden * (spec.in_channels + depthwise + spec.out_channels)
            height, width = out_height, out_width
        return {"flops": flops / 1e6, "params": params / 1e6}


def _kernel(op: str) -> int:
    digits = re.findall(r"\d+", op)
    return int(digits[0]) if digits else 3
