"""NAS-Bench-201 and NAS-Bench-101: their spaces, model builders checked against the benchmark tables,
a reader for the official NAS-Bench-101 file, and benchmark tables as search evaluators.

The spaces ``nb201`` and ``nb101`` and their model families are built in: ``mixpath.spaces.get_space`` and
``mixpath.supernet.build_supernet`` / ``build_standalone`` find them here when first asked, without this package
being imported first.
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
