import collections
import random

import pytest

from mixpath.errors import MixPathError
from mixpath.spaces import get_space
from mixpath.training import FairNASSampler, MixPathSampler, SPOSSampler, make_sampler
from mixpath.training.seeding import derive_seed, step_rng


def test_spos_draws_single_paths_uniformly(tiny):
    sampler = SPOSSampler(tiny)
    counts = collections.Counter()
    for step in range(3000):
        (arch,) = sampler.step_architectures(step_rng(0, step))
        assert arch.path_counts == (1, 1, 1)
        counts[arch.layers[0].paths[0]] += 1
    assert all(abs(c / 3000 - 0.25) < 0.03 for c in counts.values())


def test_mixpath_sampler_respects_m_and_covers_counts(tiny):
    sampler = MixPathSampler(tiny, 3)
    seen = collections.Counter()
    for step in range(600):
        (arch,) = sampler.step_architectures(step_rng(1, step))
        tiny.validate(arch, 3)
        seen.update(arch.path_counts)
    assert set(seen) == {1, 2, 3}


def test_fairnas_trains_every_choice_of_every_layer_exactly_once_per_step():
    space = get_space("fmnist-s1")
    sampler = FairNASSampler(space)
    for step in range(5):
        archs = sampler.step_architectures(step_rng(2, step))
        assert len(archs) == 4 * 2  # kernels x expansions
        for i, spec in enumerate(space.layers):
            used = collections.Counter((a.layers[i].paths, a.layers[i].options) for a in archs)
            assert len(used) == spec.n_ops * 2 and set(used.values()) == {1}
        assert all(a.path_counts == (1,) * space.n_layers for a in archs)


@pytest.mark.parametrize("strategy", ["mixpath", "spos", "fairnas"])
def test_samplers_reproduce_under_a_seed(tiny, strategy):
    m = 4 if strategy == "mixpath" else 1
    first = [make_sampler(strategy, tiny, m).step_architectures(step_rng(7, s)) for s in range(20)]
    second = [make_sampler(strategy, tiny, m).step_architectures(step_rng(7, s)) for s in range(20)]
    other = [make_sampler(strategy, tiny, m).step_architectures(step_rng(8, s)) for s in range(20)]
    assert first == second
    assert first != other


def test_single_path_strategies_insist_on_m1(tiny):
    with pytest.raises(MixPathError, match="m must be 1"):
        make_sampler("fairnas", tiny, 2)
    with pytest.raises(MixPathError, match="unknown strategy 'darts'"):
        make_sampler("darts", tiny, 1)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "arch", 1, 2) == derive_seed(0, "arch", 1, 2)
    assert derive_seed(0, "arch", 1, 2) != derive_seed(0, "arch", 2, 1)
    assert random.Random(derive_seed(3)).random() == step_rng(3).random()


def test_branch_fair_draws_path_counts_in_proportion_to_one_over_k():
    space = get_space("fmnist-s1")  # 4 kernels per layer: counts 1..4 with probabilities 12, 6, 4, 3 in 25
    sampler = MixPathSampler(space, 4, "branch-fair")
    counts = collections.Counter()
    active = collections.Counter()  # (count, kernel) -> how often that kernel of layer 0 ran in a draw of that count
    steps = 4000
    for step in range(steps):
        (arch,) = sampler.step_architectures(step_rng(3, step))
        space.validate(arch, 4)
        counts.update(arch.path_counts)
        layer = arch.layers[0]
        active.update((len(layer.paths), op) for op in layer.paths)
    draws = steps * space.n_layers
    for k, share in zip((1, 2, 3, 4), (12 / 25, 6 / 25, 4 / 25, 3 / 25), strict=True):
        assert abs(counts[k] / draws - share) < 0.015, (k, counts[k] / draws)
    # the point of the rule: every kernel trains about as often at every path count (steps * 3/25 each)
    expected = steps * 3 / 25
    assert all(abs(active[(k, op)] - expected) < 0.2 * expected for k in (1, 2, 3, 4) for op in space.layers[0].ops)


def test_uniform_path_sampling_trains_a_kernel_most_inside_the_widest_sums():
    space = get_space("fmnist-s1")
    sampler = MixPathSampler(space, 4)
    active = collections.Counter()
    for step in range(2000):
        (arch,) = sampler.step_architectures(step_rng(4, step))
        active.update(len(arch.layers[0].paths) for op in arch.layers[0].paths if op == "k3")
    assert 3 < active[4] / active[1] < 5  # k/n: four times as often at 4 paths as alone


def test_path_sampling_is_checked_and_only_for_mixpath(tiny):
    with pytest.raises(MixPathError, match="unknown path_sampling 'fair'; choose one of: uniform, branch-fair"):
        make_sampler("mixpath", tiny, 3, "fair")
    with pytest.raises(MixPathError, match="path_sampling='branch-fair' is for strategy mixpath; spos"):
        make_sampler("spos", tiny, 1, "branch-fair")
    assert make_sampler("mixpath", tiny, 3, "uniform").path_weights is None
