"""NAS-Bench-201: strings, costs against every row of the NASLib table, models, supernet, tabular search."""

from __future__ import annotations

import csv
import io
import random

import pytest
import torch
from torch import nn

from mixpath.benchmarks_nas import (
    NB201,
    Nb201Model,
    Nb201Supernet,
    TableEvaluator,
    format_nb201,
    load_benchmark_evaluator,
    nb201_costs,
    nb201_space,
    nb201_table,
    parse_nb201,
)
from mixpath.benchmarks_nas.flops import count_flops, count_params
from mixpath.benchmarks_nas.tables import read_shipped_table
from mixpath.errors import MixPathError
from mixpath.search import SearchConfig, make_searcher
from mixpath.spaces import Architecture, get_space

DATASETS = {  # column prefix -> (input shape, classes)
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "ImageNet16-120": ((3, 16, 16), 120),
}


@pytest.fixture(scope="module")
def zc_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_shipped_table("nb201_zc_491.csv"))))


def _arch(text: str, m: int = 1) -> Architecture:
    return NB201.parse(text, m)


def test_every_benchmark_string_parses_and_formats_back():
    rows = list(csv.DictReader(io.StringIO(read_shipped_table("nb201_cifar10.csv"))))
    archs = {_arch(row["arch"]) for row in rows}
    assert len(rows) == len(archs) == 5**6 == NB201.size(1)
    assert all(NB201.format(_arch(row["arch"])) == row["arch"] for row in rows)


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_costs_equal_every_row_of_the_naslib_table(zc_rows, dataset):
    shape, classes = DATASETS[dataset]
    costs = nb201_costs(nb201_space(f"nb201-{dataset}", shape, classes))
    for row in zc_rows:
        params, flops = costs.of(_arch(row["arch"]))
        assert params == round(float(row[f"{dataset}_params_m"]) * 1e6), row["arch"]
        assert flops == pytest.approx(float(row[f"{dataset}_flops_m"]) * 1e6, abs=0.5), row["arch"]


def test_built_models_count_what_the_table_and_the_cost_model_say(zc_rows):
    costs = nb201_costs(NB201)
    picked = [zc_rows[i] for i in (0, 1, 2, 3, 100, 490)]
    picked.append({"arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"})
    for row in picked:
        arch = _arch(row["arch"])
        model = Nb201Model(NB201, arch)
        params, flops = count_params(model), count_flops(model, NB201.input_shape)
        assert (params, flops) == costs.of(arch)
        if "cifar10_params_m" in row:
            assert params == round(float(row["cifar10_params_m"]) * 1e6)
            assert flops == pytest.approx(float(row["cifar10_flops_m"]) * 1e6, abs=0.5)


def test_flops_convention_per_layer_type():
    layers = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=True),  # 8*8 positions * (27*4 + 4) = 7168
        nn.BatchNorm2d(4),  # 2 * 256 = 512
        nn.ReLU(),  # 256
        nn.AvgPool2d(2),  # 4 per output element * 64 = 256
        nn.AdaptiveAvgPool2d(1),  # 4 channels * 5 * 5 = 100
        nn.Flatten(),
        nn.Linear(4, 2),  # 8, bias not counted
    )
    assert count_flops(layers, (3, 8, 8)) == 7168 + 512 + 256 + 256 + 100 + 8
    assert count_params(layers) == 3 * 4 * 9 + 4 + 8 + 8 + 2


def test_multi_op_edges_extend_the_benchmark_string():
    text = "|nor_conv_3x3+skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    arch = _arch(text, m=2)
    assert arch.layers[0].paths == ("nor_conv_3x3", "skip_connect")
    assert format_nb201(arch) == text
    assert NB201.parse(str(arch), 2) == arch
    assert NB201.parse(str(arch.to_json()).replace("'", '"'), 2) == arch
    with pytest.raises(MixPathError, match="m=1"):
        NB201.parse(text, 1)
    model = Nb201Model(NB201, arch)
    assert count_params(model) == nb201_costs(NB201).of(arch)[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0", "malformed NB201 string"),
        ("|nor_conv_3x3~0|+|none~0|none~1|", "2 nodes"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2"),
        ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "expected '<op>~0'"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
    ],
)
def test_malformed_strings_name_the_problem(text, message):
    with pytest.raises(MixPathError, match=message):
        NB201.parse(text, 1)


