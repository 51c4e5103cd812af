"""The MixPath inverted-bottleneck spaces: S1 for CIFAR-10, its Fashion-MNIST sizing, and a tiny one.

Every layer is a MixPath inverted bottleneck: a 1x1 expansion (ratio e), a set of 1..m depthwise
kernels whose outputs are summed, a 1x1 projection, and the BN policy's norm (Shadow BN by default).
"""

from __future__ import annotations

from mixpath.spaces.space import LayerSpec, SearchSpace

KERNEL_OPS = ("k3", "k5", "k7", "k9")
EXPANSIONS = (3, 6)


def mbconv_space(
    name: str,
    description: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    channels: list[int],
    strides: list[int],
    head_channels: int,
    ops: tuple[str, ...] = KERNEL_OPS,
    expansions: tuple[int, ...] = EXPANSIONS,
    stem_stride: int = 1,
    kernel_shapes: tuple[str, ...] = (),
) -> SearchSpace:
    """Declare an inverted-bottleneck space: ``channels[0]`` is the stem, ``channels[i+1]`` layer i's output.
    ``kernel_shapes``: the layers' depthwise kernel shapes in turn (e.g. ``("1xk", "kx1")`` alternates
    time and frequency kernels); empty: square kernels."""
    layers = tuple(
        LayerSpec(
            ops=ops,
            options=(("e", expansions),),
            in_channels=channels[i],
            out_channels=channels[i + 1],
            stride=stride,
            attrs=(("kernel_shape", kernel_shapes[i % len(kernel_shapes)]),) if kernel_shapes else (),
        )
        for i, stride in enumerate(strides)
    )
    skeleton = {"stem_channels": channels[0], "stem_stride": stem_stride, "head_channels": head_channels}
    return SearchSpace(name, description, "mbconv", input_shape, num_classes, layers, skeleton)


def _strides(n_layers: int, reduce_at: tuple[int, ...]) -> list[int]:
    return [2 if i in reduce_at else 1 for i in range(n_layers)]


CIFAR_S1 = mbconv_space(
    "cifar-s1",
    "MixPath S1 for CIFAR-10 (3x32x32): 12 layers, kernels {3,5,7,9}, expansion {3,6}, 1280 head",
    (3, 32, 32),
    10,
    [32, 48, 48, 96, 96, 96, 192, 192, 192, 256, 256, 320, 320],
    _strides(12, (2, 5)),
    1280,
)

# S1 at width 0.25 with its last three layers dropped and a stride-2 stem: 9 layers on 1x28x28 input,
# resolutions 14 -> 7 -> 4 (reductions at the stem and S1's layers 2 and 5). The stride-1 stem at 28x28
# trained ~5x slower at m=4 for little gain on 28x28 grey images; this sizing runs one Fashion-MNIST supernet
# epoch at m=4 in minutes on 2 cores (measured speed in the README).
FMNIST_S1 = mbconv_space(
    "fmnist-s1",
    "MixPath S1 sized for Fashion-MNIST (1x28x28): width 0.25, 9 layers, stride-2 stem, kernels {3,5,7,9}, e {3,6}",
    (1, 28, 28),
    10,
    [8, 12, 12, 24, 24, 24, 48, 48, 48, 64],
    _strides(9, (2, 5)),
    320,
    stem_stride=2,
)

TINY = mbconv_space(
    "tiny",
    "Three small layers for tests and smoke runs (1x8x8 input, e.g. scikit-learn digits)",
    (1, 8, 8),
    10,
    [8, 8, 16, 16],
    _strides(3, (1,)),
    32,
)
