"""SupernetEvaluator: validation scores, order independence, stand-alone equality, cache, errors."""

import json
import random
from dataclasses import replace

import pytest
import torch

from mixpath.errors import MixPathError
from mixpath.evaluation import (
    CalibrationSettings,
    CostModel,
    SupernetEvaluator,
    calibrate_bn,
    calibration_images,
    evaluate_standalone,
    score,
)
from mixpath.search import Evaluator, SearchConfig, make_searcher
from mixpath.spaces import Architecture

SMALL = {"calibration": CalibrationSettings(size=300, batches=4, batch_size=64), "batch_size": 128}
LOSS_RTOL = 1e-5
"""Scores of one model computed two ways (BNs folded into the convolutions or not, calibrated through the
supernet or through the extracted model) differ by float rounding, which differs between CPUs: the mean loss
agrees to this relative tolerance, the accuracy to one image (``_one_image``)."""


def _one_image(split: torch.Tensor) -> float:
    """One image of ``split`` in accuracy points: rounding may move one borderline image across a decision."""
    return 100.0 / len(split)


def _small(mode: str = "exact", **changes) -> dict:
    """SMALL with another calibration mode or other calibration settings."""
    return {**SMALL, "calibration": replace(SMALL["calibration"], mode=mode, **changes)}


@pytest.fixture
def archs(tiny):
    rng = random.Random(5)
    return [tiny.random_architecture(rng, 4) for _ in range(2)]


def test_scores_are_validation_accuracy_after_calibration_plus_costs(tiny, tiny_supernet, all_digits, archs):
    evaluator = SupernetEvaluator(tiny_supernet, all_digits, **SMALL)
    assert isinstance(evaluator, Evaluator)
    result = evaluator.evaluate(archs[:1])[0]
    calibrate_bn(tiny_supernet, archs[0], calibration_images(all_digits, 300), 64)
    expected = score(tiny_supernet, archs[0], all_digits.val, SMALL["batch_size"])
    approx = {
        "accuracy": pytest.approx(expected["accuracy"], abs=_one_image(all_digits.val_y)),  # folded BNs vs not
        "loss": pytest.approx(expected["loss"], rel=LOSS_RTOL),
    }
    assert result == {**CostModel(tiny)(archs[0]), **approx}
    assert 0.0 <= result["accuracy"] <= 100.0 and result["loss"] > 0
    assert evaluator.scored == 1 and evaluator.seconds["calibration"] > 0 and evaluator.seconds["validation"] > 0


@pytest.mark.parametrize("calibration", ["exact", "ema"])
def test_results_do_not_depend_on_evaluation_order(tiny_supernet, all_digits, archs, calibration):
    forward = SupernetEvaluator(tiny_supernet, all_digits, **_small(calibration)).evaluate(archs)
    backward = SupernetEvaluator(tiny_supernet, all_digits, **_small(calibration)).evaluate(archs[::-1])
    assert forward == backward[::-1]
    assert forward[0] != forward[1]


@pytest.mark.parametrize("calibration", ["exact", "ema"])
def test_subnet_scores_what_its_stand_alone_model_scores(tiny_supernet, all_digits, archs, calibration):
    evaluator = SupernetEvaluator(tiny_supernet, all_digits, **_small(calibration))
    for arch in archs:
        subnet = evaluator.evaluate([arch])[0]
        model = tiny_supernet.extract(arch)
        standalone = evaluate_standalone(model, all_digits, **_small(calibration))
        assert standalone["accuracy"] == pytest.approx(subnet["accuracy"], abs=_one_image(all_digits.val_y))
        assert standalone["loss"] == pytest.approx(subnet["loss"], rel=LOSS_RTOL)
        assert torch.allclose(model.stem[1].running_var, tiny_supernet.stem[1].running_var)


def test_no_calibration_leaves_the_supernet_unchanged_and_flags_are_restored(tiny_supernet, all_digits, archs):
    before = {k: v.clone() for k, v in tiny_supernet.state_dict().items()}
    tiny_supernet.train()
    SupernetEvaluator(tiny_supernet, all_digits, **_small("none")).evaluate(archs)
    assert tiny_supernet.training and all(m.training for m in tiny_supernet.modules())
    assert all(torch.equal(before[k], v) for k, v in tiny_supernet.state_dict().items())


