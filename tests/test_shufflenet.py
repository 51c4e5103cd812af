"""SPOS's ShuffleNetV2 space: skeleton, channel-sliced supernet, extraction, FLOPs, FLOPs-binned sampling."""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mixpath.errors import MixPathError
from mixpath.evaluation import calibrate_bn, count_macs, count_params
from mixpath.models import ShuffleNetSupernet, build_published, get_published, shufflenet_macs
from mixpath.spaces import Architecture, LayerChoice, flops_binned_sampler, get_space
from mixpath.supernet import build_standalone, build_supernet

SIZE = 32  # input side in tests: 32 -> 16 after the stem -> 8, 4, 2, 1 after the stages


@pytest.fixture(scope="module")
def space():
    return get_space("spos-shufflenet")


@pytest.fixture(scope="module")
def supernet(space):
    torch.manual_seed(0)
    return build_supernet(space, 1)


def small_arch(space, rng: random.Random) -> Architecture:
    """A random architecture whose scales are below the largest, so every block runs on sliced weights."""
    return Architecture(
        tuple(
            LayerChoice.of([rng.choice(spec.ops)], c=rng.choice(spec.option_values("c")[:-1])) for spec in space.layers
        )
    )


def test_skeleton_is_spos(space):
    assert space.n_layers == 20
    assert [spec.out_channels for spec in space.layers] == [64] * 4 + [160] * 4 + [320] * 8 + [640] * 4
    assert [i for i, spec in enumerate(space.layers) if spec.stride == 2] == [0, 4, 8, 16]
    assert space.layers[0].in_channels == 16 and space.layers[4].in_channels == 64
    assert space.layers[0].ops == ("shuffle3", "shuffle5", "shuffle7", "xception")
    assert space.layers[0].option_values("c") == (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6)
    assert space.max_m() == 1 and space.default_m == 1
    assert space.size(1) == 32**20
    assert get_space("spos-shufflenet-blocks").size(1) == 4**20


def test_single_path_only(space):
    with pytest.raises(MixPathError, match="m=2"):
        space.check_m(2)
    with pytest.raises(MixPathError, match="m=2"):
        build_supernet(space, 2)
    two_paths = Architecture((LayerChoice.of(["shuffle3", "xception"], c=1.0),) * 20)
    with pytest.raises(MixPathError, match="active paths"):
        build_standalone(space, two_paths)


def test_architecture_string_round_trips(space):
    arch = space.random_architecture(random.Random(3), 1)
    text = str(arch)
    assert text.count("-") == 19 and text.startswith("c")
    assert space.parse(text, 1) == arch


