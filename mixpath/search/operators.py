"""Variation operators on architectures, shared by evolution and (through the encoding) NSGA-II.

Both keep whole layers intact, so children of valid parents are valid: a layer's active paths and
options always come together from one parent or from a fresh sample of the space's own sampling rule.
"""

from __future__ import annotations

import random

from mixpath.spaces import Architecture, SearchSpace


def mutate(space: SearchSpace, m: int, arch: Architecture, rng: random.Random, prob: float) -> Architecture:
    """Re-sample each layer with probability ``prob`` (SPOS: 0.1), with the space's sampling rule."""
    fresh = space.random_architecture(rng, m)
    layers = tuple(new if rng.random() < prob else old for old, new in zip(arch.layers, fresh.layers, strict=True))
    return Architecture(layers)


def crossover(a: Architecture, b: Architecture, rng: random.Random) -> tuple[Architecture, Architecture]:
    """Layer-wise uniform crossover: each layer comes from ``a`` or ``b`` with probability 1/2; the
    second child takes the other parent's layer everywhere."""
    first, second = [], []
    for layer_a, layer_b in zip(a.layers, b.layers, strict=True):
        if rng.random() < 0.5:
            layer_a, layer_b = layer_b, layer_a
        first.append(layer_a)
        second.append(layer_b)
    return Architecture(tuple(first)), Architecture(tuple(second))
