"""NAS-Bench-201 and NAS-Bench-101: their spaces, model builders checked against the benchmark tables,
a reader for the official NAS-Bench-101 file, and benchmark tables as search evaluators.

Importing this package registers the spaces ``nb201`` and ``nb101`` (``mixpath.spaces.get_space``)
and their model families (``mixpath.supernet.build_supernet`` / ``build_standalone``).
"""

from mixpath.benchmarks_nas.nb101 import NB101, Nb101Cell, Nb101Model, arch_to_cell, cell_to_arch, nb101_costs
from mixpath.benchmarks_nas.nb201 import (
    NB201,
    Nb201Model,
    Nb201Supernet,
    format_nb201,
    nb201_costs,
    nb201_space,
    parse_nb201,
)
from mixpath.benchmarks_nas.tables import (
    BenchmarkTable,
    TableEvaluator,
    TableRow,
    load_benchmark_evaluator,
    nb101_table,
    nb201_table,
)
from mixpath.benchmarks_nas.tfrecord import read_nasbench101
from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, SearchSpace, register_space
from mixpath.supernet import BN_POLICIES, Family, register_family


def _check_policy(bn_policy: str) -> None:
    if bn_policy not in BN_POLICIES:
        raise MixPathError(f"unknown BN policy {bn_policy!r}; choose one of: {', '.join(BN_POLICIES)}")


def _nb201_supernet(space: SearchSpace, m: int, bn_policy: str) -> Nb201Supernet:
    """NB201 ops normalise inside themselves (ReLU-Conv-BN) as in the benchmark, and a multi-op edge sums
    them without a further norm, so the BN policy of multi-path layers has nothing to act on here."""
    _check_policy(bn_policy)
    return Nb201Supernet(space, m)


def _nb201_standalone(space: SearchSpace, arch: Architecture, bn_policy: str) -> Nb201Model:
    _check_policy(bn_policy)
    return Nb201Model(space, arch)


def _nb101_supernet(space: SearchSpace, m: int, bn_policy: str) -> None:
    raise MixPathError("the nb101 space has no supernet in mixpath; use it with a benchmark table")


def _nb101_standalone(space: SearchSpace, arch: Architecture, bn_policy: str) -> Nb101Model:
    _check_policy(bn_policy)
    return Nb101Model(arch_to_cell(arch), space.num_classes)


for _space in (NB201, NB101):
    register_space(_space)
register_family("nb201", Family(_nb201_supernet, _nb201_standalone))
register_family("nb101", Family(_nb101_supernet, _nb101_standalone))

__all__ = [
    "NB101",
    "NB201",
    "BenchmarkTable",
    "Nb101Cell",
    "Nb101Model",
    "Nb201Model",
    "Nb201Supernet",
    "TableEvaluator",
    "TableRow",
    "arch_to_cell",
    "cell_to_arch",
    "format_nb201",
    "load_benchmark_evaluator",
    "nb101_costs",
    "nb101_table",
    "nb201_costs",
    "nb201_space",
    "nb201_table",
    "parse_nb201",
    "read_nasbench101",
]
