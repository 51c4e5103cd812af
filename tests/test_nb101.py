"""NAS-Bench-101: pruning, the benchmark's graph hash, channel split, costs against every NASLib row."""

from __future__ import annotations

import csv
import io
import itertools
import random

import pytest
import torch

from mixpath.benchmarks_nas import NB101, Nb101Cell, Nb101Model, arch_to_cell, cell_to_arch, nb101_costs
from mixpath.benchmarks_nas.flops import count_flops, count_params
from mixpath.benchmarks_nas.nb101 import graph_hash
from mixpath.benchmarks_nas.tables import read_shipped_table
from mixpath.errors import MixPathError
from mixpath.spaces import get_space
from mixpath.supernet import build_standalone, build_supernet

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# A cell of the official dataset with its hash and trainable_parameters, as recorded from the official
# file by third parties (NNI's and NASLib's examples of the first record): an independent check of
# the hash and of the parameter convention.
OFFICIAL_MATRIX = (
    (0, 1, 0, 0, 1, 1, 0),
    (0, 0, 1, 0, 0, 0, 0),
    (0, 0, 0, 1, 0, 0, 1),
    (0, 0, 0, 0, 0, 1, 0),
    (0, 0, 0, 0, 0, 1, 0),
    (0, 0, 0, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, 0, 0),
)
OFFICIAL_OPS = ("input", C3, MP, C3, C3, C1, "output")
OFFICIAL_HASH = "00005c142e6f48ac74fdcf73e3439874"
OFFICIAL_PARAMS = 8_555_530


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_shipped_table("nb101_cifar10_500.csv"))))


def _cell(row: dict[str, str]) -> Nb101Cell:
    return Nb101Cell.from_strings(row["adjacency"], row["ops"])


def _meta_counts(cell: Nb101Cell) -> tuple[int, int]:
    with torch.device("meta"):
        model = Nb101Model(cell)
    return count_params(model), count_flops(model, (3, 32, 32))


def test_official_hash_and_parameter_count():
    cell = Nb101Cell(OFFICIAL_MATRIX, OFFICIAL_OPS)
    assert cell.hash() == OFFICIAL_HASH
    assert nb101_costs(cell)[0] == OFFICIAL_PARAMS
    assert _meta_counts(cell)[0] == OFFICIAL_PARAMS


def test_costs_equal_every_row_of_the_naslib_table(rows):
    for row in rows:
        params, flops = nb101_costs(_cell(row))
        assert params == round(float(row["params_m"]) * 1e6), row
        assert flops == pytest.approx(float(row["flops_m"]) * 1e6, abs=0.5), row


def test_built_models_count_what_the_cost_model_says(rows):
    picked = [rows[i] for i in (0, 1, 3)]
    input_only = next(row for row in rows if _cell(row).prune().n_vertices == 2)
    for row in [*picked, input_only]:
        cell = _cell(row)
        assert _meta_counts(cell) == nb101_costs(cell)
        assert _meta_counts(cell)[0] == round(float(row["params_m"]) * 1e6)


def test_table_matrices_are_unpruned_and_all_prune_to_valid_cells(rows):
    cells = [_cell(row) for row in rows]
    assert max(cell.n_edges for cell in cells) > 9
    assert all(cell.check().n_edges <= 9 for cell in cells)
    # 500 sampled matrices are 292 benchmark cells (55 of them just input -> output). Isomorphic cells
    # may differ in parameters: the uneven channel split gives the extra channels by vertex index.
    params_by_hash: dict[str, set[str]] = {}
    for cell, row in zip(cells, rows, strict=True):
        params_by_hash.setdefault(cell.hash(), set()).add(row["params_m"])
    assert len(params_by_hash) == 292
    assert sum(len(params) > 1 for params in params_by_hash.values()) == 3


def _permuted(cell: Nb101Cell, order: tuple[int, ...]) -> Nb101Cell:
    """Vertex ``order[i]`` of ``cell`` becomes vertex i."""
    matrix = tuple(tuple(cell.matrix[s][d] for d in order) for s in order)
    return Nb101Cell(matrix, tuple(cell.ops[v] for v in order))


def _upper_triangular(cell_matrix: tuple[tuple[int, ...], ...], order: tuple[int, ...]) -> bool:
    n = len(order)
    return all(not cell_matrix[order[s]][order[d]] for s in range(n) for d in range(s + 1))


def test_isomorphic_cells_hash_equal():
    cell = Nb101Cell(OFFICIAL_MATRIX, OFFICIAL_OPS)
    orders = [
        (0, *perm, 6)
        for perm in itertools.permutations(range(1, 6))
        if _upper_triangular(OFFICIAL_MATRIX, (0, *perm, 6))
    ]
    assert len(orders) > 1
    for order in orders:
        other = _permuted(cell, order)
        assert other.hash() == OFFICIAL_HASH
        assert nb101_costs(other)[0] == OFFICIAL_PARAMS
    assert any(_permuted(cell, order) != cell for order in orders)


