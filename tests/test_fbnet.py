"""FBNet's differentiable supernet (``--strategy fbnet``) and its search (``--algo fbnet``), on a two-layer space."""

import math
import random
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from short_runs import short_run_config, two_layer_space

from mixpath.errors import MixPathError
from mixpath.evaluation import CostModel, LatencyTable
from mixpath.search import SearchConfig
from mixpath.spaces import Architecture
from mixpath.supernet import build_supernet
from mixpath.training import train_supernet
from mixpath.training.checkpoint import load_checkpoint
from mixpath.training.fbnet import (
    FBNET_FILE,
    candidate_costs,
    derive,
    gumbel_weights,
    layer_candidates,
    mixed_forward,
    temperature,
)
from mixpath.training.trainer import CHECKPOINT_FILE
from mixpath.workflow import search_supernet

SPACE = two_layer_space("fbnet-test", "two layers", ops=("k3", "k5"), expansions=(1, 2))
_config = partial(short_run_config, "fbnet-test", strategy="fbnet")


def _one_hot(arch):
    candidates = layer_candidates(SPACE)
    return [
        torch.eye(len(c), dtype=torch.float64)[c.index(choice)]
        for c, choice in zip(candidates, arch.layers, strict=True)
    ]


def _table():
    layers = tuple(
        {str(c): 1.0 + 0.5 * i + j for j, c in enumerate(cs)} for i, cs in enumerate(layer_candidates(SPACE))
    )
    return LatencyTable("fbnet-test", 1, "cpu", 1, 1, "x", fixed=0.7, layers=layers, scale=1.2)


def test_gradients_reach_the_architecture_parameters():
    torch.manual_seed(0)
    net = build_supernet(SPACE, 1)
    candidates = layer_candidates(SPACE)
    theta = [torch.zeros(len(c), requires_grad=True) for c in candidates]
    weights = gumbel_weights(theta, 5.0, torch.Generator().manual_seed(0))
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    costs = candidate_costs(SPACE, candidates, None)
    loss = F.cross_entropy(mixed_forward(net, x, weights, candidates), y) * costs.loss_factor(weights, 0.2, 0.6)
    grads = torch.autograd.grad(loss, theta)
    assert all(g.abs().sum() > 0 for g in grads)


def test_latency_term_is_the_tables_value_for_one_hot_weights_and_differentiable():
    table = _table()
    costs = candidate_costs(SPACE, layer_candidates(SPACE), table)
    rng = random.Random(0)
    for _ in range(5):
        arch = SPACE.random_architecture(rng, 1)
        assert costs.expected(_one_hot(arch)).item() == pytest.approx(table.predict(arch), rel=1e-12)
    theta = [torch.zeros(len(c), dtype=torch.float64, requires_grad=True) for c in layer_candidates(SPACE)]
    weights = [F.softmax(t, 0) for t in theta]
    (grad,) = torch.autograd.grad(costs.loss_factor(weights, 0.2, 0.6), theta[1])
    assert grad.abs().sum() > 0 and grad[0] < 0 < grad[-1]  # cheaper candidates are pushed up
    # FBNet's factor: alpha * log(microseconds) ** beta
    arch = SPACE.random_architecture(rng, 1)
    expected = 0.2 * math.log(1000 * table.predict(arch)) ** 0.6
    assert costs.loss_factor(_one_hot(arch), 0.2, 0.6).item() == pytest.approx(expected)


def test_flops_cost_without_a_table_equals_the_cost_model():
    costs = candidate_costs(SPACE, layer_candidates(SPACE), None)
    model = CostModel(SPACE)
    for arch in (Architecture.parse("e1:k3-e2:k5"), Architecture.parse("e2:k5-e1:k3")):
        assert costs.expected(_one_hot(arch)).item() == pytest.approx(model(arch)["flops"], rel=1e-9)


