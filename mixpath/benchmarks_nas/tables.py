"""Benchmark tables as search evaluators: every query is a lookup, its cost the benchmark's training time.

``TableEvaluator`` implements ``mixpath.interfaces.Evaluator``. Per architecture it returns

- ``accuracy``: the metric searched on, percent: validation accuracy (``metric="val"``, the honest
  choice for search) or test accuracy (``metric="test"``);
- ``val_accuracy`` and ``test_accuracy``: both, percent, so results can report test accuracy of what
  was found on validation;
- ``flops`` / ``params``: millions, of the benchmark's own network (exact, see nb201.py / nb101.py);
- ``cost_seconds``: the benchmark's training time of that architecture (what the query would cost).

It counts ``queries`` and sums ``cost_seconds``. ``costs(arch)`` gives flops and params without a
query, for ``Searcher.run(..., cost_model=evaluator.costs)``.

Tables: ``nb201`` is shipped (``mixpath/data_tables/nb201_cifar10.csv``: CIFAR-10, 200 epochs, mean of
3 seeds, validation = the cifar10-valid split); ``nb101`` needs the official
``nasbench_only108.tfrecord`` (108 epochs, mean of the 3 runs), which mixpath does not ship.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mixpath.benchmarks_nas.nb101 import NB101, arch_to_cell, nb101_costs
from mixpath.benchmarks_nas.nb201 import NB201, format_nb201, nb201_costs
from mixpath.benchmarks_nas.tfrecord import read_nasbench101
from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, SearchSpace, get_space

BENCHMARKS = ("nb201", "nb101")
METRICS = ("val", "test")


def read_shipped_table(name: str) -> str:
    """The text of a table shipped in ``mixpath/data_tables`` (e.g. ``nb201_zc_491.csv``)."""
    resource = resources.files("mixpath") / "data_tables" / name
    if not resource.is_file():
        raise MixPathError(f"mixpath ships no table {name!r}; see mixpath/data_tables/README.md")
    return resource.read_text(encoding="utf-8")


@dataclass(frozen=True)
class TableRow:
    """Ground truth of one architecture: accuracies in percent, training time in seconds."""

    val_accuracy: float
    test_accuracy: float
    train_seconds: float


@dataclass(frozen=True)
class BenchmarkTable:
    """Rows keyed by ``key(arch)`` (the NB201 string, the NB101 graph hash); ``costs(arch)`` gives
    (parameters, FLOPs) as counts."""

    name: str
    space: SearchSpace
    rows: Mapping[str, TableRow]
    key: Callable[[Architecture], str]
    costs: Callable[[Architecture], tuple[int, int]]

    def row(self, arch: Architecture) -> TableRow:
        key = self.key(arch)
        if key not in self.rows:
            raise MixPathError(f"architecture {self.space.format(arch)!r} is not in the {self.name} table")
        return self.rows[key]


def _nb201_key(arch: Architecture) -> str:
    if any(len(choice.paths) != 1 for choice in arch.layers):
        raise MixPathError(
            f"{format_nb201(arch)!r} has a multi-op edge; the NB201 table only holds one op per edge (m=1)"
        )
    return format_nb201(arch)


def nb201_table() -> BenchmarkTable:
    """NAS-Bench-201 on CIFAR-10 (15,625 architectures), from the shipped table."""
    rows = {
        line["arch"]: TableRow(
            float(line["valid_accuracy"]), float(line["test_accuracy"]), float(line["train_seconds"])
        )
        for line in csv.DictReader(io.StringIO(read_shipped_table("nb201_cifar10.csv")))
    }
    return BenchmarkTable("nb201", NB201, rows, _nb201_key, nb201_costs(NB201).of)


def _nb101_key(arch: Architecture) -> str:
    return arch_to_cell(arch).hash()


def _nb101_arch_costs(arch: Architecture) -> tuple[int, int]:
    return nb101_costs(arch_to_cell(arch))


def nb101_table(path: str | Path, epochs: int = 108, verify: bool = True) -> BenchmarkTable:
    """NAS-Bench-101 from an official TFRecord file: per cell, the mean over its runs at ``epochs``.

    Only running sums are kept per cell, so the 423,624 cells x 3 runs of the official file fit easily.
    """
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for record in read_nasbench101(path, verify):
        if record.epochs == epochs:
            total = sums[record.module_hash]
            total[0] += record.validation_accuracy
            total[1] += record.test_accuracy
            total[2] += record.training_time
            total[3] += 1
    if not sums:
        raise MixPathError(f"{path} holds no NAS-Bench-101 run of {epochs} epochs")
    rows = {key: TableRow(100 * val / n, 100 * test / n, seconds / n) for key, (val, test, seconds, n) in sums.items()}
    return BenchmarkTable("nb101", NB101, rows, _nb101_key, _nb101_arch_costs)


class TableEvaluator:
    """Scores architectures of ``space_name`` by looking them up in ``table``; see the module docstring."""

    def __init__(self, space_name: str, table: BenchmarkTable, metric: str = "val") -> None:
        if metric not in METRICS:
            raise MixPathError(f"unknown table metric {metric!r}; choose one of: {', '.join(METRICS)}")
        space = get_space(space_name)
        if space.name != table.space.name:
            raise MixPathError(f"the {table.name} table is for space {table.space.name!r}, not {space_name!r}")
        self.space, self.table, self.metric = space, table, metric
        self.queries = 0
        self.cost_seconds = 0.0

    def costs(self, arch: Architecture) -> dict[str, float]:
        """FLOPs and parameters (millions) without a query."""
        params, flops = self.table.costs(arch)
        return {"flops": flops / 1e6, "params": params / 1e6}

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        results = []
        for arch in archs:
            row = self.table.row(arch)
            self.queries += 1
            self.cost_seconds += row.train_seconds
            accuracy = row.val_accuracy if self.metric == "val" else row.test_accuracy
            results.append(
                {
                    "accuracy": accuracy,
                    "val_accuracy": row.val_accuracy,
                    "test_accuracy": row.test_accuracy,
                    **self.costs(arch),
                    "cost_seconds": row.train_seconds,
                }
            )
        return results


def load_benchmark_evaluator(
    name: str, metric: str = "val", path: str | Path | None = None
) -> tuple[SearchSpace, TableEvaluator]:
    """The space and a table evaluator of benchmark ``name`` (``nb201``; ``nb101`` needs ``path``, the
    official ``nasbench_only108.tfrecord``)."""
    if name == "nb201":
        if path is not None:
            raise MixPathError("the nb201 table ships with mixpath; do not pass a path for it")
        table = nb201_table()
    elif name == "nb101":
        if path is None:
            raise MixPathError("the nb101 benchmark needs the official nasbench_only108.tfrecord: pass its path")
        table = nb101_table(path)
    else:
        raise MixPathError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}")
    return table.space, TableEvaluator(table.space.name, table, metric)
