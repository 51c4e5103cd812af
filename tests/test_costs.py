"""Cost objectives against independent counts (torch's FlopCounterMode, numel, a hand count); latency table."""

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mixpath.errors import MixPathError
from mixpath.evaluation import CostModel, LatencyTable, build_latency_table, count_macs, layer_choices
from mixpath.spaces import Architecture, get_space
from mixpath.supernet import build_standalone


def independent_counts(space, arch):
    """(multiply-adds, parameters) of the real stand-alone model: FlopCounterMode FLOPs / 2, and numel."""
    model = build_standalone(space, arch)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, *space.input_shape))
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "n_archs"),
    [
        ("tiny", 6),
        ("fmnist-s1", 3),
        ("cifar-s1", 2),
        ("imagenet-s3", 1),
        ("spos-shufflenet", 1),
    ],
)
def test_counts_match_flop_counter_and_numel(name, n_archs):
    space = get_space(name)
    costs = CostModel(space)
    rng = random.Random(7)
    m = space.max_m()
    archs = [space.random_architecture(rng, m) for _ in range(n_archs)] + [space.largest_architecture(m)]
    for arch in archs:
        assert costs.counts(arch) == independent_counts(space, arch)
        macs, params = costs.counts(arch)
        assert costs(arch) == {"flops": macs / 1e6, "params": params / 1e6}


def test_tiny_architecture_by_hand():
    # tiny: 1x8x8 input, stem 3x3 to 8 channels, layers 8->8 (stride 1), 8->16 (stride 2), 16->16, head 32
    arch = Architecture.parse("e3:k3-e3:k5-e6:k3+k5")
    stem = 8 * 8 * 8 * 9
    layer0 = 64 * 8 * 24 + 64 * 24 * 9 + 64 * 24 * 8  # expand to 24, depthwise 3x3, project (8x8)
    layer1 = 64 * 8 * 24 + 16 * 24 * 25 + 16 * 24 * 16  # expand at 8x8; depthwise 5x5 stride 2 and project at 4x4
    layer2 = 16 * 16 * 96 + 16 * 96 * (9 + 25) + 16 * 96 * 16  # expand to 96, two depthwise paths, project
    head = 16 * 16 * 32 + 32 * 10
    assert CostModel(get_space("tiny")).counts(arch)[0] == stem + layer0 + layer1 + layer2 + head


def test_whole_model_differences_agree_with_layer_parts():
    """The mechanism for families without layer parts gives the same numbers on mbconv."""
    space = get_space("tiny")
    by_parts = CostModel(space)
    by_models = CostModel(space, build=lambda arch: build_standalone(space, arch))
    rng = random.Random(1)
    for _ in range(5):
        arch = space.random_architecture(rng, 4)
        assert by_models.counts(arch) == by_parts.counts(arch)


def test_other_families_without_layer_parts():
    from mixpath.benchmarks_nas import NB201

    costs = CostModel(NB201)
    rng = random.Random(0)
    for arch in [NB201.random_architecture(rng, 2) for _ in range(2)]:
        assert costs.counts(arch) == independent_counts(NB201, arch)


def test_count_macs_keeps_training_flags_and_rejects_bad_architectures():
    space = get_space("tiny")
    model = build_standalone(space, space.largest_architecture(2)).train()
    assert count_macs(model, space.input_shape) > 0 and model.training
    costs = CostModel(space)
    with pytest.raises(MixPathError, match="2 layers"):
        costs(Architecture.parse("e3:k3-e3:k3"))
    with pytest.raises(MixPathError, match="unknown op 'k4'"):
        costs(Architecture.parse("e3:k4-e3:k3-e3:k3"))


def test_latency_table_predicts_the_sum_of_its_parts(tmp_path):
    space = get_space("tiny")
    table = build_latency_table(space, 2, warmup=1, repeats=3, rounds=2, calibrate=0)
    assert [len(layer) for layer in table.layers] == [spec.n_choices(2) for spec in space.layers]
    assert all(ms > 0 for layer in table.layers for ms in layer.values()) and table.fixed > 0
    arch = Architecture.parse("e6:k3+k9-e3:k5-e3:k7")
    expected = table.fixed + sum(layer[str(c)] for layer, c in zip(table.layers, arch.layers, strict=True))
    assert table.scale == 1.0 and table.predict(arch) == pytest.approx(expected)
    scaled = build_latency_table(space, 2, warmup=1, repeats=3, calibrate=2)
    assert scaled.scale > 0 and scaled.predict(arch) == pytest.approx(scaled.scale * scaled.sum_of_parts(arch))
    table.save(tmp_path / "latency.json")
    loaded = LatencyTable.load(tmp_path / "latency.json")
    assert loaded == table
    costs = CostModel(space, latency=loaded)
    assert costs(arch)["latency"] == pytest.approx(expected)
    with pytest.raises(MixPathError, match="not in the latency table"):
        table.predict(Architecture.parse("e6:k3+k5+k7-e3:k5-e3:k7"))  # 3 paths, measured for m=2
    with pytest.raises(MixPathError, match="measured for space 'tiny'"):
        CostModel(get_space("fmnist-s1"), latency=table)
    (tmp_path / "bad.json").write_text('{"version": 1, "space": "tiny"}')
    with pytest.raises(MixPathError, match="malformed latency table"):
        LatencyTable.load(tmp_path / "bad.json")


def test_layer_choices_enumerate_every_path_set_and_option():
    spec = get_space("tiny").layers[0]
    choices = layer_choices(spec, 3)
    assert len(choices) == len(set(choices)) == spec.n_choices(3) == (4 + 6 + 4) * 2
    assert all(1 <= len(c.paths) <= 3 for c in choices)