def test_temperature_schedule_is_fbnets():
    config = _config()
    assert [round(temperature(config, e), 6) for e in range(3)] == [5.0, 4.78, 4.56968]
    assert temperature(_config(temperature=2.0, temperature_decay=0.5), 3) == 0.25


def test_derive_argmax_and_top_k():
    candidates = layer_candidates(SPACE)  # per layer: e1:k3, e2:k3, e1:k5, e2:k5
    probs = [[0.1, 0.5, 0.1, 0.3], [0.4, 0.3, 0.2, 0.1]]
    assert str(derive(SPACE, candidates, probs, 1)) == "e2:k3-e1:k3"
    # m=2: an op joins when its probability summed over the expansions exceeds 1/2: layer 0's k5 has 0.4
    assert str(derive(SPACE, candidates, probs, 2)) == "e2:k3-e1:k3"
    top_k = derive(SPACE, candidates, [[0.3, 0.3, 0.05, 0.35], probs[1]], 2)  # k3: 0.6, argmax e2:k5
    assert top_k == Architecture.parse("e2:k5+k3-e1:k3")


def test_fbnet_resume_equals_uninterrupted_and_search_reads_it(tmp_path, digits_96):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_supernet(_config(), whole, progress=False, dataset=digits_96)
    # an epoch is 2 weight steps (64 images) and 1 architecture step (32 held-out images)
    train_supernet(_config(), cut, progress=False, dataset=digits_96, stop_after_steps=2)  # before the arch phase
    assert load_checkpoint(cut / CHECKPOINT_FILE)["step"] == 2
    train_supernet(None, cut, resume=True, progress=False, dataset=digits_96, stop_after_steps=2)  # into epoch 2
    assert (load_checkpoint(cut / CHECKPOINT_FILE)["epoch"], load_checkpoint(cut / CHECKPOINT_FILE)["step"]) == (1, 1)
    result = train_supernet(None, cut, resume=True, progress=False, dataset=digits_96)
    a, b = load_checkpoint(whole / CHECKPOINT_FILE), load_checkpoint(cut / CHECKPOINT_FILE)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(x, y) for x, y in zip(a["fbnet"]["theta"], b["fbnet"]["theta"], strict=True))
    assert any(t.abs().sum() > 0 for t in a["fbnet"]["theta"])  # the architecture steps moved theta
    assert (whole / FBNET_FILE).read_text() == (cut / FBNET_FILE).read_text()
    assert result.last["temperature"] == 4.78 and "argmax" in result.last
    found, _ = search_supernet(cut, "fbnet", SearchConfig(budget=3, population=2), progress=False, device="cpu")
    derived = __import__("json").loads((cut / FBNET_FILE).read_text())["derived"]
    assert str(found.evaluated[0].arch) == derived and len(found.evaluated) == 3


def test_a_run_keeps_its_latency_table_and_resumes_after_a_move(tmp_path, digits_96):
    _table().save(tmp_path / "given.json")
    config = _config(latency_table=str(tmp_path / "given.json"))
    train_supernet(config, tmp_path / "run", progress=False, dataset=digits_96, stop_after_steps=2)
    assert LatencyTable.load(tmp_path / "run" / "latency_table.json") == _table()
    (tmp_path / "given.json").unlink()
    moved = (tmp_path / "run").rename(tmp_path / "moved")
    result = train_supernet(None, moved, resume=True, progress=False, dataset=digits_96)
    assert result.last["epoch"] == config.epochs
    found, _ = search_supernet(
        moved, "nsga2", SearchConfig(objectives=("accuracy", "latency"), budget=2, population=2), progress=False
    )
    assert all(e.metrics["latency"] == pytest.approx(_table().predict(e.arch)) for e in found.evaluated)


def test_fbnet_refuses_what_it_cannot_do():
    with pytest.raises(MixPathError, match="shrink_at is for sampled supernets"):
        _config(shrink_at=(0.5,))
    with pytest.raises(MixPathError, match="held_out"):
        _config(held_out=1.0)
