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

PATH_SAMPLINGS = ("uniform", "branch-fair")
"""How strategy mixpath draws a layer's path count k in 1..m: ``uniform`` (MixPath's rule), or ``branch-fair``,
k with probability proportional to 1/k. An op is active in a k-path draw with probability k/n, so under uniform
counts an op trains m times as often inside m-path sums as alone; with 1/k it trains equally often at every
count, and each of its Shadow BNs sees as many updates."""


class Sampler(ABC):
    """Draws the architectures trained in one optimizer step (gradients of all of them accumulate)."""

    def __init__(self, space: SearchSpace, m: int):
        self.space = space
        self.m = space.check_m(m)

    @abstractmethod
    def step_architectures(self, rng: random.Random) -> list[Architecture]: ...


class MixPathSampler(Sampler):
    """Per layer: a path count in 1..m (uniform, or as ``path_sampling`` says), then a uniform subset of that
    size; options uniform."""

    def __init__(self, space: SearchSpace, m: int, path_sampling: str = "uniform"):
        super().__init__(space, m)
        self.path_weights = path_count_weights(path_sampling, self.m)

    def step_architectures(self, rng: random.Random) -> list[Architecture]:
        return [self.space.random_architecture(rng, self.m, self.path_weights)]


def path_count_weights(path_sampling: str, m: int) -> list[float] | None:
    """Relative probabilities of 1..m paths per layer (None: uniform, drawn as MixPath draws it)."""
    if path_sampling == "uniform":
        return None
    if path_sampling == "branch-fair":
        return [1 / k for k in range(1, m + 1)]
    raise MixPathError(f"unknown path_sampling {path_sampling!r}; choose one of: {', '.join(PATH_SAMPLINGS)}")


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


def check_path_sampling(strategy: str, path_sampling: str) -> None:
    """A known path sampling, and one other than uniform only for strategy mixpath (the others draw no counts)."""
    path_count_weights(path_sampling, 1)
    if path_sampling != "uniform" and strategy != "mixpath":
        raise MixPathError(f"path_sampling={path_sampling!r} is for strategy mixpath; {strategy} draws no path counts")


def make_sampler(strategy: str, space: SearchSpace, m: int, path_sampling: str = "uniform") -> Sampler:
    """The sampler of a training strategy; single-path strategies insist on m=1."""
    check_path_sampling(strategy, path_sampling)
    if strategy == "mixpath":
        return MixPathSampler(space, m, path_sampling)
    if strategy in ("spos", "fairnas"):
        check_single_path(strategy, m)
        return SPOSSampler(space) if strategy == "spos" else FairNASSampler(space)
    if strategy == "fbnet":
        raise MixPathError("strategy fbnet samples no architectures: it learns their weights (mixpath.training.fbnet)")
    raise MixPathError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