def test_cache_skips_scored_architectures_and_keys_on_weights_and_settings(tiny_supernet, all_digits, archs, tmp_path):
    path = tmp_path / "run" / "eval_cache.jsonl"
    first = SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL)
    scores = first.evaluate(archs)
    assert first.scored == 2 and len(path.read_text().splitlines()) == 2
    again = SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL)
    assert again.evaluate(archs[::-1]) == scores[::-1] and again.scored == 0
    other = SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **_small(size=200))
    other.evaluate(archs[:1])
    assert other.scored == 1
    with torch.no_grad():
        tiny_supernet.head.classifier.bias.add_(1.0)
    retrained = SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL)
    retrained.evaluate(archs[:1])
    assert retrained.scored == 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 4 and len({line["key"] for line in lines}) == 3


def test_cache_survives_a_torn_last_line(tiny_supernet, all_digits, archs, tmp_path):
    path = tmp_path / "eval_cache.jsonl"
    SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL).evaluate(archs[:1])
    with path.open("a") as handle:
        handle.write('{"arch": "e3:k3-e3')  # killed mid-write
    resumed = SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL)
    resumed.evaluate(archs)
    assert resumed.scored == 1
    fresh = SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL)
    assert fresh.evaluate(archs) == resumed.evaluate(archs)
    assert len(SupernetEvaluator(tiny_supernet, all_digits, cache_path=path, **SMALL).cache) == 2


def test_a_searcher_runs_on_the_supernet_evaluator(tiny, tiny_supernet, all_digits):
    evaluator = SupernetEvaluator(tiny_supernet, all_digits, **SMALL)
    config = SearchConfig(objectives=("accuracy", "flops"), budget=4, population=2, seed=0)
    result = make_searcher("random").run(tiny, 4, evaluator, config, cost_model=evaluator.cost_model)
    assert len(result.evaluated) == 4
    assert all({"accuracy", "loss", "flops", "params"} <= set(e.metrics) for e in result.evaluated)


def test_on_scored_hears_of_each_architecture_as_it_is_scored(tiny_supernet, all_digits, archs):
    evaluator = SupernetEvaluator(tiny_supernet, all_digits, **SMALL)
    heard = []
    evaluator.on_scored = lambda arch: heard.append((arch, evaluator.scored))
    evaluator.evaluate(archs)
    assert heard == [(archs[0], 1), (archs[1], 2)]  # one call per architecture, right after its score


def test_standalone_test_split_and_errors(tiny_supernet, all_digits, archs):
    model = tiny_supernet.extract(archs[0])
    on_test = evaluate_standalone(model, all_digits, split="test", **SMALL)
    unfolded = score(model, None, all_digits.test, batch_size=128)  # the BNs it calibrated, not folded
    assert on_test["accuracy"] == pytest.approx(unfolded["accuracy"], abs=_one_image(all_digits.test_y))
    assert on_test["loss"] == pytest.approx(unfolded["loss"], rel=LOSS_RTOL)
    with pytest.raises(MixPathError, match="unknown split 'train'"):
        evaluate_standalone(model, all_digits, split="train")
    with pytest.raises(MixPathError, match="no validation split"):
        SupernetEvaluator(tiny_supernet, replace(all_digits, val_x=all_digits.val_x[:0], val_y=all_digits.val_y[:0]))
    with pytest.raises(MixPathError, match="not a mixpath supernet"):
        SupernetEvaluator(model, all_digits)
    with pytest.raises(MixPathError, match="unknown calibration 'fast'"):
        CalibrationSettings(mode="fast")
    with pytest.raises(MixPathError, match="unknown op 'k4'"):
        SupernetEvaluator(tiny_supernet, all_digits, **SMALL).evaluate([Architecture.parse("e3:k4-e3:k3-e3:k3")])