def test_supernet_bn_has_no_affine_and_standalone_has(space, supernet):
    bns = [m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not bn.affine for bn in bns)
    model = build_standalone(space, space.random_architecture(random.Random(0), 1))
    assert all(m.affine for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_forward_and_backward_on_random_architectures(space, supernet):
    rng = random.Random(1)
    x = torch.randn(2, 3, SIZE, SIZE)
    supernet.train()
    for _ in range(2):
        supernet.zero_grad()
        out = supernet(x, space.random_architecture(rng, 1))
        assert out.shape == (2, 1000)
        out.square().mean().backward()
        grads = [p.grad for p in supernet.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)


def test_sliced_batch_norm_updates_only_active_channels(space, supernet):
    arch = Architecture(tuple(LayerChoice.of(["shuffle3"], c=0.2) for _ in space.layers))
    block = supernet.layers[1][0]  # layer 1 (64 wide, mid 32 x 1.6 = 51 allocated), shuffle3
    bn = block.main[0].bn
    before = bn.running_mean.clone()
    supernet.train()
    with torch.no_grad():
        supernet(torch.randn(2, 3, SIZE, SIZE), arch)
    active = int(32 * 0.2)
    assert not torch.equal(bn.running_mean[:active], before[:active])
    assert torch.equal(bn.running_mean[active:], before[active:])


def test_extracted_subnet_computes_the_supernet(space, supernet):
    rng = random.Random(2)
    supernet.train()
    with torch.no_grad():  # give the running statistics non-trivial values
        for _ in range(2):
            supernet(torch.randn(4, 3, SIZE, SIZE), small_arch(space, rng))
    supernet.eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    for _ in range(2):
        arch = small_arch(space, rng)
        subnet = supernet.extract(arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(subnet(x), supernet(x, arch), rtol=1e-4, atol=1e-5)


def test_bn_calibration_reaches_sliced_bns(space, supernet):
    """Calibrating the supernet for an architecture, then extracting, equals extracting then calibrating."""
    arch = small_arch(space, random.Random(5))
    images = torch.randn(8, 3, SIZE, SIZE)
    calibrated = copy.deepcopy(supernet)
    used = calibrate_bn(calibrated, arch, images, batch_size=4)
    block, mid = calibrated._block(1, arch.layers[1])
    assert block.main[0].bn in used and mid < block.main[0].bn.num_features
    first = calibrated.extract(arch).eval()
    second = supernet.extract(arch)
    calibrate_bn(second, None, images, batch_size=4)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(first(x), second.eval()(x), rtol=1e-4, atol=1e-5)


def test_flops_agree_between_extracted_fresh_analytic_and_torch_counter(space, supernet):
    arch = small_arch(space, random.Random(4))
    shape = (3, SIZE, SIZE)
    extracted, fresh = supernet.extract(arch), build_standalone(space, arch)
    macs = count_macs(extracted, shape)
    assert macs == count_macs(fresh, shape) == shufflenet_macs(space, arch, SIZE)
    with FlopCounterMode(display=False) as counter:
        fresh.eval()(torch.zeros(1, *shape))
    assert counter.get_total_flops() == 2 * macs
    assert count_params(extracted) == count_params(fresh)


def test_spos_searched_model_matches_its_published_figures():
    published = get_published("spos")
    space = get_space(published.space)
    arch = published.architecture()
    assert arch.layers[0] == LayerChoice.of(["shuffle7"], c=1.0)  # SPOS block index 2
    with torch.device("meta"):
        model = build_published("spos")
    macs = count_macs(model, space.input_shape)
    assert macs == shufflenet_macs(space, arch) == 322_918_720
    assert abs(macs / 1e6 - published.flops_m) < 1  # published: 323M
    # published 3.5M: conv and linear weights (3,529,312); BN's affine parameters add 29,152
    weights = sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in m.parameters())
    assert round(weights / 1e6, 1) == published.params_m
    assert count_params(model) == 3_558_464


def test_flops_binned_sampler_fills_bins_uniformly(space):
    rng = random.Random(0)
    flops = [shufflenet_macs(space, space.random_architecture(rng, 1)) / 1e6 for _ in range(400)]
    flops.sort()
    # three bins: one below the 10th percentile, the middle, one above the 90th: uniform sampling would
    # fill them 10% / 80% / 10%, the binned sampler about a third each
    edges = [flops[0], flops[40], flops[360], flops[-1]]

    def macs_m(arch):
        return shufflenet_macs(space, arch) / 1e6

    hits = Counter()
    for _ in range(90):
        value = macs_m(flops_binned_sampler(space, macs_m, edges, rng))
        assert edges[0] <= value < edges[-1]
        hits[sum(value >= edge for edge in edges[1:-1])] += 1
    assert all(15 <= hits[b] <= 45 for b in range(3)), hits


def test_flops_binned_sampler_rejects_bad_bins(space):
    def macs_m(arch):
        return shufflenet_macs(space, arch) / 1e6

    rng = random.Random(0)
    with pytest.raises(MixPathError, match="strictly increasing"):
        flops_binned_sampler(space, macs_m, [300, 200], rng)
    with pytest.raises(MixPathError, match="no architecture"):
        flops_binned_sampler(space, macs_m, [1, 2], rng, max_draws=20)


def test_supernet_is_the_registered_family(space, supernet):
    assert isinstance(supernet, ShuffleNetSupernet)
