import itertools
import random

import pytest
import torch

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, get_space
from mixpath.supernet import BN_POLICIES, build_standalone, build_supernet


def _train_forward(net, arch, x):
    net.train()
    return net(x, arch)


@pytest.mark.parametrize("policy", BN_POLICIES)
def test_every_mbconv_space_runs_forward_for_random_archs(policy):
    for name in ("tiny", "fmnist-s1", "cifar-s1"):
        space = get_space(name)
        net = build_supernet(space, 4, policy)
        rng = random.Random(0)
        c, h, w = space.input_shape
        x = torch.randn(2, c, h, w)
        for _ in range(2):
            out = _train_forward(net, space.random_architecture(rng, 4), x)
            assert out.shape == (2, space.num_classes)
            assert torch.isfinite(out).all()


def test_shadow_bn_updates_only_sbn_k(tiny):
    net = build_supernet(tiny, 4, "shadow")
    rng = random.Random(3)
    x = torch.randn(4, 1, 8, 8)
    for k in range(1, 5):
        arch = Architecture(tuple(c for c in tiny.random_architecture(rng, 4).layers))
        arch = Architecture(
            tuple(type(c).of(tiny.layers[i].ops[:k], e=c.option("e")) for i, c in enumerate(arch.layers))
        )
        before = {name: buf.clone() for name, buf in net.named_buffers() if "norms" in name}
        _train_forward(net, arch, x)
        for name, buf in net.named_buffers():
            if "norms" not in name or "num_batches" in name:
                continue
            layer, e_index, sbn = int(name.split(".")[1]), int(name.split(".")[3]), int(name.split(".")[5])
            e_used = tiny.layers[layer].option_values("e").index(arch.layers[layer].option("e"))
            changed = not torch.equal(before[name], buf)
            assert changed == (e_index == e_used and sbn == k - 1), name


@pytest.mark.parametrize("policy", BN_POLICIES)
def test_gradients_reach_exactly_the_active_paths(tiny, policy):
    net = build_supernet(tiny, 4, policy)
    arch = tiny.parse("e6:k3+k9-e3:k5-e6:k3+k5+k7", 4)
    net.zero_grad(set_to_none=True)
    _train_forward(net, arch, torch.randn(4, 1, 8, 8)).sum().backward()
    for i, (layer, choice) in enumerate(zip(net.layers, arch.layers, strict=True)):
        e, paths = layer.indices(choice)
        for ei, branches in enumerate(layer.branches):
            for p, branch in enumerate(branches):
                grads = [q.grad for q in branch.parameters()]
                active = ei == e and p in paths
                assert all((g is not None and g.abs().sum() > 0) for g in grads) == active, (i, ei, p)
                assert all(g is None for g in grads) == (not active), (i, ei, p)
        bn_used, _ = layer.norms[e].select(paths)
        for norm in layer.norms:
            for bn in norm.modules():
                if isinstance(bn, torch.nn.BatchNorm2d):
                    assert (bn.weight.grad is not None) == (bn is bn_used)


def test_exponential_policy_has_one_bn_per_subset(tiny):
    net = build_supernet(tiny, 4, "exponential")
    assert len(net.layers[0].norms[0].bns) == 2**4 - 1
    net2 = build_supernet(tiny, 2, "exponential")
    assert len(net2.layers[0].norms[0].bns) == 4 + 6


def test_scaled_policy_divides_the_sum_by_k(tiny):
    torch.manual_seed(0)
    net = build_supernet(tiny, 4, "scaled").eval()
    layer = net.layers[1]
    bn, scale = layer.norms[0].select((0, 1, 2))
    assert scale == pytest.approx(1 / 3)
    assert layer.norms[0].select((0,))[0] is bn


@pytest.mark.parametrize("policy", BN_POLICIES)
def test_extracted_subnet_equals_supernet(policy):
    space = get_space("fmnist-s1")
    torch.manual_seed(0)
    net = build_supernet(space, 4, policy)
    rng = random.Random(5)
    x = torch.randn(8, 1, 28, 28)
    # give BNs non-trivial running statistics first
    for _ in range(3):
        _train_forward(net, space.random_architecture(rng, 4), x)
    net.eval()
    for _ in range(3):
        arch = space.random_architecture(rng, 4)
        sub = net.extract(arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, arch), rtol=0, atol=0)


def test_standalone_holds_only_its_ops(tiny):
    arch = tiny.parse("e3:k3-e6:k5+k7-e3:k9", 4)
    model = build_standalone(tiny, arch)
    kernels = [[b[0].kernel_size[0] for b in layer.branches] for layer in model.layers]
    assert kernels == [[3], [5, 7], [9]]
    assert model.layers[1].expand[0].out_channels == 6 * 8
    net = build_supernet(tiny, 4)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in net.parameters())


def test_unknown_policy_is_rejected(tiny):
    with pytest.raises(MixPathError, match="unknown BN policy 'batch'"):
        build_supernet(tiny, 2, "batch")


def test_every_subset_runs(tiny):
    net = build_supernet(tiny, 4)
    x = torch.randn(2, 1, 8, 8)
    for k in range(1, 5):
        for subset in itertools.combinations(tiny.layers[0].ops, k):
            arch = Architecture((type(tiny.random_architecture(random.Random(0), 1).layers[0]).of(subset, e=3),) * 3)
            assert _train_forward(net, arch, x).shape == (2, 10)
