"""The NAS-Bench-101 cell space: cells as DAGs, the benchmark's pruning and graph hash, and its network.

A cell (the benchmark's "module") has up to 7 vertices: ``input``, up to 5 interior vertices each
running one op (3x3 conv-BN-ReLU, 1x1 conv-BN-ReLU, 3x3 max-pool) and ``output``; edges go from lower
to higher vertices (upper-triangular adjacency matrix), at most 9 of them after pruning. Vertices
that are not on a path from input to output are pruned, and isomorphic cells are one architecture:
``Nb101Cell.hash()`` is the benchmark's graph hash (the same MD5 string the official dataset is
keyed by), so the same cell drawn twice with its vertices in another order hashes equal.

Channels, as in the benchmark's builder: the cell's output is the concatenation of the vertices that
feed the output vertex, so their channels split the output channels (the first ones get one extra
channel each when the split is uneven); every other vertex takes the largest channel count of the
vertices it feeds; an edge into a vertex with fewer channels keeps only the first channels; edges out
of the input are 1x1 conv-BN-ReLU projections; an input->output edge adds a projection to the output.
Network: 3x3 conv-BN-ReLU stem to 128 channels, 3 stacks of 3 cells, 2x2 max-pool and doubled
channels before stacks 2 and 3, global mean, linear. Parameter counts equal the benchmark's
``trainable_parameters`` and FLOPs follow ``mixpath.benchmarks_nas.flops``; both exact for every row
of ``nb101_cifar10_500.csv``.

In mixpath terms (``Nb101Space``) an architecture has 6 layers, one per vertex after the input:
vertex j's layer holds its op (``conv3x3``, ``conv1x1``, ``maxpool3x3``; ``output`` for the last) and
an option ``i`` = the bit mask of its incoming edges (bit s set = edge from vertex s). Its canonical
string is the table's: 49 adjacency bits (row-major), ``:``, the 7 op names of the benchmark.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

import torch
from torch import nn

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, LayerChoice, LayerSpec, SearchSpace

# The benchmark's op names, in the order of its config['available_ops'] (the hash labels are indices).
NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
SHORT_NAMES = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool3x3"}
LONG_NAMES = {short: long for long, short in SHORT_NAMES.items()}
INPUT, OUTPUT = "input", "output"
MAX_VERTICES = 7
MAX_EDGES = 9


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def graph_hash(matrix: tuple[tuple[int, ...], ...], labels: list[int]) -> str:
    """The benchmark's isomorphism-invariant hash of a labelled DAG (graph_util.hash_module).

    Each vertex starts from the hash of (out-degree, in-degree, label); then, as many rounds as there
    are vertices, a vertex's hash becomes the hash of its sorted in-neighbour hashes, its sorted
    out-neighbour hashes and its own. The fingerprint hashes the sorted vertex hashes.
    """
    n = len(matrix)
    in_degree = [sum(matrix[s][v] for s in range(n)) for v in range(n)]
    out_degree = [sum(row) for row in matrix]
    hashes = [_md5(str((out_degree[v], in_degree[v], labels[v]))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted(hashes[s] for s in range(n) if matrix[s][v]))
                + "|"
                + "".join(sorted(hashes[d] for d in range(n) if matrix[v][d]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


@dataclass(frozen=True)
class Nb101Cell:
    """A cell as the benchmark writes it: adjacency matrix (0/1, upper triangular) and one op per vertex."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.ops)
        if n < 2 or len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise MixPathError(f"an NB101 cell needs an n x n matrix and n >= 2 ops, got {n} ops")
        if any(self.matrix[s][d] not in (0, 1) or (d <= s and self.matrix[s][d]) for s in range(n) for d in range(n)):
            raise MixPathError("an NB101 adjacency matrix holds 0/1 and is strictly upper triangular")
        if self.ops[0] != INPUT or self.ops[-1] != OUTPUT:
            raise MixPathError(f"NB101 ops must start with 'input' and end with 'output', got {list(self.ops)}")
        for op in self.ops[1:-1]:
            if op not in NB101_OPS:
                raise MixPathError(f"unknown NB101 op {op!r}; allowed: {', '.join(NB101_OPS)}")

    @classmethod
    def from_strings(cls, bits: str, ops: str) -> Nb101Cell:
        """From the table form: n*n adjacency bits (row-major) and comma-separated op names."""
        names = tuple(op.strip() for op in ops.split(","))
        n = len(names)
        if len(bits) != n * n or set(bits) - {"0", "1"}:
            raise MixPathError(f"NB101 adjacency {bits!r} should be {n * n} bits for {n} ops")
        return cls(tuple(tuple(int(b) for b in bits[r * n : (r + 1) * n]) for r in range(n)), names)

    def to_strings(self) -> tuple[str, str]:
        return "".join(str(b) for row in self.matrix for b in row), ",".join(self.ops)

    @property
    def n_vertices(self) -> int:
        return len(self.ops)

    @property
    def n_edges(self) -> int:
        return sum(map(sum, self.matrix))

    def prune(self) -> Nb101Cell:
        """The cell without vertices off every input->output path; MixPathError if there is none."""
        n = self.n_vertices
        reached = {0}
        for d in range(1, n):
            if any(self.matrix[s][d] for s in reached):
                reached.add(d)
        feeding = {n - 1}
        for s in range(n - 2, -1, -1):
            if any(self.matrix[s][d] for d in feeding):
                feeding.add(s)
        if n - 1 not in reached:
            raise MixPathError("NB101 cell: no path from input to output")
        keep = sorted(reached & feeding)
        return Nb101Cell(tuple(tuple(self.matrix[s][d] for d in keep) for s in keep), tuple(self.ops[v] for v in keep))

    def check(self) -> Nb101Cell:
        """The pruned cell if it belongs to the benchmark (<= 7 vertices, <= 9 edges), else MixPathError."""
        if self.n_vertices > MAX_VERTICES:
            raise MixPathError(f"NB101 cell has {self.n_vertices} vertices, at most {MAX_VERTICES} allowed")
        pruned = self.prune()
        if pruned.n_edges > MAX_EDGES:
            raise MixPathError(f"NB101 cell has {pruned.n_edges} edges after pruning, at most {MAX_EDGES} allowed")
        return pruned

    def hash(self) -> str:
        """The benchmark's hash of the pruned cell: isomorphic cells, and cells pruning alike, hash equal."""
        pruned = self.prune()
        labels = [-1] + [NB101_OPS.index(op) for op in pruned.ops[1:-1]] + [-2]
        return graph_hash(pruned.matrix, labels)

    def vertex_channels(self, c_in: int, c_out: int) -> list[int]:
        """Output channels of every vertex of this (pruned) cell, the benchmark's split."""
        n = self.n_vertices
        channels = [c_in] + [0] * (n - 2) + [c_out]
        if n == 2:
            return channels
        feeders = [v for v in range(1, n - 1) if self.matrix[v][n - 1]]
        share, extra = divmod(c_out, len(feeders))
        for rank, v in enumerate(feeders):
            channels[v] = share + (1 if rank < extra else 0)
        for v in range(n - 3, 0, -1):
            if not self.matrix[v][n - 1]:
                channels[v] = max(channels[d] for d in range(v + 1, n - 1) if self.matrix[v][d])
        return channels


