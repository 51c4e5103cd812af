"""MixPath's ImageNet spaces (3 x 224 x 224 input, 1000 classes): S2, MnasNet-like, and S3, MixNet-like.

Both are ``mbconv`` spaces: every searchable layer is a MixPath inverted bottleneck that chooses an
expansion ratio in {3, 6} and 1..m depthwise kernels from {3, 5, 7, 9}, summed and normalised by the
BN policy (Shadow BN by default). They differ in the fixed macro skeleton around the layers:

- ``imagenet-s2``: the MnasNet-like macro of FairNAS (by MixPath's authors): stem 3x3/2 to 32, a
  separable 3x3 block to 16, 19 layers in stages of 2, 4, 4, 4, 4, 1 with widths 32, 40, 80, 96, 192,
  320 (stride 2 at the first layer of the 32, 40, 80 and 192 stages), 1x1 conv to 1280, ReLU6, no SE.
- ``imagenet-s3``: MixNet-M's macro: stem 3x3/2 to 24, a separable 3x3 block 24 -> 24, 18 layers in
  stages of 2, 4, 4, 4, 4 with widths 32, 40, 80, 120, 200 (stride 2 at the first layer of the 32, 40,
  80 and 200 stages), 1x1 conv to 1536; ReLU in the stem, separable block, head and the first stage,
  swish and squeeze-and-excitation (ratio 0.5, 0.25 in the 80 stage) after it, as MixNet-M has them.

The MixPath paper does not list these skeletons layer by layer; docs/imagenet.md records every choice
made here where it is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixpath.spaces.space import LayerSpec, SearchSpace

KERNEL_OPS = ("k3", "k5", "k7", "k9")
EXPANSIONS = (3, 6)
IMAGENET_SHAPE = (3, 224, 224)
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """``repeats`` layers of width ``channels``; the first has ``stride``; fixed activation and SE ratio."""

    repeats: int
    channels: int
    stride: int
    act: str = "relu6"
    se: float = 0.0


def staged_space(
    name: str,
    description: str,
    stem_channels: int,
    sep_channels: int,
    stages: list[Stage],
    head_channels: int,
    activation: str,
    default_m: int,
) -> SearchSpace:
    """An ImageNet ``mbconv`` space from its stages (stem stride 2, separable block after the stem)."""
    layers = []
    c_in = sep_channels
    for stage in stages:
        attrs = tuple(sorted({"act": stage.act, **({"se": stage.se} if stage.se else {})}.items()))
        for i in range(stage.repeats):
            layers.append(
                LayerSpec(
                    ops=KERNEL_OPS,
                    options=(("e", EXPANSIONS),),
                    in_channels=c_in,
                    out_channels=stage.channels,
                    stride=stage.stride if i == 0 else 1,
                    attrs=attrs,
                )
            )
            c_in = stage.channels
    skeleton = {
        "stem_channels": stem_channels,
        "stem_stride": 2,
        "sep_channels": sep_channels,
        "head_channels": head_channels,
        "activation": activation,
    }
    return SearchSpace(
        name, description, "mbconv", IMAGENET_SHAPE, IMAGENET_CLASSES, tuple(layers), skeleton, default_m
    )


IMAGENET_S2 = staged_space(
    "imagenet-s2",
    "MixPath S2, MnasNet-like (FairNAS macro), 3x224x224: 19 layers, kernels {3,5,7,9}, e {3,6}, ReLU6, 1280 head",
    stem_channels=32,
    sep_channels=16,
    stages=[Stage(2, 32, 2), Stage(4, 40, 2), Stage(4, 80, 2), Stage(4, 96, 1), Stage(4, 192, 2), Stage(1, 320, 1)],
    head_channels=1280,
    activation="relu6",
    default_m=2,
)

IMAGENET_S3 = staged_space(
    "imagenet-s3",
    "MixPath S3, MixNet-like (MixNet-M macro), 3x224x224: 18 layers, kernels {3,5,7,9}, e {3,6}, swish + SE, 1536 head",
    stem_channels=24,
    sep_channels=24,
    stages=[
        Stage(2, 32, 2, "relu"),
        Stage(4, 40, 2, "swish", 0.5),
        Stage(4, 80, 2, "swish", 0.25),
        Stage(4, 120, 1, "swish", 0.5),
        Stage(4, 200, 2, "swish", 0.5),
    ],
    head_channels=1536,
    activation="relu",
    default_m=4,
)
