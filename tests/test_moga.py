"""MoGA: its MobileNetV3-like space, the published MoGA-A/B/C models, and its weighted NSGA-II search."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from torch import nn
from typer.testing import CliRunner

from mixpath.cli import app, register_commands
from mixpath.errors import MixPathError
from mixpath.evaluation import count_macs, count_params
from mixpath.models import build_published, get_published
from mixpath.search import SearchConfig, make_searcher, parse_weights
from mixpath.search.nsga2 import _survival
from mixpath.search.pareto import non_dominated, weighted_crowding
from mixpath.search.synthetic import SyntheticEvaluator
from mixpath.spaces import get_space
from mixpath.supernet import build_supernet
from mixpath.supernet.mbconv import SeparableConv, SqueezeExcite

register_commands()
SIZE = 32  # reduced input side for forward passes: a 224-scale network on tiny images stays fast

# multiply-adds and parameters of the public MoGA model definitions, counted with mixpath's convention
# (conv and linear multiply-adds, every parameter): they equal mixpath's models exactly
PUBLIC_COUNTS = {
    "moga-a": (304_042_176, 5_159_802),
    "moga-b": (248_634_720, 5_506_236),
    "moga-c": (221_089_920, 5_488_200),
}


# --- the space and the published models ------------------------------------------------------------


def test_moga_space_is_the_macro_of_the_public_models():
    space = get_space("imagenet-moga")
    assert space.input_shape == (3, 224, 224) and space.default_m == 1 and space.max_m() == 3
    assert [spec.out_channels for spec in space.layers] == [24] * 2 + [40] * 3 + [80] * 4 + [112] * 2 + [160] * 3
    assert [i for i, spec in enumerate(space.layers) if spec.stride == 2] == [0, 2, 5, 11]
    assert [spec.attr("act") for spec in space.layers] == ["relu"] * 5 + ["hswish"] * 9
    assert all(spec.ops == ("k3", "k5", "k7") for spec in space.layers)
    assert all(dict(spec.options) == {"e": (3, 6), "se": (0, 1)} for spec in space.layers)
    assert space.size(1) == 12**14  # kernel x expansion x SE per layer


@pytest.mark.parametrize("name", ["moga-a", "moga-b", "moga-c"])
def test_moga_models_match_the_public_definitions_and_the_paper(name):
    published = get_published(name)
    with torch.device("meta"):
        model = build_published(name)
    macs, params = count_macs(model, (3, 224, 224)), count_params(model)
    assert (macs, params) == PUBLIC_COUNTS[name]
    assert published.exact and abs(macs / 1e6 - published.flops_m) < 1  # paper: 304, 248, 221 M
    # the paper truncates (5.16 -> 5.1); MoGA-C's public definition has 5.49M where the paper says 5.6M
    tolerance = 0.12 if name == "moga-c" else 0.06
    assert abs(params / 1e6 - published.params_m) < tolerance


def test_moga_a_is_built_like_the_public_model():
    model = build_published("moga-a")
    assert isinstance(model.stem[2], nn.Hardswish)
    assert isinstance(model.sep, SeparableConv) and not model.sep.residual  # 16 -> 16 without a residual
    assert isinstance(model.sep.depthwise[2], nn.ReLU)
    first, fourth, sixth = model.layers[0], model.layers[3], model.layers[5]
    assert first.se is None and isinstance(first.expand[2], nn.ReLU)
    assert isinstance(fourth.se, SqueezeExcite) and fourth.se.reduce.out_channels == 40 * 6 // 4  # hidden / 4
    assert isinstance(sixth.expand[2], nn.Hardswish) and sixth.se.act.__class__ is nn.Hardswish
    assert model.head.conv[0].out_channels == 960 and model.head.pooled[0].out_features == 1280
    assert model.head.pooled[0].bias is None and model.head.classifier.in_features == 1280


def test_se_gate_is_hard_sigmoid():
    se = SqueezeExcite(8, 2, "hswish", gate="hard_sigmoid")
    x = torch.randn(1, 8, 3, 3)
    pre = se.expand(se.act(se.reduce(x.mean((2, 3), keepdim=True))))
    torch.testing.assert_close(se(x), x * torch.clamp(pre + 3, 0, 6) / 6)
    with pytest.raises(MixPathError, match="unknown se_gate 'tanh'"):
        SqueezeExcite(8, 2, "relu", gate="tanh")


@pytest.mark.parametrize("m", [1, 3])
def test_supernet_runs_se_only_where_the_architecture_chooses_it(m):
    space = get_space("imagenet-moga")
    torch.manual_seed(0)
    net = build_supernet(space, m).train()
    rng = random.Random(m)
    with torch.no_grad():  # running statistics for the subnets to inherit
        for _ in range(2):
            net(torch.randn(4, 3, SIZE, SIZE), space.random_architecture(rng, m))
    net.eval()
    arch = space.random_architecture(rng, m)
    off = replace(arch, layers=tuple(replace(c, options=(("e", c.option("e")), ("se", 0))) for c in arch.layers))
    on = replace(arch, layers=tuple(replace(c, options=(("e", c.option("e")), ("se", 1))) for c in arch.layers))
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        for choice in (off, on):
            subnet = net.extract(choice).eval()
            assert all(
                (layer.se is None) == (c.option("se") == 0)
                for layer, c in zip(subnet.layers, choice.layers, strict=True)
            )
            torch.testing.assert_close(subnet(x), net(x, choice))
        assert not torch.allclose(net(x, off), net(x, on))


# --- weighted crowding -------------------------------------------------------------------------------


def test_equal_weights_give_nsga2s_crowding_distance():
    rng = np.random.default_rng(0)
    for n in (3, 6, 11):
        F = rng.normal(size=(n, 3))
        F[1] = F[2]  # duplicates and ties
        F[:, 2] = np.round(F[:, 2])
        np.testing.assert_allclose(weighted_crowding(F, np.full(3, 0.4)), calc_crowding_distance(F))
    assert weighted_crowding(np.ones((4, 2)), np.ones(2)).tolist() == [0.0] * 4


def test_an_objective_of_weight_zero_neither_spreads_nor_protects_its_extremes():
    F = np.array([[0.0, 5.0], [1.0, 0.0], [2.0, 9.0], [3.0, 4.0]])
    equal, accuracy_only = weighted_crowding(F, np.ones(2)), weighted_crowding(F, np.array([1.0, 0.0]))
    assert np.isinf(equal[1]) and np.isinf(equal[2])  # extremes of the second objective
    np.testing.assert_allclose(accuracy_only, [np.inf, 2 / 3, 2 / 3, np.inf])


def _survivors(weights: dict[str, float]) -> list[int]:
    F = np.array([[0, 10], [1, 9], [2.5, 3], [3, 2.5], [10, 0]], dtype=float)  # one front of five
    pop = Population.new(X=np.arange(5)[:, None], F=F)
    survival = _survival(("accuracy", "latency"), weights)["survival"]
    kept = survival.do(Problem(n_var=1, n_obj=2, xl=0, xu=4), pop, n_survive=4, random_state=np.random.default_rng(0))
    return sorted(int(x) for x in kept.get("X")[:, 0])


def test_weights_decide_who_of_the_last_front_survives():
    # gaps along the first objective: 0.25, 0.2, 0.75 (of the range); along the second: 0.7, 0.65, 0.3
    assert _survivors({"accuracy": 1.0, "latency": 0.0}) == [0, 1, 3, 4]
    assert _survivors({"accuracy": 0.0, "latency": 1.0}) == [0, 1, 2, 4]
    assert _survivors({"latency": 10.0}) == [0, 1, 2, 4]  # accuracy, not named, weighs 1: 0.75 + 3 is least
    assert _survivors({"accuracy": 1.0, "latency": 1.0}) == [0, 1, 3, 4]


# --- the weighted search -----------------------------------------------------------------------------

MOGA_SEARCH = {
    "objectives": ("accuracy", "flops", "params"),
    "weights": {"accuracy": 1.0, "flops": 0.5, "params": 0.2},
    "maximise": ("params",),
}


def _search(state_dir=None, resume=False, **settings):
    space = get_space("cifar-s1")
    evaluator = SyntheticEvaluator(space, 4)
    config = SearchConfig(**{"budget": 48, "population": 12, "seed": 2, **MOGA_SEARCH, **settings})
    result = make_searcher("nsga2").run(
        space, 4, evaluator, config, cost_model=evaluator.costs, state_dir=state_dir, resume=resume
    )
    return result, evaluator


def test_weights_change_the_search_and_maximised_params_shape_the_front():
    weighted, _ = _search()
    plain, _ = _search(weights={})
    assert [str(e.arch) for e in weighted.evaluated[:12]] == [str(e.arch) for e in plain.evaluated[:12]]
    assert [str(e.arch) for e in weighted.evaluated] != [str(e.arch) for e in plain.evaluated]
    F = np.array([[-e.metrics["accuracy"], e.metrics["flops"], -e.metrics["params"]] for e in weighted.evaluated])
    expected = {str(e.arch) for e, keep in zip(weighted.evaluated, non_dominated(F), strict=True) if keep}
    assert {str(e.arch) for e in weighted.front} == expected
    most_params = max(weighted.evaluated, key=lambda e: e.metrics["params"])
    assert str(most_params.arch) in expected  # maximised: the biggest is never dominated
    assert weighted.hypervolume() > 0


def test_a_weighted_search_resumes_to_the_uninterrupted_one(tmp_path):
    whole, _ = _search()
    _search(tmp_path, budget=24)
    resumed, evaluator = _search(tmp_path, resume=True)
    assert len(evaluator.evaluated) == 24
    assert [str(e.arch) for e in resumed.evaluated] == [str(e.arch) for e in whole.evaluated]
    with pytest.raises(MixPathError, match="made with config weights="):
        _search(tmp_path, resume=True, weights={"accuracy": 1.0})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"weights": {"latency": 1.0}}, "weight given for 'latency', which is not an objective"),
        ({"weights": {"accuracy": -1.0}}, "must be a finite number >= 0"),
        ({"weights": {"accuracy": 0, "flops": 0}}, "every objective has weight 0"),
        ({"maximise": ("accuracy",)}, "only cost objectives of this search can be maximised"),
        ({"maximise": ("params",)}, "only cost objectives"),
    ],
)
def test_bad_preferences_are_clear_errors(settings, message):
    with pytest.raises(MixPathError, match=message):
        SearchConfig(**settings)


def test_only_nsga2_takes_weights_and_old_settings_files_still_read():
    space = get_space("tiny")
    evaluator = SyntheticEvaluator(space, 2)
    config = SearchConfig(budget=4, population=2, weights={"flops": 0.5})
    with pytest.raises(MixPathError, match="setting of nsga2"):
        make_searcher("evolution").run(space, 2, evaluator, config)
    saved = SearchConfig().to_json()
    assert "weights" not in saved and "maximise" not in saved  # as written before these settings existed
    assert SearchConfig.from_json(saved) == SearchConfig()
    assert SearchConfig.from_json(SearchConfig(**MOGA_SEARCH).to_json()) == SearchConfig(**MOGA_SEARCH)


def test_cli_weighted_search_on_a_benchmark_table(tmp_path):
    common = ["search", "--benchmark", "nb201", "--objectives", "accuracy,flops,params", "--budget", "12"]
    weighted = ["--weights", "accuracy=1,flops=0.5,params=0.2", "--maximise", "params"]
    done = CliRunner().invoke(app, [*common, "--population", "6", *weighted, "--out", str(tmp_path / "w")])
    assert done.exit_code == 0, done.output
    config = json.loads((tmp_path / "w" / "history.json").read_text())["config"]
    assert config["weights"] == {"accuracy": 1.0, "flops": 0.5, "params": 0.2} and config["maximise"] == ["params"]
    assert parse_weights(" accuracy=1, params=0.2 ") == {"accuracy": 1.0, "params": 0.2}
    with pytest.raises(MixPathError, match="malformed weight 'flops:0.5'"):
        parse_weights("flops:0.5")
