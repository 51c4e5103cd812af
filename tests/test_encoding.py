"""ArchEncoding: round trips, bounds, and repair of arbitrary vectors."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, get_space
from mixpath.spaces.encoding import ArchEncoding


@pytest.mark.parametrize(("name", "m"), [("tiny", 1), ("tiny", 2), ("tiny", 4), ("cifar-s1", 4)])
def test_round_trip_of_random_architectures(name, m):
    space = get_space(name)
    encoding = ArchEncoding(space, m)
    rng = random.Random(0)
    for _ in range(200):
        arch = space.random_architecture(rng, m)
        genes = encoding.encode(arch)
        assert genes.shape == (encoding.n_genes,)
        assert np.all((encoding.lower <= genes) & (genes <= encoding.upper))
        assert encoding.decode(genes) == arch


def test_layout_and_bounds_of_one_layer():
    space = get_space("tiny")
    encoding = ArchEncoding(space, 4)
    assert encoding.n_genes == 3 * (4 + 1)
    assert encoding.upper.tolist() == [1, 1, 1, 1, 1] * 3
    arch = Architecture.parse("e6:k3+k7-e3:k5-e3:k9")
    assert encoding.encode(arch).tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]


def test_decode_rejects_invalid_vectors():
    encoding = ArchEncoding(get_space("tiny"), 2)
    with pytest.raises(MixPathError, match="layer 0: 0 active paths"):
        encoding.decode([0, 0, 0, 0, 1] * 3)
    with pytest.raises(MixPathError, match="layer 1: 3 active paths, allowed 1..2"):
        encoding.decode([1, 0, 0, 0, 1] + [1, 1, 1, 0, 0] + [1, 0, 0, 0, 0])
    with pytest.raises(MixPathError, match="out of bounds"):
        encoding.decode([1, 0, 0, 0, 2] * 3)
    with pytest.raises(MixPathError, match="has 4 genes"):
        encoding.decode([1, 0, 0, 0])


def test_encode_rejects_architectures_outside_the_space():
    encoding = ArchEncoding(get_space("tiny"), 1)
    with pytest.raises(MixPathError, match="m=1 allows at most 1"):
        encoding.encode(Architecture.parse("e6:k3+k5-e3:k5-e3:k9"))


@pytest.mark.parametrize(("name", "m"), [("tiny", 1), ("tiny", 3), ("cifar-s1", 2), ("cifar-s1", 4)])
def test_repair_makes_any_vector_valid(name, m):
    space = get_space(name)
    encoding = ArchEncoding(space, m)
    vectors = np.random.default_rng(1)
    rng = random.Random(1)
    for _ in range(500):
        raw = vectors.integers(-2, 4, size=encoding.n_genes)
        repaired = encoding.repair(raw, rng)
        arch = encoding.decode(repaired)
        space.validate(arch, m)
        assert all(1 <= k <= m for k in arch.path_counts)


def test_repair_keeps_valid_vectors_and_only_switches_paths_it_must():
    space = get_space("tiny")
    encoding = ArchEncoding(space, 2)
    valid = encoding.encode(Architecture.parse("e6:k3+k7-e3:k5-e3:k9"))
    assert encoding.repair(valid, random.Random(0)).tolist() == valid.tolist()
    crowded = [1, 1, 1, 1, 1] + [0, 0, 0, 0, 0] + [0, 0, 0, 1, 0]
    repaired = encoding.repair(crowded, random.Random(0))
    assert sum(repaired[0:4]) == 2 and repaired[4] == 1
    assert sum(repaired[5:9]) == 1 and repaired[9] == 0
    assert repaired[10:].tolist() == [0, 0, 0, 1, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=60, max_size=60), st.integers(1, 4), st.integers(0, 2**32))
def test_repair_property_on_cifar_s1(genes, m, seed):
    encoding = ArchEncoding(get_space("cifar-s1"), m)
    arch = encoding.decode(encoding.repair(genes, random.Random(seed)))
    assert max(arch.path_counts) <= m and min(arch.path_counts) >= 1
