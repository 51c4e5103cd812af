"""The model builders of the ``nb201`` and ``nb101`` families, which ``mixpath.supernet`` names as built-in
families and imports from here when a model of one is first built."""

from __future__ import annotations

from typing import NoReturn

from mixpath.benchmarks_nas.nb101 import Nb101Model, arch_to_cell
from mixpath.benchmarks_nas.nb201 import Nb201Model, Nb201Supernet
from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, SearchSpace
from mixpath.supernet.bn_policies import check_bn_policy


def nb201_supernet(space: SearchSpace, m: int, bn_policy: str) -> Nb201Supernet:
    """NB201 ops normalise inside themselves (ReLU-Conv-BN) as in the benchmark, and a multi-op edge sums
    them without a further norm, so the BN policy of multi-path layers has nothing to act on here."""
    check_bn_policy(bn_policy)
    return Nb201Supernet(space, m)


def nb201_standalone(space: SearchSpace, arch: Architecture, bn_policy: str) -> Nb201Model:
    check_bn_policy(bn_policy)
    return Nb201Model(space, arch)


def nb101_supernet(space: SearchSpace, m: int, bn_policy: str) -> NoReturn:
    raise MixPathError("the nb101 space has no supernet in mixpath; use it with a benchmark table")


def nb101_standalone(space: SearchSpace, arch: Architecture, bn_policy: str) -> Nb101Model:
    check_bn_policy(bn_policy)
    return Nb101Model(arch_to_cell(arch), space.num_classes)
