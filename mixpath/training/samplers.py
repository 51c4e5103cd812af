"""Training strategies: which architecture(s) the supernet trains at each step.

A sampler holds no random state of its own: each step gets a ``random.Random`` derived from
(seed, epoch, step). That makes a resumed run draw exactly what an uninterrupted one draws, and
lets every rank of a distributed run draw the same architecture without talking to the others.
"""

from __future__ import annotations

import itertools
import random
from abc import ABC, abstractmethod

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, LayerChoice, SearchSpace

STRATEGIES = ("mixpath", "spos", "fairnas", "fbnet")
"""Training strategies; fbnet has no sampler: it learns architecture weights (``mixpath.training.fbnet``)."""


class Sampler(ABC):
    """Draws the architectures trained in one optimizer step (gradients of all of them accumulate)."""

    def __init__(self, space: SearchSpace, m: int):
        self.space = space
        self.m = space.check_m(m)

    @abstractmethod
    def step_architectures(self, rng: random.Random) -> list[Architecture]: ...


class MixPathSampler(Sampler):
    """Per layer: path count uniform in 1..m, then a uniform subset of that size; options uniform."""

    def step_architectures(self, rng: random.Random) -> list[Architecture]:
        return [self.space.random_architecture(rng, self.m)]


class SPOSSampler(Sampler):
    """SPOS: one uniformly drawn single-path architecture per step."""

    def __init__(self, space: SearchSpace, m: int = 1):
        super().__init__(space, m)

    def step_architectures(self, rng: random.Random) -> list[Architecture]:
        return [self.space.random_architecture(rng, 1)]


class FairNASSampler(Sampler):
    """FairNAS strict fairness: every single-path choice of every layer is trained exactly once per step.

    A layer's choices are its ops crossed with its options (FairNAS's space is kernel x expansion).
    Each layer draws a random permutation of its n choices; model i takes the i-th entry of every
    layer's permutation, giving n single-path models whose gradients are accumulated.
    """

    def __init__(self, space: SearchSpace, m: int = 1):
        super().__init__(space, m)
        self.layer_choices = [self._choices(spec) for spec in space.layers]
        counts = {len(choices) for choices in self.layer_choices}
        if len(counts) != 1:
            raise MixPathError(
                f"fairnas needs the same number of choices in every layer; space {space.name!r} has {sorted(counts)}"
            )

    @staticmethod
    def _choices(spec) -> list[LayerChoice]:
        keys = [key for key, _ in spec.options]
        value_sets = [values for _, values in spec.options]
        return [
            LayerChoice.of([op], **dict(zip(keys, values, strict=True)))
            for op in spec.ops
            for values in itertools.product(*value_sets)
        ]

    def step_architectures(self, rng: random.Random) -> list[Architecture]:
        permuted = [rng.sample(choices, len(choices)) for choices in self.layer_choices]
        return [Architecture(tuple(layer[i] for layer in permuted)) for i in range(len(permuted[0]))]


def check_single_path(strategy: str, m: int) -> None:
    """Single-path strategies (spos, fairnas) train m=1 supernets: a one-line error otherwise."""
    if strategy in ("spos", "fairnas") and m != 1:
        raise MixPathError(f"strategy {strategy!r} trains single paths: m must be 1, got m={m}")


def make_sampler(strategy: str, space: SearchSpace, m: int) -> Sampler:
    """The sampler of a training strategy; single-path strategies insist on m=1."""
    if strategy == "mixpath":
        return MixPathSampler(space, m)
    if strategy in ("spos", "fairnas"):
        check_single_path(strategy, m)
        return SPOSSampler(space) if strategy == "spos" else FairNASSampler(space)
    if strategy == "fbnet":
        raise MixPathError("strategy fbnet samples no architectures: it learns their weights (mixpath.training.fbnet)")
    raise MixPathError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