class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
        )


def _vertex_op(name: str, channels: int) -> nn.Module:
    if name == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1)
    return nn.MaxPool2d(3, stride=1, padding=1)


class Nb101CellModule(nn.Module):
    """One cell of the network, for a pruned ``cell``, mapping ``c_in`` to ``c_out`` channels."""

    def __init__(self, cell: Nb101Cell, c_in: int, c_out: int):
        super().__init__()
        self.cell = cell
        self.channels = cell.vertex_channels(c_in, c_out)
        n = cell.n_vertices
        self.projections = nn.ModuleDict(
            {str(v): ConvBnRelu(c_in, self.channels[v], 1) for v in range(1, n) if cell.matrix[0][v]}
        )
        self.ops = nn.ModuleDict({str(v): _vertex_op(cell.ops[v], self.channels[v]) for v in range(1, n - 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n = self.cell.matrix, self.cell.n_vertices
        values = [x]
        for v in range(1, n - 1):
            terms = [values[s][:, : self.channels[v]] for s in range(1, v) if m[s][v]]
            if m[0][v]:
                terms.append(self.projections[str(v)](x))
            values.append(self.ops[str(v)](sum(terms)))
        concat = [values[v] for v in range(1, n - 1) if m[v][n - 1]]
        out = torch.cat(concat, 1) if concat else None
        if m[0][n - 1]:
            projected = self.projections[str(n - 1)](x)
            out = projected if out is None else out + projected
        assert out is not None, "a cell's output vertex has an input"  # Nb101Cell checks it
        return out


class Nb101Model(nn.Module):
    """The NAS-Bench-101 network of one cell (pruned first), as the benchmark built it."""

    def __init__(
        self,
        cell: Nb101Cell,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int = 128,
        stacks: int = 3,
        cells_per_stack: int = 3,
    ):
        super().__init__()
        self.cell = cell.prune()
        self.stem = ConvBnRelu(in_channels, stem_channels, 3)
        layers: list[nn.Module] = []
        c_in = c_out = stem_channels
        for stack in range(stacks):
            if stack:
                layers.append(nn.MaxPool2d(2, stride=2))
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(Nb101CellModule(self.cell, c_in, c_out))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The benchmark's global pool is a mean over H, W (a reduction, not a layer: no FLOPs counted).
        return self.classifier(self.layers(self.stem(x)).mean((2, 3)))


def _conv_bn_relu_costs(c_in: int, c_out: int, kernel: int, positions: int) -> tuple[int, int]:
    """(params, FLOPs) of a bias-free conv + BN + ReLU at ``positions`` output positions (per image)."""
    return kernel * kernel * c_in * c_out + 2 * c_out, positions * (kernel * kernel * c_in * c_out + 3 * c_out)


def nb101_costs(
    cell: Nb101Cell,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    stem_channels: int = 128,
    stacks: int = 3,
    cells_per_stack: int = 3,
) -> tuple[int, int]:
    """(parameters, FLOPs) of ``Nb101Model(cell, ...)`` without building it.

    The same sums a forward pass with ``count_flops`` / ``count_params`` makes (the tests check both
    against built models), in closed form because building 30M-parameter networks for every row of a
    table is slow. FLOPs per layer type as in ``mixpath.benchmarks_nas.flops``.
    """
    cell = cell.prune()
    n, m = cell.n_vertices, cell.matrix
    c_in, side, _ = input_shape[0], input_shape[1], input_shape[2]
    params, flops = _conv_bn_relu_costs(c_in, stem_channels, 3, side * side)
    c_in = c_out = stem_channels
    for stack in range(stacks):
        if stack:
            side //= 2
            flops += 4 * c_out * side * side
            c_out *= 2
        for _ in range(cells_per_stack):
            channels = cell.vertex_channels(c_in, c_out)
            parts = [_conv_bn_relu_costs(c_in, channels[v], 1, side * side) for v in range(1, n) if m[0][v]]
            for v in range(1, n - 1):
                if cell.ops[v] == "maxpool3x3":
                    parts.append((0, 9 * channels[v] * side * side))
                else:
                    kernel = 3 if cell.ops[v] == "conv3x3-bn-relu" else 1
                    parts.append(_conv_bn_relu_costs(channels[v], channels[v], kernel, side * side))
            params += sum(p for p, _ in parts)
            flops += sum(f for _, f in parts)
            c_in = c_out
    return params + c_out * num_classes + num_classes, flops + c_out * num_classes


_TABLE_FORM = re.compile(r"^[01]+:")


def cell_to_arch(cell: Nb101Cell) -> Architecture:
    """The mixpath architecture of a 7-vertex cell (one layer per vertex after the input)."""
    if cell.n_vertices != MAX_VERTICES:
        raise MixPathError(f"an NB101 architecture has {MAX_VERTICES} vertices, the cell has {cell.n_vertices}")
    layers = []
    for v in range(1, cell.n_vertices):
        mask = sum(1 << s for s in range(v) if cell.matrix[s][v])
        op = OUTPUT if v == cell.n_vertices - 1 else SHORT_NAMES[cell.ops[v]]
        layers.append(LayerChoice.of([op], i=mask))
    return Architecture(tuple(layers))


def arch_to_cell(arch: Architecture) -> Nb101Cell:
    """The cell of a 6-layer NB101 architecture (single op per vertex)."""
    n = len(arch.layers) + 1
    matrix = [[0] * n for _ in range(n)]
    ops = [INPUT]
    for v, choice in enumerate(arch.layers, start=1):
        if len(choice.paths) != 1:
            raise MixPathError(f"NB101 vertex {v} runs {len(choice.paths)} ops; the benchmark allows one")
        mask = int(choice.option("i"))
        for s in range(v):
            matrix[s][v] = (mask >> s) & 1
        ops.append(OUTPUT if choice.paths[0] == OUTPUT else LONG_NAMES[choice.paths[0]])
    return Nb101Cell(tuple(map(tuple, matrix)), tuple(ops))


@dataclass(frozen=True)
class Nb101Space(SearchSpace):
    """NAS-Bench-101 cells as mixpath architectures; valid means: input reaches output, <= 9 edges."""

    def validate(self, arch: Architecture, m: int) -> Architecture:
        super().validate(arch, m)
        arch_to_cell(arch).check()
        return arch

    def format(self, arch: Architecture) -> str:
        bits, ops = arch_to_cell(arch).to_strings()
        return f"{bits}:{ops}"

    def parse(self, text: str, m: int) -> Architecture:
        """Accepts the table form ``<49 bits>:<7 op names>``, mixpath's generic string and JSON."""
        text = text.strip()
        if _TABLE_FORM.match(text):
            bits, _, ops = text.partition(":")
            return self.validate(cell_to_arch(Nb101Cell.from_strings(bits, ops)), m)
        return super().parse(text, m)

    def random_architecture(self, rng: random.Random, m: int) -> Architecture:
        """A uniform random 7-vertex cell (each edge present with probability 1/2), redrawn until valid."""
        while True:
            n = MAX_VERTICES
            matrix = tuple(tuple(int(d > s and rng.random() < 0.5) for d in range(n)) for s in range(n))
            ops = (INPUT, *(rng.choice(NB101_OPS) for _ in range(n - 2)), OUTPUT)
            cell = Nb101Cell(matrix, ops)
            try:
                cell.check()
            except MixPathError:
                continue
            return cell_to_arch(cell)


def nb101_space() -> Nb101Space:
    interior = tuple(SHORT_NAMES[op] for op in NB101_OPS)
    layers = tuple(
        LayerSpec(ops=interior if v < MAX_VERTICES - 1 else (OUTPUT,), options=(("i", tuple(range(1 << v))),))
        for v in range(1, MAX_VERTICES)
    )
    return Nb101Space(
        "nb101",
        "NAS-Bench-101 cell (7 vertices, <= 9 edges, conv3x3 / conv1x1 / maxpool3x3), 3 stacks of 3 cells",
        "nb101",
        (3, 32, 32),
        10,
        layers,
        {"stem_channels": 128, "stacks": 3, "cells_per_stack": 3, "max_m": 1},
        default_m=1,
    )


NB101 = nb101_space()
