"""The NAS-Bench-201 cell space: architecture strings, stand-alone models, a one-shot supernet, costs.

A cell has 4 nodes; node j sums one edge from every earlier node, so there are 6 edges, in the order
of the benchmark's string: (0->1), (0->2), (1->2), (0->3), (1->3), (2->3). Each edge carries one op
out of ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3`` (m = 1, the
benchmark's 15,625 cells). In mixpath terms an edge is a searchable layer, so with m > 1 an edge may
run several ops whose outputs are summed (MixPath's multi-path idea applied to the cell). The same
cell is repeated in every position of the network, as in the benchmark.

Canonical string: the benchmark's own, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node j lists its
incoming edges from nodes 0..j-1). For a multi-op edge the op names are joined by ``+`` before the
``~``: ``|nor_conv_3x3+skip_connect~0|+...``; with one op per edge the string is the benchmark's.

Network (the benchmark's, C = 16, N = 5): stem 3x3 conv to C + BN; three stages of N cells with
C, 2C, 4C channels; between stages a ResNet basic block with stride 2 (two ReLU-Conv3x3-BN, shortcut
2x2 average pool + 1x1 conv); BN + ReLU, global average pool, linear. Convolution ops are ReLU-Conv-BN.
Parameter counts equal the benchmark's for every architecture; FLOPs follow the table convention of
``mixpath.benchmarks_nas.flops``. Both are exact (tests check all 491 rows of ``nb201_zc_491.csv``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from mixpath.benchmarks_nas.flops import count_flops, count_params
from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, LayerChoice, LayerSpec, SearchSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_NODES = 4
# Ops in decreasing cost, for the costliest architecture.
_BY_COST = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none")


def format_nb201(arch: Architecture) -> str:
    """The NAS-Bench-201 string of a 6-edge architecture (multi-op edges as ``op+op~src``)."""
    if len(arch.layers) != len(EDGES):
        raise MixPathError(f"an NB201 cell has {len(EDGES)} edges, the architecture has {len(arch.layers)}")
    nodes = []
    for dst in range(1, N_NODES):
        tokens = [
            f"{'+'.join(choice.paths)}~{src}" for (src, d), choice in zip(EDGES, arch.layers, strict=True) if d == dst
        ]
        nodes.append("|".join(tokens))
    return "|" + "|+|".join(nodes) + "|"


def parse_nb201(text: str) -> Architecture:
    """Parse a NAS-Bench-201 string (as written by ``format_nb201``) into a 6-layer architecture."""
    text = text.strip()
    example = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    if not (text.startswith("|") and text.endswith("|")):
        raise MixPathError(f"malformed NB201 string {text!r}: expected e.g. {example}")
    nodes = text[1:-1].split("|+|")
    if len(nodes) != N_NODES - 1:
        raise MixPathError(f"NB201 string {text!r} has {len(nodes)} nodes, expected {N_NODES - 1}: {example}")
    layers: list[LayerChoice] = []
    for dst, node in enumerate(nodes, start=1):
        tokens = node.split("|")
        if len(tokens) != dst:
            raise MixPathError(f"NB201 node {dst} in {text!r} has {len(tokens)} edges, expected {dst}")
        for src, token in enumerate(tokens):
            ops, sep, given_src = token.rpartition("~")
            if not sep or given_src != str(src):
                raise MixPathError(f"NB201 edge {token!r} of node {dst}: expected '<op>~{src}'")
            layers.append(LayerChoice.parse(ops))
    return Architecture(tuple(layers))


@dataclass(frozen=True)
class Nb201Space(SearchSpace):
    """The NB201 space: 6 edge layers; its canonical string is the benchmark's."""

    def format(self, arch: Architecture) -> str:
        return format_nb201(arch)

    def parse(self, text: str, m: int) -> Architecture:
        """Accepts the NB201 string, mixpath's generic string and the JSON form."""
        if text.strip().startswith("|"):
            return self.validate(parse_nb201(text), m)
        return super().parse(text, m)

    def largest_architecture(self, m: int) -> Architecture:
        ops = _BY_COST[: min(m, len(_BY_COST))]
        return Architecture(tuple(LayerChoice.of(ops) for _ in self.layers))


def nb201_space(
    name: str = "nb201",
    input_shape: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    channels: int = 16,
    cells_per_stage: int = 5,
) -> Nb201Space:
    """The NB201 space for one dataset (CIFAR-10: 3x32x32, 10 classes; ImageNet16-120: 3x16x16, 120).

    ``channels`` (C) and ``cells_per_stage`` (N) are the benchmark's 16 and 5; other values give
    smaller or larger networks of the same cell, e.g. for tests or a cheap supernet.
    """
    return Nb201Space(
        name,
        f"NAS-Bench-201 cell ({len(EDGES)} edges, {len(NB201_OPS)} ops), C={channels}, N={cells_per_stage}, "
        f"{input_shape[0]}x{input_shape[1]}x{input_shape[2]} input, {num_classes} classes",
        "nb201",
        input_shape,
        num_classes,
        tuple(LayerSpec(ops=NB201_OPS) for _ in EDGES),
        {"channels": channels, "cells_per_stage": cells_per_stage},
        default_m=1,
    )


