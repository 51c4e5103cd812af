"""Architectures as fixed-length integer vectors, for genetic search (NSGA-II in pymoo works on vectors).

Layout, layer after layer: one 0/1 gene per candidate op (1 = the path is active), then one gene per
option holding the index of its value in the layer's declared values. For a ``tiny`` layer with ops
``k3 k5 k7 k9`` and option ``e`` in ``(3, 6)``, ``e6:k3+k7`` is ``[1, 0, 1, 0, 1]``.

Every vector the encoding returns decodes to a valid architecture; ``repair`` turns any integer vector
(e.g. one produced by a generic variation operator) into such a vector.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from mixpath.errors import MixPathError
from mixpath.spaces.architecture import Architecture, LayerChoice
from mixpath.spaces.space import SearchSpace


class ArchEncoding:
    """Encode, decode and repair architectures of ``space`` with at most ``m`` active paths per layer."""

    def __init__(self, space: SearchSpace, m: int) -> None:
        self.space = space
        self.m = space.check_m(m)
        self.layer_slices: list[slice] = []
        lower: list[int] = []
        upper: list[int] = []
        for spec in space.layers:
            start = len(lower)
            lower += [0] * spec.n_ops
            upper += [1] * spec.n_ops
            for _, values in spec.options:
                lower.append(0)
                upper.append(len(values) - 1)
            self.layer_slices.append(slice(start, len(lower)))
        self.lower = np.array(lower, dtype=np.int64)
        self.upper = np.array(upper, dtype=np.int64)
        # decoded layer choices by their genes: a layer has few distinct choices, decoding is hot in search
        self._decoded: list[dict[tuple[int, ...], LayerChoice]] = [{} for _ in space.layers]

    @property
    def n_genes(self) -> int:
        return len(self.lower)

    def encode(self, arch: Architecture) -> np.ndarray:
        """The gene vector of ``arch`` (checked against the space first)."""
        self.space.validate(arch, self.m)
        genes: list[int] = []
        for choice, spec in zip(arch.layers, self.space.layers, strict=True):
            genes += [int(op in choice.paths) for op in spec.ops]
            genes += [values.index(choice.option(key)) for key, values in spec.options]
        return np.array(genes, dtype=np.int64)

    def decode(self, vector: Sequence[int] | np.ndarray) -> Architecture:
        """The architecture of a valid gene vector; raises MixPathError naming the first bad layer."""
        genes = self._as_genes(vector).tolist()
        layers = []
        for i, block in enumerate(self.layer_slices):
            key = tuple(genes[block])
            choice = self._decoded[i].get(key)
            if choice is None:
                choice = self._decode_layer(i, key)
                self._decoded[i][key] = choice
            layers.append(choice)
        return Architecture(tuple(layers))

    def _decode_layer(self, i: int, genes: tuple[int, ...]) -> LayerChoice:
        spec, block = self.space.layers[i], self.layer_slices[i]
        bounds = zip(genes, self.lower[block], self.upper[block], strict=True)
        if any(not low <= gene <= high for gene, low, high in bounds):
            raise MixPathError(f"layer {i}: gene values {list(genes)} are out of bounds")
        active = genes[: spec.n_ops]
        if not 1 <= sum(active) <= self.m:
            raise MixPathError(f"layer {i}: {sum(active)} active paths, allowed 1..{self.m}")
        paths = [op for op, on in zip(spec.ops, active, strict=True) if on]
        option_genes = genes[spec.n_ops :]
        options = {key: values[index] for (key, values), index in zip(spec.options, option_genes, strict=True)}
        return LayerChoice.of(paths, **options)

    def repair(self, vector: Sequence[int] | np.ndarray, rng: random.Random) -> np.ndarray:
        """A valid copy of any integer vector of the right length.

        Genes are clipped to their bounds; a layer with no active path gets one random op switched on,
        a layer with more than ``m`` keeps a uniform random ``m`` of its active paths.
        """
        genes = np.clip(self._as_genes(vector), self.lower, self.upper)
        for spec, block in zip(self.space.layers, self.layer_slices, strict=True):
            active = [j for j in range(spec.n_ops) if genes[block.start + j]]
            if not active:
                genes[block.start + rng.randrange(spec.n_ops)] = 1
            elif len(active) > self.m:
                for j in rng.sample(active, len(active) - self.m):
                    genes[block.start + j] = 0
        return genes

    def _as_genes(self, vector: Sequence[int] | np.ndarray) -> np.ndarray:
        genes = np.rint(np.asarray(vector, dtype=float)).astype(np.int64).reshape(-1)
        if len(genes) != self.n_genes:
            raise MixPathError(f"gene vector has {len(genes)} genes, space {self.space.name!r} encodes {self.n_genes}")
        return genes
