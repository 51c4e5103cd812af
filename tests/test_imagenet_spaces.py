"""ImageNet spaces S2 and S3: skeletons, SE and activations, supernet vs subnet, FLOPs, published models."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from mixpath.evaluation import count_macs, count_params
from mixpath.models import PUBLISHED, build_published, get_published
from mixpath.spaces import get_space
from mixpath.supernet import build_standalone, build_supernet
from mixpath.supernet.mbconv import SeparableConv, SqueezeExcite

SIZE = 32  # reduced input side: 224-scale models, tiny images, so each test stays well under 10 s


@pytest.fixture(scope="module")
def supernets():
    torch.manual_seed(0)
    return {name: build_supernet(get_space(name), get_space(name).default_m) for name in ("imagenet-s2", "imagenet-s3")}


def test_s2_is_the_fairnas_macro():
    space = get_space("imagenet-s2")
    assert space.input_shape == (3, 224, 224) and space.num_classes == 1000 and space.default_m == 2
    widths = [spec.out_channels for spec in space.layers]
    assert widths == [32] * 2 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    assert [i for i, spec in enumerate(space.layers) if spec.stride == 2] == [0, 2, 6, 14]
    assert space.layers[0].in_channels == 16  # after the separable block 32 -> 16
    assert all(spec.ops == ("k3", "k5", "k7", "k9") and spec.option_values("e") == (3, 6) for spec in space.layers)
    assert all(spec.attr("act") == "relu6" and not spec.attr("se") for spec in space.layers)
    assert space.skeleton["head_channels"] == 1280


def test_s3_is_the_mixnet_m_macro_with_swish_and_se():
    space = get_space("imagenet-s3")
    assert space.default_m == 4
    widths = [spec.out_channels for spec in space.layers]
    assert widths == [32] * 2 + [40] * 4 + [80] * 4 + [120] * 4 + [200] * 4
    assert [i for i, spec in enumerate(space.layers) if spec.stride == 2] == [0, 2, 6, 14]
    assert [spec.attr("act") for spec in space.layers] == ["relu"] * 2 + ["swish"] * 16
    assert [spec.attr("se", 0) for spec in space.layers] == [0] * 2 + [0.5] * 4 + [0.25] * 4 + [0.5] * 8
    assert space.skeleton["head_channels"] == 1536 and space.skeleton["activation"] == "relu"


def test_s3_layers_build_se_and_swish_where_mixnet_has_them(supernets):
    net = supernets["imagenet-s3"]
    assert isinstance(net.sep, SeparableConv) and net.sep.residual  # MixNet-M's ds block 24 -> 24
    first, second = net.layers[0], net.layers[2]
    assert first.se is None and isinstance(first.expand[0][2], nn.ReLU)
    assert isinstance(second.expand[1][2], nn.SiLU)
    se = second.se[1]  # expansion 6 of the 32 -> 40 layer: SE squeezes to 0.5 x 32 input channels
    assert isinstance(se, SqueezeExcite) and se.reduce.in_channels == 32 * 6 and se.reduce.out_channels == 16
    assert not supernets["imagenet-s2"].sep.residual  # FairNAS's separable block 32 -> 16 has none


def test_small_spaces_keep_their_modules_and_order():
    net = build_supernet(get_space("cifar-s1"), 4)
    assert net.sep is None
    assert all(layer.se is None for layer in net.layers)
    prefixes = list(dict.fromkeys(key.split(".")[0] for key in net.state_dict()))
    assert prefixes == ["stem", "layers", "head"]


@pytest.mark.parametrize("name", ["imagenet-s2", "imagenet-s3"])
def test_forward_and_backward_on_random_architectures(supernets, name):
    space, net = get_space(name), supernets[name]
    rng = random.Random(0)
    net.train()
    x = torch.randn(2, 3, SIZE, SIZE)
    for _ in range(2):
        net.zero_grad()
        arch = space.random_architecture(rng, space.default_m)
        out = net(x, arch)
        assert out.shape == (2, 1000)
        out.square().mean().backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["imagenet-s2", "imagenet-s3"])
def test_subnet_computes_the_supernet_and_counts_the_same(supernets, name):
    space, net = get_space(name), supernets[name]
    rng = random.Random(1)
    net.train()
    with torch.no_grad():  # non-trivial running statistics in the BNs the subnet inherits
        net(torch.randn(4, 3, SIZE, SIZE), space.random_architecture(rng, space.default_m))
    net.eval()
    arch = space.random_architecture(rng, space.default_m)
    subnet = net.extract(arch).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(subnet(x), net(x, arch))
    fresh = build_standalone(space, arch)
    assert count_macs(subnet, space.input_shape) == count_macs(fresh, space.input_shape)
    assert count_params(subnet) == count_params(fresh)


def test_costs_grow_from_smallest_to_largest():
    space = get_space("imagenet-s3")
    smallest = space.parse("-".join(["e3:k3"] * space.n_layers), 1)
    with torch.device("meta"):
        small = count_macs(build_standalone(space, smallest), space.input_shape)
        large = count_macs(build_standalone(space, space.largest_architecture(4)), space.input_shape)
    assert 150e6 < small < large


@pytest.mark.parametrize("name", ["fairnas-a", "fairnas-b", "fairnas-c"])
def test_fairnas_models_match_their_published_figures(name):
    published = get_published(name)
    space = get_space(published.space)
    with torch.device("meta"):
        model = build_published(name)
    assert published.exact and published.architecture().path_counts == (1,) * 19
    assert abs(count_macs(model, space.input_shape) / 1e6 - published.flops_m) < 1
    assert abs(count_params(model) / 1e6 - published.params_m) < 0.06  # the paper truncates: 4.65M -> 4.6M


@pytest.mark.parametrize(
    ("name", "params"), [("fairnas-a", 4_651_352), ("fairnas-b", 4_506_272), ("fairnas-c", 4_397_864)]
)
def test_fairnas_parameter_counts_are_exact(name, params):
    # the parameter counts of the public FairNAS model definitions (as recorded by UniNAS's model tests)
    with torch.device("meta"):
        assert count_params(build_published(name)) == params


def test_mixnet_m_takes_mixnet_layers_in_s3():
    published = get_published("mixnet-m")
    arch = published.architecture()
    assert not published.exact
    assert str(arch.layers[0]) == "e6:k3+k5+k7" and str(arch.layers[10]) == "e6:k3"
    assert arch.path_counts == (3, 1, 4, 2, 2, 2, 3, 4, 4, 4, 1, 4, 4, 4, 4, 4, 4, 4)
    with torch.device("meta"):
        model = build_published("mixnet-m")
    # summed full-width paths and ungrouped 1x1 convs cost more than MixNet-M's split channels
    assert count_macs(model, get_space("imagenet-s3").input_shape) / 1e6 > published.flops_m


def test_every_published_model_parses_in_its_space():
    for published in PUBLISHED.values():
        space = get_space(published.space)
        assert space.parse(published.arch, space.max_m()) == published.architecture()