def test_non_isomorphic_cells_hash_differently():
    cell = Nb101Cell(OFFICIAL_MATRIX, OFFICIAL_OPS)
    relabelled = Nb101Cell(OFFICIAL_MATRIX, ("input", MP, C3, C3, C3, C1, "output"))
    rewired = [list(row) for row in OFFICIAL_MATRIX]
    rewired[1][2], rewired[1][3] = 0, 1
    assert relabelled.hash() != OFFICIAL_HASH
    assert Nb101Cell(tuple(map(tuple, rewired)), OFFICIAL_OPS).hash() != OFFICIAL_HASH
    # The benchmark's tricky pair: same degrees, labels placed differently along a chain.
    chain = ((0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 0, 0, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0))
    assert graph_hash(chain, [-1, 1, 0, 0, -2]) != graph_hash(chain, [-1, 0, 0, 1, -2])
    assert cell.hash() == OFFICIAL_HASH


def test_pruning_drops_dangling_vertices_and_rejects_disconnected_cells():
    dangling = [list(row) for row in OFFICIAL_MATRIX]
    dangling[5][6] = 0  # vertex 5 no longer feeds the output: 5 and its only-predecessors 3, 4 go
    cell = Nb101Cell(tuple(map(tuple, dangling)), OFFICIAL_OPS)
    pruned = cell.prune()
    assert pruned.n_vertices == 4
    assert pruned.ops == ("input", C3, MP, "output")
    assert cell.hash() == pruned.hash()
    disconnected = ((0, 1, 0), (0, 0, 0), (0, 0, 0))
    with pytest.raises(MixPathError, match="no path from input to output"):
        Nb101Cell(disconnected, ("input", C3, "output")).prune()
    dense = tuple(tuple(int(d > s) for d in range(7)) for s in range(7))
    with pytest.raises(MixPathError, match="21 edges after pruning, at most 9"):
        Nb101Cell(dense, ("input", C3, C3, C3, C3, C3, "output")).check()
    with pytest.raises(MixPathError, match="unknown NB101 op 'conv5x5'"):
        Nb101Cell(disconnected, ("input", "conv5x5", "output"))


def test_vertex_channels_split_the_output_unevenly_and_truncate():
    # Vertices 1, 2, 3 feed the output (128 = 43 + 43 + 42); vertex 1 also feeds vertex 3 (42 channels),
    # so its output is truncated on that edge.
    matrix = ((0, 1, 1, 0, 0), (0, 0, 0, 1, 1), (0, 0, 0, 1, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0))
    cell = Nb101Cell(matrix, ("input", C3, C1, MP, "output"))
    assert cell.vertex_channels(64, 128) == [64, 43, 43, 42, 128]
    model = Nb101Model(cell, stem_channels=8)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    with_input_edge = Nb101Cell(((0, 1, 1), (0, 0, 1), (0, 0, 0)), ("input", MP, "output"))
    assert with_input_edge.vertex_channels(64, 128) == [64, 128, 128]
    assert Nb101Model(with_input_edge, stem_channels=8)(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_space_strings_round_trip_and_random_cells_are_valid(rows):
    space = get_space("nb101")
    row = rows[0]
    text = f"{row['adjacency']}:{row['ops']}"
    arch = space.parse(text, 1)
    assert space.format(arch) == text
    assert space.parse(str(arch), 1) == arch
    assert arch_to_cell(cell_to_arch(_cell(row))) == _cell(row)
    draws = [space.random_architecture(random.Random(7), 1) for _ in range(2)]
    assert draws[0] == draws[1]
    for arch in (space.random_architecture(random.Random(seed), 1) for seed in range(20)):
        assert arch_to_cell(arch).check().n_edges <= 9
    dense = "0" + "1" * 6 + "00" + "1" * 5 + "000" + "1" * 4 + "0000111" + "00000110000001" + "0" * 7
    with pytest.raises(MixPathError, match="at most 9"):
        space.parse(f"{dense}:input,{C3},{C3},{C3},{C3},{C3},output", 1)


def test_family_builds_the_standalone_model_and_has_no_supernet(rows):
    arch = NB101.parse(f"{rows[1]['adjacency']}:{rows[1]['ops']}", 1)
    with torch.device("meta"):
        model = build_standalone(NB101, arch)
    assert count_params(model) == round(float(rows[1]["params_m"]) * 1e6)
    with pytest.raises(MixPathError, match="no supernet"):
        build_supernet(NB101, 1)
