import json
import math
import random
import subprocess
import sys

import pytest

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, LayerChoice, get_space, list_spaces, mbconv_space, register_space


def test_cifar_s1_matches_design():
    space = get_space("cifar-s1")
    assert space.input_shape == (3, 32, 32)
    assert [layer.out_channels for layer in space.layers] == [48, 48, 96, 96, 96, 192, 192, 192, 256, 256, 320, 320]
    assert [i for i, layer in enumerate(space.layers) if layer.stride == 2] == [2, 5]
    assert space.skeleton == {"stem_channels": 32, "stem_stride": 1, "head_channels": 1280}
    assert all(layer.ops == ("k3", "k5", "k7", "k9") for layer in space.layers)
    assert all(layer.option_values("e") == (3, 6) for layer in space.layers)


def test_space_size_counts_subsets_and_options():
    space = get_space("cifar-s1")
    assert space.size(1) == 8**12
    assert space.size(4) == ((4 + 6 + 4 + 1) * 2) ** 12
    assert space.size(2) == ((4 + 6) * 2) ** 12
    tiny = get_space("tiny")
    assert tiny.size(4) == 30**3


@pytest.mark.parametrize("m", [1, 2, 4])
def test_string_and_json_round_trip(m):
    for space in list_spaces():
        if space.max_m() < m:
            continue
        rng = random.Random(m)
        for _ in range(20):
            arch = space.random_architecture(rng, m)
            assert Architecture.parse(str(arch)) == arch
            assert Architecture.from_json(json.dumps(arch.to_json())) == arch
            assert space.parse(space.format(arch), m) == arch
            assert hash(Architecture.parse(str(arch))) == hash(arch)
            assert max(arch.path_counts) <= m


def test_canonical_order_makes_equal_sets_equal():
    a = Architecture((LayerChoice.of(["k9", "k3", "k11"], e=6),))
    b = Architecture.parse("e6:k11+k3+k9")
    assert a == b
    assert str(a) == "e6:k3+k9+k11"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("e6:k3-e3:k5", "architecture has 2 layers"),
        ("e6:k3-e3:k5-e6:k4", "unknown op 'k4'"),
        ("e6:k3-e3:k5+k7+k9-e6:k3", "m=2 allows at most 2"),
        ("e6:k3-e4:k5-e6:k3", "e=4 is not allowed"),
        ("e6:k3-k5-e6:k3", "options [] given"),
        ("e6:k3-e3:-e6:k3", "malformed layer"),
        ("e6:k3-ex:k5-e6:k3", "malformed option"),
        ("e6:k3-e3:k5+k5-e6:k3", "names a path twice"),
        ("", "malformed architecture"),
    ],
)
def test_bad_architectures_give_one_line_errors(tiny, text, fragment):
    with pytest.raises(MixPathError) as err:
        tiny.parse(text, 2)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_path_set_is_rejected():
    with pytest.raises(MixPathError, match="at least one active path"):
        LayerChoice.of([], e=3)


def test_unknown_space_lists_known_ones():
    with pytest.raises(MixPathError, match="known spaces: .*cifar-s1"):
        get_space("imagenet-s9")


def test_benchmark_spaces_and_their_models_need_no_import_first():
    """No import order matters: a fresh process finds nb201 and builds its models from the registries alone."""
    code = (
        "import sys; from mixpath.spaces import get_space, list_spaces; "
        "assert 'mixpath.benchmarks_nas' not in sys.modules and 'torch' not in sys.modules; "
        "space = get_space('nb201'); assert 'nb101' in [s.name for s in list_spaces()]; "
        "from mixpath.supernet import build_standalone, build_supernet; "
        "build_supernet(space, 2); build_standalone(space, space.largest_architecture(1))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_m_is_rejected(tiny):
    with pytest.raises(MixPathError, match="choose 1..4"):
        tiny.check_m(5)


def test_user_declared_space_registers_and_samples():
    space = mbconv_space("user-test", "a user's space", (3, 16, 16), 5, [8, 16, 16], [2, 1], 64, ops=("k3", "k5"))
    register_space(space)
    assert get_space("user-test") is space
    assert space.size(2) == (3 * 2) ** 2
    register_space(space)  # the same declaration again (a space file run twice): nothing changes
    assert get_space("user-test") is space
    other = mbconv_space("user-test", "another", (3, 16, 16), 5, [8, 16, 16], [2, 2], 64, ops=("k3", "k5"))
    with pytest.raises(MixPathError, match="different search space named 'user-test' is already registered"):
        register_space(other)


def test_random_architecture_path_counts_are_uniform(tiny):
    rng = random.Random(1)
    counts = [0] * 4
    for _ in range(4000):
        for k in tiny.random_architecture(rng, 4).path_counts:
            counts[k - 1] += 1
    assert all(math.isclose(c / sum(counts), 0.25, abs_tol=0.02) for c in counts)