def test_space_is_registered_with_the_benchmark_ops():
    space = get_space("nb201")
    assert space.default_m == 1 and space.family == "nb201" and space.n_layers == 6
    assert space.layers[0].ops == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert parse_nb201(space.format(space.largest_architecture(1))) == _arch(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )


def test_supernet_and_extracted_model_compute_the_same_function():
    torch.manual_seed(0)
    space = nb201_space("nb201-small", channels=8, cells_per_stage=1)
    supernet = Nb201Supernet(space, m=2)
    rng = random.Random(0)
    x = torch.randn(4, 3, 32, 32)
    supernet.train()
    with torch.no_grad():  # move the BN running statistics away from their initial values
        for _ in range(3):
            supernet(x, space.random_architecture(rng, 2))
    supernet.eval()
    archs = [space.random_architecture(rng, 2) for _ in range(3)]
    archs.append(parse_nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    outputs = []
    for arch in archs:
        model = supernet.extract(arch).eval()
        with torch.no_grad():
            expected = supernet(x, arch)
            torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)
        outputs.append(expected)
    assert not torch.allclose(outputs[0], outputs[1])
    single = archs[-1]
    assert count_params(supernet.extract(single)) < count_params(supernet)


def test_table_evaluator_returns_the_row_and_counts_queries():
    space, evaluator = load_benchmark_evaluator("nb201", "val")
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    arch = space.parse(best, 1)
    (metrics,) = evaluator.evaluate([arch])
    assert metrics["accuracy"] == metrics["val_accuracy"] == pytest.approx(91.60666665)
    assert metrics["test_accuracy"] == pytest.approx(91.09)
    assert metrics["cost_seconds"] == pytest.approx(2879.749334)
    assert metrics["params"] == pytest.approx(nb201_costs(NB201).of(arch)[0] / 1e6)
    evaluator.evaluate([arch, arch])
    assert evaluator.queries == 3
    assert evaluator.cost_seconds == pytest.approx(3 * 2879.749334)
    test_evaluator = TableEvaluator("nb201", evaluator.table, metric="test")
    assert test_evaluator.evaluate([arch])[0]["accuracy"] == pytest.approx(91.09)
    with pytest.raises(MixPathError, match="metric 'train'"):
        TableEvaluator("nb201", evaluator.table, metric="train")
    with pytest.raises(MixPathError, match="multi-op edge"):
        evaluator.evaluate([_arch(best.replace("skip_connect~0", "skip_connect+none~0"), m=2)])
    with pytest.raises(MixPathError, match="unknown benchmark"):
        load_benchmark_evaluator("nb301", "val")


@pytest.fixture(scope="module")
def table():
    return nb201_table()


def _search(algorithm: str, seed: int, table) -> list[tuple[str, float]]:
    evaluator = TableEvaluator("nb201", table)
    config = SearchConfig(objectives=("accuracy", "flops"), budget=40, population=10, seed=seed, top_k=5)
    result = make_searcher(algorithm).run(NB201, 1, evaluator, config, cost_model=evaluator.costs)
    assert evaluator.queries == len(result.evaluated) == 40
    return [(NB201.format(e.arch), e.metrics["test_accuracy"]) for e in result.evaluated]


@pytest.mark.parametrize("algorithm", ["evolution", "random", "nsga2"])
def test_tabular_search_is_deterministic_under_a_seed(algorithm, table):
    first = _search(algorithm, 3, table)
    assert first == _search(algorithm, 3, table)
    assert first != _search(algorithm, 4, table)
