"""BN folding: folded stand-alone models compute what the supernet computes, for every family and BN policy."""

import random

import pytest
import torch
from torch import nn

from mixpath.benchmarks_nas.nb201 import Nb201Supernet, nb201_space
from mixpath.data import load_dataset
from mixpath.evaluation import CalibrationSettings, SupernetEvaluator
from mixpath.evaluation.folding import fold_batchnorms
from mixpath.spaces import get_space
from mixpath.supernet import BN_POLICIES, build_supernet


def give_statistics(supernet: nn.Module, space, m: int, x: torch.Tensor, rng: random.Random) -> None:
    """Move every BN's running statistics (and the BN affine parameters) away from their initial values,
    so that folding has something to fold."""
    supernet.train()
    with torch.no_grad():
        for _ in range(6):
            supernet(x + torch.randn_like(x), space.random_architecture(rng, m))
        for module in supernet.modules():
            if isinstance(module, nn.BatchNorm2d) and module.affine:
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    supernet.eval()


def batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("policy", BN_POLICIES)
def test_folded_mbconv_subnet_computes_the_supernet(tiny, policy):
    torch.manual_seed(0)
    rng = random.Random(1)
    supernet = build_supernet(tiny, 4, policy)
    x = torch.randn(8, 1, 8, 8)
    give_statistics(supernet, tiny, 4, x, rng)
    for _ in range(4):
        arch = tiny.random_architecture(rng, 4)
        subnet = supernet.extract(arch)
        folded = fold_batchnorms(subnet)
        assert batchnorms(folded) == 0 and batchnorms(subnet) > 0  # the copy is folded, the model is not
        with torch.no_grad():
            expected = supernet(x, arch)
            torch.testing.assert_close(folded(x), expected, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(subnet.eval()(x), expected, rtol=0, atol=0)


def test_folding_keeps_channels_last_and_the_separable_block():
    torch.manual_seed(0)
    space = get_space("imagenet-s2")
    arch = space.random_architecture(random.Random(0), 1)
    model = build_supernet(space, 1).extract(arch)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64))
    model.eval()
    folded = fold_batchnorms(model)
    assert batchnorms(folded) == 0
    assert all(
        conv.weight.is_contiguous(memory_format=torch.channels_last)
        for conv in folded.modules()
        if isinstance(conv, nn.Conv2d) and conv.kernel_size != (1, 1)
    )
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


def test_folded_shufflenet_and_nb201_models_compute_the_same():
    torch.manual_seed(0)
    rng = random.Random(0)
    shufflenet = get_space("spos-shufflenet")
    nb201 = nb201_space("nb201-small", channels=8, cells_per_stage=1)
    for space, supernet, m, size in (
        (shufflenet, build_supernet(shufflenet, 1), 1, 32),
        (nb201, Nb201Supernet(nb201, m=2), 2, 32),
    ):
        x = torch.randn(4, 3, size, size)
        give_statistics(supernet, space, m, x, rng)
        arch = space.random_architecture(rng, m)
        model = supernet.extract(arch).eval()
        folded = fold_batchnorms(model)
        assert batchnorms(folded) < batchnorms(model)
        with torch.no_grad():
            torch.testing.assert_close(folded(x), supernet(x, arch), rtol=1e-4, atol=1e-5)


def test_evaluator_scores_equal_with_and_without_folding(tiny):
    torch.manual_seed(0)
    supernet = build_supernet(tiny, 4)
    digits = load_dataset("digits")
    small = {"calibration": CalibrationSettings(size=300, batches=4, batch_size=64), "batch_size": 128}
    archs = [tiny.random_architecture(random.Random(3), 4) for _ in range(3)]
    folded = SupernetEvaluator(supernet, digits, **small).evaluate(archs)
    plain = SupernetEvaluator(supernet, digits, fold_bn=False, **small).evaluate(archs)
    for a, b in zip(folded, plain, strict=True):
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=100 / len(digits.val_y))  # one image at most
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
