"""BN post-calibration: which BNs change, exact statistics, EMA, determinism, restored state."""

import random

import pytest
import torch
from torch import nn

from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings, calibrate_bn, calibration_images
from mixpath.evaluation.calibration import BATCH_NORMS
from mixpath.spaces import Architecture
from mixpath.supernet import build_supernet


def bn_states(model):
    return {
        name: {k: v.clone() for k, v in m.state_dict().items()}
        for name, m in model.named_modules()
        if isinstance(m, BATCH_NORMS)
    }


def changed(before, after):
    return {name for name in before if any(not torch.equal(before[name][k], after[name][k]) for k in before[name])}


def used_bn_names(supernet, arch):
    """The BNs an mbconv architecture runs, read off the supernet's structure (independent of hooks)."""
    names = {"stem.1", "head.conv.1"}
    for i, (layer, choice) in enumerate(zip(supernet.layers, arch.layers, strict=True)):
        e, paths = layer.indices(choice)
        names.add(f"layers.{i}.expand.{e}.1")
        names |= {f"layers.{i}.branches.{e}.{p}.1" for p in paths}
        names.add(f"layers.{i}.norms.{e}.bns.{len(paths) - 1}")
    return names


def test_calibration_images_are_a_seeded_subset_of_the_training_split(all_digits):
    a = calibration_images(all_digits, 300, seed=1).x
    assert a.shape == (300, *all_digits.input_shape)
    assert torch.equal(a, calibration_images(all_digits, 300, seed=1).x)
    assert not torch.equal(a, calibration_images(all_digits, 300, seed=2).x)
    train = {tuple(x.flatten().tolist()) for x in all_digits.train_x}
    assert all(tuple(x.flatten().tolist()) in train for x in a[:50])
    assert len(calibration_images(all_digits, 10**6)) == len(all_digits.train_x)  # capped at the split


def test_exact_calibration_changes_exactly_the_bns_the_architecture_uses(tiny, tiny_supernet, all_digits):
    arch = Architecture.parse("e3:k3+k7-e6:k5-e3:k3+k5+k7+k9")
    before = bn_states(tiny_supernet)
    calibrated = calibrate_bn(tiny_supernet, arch, calibration_images(all_digits, 256), batch_size=64)
    names = {name for name, m in tiny_supernet.named_modules() if any(m is c for c in calibrated)}
    assert names == used_bn_names(tiny_supernet, arch)
    assert changed(before, bn_states(tiny_supernet)) == names  # the others are bit-identical


def test_exact_calibration_weighs_every_image_the_same(all_digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    images = calibration_images(all_digits, 250).x
    calibrate_bn(model, None, images, batch_size=64)  # batches of 64, 64, 64 and 58 images
    with torch.no_grad():
        features = model[0](images)
    torch.testing.assert_close(model[1].running_mean, features.mean((0, 2, 3)), rtol=0, atol=1e-6)
    chunks = features.split(64)
    variances = torch.stack([len(c) * c.transpose(0, 1).flatten(1).var(1) for c in chunks])
    torch.testing.assert_close(model[1].running_var, variances.sum(0) / len(images), rtol=1e-5, atol=1e-6)
    assert model[1].momentum == 0.1 and int(model[1].num_batches_tracked) == 4


def test_ema_calibration_follows_the_bn_momentum_from_reset_statistics(all_digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, momentum=0.3))
    images = calibration_images(all_digits, 96).x
    calibrate_bn(model, None, images, batch_size=32, mode="ema")
    mean, var = torch.zeros(4), torch.ones(4)
    with torch.no_grad():
        for batch in images.split(32):
            f = model[0](batch).transpose(0, 1).flatten(1)
            mean = 0.7 * mean + 0.3 * f.mean(1)
            var = 0.7 * var + 0.3 * f.var(1)
    torch.testing.assert_close(model[1].running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model[1].running_var, var, rtol=1e-5, atol=1e-6)
    assert model[1].momentum == 0.3


def test_calibration_is_deterministic_and_independent_of_what_ran_before(tiny, tiny_supernet, all_digits):
    images = calibration_images(all_digits, 200)
    rng = random.Random(3)
    a, b = tiny.random_architecture(rng, 4), tiny.random_architecture(rng, 4)
    for mode in ("exact", "ema"):
        calibrate_bn(tiny_supernet, a, images, 50, mode)
        first = bn_states(tiny_supernet)
        calibrate_bn(tiny_supernet, b, images, 50, mode)
        calibrate_bn(tiny_supernet, a, images, 50, mode)
        again = bn_states(tiny_supernet)
        used = used_bn_names(tiny_supernet, a)
        assert all(torch.equal(first[n][k], again[n][k]) for n in used for k in first[n])


def test_none_changes_nothing_and_flags_and_momenta_are_restored(tiny, tiny_supernet, all_digits):
    arch = tiny.random_architecture(random.Random(0), 4)
    before = bn_states(tiny_supernet)
    assert calibrate_bn(tiny_supernet, arch, calibration_images(all_digits, 64), 32, mode="none") == []
    assert changed(before, bn_states(tiny_supernet)) == set()
    tiny_supernet.train()
    tiny_supernet.layers[0].eval()
    calibrate_bn(tiny_supernet, arch, calibration_images(all_digits, 64), 32)
    assert tiny_supernet.training and not tiny_supernet.layers[0].training and tiny_supernet.layers[1].training
    assert all(m.momentum == 0.1 for m in tiny_supernet.modules() if isinstance(m, BATCH_NORMS))
    assert not any(m._forward_pre_hooks for m in tiny_supernet.modules())


def test_calibration_works_for_other_families(all_digits):
    from mixpath.benchmarks_nas import nb201_space

    space = nb201_space("nb201-digits", input_shape=(1, 8, 8))
    torch.manual_seed(0)
    supernet = build_supernet(space, 1)
    ops = ["nor_conv_3x3", "none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3"]
    arch = Architecture.parse("-".join(ops))
    before = bn_states(supernet)
    calibrated = calibrate_bn(supernet, arch, calibration_images(all_digits, 64), 32)
    names = changed(before, bn_states(supernet))
    assert names == {name for name, m in supernet.named_modules() if any(m is c for c in calibrated)}
    assert any(".edges.0.nor_conv_3x3." in n for n in names)
    assert not any(".edges.0.nor_conv_1x1." in n or ".edges.3.nor_conv_3x3." in n for n in names)


def test_bad_settings_are_one_line_errors(tiny_supernet, all_digits):
    images = calibration_images(all_digits, 16).x
    with pytest.raises(MixPathError, match="unknown calibration 'fast'"):
        calibrate_bn(tiny_supernet, None, images, 8, mode="fast")
    with pytest.raises(MixPathError, match="batch_size=0"):
        calibrate_bn(tiny_supernet, None, images, 0)
    with pytest.raises(MixPathError, match="calibration size=0"):
        CalibrationSettings(size=0)
    with pytest.raises(MixPathError, match="at least one image"):
        calibrate_bn(tiny_supernet, None, images[:0], 8)