NB201 = nb201_space()


class ReLUConvBN(nn.Sequential):
    """The benchmark's conv op: ReLU, bias-free conv, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, channels: int) -> nn.Module:
    """One edge op with ``channels`` in and out, stride 1 (``none`` has no module: it adds nothing)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise MixPathError(f"unknown NB201 op {name!r}; allowed: {', '.join(NB201_OPS)}")


class Nb201Cell(nn.Module):
    """One cell holding, per edge, the modules of the ops it may run (``edges[e][op]``)."""

    def __init__(self, channels: int, edge_ops: Sequence[Sequence[str]]):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, channels) for op in ops if op != "none"}) for ops in edge_ops
        )

    def forward(self, x: torch.Tensor, edge_ops: Sequence[Sequence[str]] | None = None) -> torch.Tensor:
        """Run ``edge_ops`` (per edge, the active op names), or every op the cell holds when None."""
        nodes = [x]
        for dst in range(1, N_NODES):
            terms = []
            for e, (src, d) in enumerate(EDGES):
                if d != dst:
                    continue
                edge = cast(nn.ModuleDict, self.edges[e])
                ops = edge.keys() if edge_ops is None else edge_ops[e]
                terms += [edge[op](nodes[src]) for op in ops if op != "none"]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The residual block between stages: halves the resolution, doubles the channels."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class _Nb201Network(nn.Module):
    """The benchmark's macro skeleton around cells that hold ``edge_ops``."""

    def __init__(self, space: SearchSpace, edge_ops: Sequence[Sequence[str]]):
        super().__init__()
        c = space.skeleton["channels"]
        self.stem = nn.Sequential(nn.Conv2d(space.input_shape[0], c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers += [Nb201Cell(c, edge_ops) for _ in range(space.skeleton["cells_per_stage"])]
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c, space.num_classes),
        )

    def _run(self, x: torch.Tensor, edge_ops: Sequence[Sequence[str]] | None) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, edge_ops) if isinstance(layer, Nb201Cell) else layer(x)
        return self.head(x)


class Nb201Model(_Nb201Network):
    """A stand-alone NB201 network of one architecture: only its own ops."""

    def __init__(self, space: SearchSpace, arch: Architecture):
        space.validate(arch, space.max_m())
        super().__init__(space, [choice.paths for choice in arch.layers])
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)


class Nb201Supernet(_Nb201Network):
    """Every op of every edge of every cell; ``forward(x, arch)`` runs the active ops (summed per edge)."""

    def __init__(self, space: SearchSpace, m: int):
        super().__init__(space, [spec.ops for spec in space.layers])
        self.space = space
        self.m = space.check_m(m)

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        return self._run(x, [choice.paths for choice in arch.layers])

    def extract(self, arch: Architecture) -> Nb201Model:
        """A stand-alone model of ``arch`` carrying the supernet's weights (same names, subset of keys)."""
        self.space.validate(arch, self.m)
        model = Nb201Model(self.space, arch)
        mine = self.state_dict()
        model.load_state_dict({key: mine[key] for key in model.state_dict()})
        return model.to(next(self.parameters()).device)


@dataclass(frozen=True)
class Nb201Costs:
    """Parameters and FLOPs (counts, not millions) of every NB201 network of one space.

    Every edge of a cell maps C channels to C at one resolution and the cell sums its edges, so a
    network's cost is the skeleton's plus one term per (edge, op): ``base`` is the network with every
    edge ``none``, ``per_op[op]`` what one more op on one edge adds. Both are measured on built networks,
    so they follow the builder; the tests check the sum against built models.
    """

    base: tuple[int, int]
    per_op: dict[str, tuple[int, int]]

    def of(self, arch: Architecture) -> tuple[int, int]:
        """(parameters, FLOPs) of the stand-alone model of ``arch``."""
        params, flops = self.base
        for choice in arch.layers:
            for op in choice.paths:
                params += self.per_op[op][0]
                flops += self.per_op[op][1]
        return params, flops


def measure(space: SearchSpace, arch: Architecture) -> tuple[int, int]:
    """(parameters, FLOPs) of a freshly built stand-alone model of ``arch`` (one forward pass)."""
    model = Nb201Model(space, arch)
    return count_params(model), count_flops(model, space.input_shape)


def nb201_costs(space: SearchSpace) -> Nb201Costs:
    """The cost table of ``space`` (six small builds, well under a second; cached per network shape)."""
    sk = space.skeleton
    return _costs(space.input_shape, space.num_classes, sk["channels"], sk["cells_per_stage"])


@functools.cache
def _costs(input_shape: tuple[int, int, int], num_classes: int, channels: int, cells: int) -> Nb201Costs:
    # Keyed on the network's shape, not on the space: spaces compare without their skeleton.
    space = nb201_space("nb201-costs", input_shape, num_classes, channels, cells)
    empty = [LayerChoice.of(["none"])] * len(space.layers)
    base = measure(space, Architecture(tuple(empty)))
    per_op = {}
    for op in space.layers[0].ops:
        params, flops = measure(space, Architecture((LayerChoice.of([op]), *empty[1:])))
        per_op[op] = (params - base[0], flops - base[1])
    return Nb201Costs(base, per_op)
